"""``piaa collect``: the web page for stating preferences."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from piaa.cli._common import (
    app,
    friendly,
    say,
    user_path,
)


@app.command("collect")
@friendly
def collect_cmd(
    album: Annotated[Path, typer.Option(parser=user_path, help="Folder of the person's photos.")],
    store: Annotated[
        Path, typer.Option(parser=user_path, help="Preference store (SQLite; created if missing).")
    ],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the page on this computer.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to bind (default: this computer only).")] = "127.0.0.1",
    target: Annotated[int, typer.Option(min=1, help="Judgements to aim for (training starts at 20).")] = 100,
    strategy: Annotated[
        str, typer.Option(help="active (most informative pairs; default) or random (the paper's protocol).")
    ] = "active",
    generic: Annotated[
        str | None,
        typer.Option(help="Generic model to personalize: nima-ava (default) or a profile folder."),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            parser=user_path, help="Reference folder: the paper's KNN pipeline instead of --generic."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the pairs shown.")] = 0,
) -> None:
    """Collect pairwise preferences in a local web page: click the photo you prefer. From 20 judgements on
    the page trains your personal model, ranks the album and retouches photos toward your taste."""
    from piaa.web import CollectConfig, check_port, create_app, serve

    cfg = CollectConfig(
        album=album, store=store, target=target, strategy=strategy, reference=reference, generic=generic,
        seed=seed, host=host,
    )  # fmt: skip
    check_port(host, port)
    web_app = create_app(cfg)  # checks the album, store and reference before anything is served
    collector = web_app.state.collector
    n = len(collector.album)
    shown = f"[{host}]" if ":" in host else host
    say(
        f"{escape(str(album))}: {n} photo{'s' if n != 1 else ''}; judgements go to {escape(str(store))}; "
        f"the model starts from the {escape(collector.trainer.origin)} and is saved to "
        f"{escape(str(collector.trainer.profile_dir))}. Open http://{shown}:{port}/  (Ctrl-C to stop)"
    )
    serve(web_app, host, port)
