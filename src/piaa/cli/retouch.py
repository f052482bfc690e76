"""``piaa retouch``: photos retouched toward a profile's taste (the paper's section 4.6)."""

from __future__ import annotations

import tempfile
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
        typer.Option(
            help="auto (learned: a predictor trained once per profile, when there are 8+ photos to train "
            "it on; else optimize), optimize (per photo) or learned."
        ),
    ] = "auto",
    album: Annotated[
        Path | None,
        typer.Option(help="learned: photos to train on (default: the profile's album, else the inputs)."),
    ] = None,
    compare_generic: Annotated[
        bool, typer.Option(help="Also retouch with the generic model the profile was personalized from.")
    ] = False,
    generic: Annotated[
        str | None,
        typer.Option(help="Compare with this generic model instead (nima-ava or a profile folder)."),
    ] = None,
    report: Annotated[bool, typer.Option(help="Write OUT/report.html.")] = True,
) -> None:
    """Retouch photos toward the profile's taste (exposure, colour, dehaze; the paper's section 4.6)."""
    from piaa.data.images import FailureLog
    from piaa.models.profile import load_profile
    from piaa.retouch.batch import retouch_files, write_report

    prof = load_profile(profile)
    gen, generic_name = None, None
    if compare_generic or generic is not None:
        if generic is not None:
            gen, generic_name = load_profile(generic), Path(generic).name
        else:
            gen = prof.generic()
            if gen is None:
                raise ValueError(
                    f"{profile}: the profile does not carry its generic model (made before piaa kept it, "
                    "with --finetune-backbone, or it is a generic model itself); give one with --generic"
                )
            generic_name = gen.config["origin"]
    files = walk(paths)
    if out.exists() and not out.is_dir():  # before training a predictor, not once per photo after it
        raise ValueError(f"{out}: --out exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as e:
        raise ValueError(f"{out}: cannot write the results there ({e.strerror or e})") from None
    album_files = walk([album]) if album is not None else None
    failures = FailureLog()
    results = retouch_files(
        prof, files, out, ops=ops, strength=strength, method=method, generic=gen, album=album_files,
        failures=failures, progress=len(files) > 1, log=say,
    )  # fmt: skip
    for r in results:
        s = r.scores["personal"]
        say(f"{r.source} -> {r.output}  personal score {s['original']:.2f} -> {s['personal']:.2f}")
    if report and results:
        page = write_report(out / "report.html", results, Path(profile).name, generic_name)
        say(f"wrote {len(results)} photos and {page}")
    report_failures(failures)
    if failures or not results:
        raise typer.Exit(2)
