"""``piaa retouch``: photos retouched toward a profile's taste (the paper's section 4.6)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from piaa.cli._common import app, friendly, report_failures, say, walk


@app.command("retouch")
@friendly
def retouch_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Images or folders (walked recursively).")],
    profile: Annotated[str, typer.Option(help="Profile folder (`piaa personalize`) or nima-ava.")],
    out: Annotated[Path, typer.Option(help="Folder for the results (never overwrites a file).")],
    ops: Annotated[str, typer.Option(help="Comma-separated: exposure, colour, dehaze.")] = (
        "exposure,colour,dehaze"
    ),
    strength: Annotated[float, typer.Option(min=0.0, max=1.0, help="0: unchanged, 1: the full edit.")] = 1.0,
    method: Annotated[
        str,
        typer.Option(help="auto (learned for 8+ photos, else optimize), optimize (per photo) or learned."),
    ] = "auto",
    album: Annotated[
        Path | None, typer.Option(help="learned: the person's photos to train on (default: the inputs).")
    ] = None,
    compare_generic: Annotated[bool, typer.Option(help="Also retouch with the generic model.")] = False,
    generic: Annotated[
        str | None, typer.Option(help="The generic model: nima-ava or a profile made without --prefs.")
    ] = None,
    report: Annotated[bool, typer.Option(help="Write OUT/report.html.")] = True,
) -> None:
    """Retouch photos toward the profile's taste (exposure, colour, dehaze; the paper's section 4.6)."""
    from piaa.data.images import FailureLog
    from piaa.models.profile import load_profile
    from piaa.retouch.batch import retouch_files, write_report

    if compare_generic and generic is None:
        raise ValueError("--compare-generic needs --generic (nima-ava or a profile made without --prefs)")
    prof = load_profile(profile)
    gen = load_profile(generic) if compare_generic and generic is not None else None
    files = walk(paths)
    album_files = walk([album]) if album is not None else None
    failures = FailureLog()
    results = retouch_files(
        prof, files, out, ops=ops, strength=strength, method=method, generic=gen, album=album_files,
        failures=failures, progress=len(files) > 1,
    )  # fmt: skip
    for r in results:
        s = r.scores["personal"]
        say(f"{r.source} -> {r.output}  personal score {s['original']:.2f} -> {s['personal']:.2f}")
    if report and results:
        names = Path(profile).name, Path(generic).name if gen and generic else None
        page = write_report(out / "report.html", results, *names)
        say(f"wrote {len(results)} photos and {page}")
    report_failures(failures)
    if failures or not results:
        raise typer.Exit(2)
