"""The ``piaa`` command line. Every user-facing failure is one line on stderr and exit status 2."""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Personalized image aesthetic assessment.", no_args_is_help=True, add_completion=False)
reference_app = typer.Typer(
    help="Build and query a reference corpus (crowd-rated images).", no_args_is_help=True
)
app.add_typer(reference_app, name="reference")
prefs_app = typer.Typer(help="A person's preference store: import, export, inspect.", no_args_is_help=True)
app.add_typer(prefs_app, name="prefs")
console = Console()
err_console = Console(stderr=True)


def _user_errors() -> tuple[type[Exception], ...]:
    from piaa.backbones import BackboneError
    from piaa.images import ImageError
    from piaa.labels import LabelFormatError
    from piaa.preferences import PreferenceError
    from piaa.profile import ProfileError
    from piaa.reference import ReferenceError

    return (
        BackboneError, ImageError, LabelFormatError, PreferenceError, ProfileError, ReferenceError,
        FileNotFoundError, ValueError,
    )  # fmt: skip


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can cause into one line instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _user_errors() as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def say(msg: str) -> None:
    console.print(msg, soft_wrap=True, highlight=False)


def report_failures(failures: Any, noun: str = "image") -> None:
    if len(failures):
        err_console.print(f"[yellow]{failures.summary(noun)}[/]", highlight=False, soft_wrap=True)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """CSV or JSON by suffix, written atomically."""
    from piaa.io import atomic_write_text

    if path.suffix.lower() == ".json":
        atomic_write_text(path, json.dumps(rows, indent=2) + "\n")
    elif path.suffix.lower() == ".csv":
        import io

        buf = io.StringIO()
        flat = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in rows]
        fields = list(flat[0]) if flat else ["path"]
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(flat)
        atomic_write_text(path, buf.getvalue())
    else:
        raise ValueError(f"{path}: output must end in .csv or .json")


