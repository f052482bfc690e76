"""``piaa review``: the groups of a cull in a local web page; corrections go into the preference store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from piaa.cli._common import app, friendly, say, user_path
from piaa.errors import UsageError

if TYPE_CHECKING:
    from piaa.web.review import XmpSettings


def open_review(
    results: Path,
    store: Path,
    profile: str,
    out: Path | None = None,
    album: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8766,
    xmp: XmpSettings | None = None,
) -> None:
    """Serve the review page until Ctrl-C (``piaa review`` and ``piaa cull --review``)."""
    from piaa.web import check_port
    from piaa.web.review import ReviewConfig, create_review_app

    cfg = ReviewConfig(
        results=results, store=store, profile=profile, out=out, album=album, host=host, xmp=xmp
    )
    web_app = create_review_app(cfg)  # checks the results, photos, profile target and store first
    check_port(host, port)
    rv = web_app.state.reviewer
    shown = f"[{host}]" if ":" in host else host
    say(
        f"{results}: {len(rv.groups)} groups, {len(rv.frames)} photos; corrections go to "
        f"{store}. Open http://{shown}:{port}/  (Ctrl-C to stop)"
    )
    import uvicorn

    uvicorn.run(web_app, host=host, port=port, log_level="warning")


@app.command("review")
@friendly
def review_cmd(
    results: Annotated[
        Path, typer.Option(parser=user_path, help="The JSON written by piaa cull --output F.json.")
    ],
    store: Annotated[
        Path, typer.Option(parser=user_path, help="Preference store (SQLite; created if missing).")
    ],
    profile: Annotated[str, typer.Option(help="The profile the cull used (a folder, or nima-ava).")],
    out: Annotated[
        Path | None,
        typer.Option(parser=user_path, help="Where 'Update my profile' saves (default: over --profile)."),
    ] = None,
    album: Annotated[
        Path | None,
        typer.Option(
            parser=user_path,
            help="Folder 'Update my profile' trains on (default: the folder holding the photos).",
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the review page.")] = 8766,
    host: Annotated[str, typer.Option(help="Interface to bind (default: this computer only).")] = "127.0.0.1",
    xmp: Annotated[
        bool, typer.Option(help="Rewrite the XMP sidecars of frames a correction changes.")
    ] = False,
    sidecar: Annotated[
        str, typer.Option(help="Sidecar names: darktable (photo.ext.xmp) or adobe (photo.xmp).")
    ] = "darktable",
    alternate_rating: Annotated[int, typer.Option(min=0, max=5, help="xmp:Rating of alternates.")] = 0,
    pick_label: Annotated[str, typer.Option(help="xmp:Label of picks ('' for none).")] = "Green",
    reject_label: Annotated[str, typer.Option(help="xmp:Label of rejects ('' for none).")] = "Red",
) -> None:
    """Review a cull in a local web page: change picks, reject frames, accept groups; every correction
    is stored as pairwise preferences, and 'Update my profile' retrains the profile from them."""
    settings = xmp_settings(sidecar, pick_label, reject_label, alternate_rating) if xmp else None
    open_review(results, store, profile, out=out, album=album, host=host, port=port, xmp=settings)


def xmp_settings(sidecar: str, pick_label: str, reject_label: str, alternate_rating: int) -> XmpSettings:
    """The sidecar options as ``piaa cull`` takes them; an unknown naming is a one-line error."""
    from piaa.cull.xmp import NAMINGS
    from piaa.web.review import XmpSettings

    if sidecar not in NAMINGS:
        raise UsageError(f"--sidecar {sidecar}: choose one of {', '.join(NAMINGS)}")
    return XmpSettings(sidecar, pick_label or None, reject_label or None, alternate_rating)
