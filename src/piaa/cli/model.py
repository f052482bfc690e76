"""``piaa personalize``, ``piaa score`` and ``piaa backbones``: train a profile and use it."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from piaa.cli._common import (
    Workers,
    _typer,
    _write_and_report,
    app,
    cell,
    check_output,
    check_results_folder,
    console,
    friendly,
    on_interrupt,
    parse_settings,
    plural,
    report_failures,
    report_sidecar_failures,
    say,
    settings_help,
    train_option,
    user_path,
    walk,
    warn,
    writable_folder,
)
from piaa.errors import UsageError
from piaa.models.config import TrainConfig
from piaa.settings import RunSettings


def _default_noted(name: str) -> str:
    """A count option's help with its default, which the option itself leaves unset (None: the config's)."""
    text = next(f.metadata["help"] for f in fields(TrainConfig) if f.name == name)
    return f"{text.rstrip('.')} [default: {getattr(TrainConfig, name)}]."


@app.command("backbones")
def backbones_cmd() -> None:
    """List the registered backbones."""
    from piaa.backbones import DEFAULT_BACKBONE, describe_backbones

    table = Table("name", "description")
    for name, text in describe_backbones().items():
        table.add_row(name + (" *" if name == DEFAULT_BACKBONE else ""), text)
    console.print(table)


@app.command("personalize")
@friendly
def personalize_cmd(
    album: Annotated[Path, typer.Option(parser=user_path, help="Folder of the person's photos.")],
    out: Annotated[Path, typer.Option(parser=user_path, help="Profile folder to write.")],
    reference: Annotated[
        Path | None,
        typer.Option(
            parser=user_path, help="Reference folder (`piaa reference build`): the paper's KNN pipeline."
        ),
    ] = None,
    generic: Annotated[
        str | None,
        typer.Option(help="Start from this generic model, no reference: nima-ava or a profile folder."),
    ] = None,
    prefs: Annotated[
        Path | None, typer.Option(parser=user_path, help="preferred,other CSV or a preference store.")
    ] = None,
    k: Annotated[int, train_option("k", min=1)] = TrainConfig.k,
    seed: Annotated[int, train_option("seed")] = TrainConfig.seed,
    attention: Annotated[bool, train_option("attention")] = TrainConfig.attention,
    pretrain: Annotated[bool, train_option("pretrain")] = TrainConfig.pretrain,
    low_level: Annotated[bool, train_option("low_level")] = TrainConfig.low_level,
    rank_loss: Annotated[str, train_option("rank_loss")] = TrainConfig.rank_loss,
    generic_epochs: Annotated[
        int | None, train_option("generic_epochs", min=0, help=_default_noted("generic_epochs"))
    ] = None,
    rank_epochs: Annotated[
        int | None, train_option("rank_epochs", min=0, help=_default_noted("rank_epochs"))
    ] = None,
    finetune_backbone: Annotated[bool, train_option("finetune_backbone")] = TrainConfig.finetune_backbone,
    select: Annotated[bool, train_option("select")] = TrainConfig.select,
    set_: Annotated[list[str] | None, typer.Option("--set", help=settings_help())] = None,
    agreement: Annotated[
        bool, typer.Option(help="Measure agreement on held-out pairs (nested cross-validation; slower).")
    ] = True,
    workers: Workers = None,
) -> None:
    """Train a personal profile: a generic model (from a reference's neighbours, or --generic), then the
    preferences."""
    from piaa.errors import where
    from piaa.models.personalize import personalize
    from piaa.preferences import PreferenceError, is_sqlite_file, load_statements

    if reference is not None and generic is not None:
        raise UsageError(
            "give --reference (the paper's pipeline) or --generic (a model to start from), not both"
        )
    if reference is None and generic is None:
        raise UsageError("personalize needs --reference DIR (the paper's pipeline) or --generic nima-ava")
    if prefs is not None and not load_statements(prefs):  # checked again, with the album, by personalize
        header = "" if is_sqlite_file(prefs) else " (only a header)"
        raise PreferenceError(
            f"{prefs}: holds no judgements{header}: nothing to personalize with "
            "(leave out --prefs for the generic model)"
        )

    options = {
        "k": k,
        "seed": seed,
        "attention": attention,
        "pretrain": pretrain,
        "low_level": low_level,
        "rank_loss": rank_loss,
        "finetune_backbone": finetune_backbone,
        "select": select,
        "generic_epochs": generic_epochs,
        "rank_epochs": rank_epochs,
    }
    cfg = TrainConfig(**parse_settings(set_ or [], {key: v for key, v in options.items() if v is not None}))
    on_interrupt(f"no profile was written{f' ({out} is as it was)' if out.exists() else ''}")
    run = RunSettings.from_env(workers=workers)
    profile = personalize(
        reference, album, prefs, out, generic=generic, config=cfg, agreement=agreement, settings=run
    )
    rep = profile.report
    if len(rep.skipped):
        warn(rep.skipped.summary("file"))
    report_failures(rep.failures)
    if rep.unknown_images:
        shown = ", ".join(where(n) for n in rep.unknown_images[:5])
        warn(
            f"{plural(rep.judgements_unmatched, 'judgement')} name photos that are not in the album "
            f"(ignored): {shown}{' ...' if len(rep.unknown_images) > 5 else ''}"
        )
    if rep.contradictions:
        say(f"{plural(len(rep.contradictions), 'contradictory statement')}: the latest of each wins")
    kind = "personal" if rep.pairs_stated else "generic (no preferences given)"
    source = plural(rep.neighbors, "reference neighbour") if reference else f"generic model {generic}"
    say(
        f"{out}: {kind} profile from {plural(rep.album_images, 'photo')}, {source}, "
        f"{rep.pairs_stated} stated + {plural(rep.pairs_inferred, 'inferred pair')}, in {rep.seconds:.1f} s"
    )
    sel = rep.selection
    if sel.folds:
        say(f"held-out pairs ({plural(sel.folds, 'fold')}) chose how to personalize: {sel.describe()}")
    if rep.agreement is not None:
        say(f"how well it knows you: {rep.agreement.describe()}")
    if len(rep.failures):  # as score does: the profile is written, the unreadable photos make it exit 2
        raise typer.Exit(2)


@app.command("score")
@friendly
def score_cmd(
    paths: Annotated[
        list[Path], typer.Argument(parser=user_path, help="Images or folders (walked recursively).")
    ],
    profile: Annotated[
        Path,
        typer.Option(
            parser=user_path, help="Profile folder (`piaa personalize`), or nima-ava (the generic model)."
        ),
    ],
    output: Annotated[
        Path | None, typer.Option(parser=user_path, help="Write the ranking to FILE.csv or FILE.json.")
    ] = None,
    top: Annotated[int | None, typer.Option(min=1, help="Show and write only the best N.")] = None,
    copy_top: Annotated[
        Path | None,
        typer.Option(
            parser=user_path,
            help="Copy the ranked photos (the best N with --top) into this folder, keeping their names.",
        ),
    ] = None,
    link_top: Annotated[
        Path | None,
        typer.Option(parser=user_path, help="Like --copy-top, with symbolic links instead of copies."),
    ] = None,
    engine: Annotated[str, typer.Option(help="auto, onnx or torch.")] = "auto",
    workers: Workers = None,
    previews: Annotated[
        bool,
        typer.Option(
            help="Decode camera JPEGs from their embedded preview when it is at least twice the network's "
            "input: ~3.5x faster for 24-MP photos, but scores move by ~0.01 (up to 0.04).",
        ),
    ] = False,
    ray: Annotated[
        str | None,
        typer.Option(help="Embed on a Ray cluster: its address, 'auto', or 'local' (pip install piaa[ray])."),
    ] = None,
    xmp: Annotated[bool, typer.Option(help="Write xmp:Rating (1-5 by score) into XMP sidecars.")] = False,
    sidecar: Annotated[
        str, typer.Option(help="darktable (photo.ext.xmp) or adobe (photo.xmp).")
    ] = "darktable",
) -> None:
    """Score photos with a profile (1-10, higher is better) and rank them."""
    from piaa.cull.xmp import NAMINGS
    from piaa.data.images import FailureLog
    from piaa.models.profile import load_profile

    if copy_top is not None and link_top is not None:
        raise UsageError("give --copy-top or --link-top, not both")
    if sidecar not in NAMINGS:
        raise UsageError(f"--sidecar {sidecar}: choose one of {', '.join(NAMINGS)}")
    check_output(output)
    run = RunSettings.from_env(engine=engine, workers=workers, previews=previews)  # before the walk
    prof = load_profile(profile)
    files = walk(paths)
    folder = copy_top or link_top
    if folder is not None:
        _refuse_input_folder(folder, paths, files)
        writable_folder(folder, "--copy-top" if copy_top else "--link-top")
    failures = FailureLog()
    results = []
    run = replace(run, progress=len(files) > 16)
    try:
        if ray:
            from piaa.features.distributed import score_files_ray

            results = score_files_ray(prof, files, run, failures=failures, address=ray)
        else:
            for r in prof.iter_score_files(files, failures=failures, settings=run):
                results.append(r)
    except KeyboardInterrupt:
        on_interrupt(_save_partial(output, results, len(files)))
        raise
    results.sort(key=lambda r: -r.score)
    sidecar_failures = FailureLog()
    if xmp:
        from piaa.cull.xmp import write_score_ratings

        done = write_score_ratings(
            [Path(r.path) for r in results], [r.score for r in results], sidecar, failures=sidecar_failures
        )
        say(f"wrote {len(done)} XMP sidecars ({sidecar} names)")
        report_sidecar_failures(sidecar_failures)
    if top:
        results = results[:top]
    title = cell(f"{plural(len(results), 'photo')} ranked by {profile}")
    table = Table("rank", "score", "path", title=title, title_justify="left")
    for i, r in enumerate(results[:50], 1):
        table.add_row(str(i), f"{r.score:.2f}", cell(r.path))
    if results:
        console.print(table)
    if len(results) > 50:
        say(f"... {len(results) - 50} more")

    def hand_on() -> None:  # after the ranking is safe in --output: a full disk here loses no score
        if folder is not None and results:
            there = set(folder.iterdir())  # a rerun's copies are reused, not copied again
            placed = place_photos([Path(r.path) for r in results], folder, link=link_top is not None)
            again = sum(p in there for p in placed)
            note = f" ({again} already there)" if again else ""
            verb = "linked" if link_top else "copied"
            say(f"{verb} {plural(len(placed) - again, 'photo')} to {folder}{note}")

    _write_and_report(output, _rows(results), failures, "score", then=hand_on)
    if len(sidecar_failures):
        raise typer.Exit(2)


def _rows(results: list) -> list[dict]:
    """The ranking's rows (rank 1 the best), as written to --output."""
    return [{"rank": i, **r.to_dict()} for i, r in enumerate(sorted(results, key=lambda r: -r.score), 1)]


def _save_partial(output: Path | None, results: list, total: int) -> str:
    """Ctrl-C during scoring: what was scored goes, ranked, to ``<output>.partial.<suffix>`` (the output
    itself keeps what it held); returns the line that says so."""
    from piaa.cli._common import write_rows

    done = f"{len(results)} of {plural(total, 'photo')} scored"
    if not results:
        return "no photo was scored; nothing was written"
    if output is None:
        return f"{done}; nothing was written (no --output)"
    partial = output.with_name(f"{output.stem}.partial{output.suffix}")
    write_rows(partial, _rows(results))
    return f"{done}; wrote them, ranked, to {partial} (partial; {output} is untouched)"


def _refuse_input_folder(folder: Path, roots: list[Path], files: list[Path]) -> None:
    """--copy-top into a folder being scored, or into one inside a scored folder (walked recursively,
    so the next run would score the copies too), would copy photos onto their own album."""
    import os

    target = os.path.realpath(folder)
    if any(os.path.dirname(os.path.realpath(f)) == target for f in files):
        raise UsageError(f"{folder}: is a folder being scored; copy the best photos to another folder")
    for root in (r for r in roots if r.is_dir()):
        top = os.path.realpath(root)
        if os.path.commonpath([top, target]) == top:
            raise UsageError(
                f"{folder}: is inside {root}, a folder being scored (walked recursively, so the copies "
                "would be scored next time); copy the best photos to a folder outside it"
            )


def place_photos(sources: list[Path], folder: Path, *, link: bool = False) -> list[Path]:
    """Copy (or symlink) photos into ``folder`` under their own names, in order; returns where each went.

    A name taken by another photo of the list, or by a different file already in ``folder``, gets a
    ``-2``, ``-3`` ... suffix (``IMG_1.jpg``, ``IMG_1-2.jpg``); a file already there with the same bytes
    (a re-run) is reused, never overwritten. Copies are atomic (``piaa.io.atomic_open``: a killed copy
    leaves no half photo) and keep the source's modification time; links point at the absolute path.
    Raises ``OSError`` naming the file that could not be written."""
    import filecmp
    import os
    import shutil

    from piaa.io import atomic_open, fsync_dir

    placed: list[Path] = []
    taken: set[str] = set()
    for src in sources:
        stem, suffix = src.stem, src.suffix
        n = 1
        while True:
            name = f"{stem}{'' if n == 1 else f'-{n}'}{suffix}"
            dest = folder / name
            n += 1
            if name in taken:
                continue
            if os.path.lexists(dest):
                same = (
                    os.path.realpath(dest) == os.path.realpath(src)
                    if link
                    else dest.is_file() and not dest.is_symlink() and filecmp.cmp(dest, src, shallow=False)
                )
                if not same:
                    continue
            break
        taken.add(name)
        if not os.path.lexists(dest):
            if link:
                tmp = folder / f".{name}.{os.getpid()}.link.part"
                os.symlink(os.path.abspath(src), tmp)
                os.replace(tmp, dest)
                fsync_dir(folder)
            else:
                with open(src, "rb") as fin, atomic_open(dest) as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
                st = os.stat(src)
                os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
        placed.append(dest)
    return placed


profile_app = _typer("Inspect a personal profile: what it learnt.")
app.add_typer(profile_app, name="profile")


@profile_app.command("explain")
@friendly
def profile_explain_cmd(
    profile: Annotated[Path, typer.Argument(parser=user_path, help="Profile folder (`piaa personalize`).")],
    album: Annotated[
        Path | None,
        typer.Option(
            parser=user_path, help="The album's folder (default: the one the profile was trained on)."
        ),
    ] = None,
    prefs: Annotated[
        Path | None,
        typer.Option(
            parser=user_path,
            help="Read the judgements from this CSV or preference store (default: those the profile saved).",
        ),
    ] = None,
    heads: Annotated[
        Path | None,
        typer.Option(
            parser=user_path,
            help="Attribute heads (AttributeHeads.save, trained on a reference you have): adds their "
            "predicted attributes as axes.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            parser=user_path, help="Write an HTML page (chart, example photos) and explanation.json here."
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds over the pairs.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the folds.")] = 0,
) -> None:
    """Which attributes this person weighs more or less than the crowd: a logistic fit of the judged pairs
    on the crowd's score and named attributes; only weights whose sign holds in every fold (and whose
    z reaches 1.96) are shown."""
    import json

    from piaa.models.explain import explain_profile, format_table, write_report
    from piaa.models.profile import load_profile

    prof = load_profile(profile)
    if prof.path is None:  # a built-in model: the crowd's taste, no person's pairs
        raise UsageError(
            f"{profile}: a built-in generic model holds no judgements: nothing to explain; explain a "
            f"profile made from it (piaa personalize --generic {profile} ...)"
        )
    if out is not None:
        photos = album or prof.config.data.get("album")
        if photos and Path(out).resolve().is_relative_to(Path(photos).resolve()):
            raise UsageError(f"{out}: --out is inside the album {photos}; choose a folder outside it")
        check_results_folder(out, ("index.html", "explanation.json"))
        writable_folder(out, "--out")
    attribute_heads = None
    if heads is not None:
        from piaa.models.attributes import AttributeHeads

        attribute_heads = AttributeHeads.load(heads)
    exp = explain_profile(
        prof, album=album, prefs=prefs, heads=attribute_heads, folds=folds, seed=seed,
        settings=RunSettings.from_env(progress=not json_out),
    )
    if exp.skipped_pairs:
        warn(f"{plural(exp.skipped_pairs, 'judged pair')} name photos missing or unreadable (left out)")
    if json_out:
        typer.echo(json.dumps(exp.to_dict(), indent=2))
    else:
        for line in format_table(exp):
            say(line)
    if out is not None:
        page = write_report(exp, out)
        (warn if json_out else say)(f"wrote {page}")
