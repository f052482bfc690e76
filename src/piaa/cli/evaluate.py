"""``piaa evaluate`` (alias ``piaa bench``): the paper's accuracy protocol, and ``piaa demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from piaa.cli._common import (
    app,
    console,
    friendly,
    parse_settings,
    say,
    settings_help,
    user_path,
    writable_folder,
)
from piaa.errors import UsageError
from piaa.settings import RunSettings


@app.command("evaluate")
@friendly
def evaluate_cmd(
    photos: Annotated[
        Path | None,
        typer.Option(
            parser=user_path,
            help="Photo folder for simulated persons [default: ../shared/data/photos; para world: "
            "PARA's folder with labels.csv and images/, ../shared/data/para].",
        ),
    ] = None,
    world: Annotated[
        str,
        typer.Option(
            help="Simulated world: photos (simulated crowd), para (PARA's real crowd) or para-human "
            "(persons weighing PARA's real attribute ratings and emotions)."
        ),
    ] = "photos",
    backbone: Annotated[str, typer.Option(help="Backbone of a simulated world.")] = "efficientnet-lite0",
    content_backbone: Annotated[
        str | None, typer.Option(help="para world: network whose clusters are the persons' kinds of subject.")
    ] = None,
    feature_cache: Annotated[
        Path | None,
        typer.Option(
            parser=user_path, help="para and para-human worlds: folder keeping features between runs."
        ),
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="realcur, flickr-aes or para (real ratings).")] = None,
    dataset_root: Annotated[
        Path | None, typer.Option(parser=user_path, help="The dataset's folder (or labels file).")
    ] = None,
    images: Annotated[Path | None, typer.Option(parser=user_path, help="FLICKR-AES images folder.")] = None,
    test_workers: Annotated[
        Path | None,
        typer.Option(
            parser=user_path, help="FLICKR-AES: a file of the worker ids to test (the official 37)."
        ),
    ] = None,
    workers: Annotated[
        Path | None, typer.Option(parser=user_path, hidden=True, help="Old name of --test-workers.")
    ] = None,
    reference: Annotated[
        Path | None, typer.Option(parser=user_path, help="Reference (with maps) for a real dataset.")
    ] = None,
    persons: Annotated[int, typer.Option(min=1, help="Simulated persons.")] = 8,
    splits: Annotated[int, typer.Option(min=1, help="Random splits per album.")] = 10,
    methods: Annotated[str | None, typer.Option(help="Comma-separated subset of the methods.")] = None,
    quick: Annotated[bool, typer.Option(help="3 persons, 2 splits: a few minutes.")] = False,
    out: Annotated[
        Path, typer.Option(parser=user_path, help="Folder for the table (Markdown) and the plot.")
    ] = Path("piaa-bench"),
    seed: Annotated[int, typer.Option(help="Random seed of the persons, splits and training.")] = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help=settings_help())] = None,
) -> None:
    """The paper's protocol (X = 10 and 100) over every method; prints and saves the table and a plot."""
    from piaa.evaluation import protocol as bench
    from piaa.io import atomic_write_text
    from piaa.models.config import TrainConfig

    config = TrainConfig(**parse_settings(set_ or [], {"seed": seed}))
    test_workers = test_workers or workers
    writable_folder(out, "--out")  # before hours of training, not after
    run = RunSettings.from_env()  # PIAA_TORCH_THREADS, read here; bench.run holds it throughout

    if quick:
        persons, splits = min(persons, 3), min(splits, 2)
    if dataset:
        from piaa.data.datasets import dataset_key, load_dataset

        if reference is None or dataset_root is None:
            raise UsageError("--dataset needs --dataset-root and --reference (a reference built with maps)")
        if dataset_key(dataset) == "flickraes":
            if images is None or test_workers is None:
                raise UsageError(
                    "flickr-aes needs --images DIR and --test-workers FILE (the official test workers)"
                )
            albums = load_dataset(dataset, labels_csv=dataset_root, images_root=images, workers=test_workers)
        else:
            albums = load_dataset(dataset, root=dataset_root)
        bench_world = bench.dataset_world(
            reference, albums, description=f"{dataset}: {len(albums)} albums", run=run
        )
    else:
        from piaa.evaluation.worlds import WORLDS

        if world not in WORLDS:
            raise UsageError(f"--world must be one of {', '.join(WORLDS)}, not {world!r}")
        photos = photos or Path("../shared/data/photos" if world == "photos" else "../shared/data/para")
        if not photos.is_dir():
            raise FileNotFoundError(f"{photos}: photo folder not found (pass --photos DIR)")
        extra = {"content_backbone": content_backbone, "cache_dir": feature_cache} if world == "para" else {}
        extra = {"cache_dir": feature_cache} if world == "para-human" else extra
        bench_world = bench.simulated_world(
            photos, persons=persons, seed=seed, backbone=backbone, kind=world, run=run, **extra
        )
    chosen = [m.strip() for m in methods.split(",")] if methods else None
    result = bench.run(bench_world, methods=chosen, splits=splits, seed=seed, config=config, settings=run)
    table = result.table()
    notes = result.personalization_notes()
    table = f"{table}\n\n{notes}" if notes else table
    console.print(table, highlight=False, soft_wrap=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out / "results.md",
        f"{bench_world.description}; {splits} splits; {result.seconds / 60:.1f} min\n\n{table}\n",
    )
    result.plot(out / "results.png")
    say(f"wrote {out / 'results.md'} and {out / 'results.png'} ({result.seconds / 60:.1f} min)")


app.command("bench", help="Alias of `piaa evaluate` (the accuracy protocol; speed lives in benchmarks/).")(
    evaluate_cmd
)


@app.command("demo")
@friendly
def demo_cmd(
    out: Annotated[
        Path, typer.Option(parser=user_path, help="Folder for the example and its results.")
    ] = Path("piaa-demo"),
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same results).")] = 0,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Also print the numbers behind each step.")
    ] = False,
) -> None:
    """Run every stage end to end on a small embedded example."""
    from piaa import demo

    demo.run(out, seed, verbose=verbose)