def _write_and_report(output: Path | None, rows: list[dict[str, Any]], failures: Any, noun: str) -> None:
    """The end of every batch command: the rows to ``output`` (when given), then the skipped files."""
    if output:
        write_rows(output, rows)
        say(f"wrote {len(rows)} {noun} to {output}")
    report_failures(failures)


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``["rank_lr=1e-3", "attention=false"]`` -> typed TrainConfig overrides."""
    from dataclasses import fields

    from piaa.train import TrainConfig

    types = {f.name: type(getattr(TrainConfig(), f.name)) for f in fields(TrainConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in types:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(types)}")
        kind = types[key]
        try:
            out[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
        except ValueError:
            raise ValueError(f"--set {item!r}: {value!r} is not a {kind.__name__}") from None
    return out


@app.command("backbones")
def backbones_cmd() -> None:
    """List the registered backbones."""
    from piaa.backbones import DEFAULT_BACKBONE, describe_backbones

    table = Table("name", "description")
    for name, text in describe_backbones().items():
        table.add_row(name + (" *" if name == DEFAULT_BACKBONE else ""), text)
    console.print(table)


@reference_app.command("build")
@friendly
def reference_build(
    labels: Annotated[Path, typer.Option(help="AVA.txt-style file or a CSV of labels.")],
    images: Annotated[Path, typer.Option(help="Folder holding the labelled images.")],
    out: Annotated[Path, typer.Option(help="Reference folder to create (or resume).")],
    backbone: Annotated[
        str, typer.Option(help="Backbone name (see `piaa backbones`).")
    ] = "efficientnet-lite0",
    weights: Annotated[str, typer.Option(help="'imagenet' or a state-dict file.")] = "imagenet",
    maps: Annotated[bool, typer.Option(help="Store feature maps (fast personalization).")] = True,
    engine: Annotated[str, typer.Option(help="auto, onnx or torch.")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    workers: Annotated[int | None, typer.Option(help="Decode processes (default: cores, at most 2).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N labelled images.")] = None,
) -> None:
    """Embed every labelled image; a killed build resumes where it stopped."""
    from piaa.reference import build_reference

    rep = build_reference(
        labels,
        images,
        out,
        backbone=backbone,
        weights=weights,
        store_maps=maps,
        engine=engine,
        batch_size=batch_size,
        workers=workers,
        limit=limit,
    )
    report_failures(rep.failures)
    resumed = f" (resumed after {rep.resumed_from})" if rep.resumed_from else ""
    say(
        f"{out}: {rep.embedded} of {rep.total} images embedded{resumed}, "
        f"{rep.newly_embedded} now at {rep.images_per_second:.1f} images/s"
    )


@reference_app.command("info")
@friendly
def reference_info(ref: Path) -> None:
    """Show what a reference holds."""
    from piaa.reference import Reference

    r = Reference.open(ref)
    m = r.meta
    say(
        f"{ref}: {len(r)} images, backbone {m['backbone']} (weights {m['weights_hash']}), "
        f"labels {m['labels_format']} from {m['labels']}, maps {'stored' if r.has_maps else 'not stored'}"
    )


@reference_app.command("neighbors")
@friendly
def reference_neighbors(
    ref: Path,
    images: Annotated[list[Path], typer.Argument(help="Query images or folders.")],
    k: Annotated[int, typer.Option(min=1)] = 50,
    output: Annotated[
        Path | None, typer.Option(help="Write all neighbours to FILE.csv or FILE.json.")
    ] = None,
    show: Annotated[int, typer.Option(help="Neighbours shown per image in the terminal.")] = 5,
) -> None:
    """The K nearest reference images (cosine similarity) of each query image."""
    from piaa.features import FeatureExtractor
    from piaa.images import FailureLog, iter_image_files
    from piaa.reference import Reference

    r = Reference.open(ref)
    paths = list(iter_image_files(images))
    failures = FailureLog()
    extractor = FeatureExtractor(r.create_backbone())
    rows: list[dict[str, Any]] = []
    means = r.mean_scores()
    for batch in extractor.files(paths, failures=failures, progress=len(paths) > 8):
        sims, nn_rows = r.neighbors(batch.features.embedding.numpy(), k)
        for j, i in enumerate(batch.indices):
            for rank, (s, row) in enumerate(zip(sims[j], nn_rows[j], strict=True), 1):
                rows.append(
                    {
                        "query": str(paths[i]),
                        "rank": rank,
                        "image_id": r.ids[row],
                        "similarity": round(float(s), 5),
                        "mean_score": round(float(means[row]), 4),
                        "path": str(r.paths[row]),
                    }
                )
    for q in dict.fromkeys(x["query"] for x in rows):
        table = Table("rank", "image id", "similarity", "mean score", title=q, title_justify="left")
        for x in [x for x in rows if x["query"] == q][:show]:
            table.add_row(str(x["rank"]), x["image_id"], f"{x['similarity']:.3f}", f"{x['mean_score']:.2f}")
        console.print(table)
    _write_and_report(output, rows, failures, "rows")
    if failures and not rows:
        raise typer.Exit(1)


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
    """Count stated, contradictory and transitively inferred pairs."""
    from piaa.preferences import infer_transitive, load_statements, resolve

    statements = load_statements(store)
    pairs, contradictions = resolve(statements)
    inferred = len(infer_transitive(pairs))
    images = len({n for p in pairs for n in p})
    say(
        f"{store}: {len(statements)} judgements over {images} images -> {len(pairs)} effective pairs "
        f"({len(contradictions)} contradictions, latest wins) + {inferred} inferred by transitivity"
    )


@app.command("personalize")
@friendly
def personalize_cmd(
    reference: Annotated[Path, typer.Option(help="Reference folder (`piaa reference build`).")],
    album: Annotated[Path, typer.Option(help="Folder of the person's photos.")],
    out: Annotated[Path, typer.Option(help="Profile folder to write.")],
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
) -> None:
    """Train a personal profile: generic model on the album's reference neighbours, then the preferences."""
    from piaa.personalize import personalize
    from piaa.train import TrainConfig

    overrides = {"generic_epochs": generic_epochs, "rank_epochs": rank_epochs}
    cfg = TrainConfig(
        k=k,
        seed=seed,
        attention=attention,
        pretrain=pretrain,
        low_level=low_level,
        rank_loss=rank_loss,
        finetune_backbone=finetune_backbone,
        **{key: v for key, v in overrides.items() if v is not None},
    )
    profile = personalize(reference, album, prefs, out, config=cfg)
    rep = profile.report
    report_failures(rep.failures)
    if rep.unknown_images:
        err_console.print(
            f"[yellow]{len(rep.unknown_images)} images in the preferences are not in the album "
            f"(ignored): {', '.join(rep.unknown_images[:5])}[/]",
            highlight=False,
            soft_wrap=True,
        )
    if rep.contradictions:
        say(f"{len(rep.contradictions)} contradictory statements: the latest of each wins")
    kind = "personal" if rep.pairs_stated else "generic (no preferences given)"
    say(
        f"{out}: {kind} profile from {rep.album_images} photos, {rep.neighbours} reference neighbours, "
        f"{rep.pairs_stated} stated + {rep.pairs_inferred} inferred pairs, in {rep.seconds:.1f} s"
    )


