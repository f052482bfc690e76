"""``piaa reference``: build, inspect and query a reference corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from piaa.cli._common import (
    Workers,
    _write_and_report,
    cell,
    check_output,
    console,
    friendly,
    on_interrupt,
    plural,
    reference_app,
    report_failures,
    say,
    user_path,
    walk,
    warn,
    writable_folder,
)
from piaa.errors import UsageError

Ref = Annotated[Path, typer.Argument(parser=user_path, help="Reference folder (`piaa reference build`).")]


@reference_app.command("build")
@friendly
def reference_build(
    labels: Annotated[Path, typer.Option(parser=user_path, help="AVA.txt-style file or a CSV of labels.")],
    images: Annotated[Path, typer.Option(parser=user_path, help="Folder holding the labelled images.")],
    out: Annotated[Path, typer.Option(parser=user_path, help="Reference folder to create (or resume).")],
    backbone: Annotated[
        str, typer.Option(help="Backbone name (see `piaa backbones`).")
    ] = "efficientnet-lite0",
    weights: Annotated[str, typer.Option(help="'imagenet' or a state-dict file.")] = "imagenet",
    maps: Annotated[bool, typer.Option(help="Store feature maps (fast personalization).")] = True,
    engine: Annotated[str, typer.Option(help="auto, onnx or torch.")] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per network call.")] = 8,
    workers: Workers = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N labelled images.")] = None,
    ray: Annotated[
        str | None,
        typer.Option(help="Embed on a Ray cluster: its address, 'auto', or 'local' (pip install piaa[ray])."),
    ] = None,
) -> None:
    """Embed every labelled image; a killed build resumes where it stopped."""
    from piaa.data.labels import read_labels
    from piaa.features.reference import build_reference

    labelset = read_labels(labels)  # a bad label file is refused before anything else
    if not images.is_dir():
        raise FileNotFoundError(f"{images}: --images folder not found")
    n = len(labelset) if limit is None else min(limit, len(labelset))
    if _complete_read_only(out, labels, images, backbone, n):
        return
    writable_folder(out, "--out")
    on_interrupt(f"what was embedded is kept in {out}; run the same command again to resume")
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
        ray=ray,
    )
    if rep.labels_skipped:
        k = len(rep.labels_skipped)
        lines = "\n".join(f"  {line}" for line in rep.labels_skipped[:20])
        more = f"\n  ... {k - 20} more" if k > 20 else ""
        warn(f"{plural(k, 'label row')} skipped:\n{lines}{more}")
    if rep.retried:
        say(f"{plural(rep.retried, 'image')} that had failed before were tried again")
    report_failures(rep.failures)
    resumed = f" (resumed after {rep.resumed_from})" if rep.resumed_from else ""
    say(
        f"{out}: {rep.embedded} of {plural(rep.total, 'image')} embedded{resumed}, "
        f"{rep.newly_embedded} now at {rep.images_per_second:.1f} images/s"
    )


def _complete_read_only(out: Path, labels: Path, images: Path, backbone: str, count: int) -> bool:
    """A finished build of these labels, images and backbone in a folder that cannot be written: say
    there is nothing to do (True). Any other build there cannot be resumed: a one-line error. A
    writable folder: False (the build itself resumes or checks its settings)."""
    from piaa.features.reference import DB_NAME, Reference
    from piaa.preferences.store import folder_writable

    if not (out / DB_NAME).is_file() or folder_writable(out / DB_NAME):
        return False
    try:
        ref = Reference.open(out)
    except Exception as e:  # incomplete, corrupt: nothing can be written to fix it
        raise UsageError(f"{out}: cannot resume the build, its folder is read-only ({e})") from None
    want = {
        "labels": str(labels.resolve()),
        "images": str(images.resolve()),
        "backbone": backbone,
        "count": str(count),
    }
    have = ref.meta.to_rows()
    diff = [k for k, v in want.items() if have.get(k) != v]
    if diff:
        k = diff[0]
        raise UsageError(
            f"{out}: a build with different settings is stored there ({k}: {have.get(k)!r}, now "
            f"{want[k]!r}) and its folder is read-only; use another --out folder"
        )
    say(f"{out}: complete ({plural(len(ref), 'image')} embedded), nothing to do (the folder is read-only)")
    return True


@reference_app.command("info")
@friendly
def reference_info(ref: Ref) -> None:
    """Show what a reference holds."""
    from piaa.features.reference import Reference

    r = Reference.open(ref)
    m = r.meta
    say(
        f"{ref}: {len(r)} images, backbone {m.backbone} (weights {m.weights_hash}), "
        f"labels {m.labels_format} from {m.labels}, maps {r.maps_kind}"
    )
    say(f"neighbour index: {r.index.kind}; {r.index.why}")


@reference_app.command("neighbors")
@friendly
def reference_neighbors(
    ref: Ref,
    images: Annotated[list[Path], typer.Argument(parser=user_path, help="Query images or folders.")],
    k: Annotated[int, typer.Option(min=1, help="Neighbours per query image.")] = 50,
    output: Annotated[
        Path | None, typer.Option(parser=user_path, help="Write all neighbours to FILE.csv or FILE.json.")
    ] = None,
    show: Annotated[int, typer.Option(min=0, help="Neighbours shown per image in the terminal.")] = 5,
    workers: Workers = None,
) -> None:
    """The K nearest reference images (cosine similarity) of each query image."""
    import numpy as np
    from rich.table import Table

    from piaa.data.images import FailureLog
    from piaa.data.labels import mean_score
    from piaa.features.reference import Reference

    check_output(output)
    r = Reference.open(ref)
    paths = walk(images)
    failures = FailureLog()
    rows: list[dict[str, Any]] = []
    for indices, embeddings in r.embed(paths, failures=failures, workers=workers):
        sims, nn_rows = r.neighbors(embeddings, k)
        ids, ref_paths, dists = r.lookup(np.maximum(nn_rows, 0))  # only the neighbours' rows are read
        means = mean_score(dists).reshape(nn_rows.shape)
        ids_at = np.arange(nn_rows.size).reshape(nn_rows.shape)
        for j, i in enumerate(indices):
            found = [(s, at) for s, row, at in zip(sims[j], nn_rows[j], ids_at[j], strict=True) if row >= 0]
            for rank, (s, at) in enumerate(found, 1):
                rows.append(
                    {
                        "query": str(paths[i]),
                        "rank": rank,
                        "image_id": ids[at],
                        "similarity": round(float(s), 5),
                        "mean_score": round(float(means.flat[at]), 4),
                        "path": str(ref_paths[at]),
                    }
                )
    for q in dict.fromkeys(x["query"] for x in rows):
        table = Table("rank", "image id", "similarity", "mean score", title=cell(q), title_justify="left")
        for x in [x for x in rows if x["query"] == q][:show]:
            table.add_row(
                str(x["rank"]), cell(x["image_id"]), f"{x['similarity']:.3f}", f"{x['mean_score']:.2f}"
            )
        console.print(table)
    _write_and_report(output, rows, failures, "row")
