"""Embedding on a Ray cluster (``pip install piaa[ray]``): reference builds and scoring at any scale.

The driver lists the files; Ray Data hands them out in batches to actors that each hold one
:class:`~piaa.features.extract.FeatureExtractor` (the ONNX session is created once per actor, from the
driver's backbone object, so every machine runs the same weights); the feature maps come back to the
driver, which writes them exactly as a local run does: into the same store, one transaction per batch
(so a killed driver resumes like a local build), or into the same scores. Batches arrive in any order;
each carries the positions of its files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from piaa.backbones import Backbone, FeatureMaps
from piaa.data.images import FailureLog
from piaa.features.extract import Batch, FeatureExtractor
from piaa.settings import RunSettings, process_torch_threads

LOCAL = ("local", "true", "1", "")


def _require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RuntimeError("--ray needs Ray Data: pip install 'piaa[ray]'") from None
    return ray


def connect(address: str | bool | None = True) -> Any:
    """Join the Ray cluster at ``address`` ("auto": the one this machine belongs to; "local", True or
    "": a private instance on this machine, no dashboard); an already initialised Ray is reused."""
    ray = _require_ray()
    if not ray.is_initialized():
        local = address is True or str(address).lower() in LOCAL
        ray.init(
            address=None if local else str(address),
            include_dashboard=False if local else None,
            log_to_driver=False,
            configure_logging=False,
        )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # piaa shows its own
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray


class _Embed:
    """A Ray Data actor: one FeatureExtractor for its lifetime."""

    def __init__(self, backbone: Backbone, settings: RunSettings) -> None:
        process_torch_threads(1)  # the actor's own process: one core each
        self.extractor = FeatureExtractor(backbone, settings.replace(workers=0, progress=False))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(p) for p in batch["path"]]
        failures = FailureLog()
        got: dict[int, tuple] = {}
        for b in self.extractor.files(paths, failures=failures):
            for j, i in enumerate(b.indices):
                got[i] = tuple(t[j].numpy() for t in b.features)
        reasons = {str(p): r for p, r in failures}
        shapes = next(iter(got.values()), None)
        out: dict[str, list] = {"pos": [], "error": [], **{f: [] for f in FeatureMaps._fields}}
        for i, p in enumerate(paths):
            out["pos"].append(int(batch["pos"][i]))
            out["error"].append("" if i in got else reasons.get(p, "unreadable"))
            for k, f in enumerate(FeatureMaps._fields):
                if i in got:
                    out[f].append(got[i][k])
                else:  # a placeholder of the right shape: Ray Data columns are rectangular
                    out[f].append(np.zeros_like(shapes[k]) if shapes else np.zeros(1, np.float32))
        return {k: np.stack(v) if k in FeatureMaps._fields else np.array(v) for k, v in out.items()}


def ray_batches(
    backbone: Backbone,
    paths: Sequence[str | Path],
    run: RunSettings,
    *,
    failures: FailureLog | None = None,
    desc: str = "embedding",
    address: str | bool | None = True,
    actors: int | None = None,
) -> Iterator[Batch]:
    """``FeatureExtractor.files`` on a Ray cluster: batches of features (``indices`` = positions in
    ``paths``), in the order they finish; files that fail go to ``failures``. ``run`` travels to the
    actors (engine, batch size, previews; each decodes on its own thread); ``actors``: embedding actors
    (default: the cluster's CPUs, one each)."""
    batch_size = run.batch_size
    if not paths:
        return
    ray = connect(address)
    n = actors or max(1, int(ray.cluster_resources().get("CPU", os.cpu_count() or 1)))
    blocks = max(1, min(-(-len(paths) // batch_size), 4 * n))
    ds = ray.data.from_items(  # materialised on the driver: no task competes with the actors for CPUs
        [{"pos": i, "path": str(p)} for i, p in enumerate(paths)], override_num_blocks=blocks
    )
    out = ds.map_batches(
        _Embed,
        fn_constructor_args=(backbone, run),
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=min(n, len(paths))),
        num_cpus=1,
        batch_format="numpy",
    )
    bar = tqdm(total=len(paths), desc=f"{desc} (ray, {n} actors)", unit="img", disable=not run.progress)
    with bar:
        for b in out.iter_batches(batch_size=None, batch_format="numpy"):
            ok = b["error"] == ""
            if failures is not None:
                for pos, reason in zip(b["pos"][~ok], b["error"][~ok], strict=True):
                    failures.add(paths[int(pos)], str(reason))
            if ok.any():
                feats = FeatureMaps(
                    *(torch.from_numpy(np.ascontiguousarray(b[f][ok])) for f in FeatureMaps._fields)
                )
                yield Batch([int(p) for p in b["pos"][ok]], feats)
            bar.update(len(b["pos"]))


def score_files_ray(
    profile: Any,
    paths: Sequence[str | Path],
    run: RunSettings,
    *,
    failures: FailureLog | None = None,
    address: str | bool | None = True,
    actors: int | None = None,
) -> list:
    """``Profile.score_files`` with the backbone run on a Ray cluster (``run``'s engine and previews,
    batches of 32); the head scores on the driver. Same results, in input order."""
    from piaa.models.profile import ScoreResult

    found: dict[int, ScoreResult] = {}
    for batch in ray_batches(
        profile.backbone, list(paths), run.replace(batch_size=32), failures=failures, desc="scoring",
        address=address, actors=actors,
    ):  # fmt: skip
        scores, dists = profile.score_features(batch.features)
        for i, s, d in zip(batch.indices, scores, dists, strict=True):
            found[i] = ScoreResult(str(paths[i]), float(s), d.tolist())
    return [found[i] for i in sorted(found)]