@app.command("score")
@friendly
def score_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Images or folders (walked recursively).")],
    profile: Annotated[Path, typer.Option(help="Profile folder (`piaa personalize`).")],
    output: Annotated[Path | None, typer.Option(help="Write FILE.csv or FILE.json.")] = None,
    top: Annotated[int | None, typer.Option(min=1, help="Show and write only the best N.")] = None,
    engine: Annotated[str, typer.Option(help="auto, onnx or torch.")] = "auto",
) -> None:
    """Score photos with a profile (1-10, higher is better) and rank them."""
    from piaa.images import FailureLog, iter_image_files
    from piaa.profile import load_profile

    prof = load_profile(profile)
    files = list(iter_image_files(paths))
    failures = FailureLog()
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
    if not results:
        raise typer.Exit(1)


@app.command("retouch")
@friendly
def retouch_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Images or folders (walked recursively).")],
    profile: Annotated[Path, typer.Option(help="Profile folder (`piaa personalize`).")],
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
        Path | None, typer.Option(help="The generic model: a profile made without --prefs.")
    ] = None,
    report: Annotated[bool, typer.Option(help="Write OUT/report.html.")] = True,
) -> None:
    """Retouch photos toward the profile's taste (exposure, colour, dehaze; the paper's section 4.6)."""
    from piaa.images import FailureLog, iter_image_files
    from piaa.profile import load_profile
    from piaa.retouch.batch import retouch_files, write_report

    if compare_generic and generic is None:
        raise ValueError("--compare-generic needs --generic PROFILE (a profile made without --prefs)")
    prof = load_profile(profile)
    gen = load_profile(generic) if compare_generic and generic is not None else None
    files = list(iter_image_files(paths))
    album_files = list(iter_image_files([album])) if album is not None else None
    failures = FailureLog()
    results = retouch_files(
        prof, files, out, ops=ops, strength=strength, method=method, generic=gen, album=album_files,
        failures=failures, progress=len(files) > 1,
    )  # fmt: skip
    for r in results:
        s = r.scores["personal"]
        say(f"{r.source} -> {r.output}  personal score {s['original']:.2f} -> {s['personal']:.2f}")
    if report and results:
        page = write_report(out / "report.html", results, profile.name, generic.name if gen else None)
        say(f"wrote {len(results)} photos and {page}")
    report_failures(failures)
    if failures or not results:
        raise typer.Exit(2)


