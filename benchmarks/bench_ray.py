"""Embedding throughput on Ray (1 and 2 actors) against the local path, and what a cluster would give.

    PYTHONPATH=src python benchmarks/bench_ray.py [--photos ../shared/data/photos] [--n 200] [--markdown F]

Runs a local Ray instance (``num_cpus`` = this machine's cores, no dashboard). Each path embeds the
same ``n`` photos end to end (decode + backbone) and delivers the feature maps to the driver. The
projection assumes the per-core rate measured with every core of this machine busy holds on every core
of every machine (decode and ONNX are per-image work; the driver only writes ~14 KB an image for a
compact store, ~180 KB for a full one, and would become the limit near 1,000-5,000 images/s).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import ray

from _provenance import Provenance
from piaa.backbones import create_backbone
from piaa.data.images import iter_image_files
from piaa.features.distributed import ray_batches
from piaa.features.extract import FeatureExtractor
from piaa.settings import RunSettings


def rate(batches, n: int) -> float:
    t = time.perf_counter()
    got = sum(len(b.indices) for b in batches)
    assert got == n, (got, n)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=Path, default=Path("/work/shared/data/photos"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument(
        "--markdown", type=Path, help="also write the results, with their provenance, to this file"
    )
    a = ap.parse_args()
    prov = Provenance()
    files = sorted(iter_image_files([a.photos]))[: a.n]
    bb = create_backbone("efficientnet-lite0")
    cores = os.cpu_count() or 1
    res: dict = {"photos": len(files), "cores": cores}
    ex = FeatureExtractor(bb, RunSettings(batch_size=32, progress=False))
    list(ex.files(files[:32]))  # warm: ONNX export cached, session built
    res["local_img_s"] = round(rate(ex.files(files), len(files)), 1)
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False)
    for actors in (1, 2):
        kw = {"run": RunSettings(batch_size=32, progress=False), "actors": actors}
        list(ray_batches(bb, files[:64], **kw))  # warm: actors start, workers import piaa
        t = time.perf_counter()
        res[f"ray_{actors}_actor_img_s"] = round(rate(ray_batches(bb, files, **kw), len(files)), 1)
        res[f"ray_{actors}_actor_wall_s"] = round(time.perf_counter() - t, 1)
    ray.shutdown()
    # every core busy (2 actors on 2 cores): the rate a core gives when all of a machine's cores work
    per_core = round(max(res["ray_2_actor_img_s"], res["local_img_s"]) / cores, 1)
    res["per_core_img_s"] = per_core
    proj = []
    for machines, m_cores in ((1, 8), (4, 16), (16, 32), (64, 32), (256, 32)):
        r = machines * m_cores * per_core
        proj.append(
            {
                "machines": machines,
                "cores_each": m_cores,
                "img_s": round(r),
                "ava_255k_min": round(255_000 / r / 60, 1),
                "10M_h": round(10_000_000 / r / 3600, 2),
            }
        )
    res["projection"] = proj
    print(json.dumps(res, indent=1))
    prov.write(a.markdown, f"```json\n{json.dumps(res, indent=1)}\n```")


if __name__ == "__main__":
    main()
