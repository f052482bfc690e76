"""Embedding throughput (images/s, end to end from JPEG files) and KNN query time at AVA's size.

    python benchmarks/bench_embedding.py [--photos ../shared/data/photos] [--n 400] [--markdown FILE]

Prints one line per measurement. The photos are decoded as ``piaa reference build`` and ``piaa score``
decode them (by default on the network threads, ``--workers 0``; ``--workers N``: N decode processes).
``benchmarks/bench_throughput.py`` compares these rates with the network alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _provenance import Provenance
from piaa.backbones import create_backbone
from piaa.data.images import iter_image_files
from piaa.features.extract import FeatureExtractor
from piaa.settings import RunSettings

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"


def embed_throughput(
    name: str, paths: list[Path], engine: str, batch_size: int, workers: int | None
) -> float:
    run = RunSettings(engine=engine, batch_size=batch_size, workers=workers, progress=False)
    fe = FeatureExtractor(create_backbone(name), run)
    list(fe.files(paths[:32]))  # warm-up: ONNX export/cache, worker start
    t = time.perf_counter()
    n = sum(len(b.indices) for b in fe.files(paths))
    return n / (time.perf_counter() - t)


def knn_query_time(
    rows: int = 255_000, dim: int = 1280, queries: int = 100, k: int = 50
) -> tuple[float, float]:
    import faiss

    rng = np.random.default_rng(0)
    emb = rng.standard_normal((rows, dim), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(dim)
    index.add(emb)
    q = emb[rng.choice(rows, queries, replace=False)]
    index.search(q[:1], k)
    t = time.perf_counter()
    for i in range(queries):
        index.search(q[i : i + 1], k)
    single = (time.perf_counter() - t) / queries
    t = time.perf_counter()
    index.search(q, k)
    batched = (time.perf_counter() - t) / queries
    return single, batched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--n", type=int, default=400, help="photos to embed per backbone")
    ap.add_argument("--backbones", nargs="+", default=["efficientnet-lite0", "efficientnet-lite2"])
    ap.add_argument("--engines", nargs="+", default=["onnx", "torch"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=None, help="decode processes (default: piaa's)")
    ap.add_argument("--markdown", type=Path, help="also write the table, with its provenance, to this file")
    args = ap.parse_args()
    prov = Provenance()
    paths = list(iter_image_files([args.photos]))[: args.n]
    print(f"{len(paths)} photos from {args.photos}")
    rows = [f"{len(paths)} photos\n", "| measurement | result |", "|---|---|"]
    for name in args.backbones:
        for engine in args.engines:
            ips = embed_throughput(name, paths, engine, args.batch_size, args.workers)
            workers = "default" if args.workers is None else args.workers
            print(
                f"embed  {name:20s} {engine:5s} batch {args.batch_size:3d} workers {workers}: "
                f"{ips:6.1f} images/s"
            )
            rows.append(
                f"| embed, {name}, {engine}, end to end from JPEG "
                f"(batch {args.batch_size}, workers {workers}) "
                f"| {ips:.1f} images/s |"
            )
    single, batched = knn_query_time()
    print(
        f"knn    255,000 x 1280 exact cosine (faiss IndexFlatIP), k=50: {single * 1000:.1f} ms/query alone, "
        f"{batched * 1000:.2f} ms/query in a batch of 100"
    )
    rows.append(
        f"| KNN, 255,000 x 1280 random index, exact cosine (faiss), k = 50 | {single * 1000:.1f} ms per "
        f"single query; {batched * 1000:.2f} ms per query in a batch of 100 |"
    )
    prov.write(args.markdown, "\n".join(rows))


if __name__ == "__main__":
    main()
