"""``piaa review``: the groups of a cull in a local web page; corrections go into the preference store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from piaa.cli._common import app, friendly, say


def open_review(
    results: Path,
    store: Path,
    profile: str,
    out: Path | None = None,
    album: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8766,
) -> None:
    """Serve the review page until Ctrl-C (``piaa review`` and ``piaa cull --review``)."""
    from rich.markup import escape

    from piaa.web import check_port
    from piaa.web.review import ReviewConfig, create_review_app

    cfg = ReviewConfig(results=results, store=store, profile=profile, out=out, album=album, host=host)
    check_port(host, port)
    web_app = create_review_app(cfg)  # checks the results, photos, profile target and store first
    rv = web_app.state.reviewer
    shown = f"[{host}]" if ":" in host else host
    say(
        f"{escape(str(results))}: {len(rv.groups)} groups, {len(rv.frames)} photos; corrections go to "
        f"{escape(str(store))}. Open http://{shown}:{port}/  (Ctrl-C to stop)"
    )
    import uvicorn

    uvicorn.run(web_app, host=host, port=port, log_level="warning")


@app.command("review")
@friendly
def review_cmd(
    results: Annotated[Path, typer.Option(help="The JSON written by piaa cull --output F.json.")],
    store: Annotated[Path, typer.Option(help="Preference store (SQLite; created if missing).")],
    profile: Annotated[str, typer.Option(help="The profile the cull used (a folder, or nima-ava).")],
    out: Annotated[
        Path | None, typer.Option(help="Where 'Update my profile' saves (default: over --profile).")
    ] = None,
    album: Annotated[
        Path | None,
        typer.Option(help="Folder 'Update my profile' trains on (default: the folder holding the photos)."),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8766,
    host: Annotated[str, typer.Option(help="Interface to bind (default: this computer only).")] = "127.0.0.1",
) -> None:
    """Review a cull in a local web page: change picks, reject frames, accept groups; every correction
    is stored as pairwise preferences, and 'Update my profile' retrains the profile from them."""
    open_review(results, store, profile, out=out, album=album, host=host, port=port)