@app.command("collect")
@friendly
def collect_cmd(
    album: Annotated[Path, typer.Option(help="Folder of the person's photos.")],
    store: Annotated[Path, typer.Option(help="Preference store (SQLite; created if missing).")],
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8765,
    host: Annotated[str, typer.Option(help="Interface to bind (default: this computer only).")] = "127.0.0.1",
    target: Annotated[int, typer.Option(min=1, help="Pairs to judge before training is offered.")] = 100,
    strategy: Annotated[
        str, typer.Option(help="random (the paper) or active (most informative pairs).")
    ] = "random",
    reference: Annotated[
        Path | None, typer.Option(help="Reference folder: enables training the personal model in the page.")
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
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


@app.command("bench")
@friendly
def bench_cmd(
    photos: Annotated[Path, typer.Option(help="Photo folder for simulated persons.")] = Path(
        "../shared/data/photos"
    ),
    dataset: Annotated[str | None, typer.Option(help="realcur, flickr-aes or para (real ratings).")] = None,
    dataset_root: Annotated[Path | None, typer.Option(help="The dataset's folder (or labels file).")] = None,
    images: Annotated[Path | None, typer.Option(help="FLICKR-AES images folder.")] = None,
    workers: Annotated[Path | None, typer.Option(help="FLICKR-AES worker ids to use (a file).")] = None,
    reference: Annotated[Path | None, typer.Option(help="Reference (with maps) for a real dataset.")] = None,
    persons: Annotated[int, typer.Option(min=1, help="Simulated persons.")] = 8,
    splits: Annotated[int, typer.Option(min=1, help="Random splits per album.")] = 10,
    methods: Annotated[str | None, typer.Option(help="Comma-separated subset of the methods.")] = None,
    quick: Annotated[bool, typer.Option(help="3 persons, 2 splits: a few minutes.")] = False,
    out: Annotated[Path, typer.Option(help="Folder for the table (Markdown) and the plot.")] = Path(
        "piaa-bench"
    ),
    seed: Annotated[int, typer.Option()] = 0,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Training setting KEY=VALUE (repeatable).")
    ] = None,
) -> None:
    """The paper's protocol (X = 10 and 100) over every method; prints and saves the table and a plot."""
    from piaa import bench
    from piaa.io import atomic_write_text
    from piaa.train import TrainConfig

    config = TrainConfig(seed=seed, **parse_settings(set_ or []))

    if quick:
        persons, splits = min(persons, 3), min(splits, 2)
    if dataset:
        from piaa.datasets import dataset_key, load_dataset

        if reference is None or dataset_root is None:
            raise ValueError("--dataset needs --dataset-root and --reference (a reference built with maps)")
        if dataset_key(dataset) == "flickraes":
            if images is None or workers is None:
                raise ValueError(
                    "flickr-aes needs --images DIR and --workers FILE (the official test workers)"
                )
            albums = load_dataset(dataset, labels_csv=dataset_root, images_root=images, workers=workers)
        else:
            albums = load_dataset(dataset, root=dataset_root)
        world = bench.dataset_world(reference, albums, description=f"{dataset}: {len(albums)} albums")
    else:
        if not photos.is_dir():
            raise FileNotFoundError(f"{photos}: photo folder not found (pass --photos DIR)")
        world = bench.simulated_world(photos, persons=persons, seed=seed)
    chosen = [m.strip() for m in methods.split(",")] if methods else None
    result = bench.run(world, methods=chosen, splits=splits, seed=seed, config=config)
    table = result.table()
    console.print(table, highlight=False, soft_wrap=True)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out / "results.md",
        f"{world.description}; {splits} splits; {result.seconds / 60:.1f} min\n\n{table}\n",
    )
    result.plot(out / "results.png")
    say(f"wrote {out / 'results.md'} and {out / 'results.png'} ({result.seconds / 60:.1f} min)")


@app.command("demo")
@friendly
def demo_cmd(
    out: Annotated[Path, typer.Option(help="Folder for the example and its results.")] = Path("piaa-demo"),
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Run every stage end to end on a small embedded example."""
    from piaa import demo

    demo.run(out, seed)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
