"""``piaa prefs``: a person's preference store."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer

from piaa.cli._common import check_output, friendly, plural, prefs_app, say, user_path
from piaa.errors import UsageError


def _store_files(store: Path) -> list[Path]:
    return [store, store.with_name(store.name + "-wal"), store.with_name(store.name + "-shm")]


@prefs_app.command("import")
@friendly
def prefs_import(
    store: Annotated[
        Path, typer.Argument(parser=user_path, help="Preference store (SQLite; created if missing).")
    ],
    csv_file: Annotated[Path, typer.Argument(parser=user_path, help="CSV with header preferred,other.")],
    album: Annotated[
        Path | None, typer.Option(parser=user_path, help="Album folder the names are relative to.")
    ] = None,
) -> None:
    """Append the pairs of a CSV to a store (all of them or none)."""
    from piaa.preferences import PreferenceStore, read_pairs_csv

    read_pairs_csv(csv_file, album)  # a bad CSV is refused before the store is made or opened
    new = not any(os.path.lexists(p) for p in _store_files(store))
    try:
        with PreferenceStore(store) as s:
            n = s.import_csv(csv_file, album)
            say(
                f"{store}: imported {plural(n, 'judgement')} ({len(s)} in all, "
                f"{plural(len(s.pairs()), 'effective pair')})"
            )
    except BaseException:
        if new:  # a failed import into a new store leaves no store (nor its -wal, -shm) behind
            for p in _store_files(store):
                with contextlib.suppress(OSError):
                    p.unlink()
        raise


@prefs_app.command("export")
@friendly
def prefs_export(
    store: Annotated[Path, typer.Argument(parser=user_path, help="Preference store.")],
    csv_file: Annotated[Path, typer.Argument(parser=user_path, help="CSV to write (preferred,other).")],
    album: Annotated[
        Path | None, typer.Option(parser=user_path, help="Write names relative to this album.")
    ] = None,
    resolved: Annotated[bool, typer.Option(help="Only the effective pairs.")] = False,
    force: Annotated[bool, typer.Option(help="Replace the CSV if it exists.")] = False,
) -> None:
    """Write a store's judgements as CSV (atomically)."""
    from piaa.preferences import PreferenceStore

    check_output(csv_file, "the CSV to write", suffixes=None)
    if csv_file.is_file() and not force:  # it may be judgements the user wrote by hand
        raise UsageError(f"{csv_file}: exists; give --force to replace it, or another name")
    with PreferenceStore(store, readonly=True) as s:
        s.export_csv(csv_file, album, resolved=resolved)
        say(f"wrote {plural(len(s.pairs()) if resolved else len(s), 'pair')} to {csv_file}")


@prefs_app.command("show")
@friendly
def prefs_show(
    store: Annotated[Path, typer.Argument(parser=user_path, help="Preference store or CSV.")],
    album: Annotated[
        Path | None,
        typer.Option(
            parser=user_path,
            help="Count only the judgements naming two photos of this album, matched as personalize does.",
        ),
    ] = None,
) -> None:
    """Count stated, contradictory and transitively inferred pairs, and the judgements by source
    (collect, cull, an imported CSV)."""
    from piaa.data.images import iter_image_files
    from piaa.errors import where
    from piaa.preferences import (
        infer_transitive,
        load_sources,
        load_statements,
        match_names,
        normalize_name,
        resolve,
    )  # fmt: skip

    if album is not None and not album.is_dir():
        raise FileNotFoundError(f"{album}: album folder not found")
    statements = load_statements(store, album)
    unmatched: list[str] = []
    if album is not None:  # personalize's matching: album-relative names of the photos the walk finds
        names = [normalize_name(os.path.abspath(f), album) for f in iter_image_files([album])]
        matched, unmatched = match_names(statements, names)
        outside = len(statements) - len(matched)
        statements = matched
    pairs, contradictions = resolve(statements)
    inferred = len(infer_transitive(pairs))
    images = len({n for p in pairs for n in p})
    by_source = ", ".join(f"{source} {n}" for source, n in load_sources(store).items())
    say(
        f"{store}: {plural(len(statements), 'judgement')} over {plural(images, 'image')} -> "
        f"{plural(len(pairs), 'effective pair')} "
        f"({plural(len(contradictions), 'contradiction')}, latest wins) "
        f"+ {inferred} inferred by transitivity"
    )
    if album is not None and outside:
        shown = ", ".join(where(n) for n in unmatched[:5])
        say(
            f"{plural(outside, 'judgement')} name photos that are not in {album} (ignored, as personalize "
            f"does): {shown}{' ...' if len(unmatched) > 5 else ''}"
        )
    if by_source:
        say(f"by source: {by_source}")
