"""``piaa cull``: group bursts, pick the best frame of each by a profile, flag faults, write sidecars."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from piaa.cli._common import (
    _write_and_report,
    app,
    cell,
    check_output,
    check_results_folder,
    console,
    friendly,
    report_sidecar_failures,
    say,
    user_path,
    walk,
    write_rows,
)
from piaa.errors import UsageError
from piaa.settings import RunSettings


def cull_rows(rows: list[Any], csv: bool) -> list[dict[str, Any]]:
    """The output rows (``docs/guide/cull.md``): flags a list in JSON, ``;``-joined in CSV."""
    out = [r.to_dict() for r in rows]
    if csv:
        for d in out:
            d["flags"] = ";".join(d["flags"])
    return out


@app.command("cull")
@friendly
def cull_cmd(
    paths: Annotated[
        list[Path], typer.Argument(parser=user_path, help="Photos or folders (walked recursively).")
    ],
    profile: Annotated[str, typer.Option(help="Profile folder (`piaa personalize`) or nima-ava.")],
    out: Annotated[
        Path | None,
        typer.Option(parser=user_path, help="Folder for report.html (groups as strips) and cull.json."),
    ] = None,
    keep: Annotated[int, typer.Option(min=1, help="Picks per group.")] = 1,
    output: Annotated[
        Path | None, typer.Option(parser=user_path, help="Write the rows to FILE.csv or FILE.json.")
    ] = None,
    xmp: Annotated[bool, typer.Option(help="Write XMP sidecars (rating, colour label, pick label).")] = False,
    sidecar: Annotated[
        str, typer.Option(help="Sidecar names: darktable (photo.ext.xmp) or adobe (photo.xmp).")
    ] = "darktable",
    time_window: Annotated[
        float, typer.Option(min=0.0, help="Seconds: photos further apart in time never share a group.")
    ] = 10.0,
    similarity: Annotated[
        float,
        typer.Option(min=-1.0, max=1.0, help="Cosine of the embeddings at or above which photos group."),
    ] = 0.95,
    layout_similarity: Annotated[
        float,
        typer.Option(
            min=-1.0, max=1.0, help="Or: correlation of 16x16 thumbnails at or above which they group."
        ),
    ] = 0.70,
    blur_ratio: Annotated[
        float,
        typer.Option(min=0.01, max=0.99, help="Blurred below this share of the group's best sharpness."),
    ] = 0.65,
    clip_share: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Clipped above this share of blown or black pixels.")
    ] = 0.25,
    eyes: Annotated[
        bool,
        typer.Option(help="Flag closed eyes (needs mediapipe: pip install 'piaa[eyes]', see the guide)."),
    ] = True,
    reject_flagged: Annotated[bool, typer.Option(help="Flagged non-picks become rejects.")] = True,
    alternate_rating: Annotated[int, typer.Option(min=0, max=5, help="xmp:Rating of alternates.")] = 0,
    pick_label: Annotated[str, typer.Option(help="xmp:Label of picks ('' for none).")] = "Green",
    reject_label: Annotated[str, typer.Option(help="xmp:Label of rejects ('' for none).")] = "Red",
    engine: Annotated[str, typer.Option(help="auto, onnx or torch.")] = "auto",
    review: Annotated[
        bool, typer.Option(help="Then open the review page (piaa review); needs --store.")
    ] = False,
    store: Annotated[
        Path | None,
        typer.Option(parser=user_path, help="Preference store the review page's corrections go to."),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the review page.")] = 8766,
) -> None:
    """Cull a shoot: group bursts and near-duplicates, pick the best of each group by the profile, flag
    blurred, clipped and closed-eye frames; optionally write XMP sidecars that photo software reads."""
    from piaa.cull import CullSettings, cull
    from piaa.cull.report import write_report
    from piaa.cull.xmp import NAMINGS, sidecar_path, status_properties, write_sidecars
    from piaa.data.images import FailureLog
    from piaa.models.profile import load_profile

    if sidecar not in NAMINGS:
        raise UsageError(f"--sidecar {sidecar}: choose one of {', '.join(NAMINGS)}")
    if review and store is None:
        raise UsageError("--review needs --store S.sqlite (where the corrections go)")
    check_output(output)
    run = RunSettings.from_env(engine=engine)  # a bad --engine before the walk
    if out is not None:
        if out.exists() and not out.is_dir():
            raise UsageError(f"{out}: --out exists and is not a folder")
        check_results_folder(out, ("cull.json", "report.html"))
        out.mkdir(parents=True, exist_ok=True)
    settings = CullSettings(
        time_window=time_window, similarity=similarity, layout_similarity=layout_similarity, keep=keep,
        blur_ratio=blur_ratio, clip_share=clip_share, eyes=eyes, reject_flagged=reject_flagged,
        alternate_rating=alternate_rating, thumbnails=out is not None,
    )  # fmt: skip
    prof = load_profile(profile)
    files = walk(paths)
    result = cull(files, prof, settings, run=dataclasses.replace(run, progress=len(files) > 16))
    for note in result.notes:
        say(note)
    rows = result.rows
    picks = [r for r in rows if r.status == "pick"]
    table = Table(
        "group", "score", "pick", "flags", title=cell(f"{len(picks)} picks of {len(rows)} photos in "
        f"{len(result.groups)} groups ({profile})"), title_justify="left",
    )  # fmt: skip
    for r in picks[:50]:
        size = sum(1 for x in rows if x.group == r.group)
        table.add_row(f"{r.group + 1} ({size})", f"{r.score:.2f}", cell(r.path), ", ".join(r.flags))
    if rows:
        console.print(table)
    if len(picks) > 50:
        say(f"... {len(picks) - 50} more picks")
    rejects = sum(r.status == "reject" for r in rows)
    flagged = sum(bool(r.flags) for r in rows)
    say(f"{flagged} photos flagged, {rejects} rejected")
    sidecar_failures = FailureLog()
    if xmp and rows:
        items = []
        for r in rows:
            label, pick = status_properties(r.status, pick_label or None, reject_label or None)
            items.append((r.path, r.rating, label, pick))
        written = write_sidecars(items, sidecar, failures=sidecar_failures)
        say(f"wrote {len(written)} XMP sidecars ({sidecar} names)")
        report_sidecar_failures(sidecar_failures)
        if sidecar == "adobe":
            moved = [r.path for r in rows if sidecar_path(r.path, "adobe").name == r.path.name + ".xmp"]
            if moved:
                example = sidecar_path(moved[0], "adobe")
                say(
                    f"{len(moved)} photos share a base name with another photo (a RAW and its JPEG, or "
                    f"two formats of one photo): one keeps photo.xmp, the others get photo.ext.xmp, e.g. "
                    f"{example}"
                )
    if out is not None and rows:
        write_rows(out / "cull.json", cull_rows(rows, csv=False))
        page = write_report(out / "report.html", result, Path(profile).name)
        say(f"wrote {page} and {out / 'cull.json'}")
    suffix_csv = output is not None and output.suffix.lower() == ".csv"
    if review and rows:
        assert store is not None
        _review_after(rows, store, profile, out, output, port, xmp, sidecar, pick_label, reject_label,
                      alternate_rating)  # fmt: skip
    _write_and_report(output, cull_rows(rows, csv=suffix_csv), result.failures, "row")
    if len(sidecar_failures):
        raise typer.Exit(2)


def _review_after(
    rows: list[Any], store: Path, profile: str, out: Path | None, output: Path | None, port: int, xmp: bool,
    sidecar: str, pick_label: str, reject_label: str, alternate_rating: int,
) -> None:  # fmt: skip
    """``--review``: the rows (as ``cull.json``) opened in ``piaa review``'s page until Ctrl-C."""
    import tempfile

    from piaa.cli.review import open_review, xmp_settings

    settings = xmp_settings(sidecar, pick_label, reject_label, alternate_rating) if xmp else None
    with tempfile.TemporaryDirectory(prefix="piaa-review-") as tmp:
        results = out / "cull.json" if out is not None else Path(tmp) / "cull.json"
        if output is not None and output.suffix.lower() == ".json":
            results = output
        write_rows(results, cull_rows(rows, csv=False))
        open_review(results, store, profile, port=port, xmp=settings)
