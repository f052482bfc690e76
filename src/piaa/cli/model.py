"""``piaa personalize``, ``piaa score`` and ``piaa backbones``: train a profile and use it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from piaa.cli._common import (
    Workers,
    _write_and_report,
    app,
    console,
    err_console,
    friendly,
    report_failures,
    say,
    walk,
)


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
    album: Annotated[Path, typer.Option(help="Folder of the person's photos.")],
    out: Annotated[Path, typer.Option(help="Profile folder to write.")],
    reference: Annotated[
        Path | None, typer.Option(help="Reference folder (`piaa reference build`): the paper's KNN pipeline.")
    ] = None,
    generic: Annotated[
        str | None,
        typer.Option(help="Start from this generic model, no reference: nima-ava or a profile folder."),
    ] = None,
    prefs: Annotated[Path | None, typer.Option(help="preferred,other CSV or a preference store.")] = None,
    k: Annotated[int, typer.Option(min=1, help="Reference neighbours per album photo.")] = 50,
    seed: Annotated[int, typer.Option()] = 0,
    attention: Annotated[bool, typer.Option(help="Attention modules (off: the paper's ablation).")] = True,
    pretrain: Annotated[
        bool, typer.Option(help="Generic regression first (off: the paper's ablation).")
    ] = True,
    low_level: Annotated[
        bool, typer.Option(help="The head also reads the early layers' statistics (off: the paper's head).")
    ] = True,
    rank_loss: Annotated[str, typer.Option(help="hinge, exp or logistic.")] = "hinge",
    generic_epochs: Annotated[int | None, typer.Option(min=0)] = None,
    rank_epochs: Annotated[int | None, typer.Option(min=0)] = None,
    finetune_backbone: Annotated[bool, typer.Option(help="Train the backbone too (slow on a CPU).")] = False,
    select: Annotated[
        bool, typer.Option(help="Pull toward the generic model as far as held-out pairs say (off: paper).")
    ] = True,
    agreement: Annotated[
        bool, typer.Option(help="Measure agreement on held-out pairs (nested cross-validation; slower).")
    ] = True,
    workers: Workers = None,
) -> None:
    """Train a personal profile: a generic model (from a reference's neighbours, or --generic), then the
    preferences."""
    from piaa.features.extract import decode_workers
    from piaa.models.personalize import personalize
    from piaa.models.train import TrainConfig

    overrides = {"generic_epochs": generic_epochs, "rank_epochs": rank_epochs}
    cfg = TrainConfig(
        k=k,
        seed=seed,
        attention=attention,
        pretrain=pretrain,
        low_level=low_level,
        rank_loss=rank_loss,
        finetune_backbone=finetune_backbone,
        select=select,
        **{key: v for key, v in overrides.items() if v is not None},
    )
    with decode_workers(workers):
        profile = personalize(reference, album, prefs, out, generic=generic, config=cfg, agreement=agreement)
    rep = profile.report
    if len(rep.skipped):
        err_console.print(f"[yellow]{rep.skipped.summary('file')}[/]", highlight=False, soft_wrap=True)
    report_failures(rep.failures)
    if rep.unknown_images:
        err_console.print(
            f"[yellow]{rep.judgements_unmatched} judgements name photos that are not in the album "
            f"(ignored): {', '.join(rep.unknown_images[:5])}"
            f"{' ...' if len(rep.unknown_images) > 5 else ''}[/]",
            highlight=False,
            soft_wrap=True,
        )
    if rep.contradictions:
        say(f"{len(rep.contradictions)} contradictory statements: the latest of each wins")
    kind = "personal" if rep.pairs_stated else "generic (no preferences given)"
    source = f"{rep.neighbors} reference neighbours" if reference else f"generic model {generic}"
    say(
        f"{out}: {kind} profile from {rep.album_images} photos, {source}, "
        f"{rep.pairs_stated} stated + {rep.pairs_inferred} inferred pairs, in {rep.seconds:.1f} s"
    )
    sel = rep.selection
    if sel.folds:
        say(f"held-out pairs ({sel.folds} folds) chose how to personalize: {sel.describe()}")
    if rep.agreement is not None:
        say(f"how well it knows you: {rep.agreement.describe()}")


@app.command("score")
@friendly
def score_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Images or folders (walked recursively).")],
    profile: Annotated[Path, typer.Option(help="Profile folder (`piaa personalize`).")],
    output: Annotated[Path | None, typer.Option(help="Write FILE.csv or FILE.json.")] = None,
    top: Annotated[int | None, typer.Option(min=1, help="Show and write only the best N.")] = None,
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
) -> None:
    """Score photos with a profile (1-10, higher is better) and rank them."""
    from piaa.data.images import FailureLog, embedded_previews
    from piaa.features.extract import decode_workers
    from piaa.models.profile import load_profile

    prof = load_profile(profile)
    files = walk(paths)
    failures = FailureLog()
    if ray:
        from piaa.features.distributed import score_files_ray

        results = score_files_ray(
            prof, files, failures=failures, progress=len(files) > 16, engine=engine, address=ray
        )
    else:
        with decode_workers(workers), embedded_previews(previews):
            results = prof.score_files(files, failures=failures, progress=len(files) > 16, engine=engine)
    results.sort(key=lambda r: -r.score)
    if top:
        results = results[:top]
    table = Table(
        "rank", "score", "path", title=f"{len(results)} photos ranked by {profile}", title_justify="left"
    )
    for i, r in enumerate(results[:50], 1):
        table.add_row(str(i), f"{r.score:.2f}", r.path)
    console.print(table)
    if len(results) > 50:
        say(f"... {len(results) - 50} more")
    _write_and_report(
        output, [{"rank": i, **r.to_dict()} for i, r in enumerate(results, 1)], failures, "scores"
    )
