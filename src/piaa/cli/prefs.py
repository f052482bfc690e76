"""``piaa prefs``: a person's preference store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from piaa.cli._common import (
    friendly,
    prefs_app,
    say,
)


@prefs_app.command("import")
@friendly
def prefs_import(
    store: Annotated[Path, typer.Argument(help="Preference store (SQLite; created if missing).")],
    csv_file: Annotated[Path, typer.Argument(help="CSV with header preferred,other.")],
    album: Annotated[Path | None, typer.Option(help="Album folder the names are relative to.")] = None,
) -> None:
    """Append the pairs of a CSV to a store (all of them or none)."""
    from piaa.preferences import PreferenceStore

    with PreferenceStore(store) as s:
        n = s.import_csv(csv_file, album)
        say(f"{store}: imported {n} judgements ({len(s)} in all, {len(s.pairs())} effective pairs)")


@prefs_app.command("export")
@friendly
def prefs_export(
    store: Annotated[Path, typer.Argument(help="Preference store.")],
    csv_file: Annotated[Path, typer.Argument(help="CSV to write (preferred,other).")],
    album: Annotated[Path | None, typer.Option(help="Write names relative to this album.")] = None,
    resolved: Annotated[bool, typer.Option(help="Only the effective pairs.")] = False,
) -> None:
    """Write a store's judgements as CSV (atomically)."""
    from piaa.preferences import PreferenceStore

    if not store.is_file():
        raise FileNotFoundError(f"{store}: no such preference store")
    with PreferenceStore(store) as s:
        s.export_csv(csv_file, album, resolved=resolved)
        say(f"wrote {len(s.pairs()) if resolved else len(s)} pairs to {csv_file}")


@prefs_app.command("show")
@friendly
def prefs_show(store: Annotated[Path, typer.Argument(help="Preference store or CSV.")]) -> None:
    """Count stated, contradictory and transitively inferred pairs, and the judgements by source
    (collect, cull, an imported CSV)."""
    from rich.markup import escape

    from piaa.preferences import infer_transitive, load_sources, load_statements, resolve

    statements = load_statements(store)
    pairs, contradictions = resolve(statements)
    inferred = len(infer_transitive(pairs))
    images = len({n for p in pairs for n in p})
    by_source = ", ".join(f"{source} {n}" for source, n in load_sources(store).items())
    name = escape(str(store))
    say(
        f"{name}: {len(statements)} judgements over {images} images -> {len(pairs)} effective pairs "
        f"({len(contradictions)} contradictions, latest wins) + {inferred} inferred by transitivity"
    )
    if by_source:
        say(f"by source: {escape(by_source)}")
