"""``piaa retouch``: photos retouched toward a profile's taste (the paper's section 4.6)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from piaa.cli._common import app, friendly, report_failures, say, user_path, walk
from piaa.errors import UsageError
from piaa.settings import RunSettings


@app.command("retouch")
@friendly
def retouch_cmd(
    paths: Annotated[
        list[Path], typer.Argument(parser=user_path, help="Images or folders (walked recursively).")
    ],
    profile: Annotated[str, typer.Option(help="Profile folder (`piaa personalize`) or nima-ava.")],
    out: Annotated[
        Path, typer.Option(parser=user_path, help="Folder for the results (never overwrites a file).")
    ],
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
        typer.Option(
            parser=user_path,
            help="learned: photos to train on (default: the profile's album, else the inputs).",
        ),
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
    from piaa.retouch import RetouchSettings, retouch_files
    from piaa.retouch.batch import write_report

    settings = RetouchSettings(ops=ops, strength=strength, method=method)  # bad values fail first
    prof = load_profile(profile)
    gen, generic_name = None, None
    if compare_generic or generic is not None:
        if generic is not None:
            gen, generic_name = load_profile(generic), Path(generic).name
        else:
            gen = prof.generic()
            if gen is None:
                raise UsageError(
                    f"{profile}: the profile does not carry its generic model (made before piaa kept it, "
                    "with --finetune-backbone, or it is a generic model itself); give one with --generic"
                )
            generic_name = gen.config.origin
    files = _without_earlier_results(walk(paths, frozenset({(out / "report.html").absolute()})), paths, out)
    _check_inputs(paths)  # before any training: "best.csv: not an image file" is said first
    album_files = walk([album]) if album is not None else None
    created = _check_out(out)
    failures = FailureLog()
    resumed: list[tuple[Path, Path]] = []
    try:
        results = retouch_files(
            prof, files, out, settings, generic=gen, album=album_files, failures=failures, log=say,
            resumed=resumed, run=RunSettings.from_env(progress=len(files) > 1),  # reads PIAA_TORCH_THREADS
        )  # fmt: skip
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # nothing was written: leave no empty folder behind
    word = "personal score" if prof.pairs else "score"  # a generic model (nima-ava) is nobody's taste
    for r in results:
        s = r.scores["personal"]
        kept = "  (original kept: no edit raised the score)" if r.personal.kept_original else ""
        say(f"{r.source} -> {r.output}  {word} {s['original']:.2f} -> {s['personal']:.2f}{kept}")
    if resumed:
        say(
            f"{len(resumed)} {'photo was' if len(resumed) == 1 else 'photos were'} already retouched "
            f"into {out} by an earlier run with the same settings: kept (delete them to redo)"
        )
    if report and results:
        page = write_report(out / "report.html", results, Path(profile).name, generic_name)
        say(f"wrote {len(results)} {'photo' if len(results) == 1 else 'photos'} and {page}")
    report_failures(failures)
    if failures or not (results or resumed):
        raise typer.Exit(2)


def _without_earlier_results(files: list[Path], paths: list[Path], out: Path) -> list[Path]:
    """``files`` less the results earlier runs wrote into ``out``, when a folder being retouched holds
    ``out`` (``--out`` is the album itself, or a folder inside it): else each re-run would retouch the
    last run's results again (``a-retouched-retouched.jpg``). A file named on the command line stays."""
    from piaa.retouch.batch import Manifest

    earlier = Manifest(out, "").results()
    if not earlier:
        return files
    named = {p.absolute() for p in paths if not p.is_dir()}
    kept = [f for f in files if f.absolute() not in earlier or f.absolute() in named]
    if len(kept) < len(files):
        n = len(files) - len(kept)
        say(f"left out {n} earlier {'result' if n == 1 else 'results'} of piaa retouch in {out}")
    if not kept:
        raise UsageError(f"{', '.join(map(str, paths))}: no photos found (only earlier results in {out})")
    return kept


def _check_inputs(paths: list[Path]) -> None:
    """Every file named on the command line is a photo (by suffix or signature), checked before any
    work: ``walk`` passes named files through whatever they are."""
    from piaa.data.files import IMAGE_EXTENSIONS, read_head, sniff_format

    for p in paths:
        if p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS:
            try:
                known = sniff_format(read_head(p)) is not None
            except OSError as e:
                raise UsageError(f"{p}: cannot be read ({e.strerror or e})") from None
            if not known:
                raise UsageError(f"{p}: not an image file")


def _check_out(out: Path) -> bool:
    """``--out`` can take the results, checked before any work and without creating it (the writer
    creates it with the first result). Returns whether it does not exist yet."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: --out exists and is not a folder")
    if out.is_dir():
        try:
            tempfile.TemporaryFile(dir=out).close()
        except OSError as e:
            raise UsageError(f"{out}: cannot write the results there ({e.strerror or e})") from None
        return False
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        why = "not a folder" if not parent.is_dir() else "permission denied"
        raise UsageError(f"{out}: cannot write the results there ({parent}: {why})")
    return True
