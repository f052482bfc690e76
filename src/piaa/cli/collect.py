"""``piaa collect``: the web page for stating preferences."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from piaa.cli._common import (
    app,
    friendly,
    say,
)


@app.command("collect")
@friendly
def collect_cmd(
    album: Annotated[Path, typer.Option(help="Folder of the person's photos.")],
    store: Annotated[Path, typer.Option(help="Preference store (SQLite; created if missing).")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the page on this computer.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to bind (default: this computer only).")] = "127.0.0.1",
    target: Annotated[int, typer.Option(min=1, help="Pairs to judge before training is offered.")] = 100,
    strategy: Annotated[
        str, typer.Option(help="random (the paper) or active (most informative pairs).")
    ] = "random",
    reference: Annotated[
        Path | None, typer.Option(help="Reference folder: enables training the personal model in the page.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the pairs shown.")] = 0,
) -> None:
    """Collect pairwise preferences in a local web page: click the photo you prefer."""
    from piaa.web import CollectConfig, check_port, create_app, serve

    cfg = CollectConfig(
        album=album, store=store, target=target, strategy=strategy, reference=reference, seed=seed, host=host
    )
    check_port(host, port)
    web_app = create_app(cfg)  # checks the album, store and reference before anything is served
    n = len(web_app.state.collector.album)
    shown = f"[{host}]" if ":" in host else host
    say(f"{album}: {n} photos; judgements go to {store}. Open http://{shown}:{port}/  (Ctrl-C to stop)")
    serve(web_app, host, port)
