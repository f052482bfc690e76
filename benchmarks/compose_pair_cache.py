"""The pair backbone's feature cache for the PARA worlds, composed from its parts' caches.

``efficientnet-lite0+nima-mobilenet``'s maps are its parts' maps concatenated along channels, from the
same pixels. On photos already at the input size (the shared PARA photos are all 224 x 224) the parts'
own pipelines give the same pixels as the pair's (no resize happens), so the pair's cache file for the
5,000 PARA photos (what :func:`piaa.evaluation.worlds.extract_cached` would write) is the
concatenation of the two parts' files. This writes it, after checking on ``--check`` photos spread over
the list that the pair's own extraction gives the same pixels and maps (float16, as cached)::

    python benchmarks/compose_pair_cache.py --para ../shared/data/para --cache /tmp/taste22/cache

Refuses (exit 1) when a part's file is missing, their kept rows differ, or the check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

from piaa.backbones import FeatureMaps, create_backbone
from piaa.backbones.base import Backbone
from piaa.settings import QUIET

PAIR = "efficientnet-lite0+nima-mobilenet"


def cache_file(paths: list[Path], backbone: Backbone, cache_dir: Path) -> Path:
    """The file :func:`~piaa.evaluation.worlds.extract_cached` keeps ``paths``' maps in (same key;
    ``tests/test_backbone_pair.py`` holds the two together)."""
    key = hashlib.sha1(
        "\n".join([backbone.info.name, backbone.info.weights_hash, *map(str, paths)]).encode()
    ).hexdigest()[:16]
    return cache_dir / f"maps-{backbone.info.name}-{len(paths)}-{key}.npz"


def para_paths(root: Path, limit: int | None = None) -> list[Path]:
    """The photo list the PARA worlds extract (labels.csv order)."""
    from piaa.data.labels import read_labels

    labels = read_labels(root / "labels.csv")
    n = len(labels) if limit is None else min(limit, len(labels))
    return [root / "images" / f for f in labels.files[:n]]


def compose(paths: list[Path], cache_dir: Path, check: int = 16) -> tuple[Path, float]:
    """Write the pair's cache from its parts' caches; (the file, max |difference| on the checked
    photos). Raises ``SystemExit`` on a missing part, different kept rows or a failed check."""
    from piaa.features.extract import FeatureExtractor, half_maps

    pair = create_backbone(PAIR)
    out = cache_file(paths, pair, cache_dir)
    parts = [pair.first, pair.second]
    files = [cache_file(paths, bb, cache_dir) for bb in parts]
    for f in files:
        if not f.is_file():
            raise SystemExit(f"{f}: not there; run a world on {f.name.split('-5')[0][5:]} first")
    loaded = []
    for f in files:
        with np.load(f) as z:
            loaded.append({k: z[k] for k in ("kept", *FeatureMaps._fields)})
    a, b = loaded
    if not np.array_equal(a["kept"], b["kept"]):
        raise SystemExit("the two parts kept different photos; extract the pair instead")
    kept = a["kept"]
    arrays = {n: np.concatenate([a[n], b[n]], axis=1) for n in ("z1", "z2", "z3", "stats")}
    arrays["embedding"] = a["embedding"]
    del loaded, a, b
    # the check: the pair's own extraction of a few photos (its pixels, its ONNX graph) against the rows
    rows = np.linspace(0, len(kept) - 1, check).round().astype(int)
    sample = [paths[int(kept[r])] for r in rows]
    for p in sample:  # the parts' pipelines give the pair's pixels
        if not np.array_equal(pair.first.preprocess.load(p), pair.second.preprocess.load(p)):
            raise SystemExit(f"{p}: the parts' pipelines give different pixels; extract the pair instead")
    got_rows, got = FeatureExtractor(pair, QUIET).collect(sample)
    if got is None or len(got_rows) != len(sample):
        raise SystemExit("the pair could not read the checked photos")
    got = half_maps(got)
    worst = 0.0
    for n, t in zip(FeatureMaps._fields, got, strict=True):
        ref = torch.from_numpy(arrays[n][rows]).float()
        diff = float((t.float() - ref).abs().max())
        scale = float(ref.abs().max()) or 1.0
        worst = max(worst, diff)
        if diff > 2e-3 * scale + 2e-3:  # float16 rounding of the ONNX/ONNX same numbers, engine jitter
            raise SystemExit(f"{n}: the pair's own maps differ from the composed ones by {diff:.4f}")
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, kept=kept, **{n: arrays[n] for n in FeatureMaps._fields})
    tmp.replace(out)
    return out, worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--para", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/para")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--check", type=int, default=16, help="photos extracted by the pair to check")
    args = ap.parse_args()
    t0 = time.perf_counter()
    out, worst = compose(para_paths(args.para, args.limit), args.cache, args.check)
    print(f"{out} written in {time.perf_counter() - t0:.0f} s; checked photos: max |diff| {worst:.2e}")


if __name__ == "__main__":
    sys.exit(main())
