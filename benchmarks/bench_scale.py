"""An AVA-sized reference (255,000 rows) on one machine: size on disk, build, open + query, recall, and
the generic training of a personalization against it.

No images: the rows are synthetic, of the right shapes. Embeddings are either clustered at random or,
with ``--seed-ref REF`` (a real reference, e.g. lite0 over /work/shared/data/photos), real embeddings
replicated with noise (each row = a real embedding + noise, renormalised). Feature maps are random
maps of lite0's shapes encoded with the compact codec, cycled (size is what matters here; the
codec's fidelity is measured on real photos, see the README).

    PYTHONPATH=src python benchmarks/bench_scale.py --out /tmp/ava-synth [--rows 255000] [--seed-ref REF]

Open + query and personalize are measured in fresh processes (peak RSS = VmHWM of that process). The
command as a user runs it, ``piaa reference neighbors REF PHOTO --k 5``, is timed end to end (Python's
start-up and imports included) in ``--cli-repeats`` fresh processes after one warm-up run (which exports
the backbone's ONNX graph if it is not cached yet): median wall time and peak RSS (from GNU ``time``
where installed), with the load average. ``--only-cli`` measures just that, on an existing reference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _provenance import Provenance
from piaa.backbones import FeatureMaps, create_backbone
from piaa.features import store
from piaa.features.index import INDEX_META, exact_search, normalize, probe_queries, recall_at
from piaa.features.mapcodec import MapCodec, save_codec


def embeddings(rows: int, dim: int, seed_ref: Path | None, rng: np.random.Generator) -> np.ndarray:
    if seed_ref is not None:
        base = np.load(seed_ref / store.EMB_NAME)
        src = base[rng.integers(0, len(base), rows)]
        noise = normalize(rng.standard_normal((rows, base.shape[1]), dtype=np.float32))
        return normalize(src + 0.6 * noise)
    centres = normalize(rng.standard_normal((2000, dim), dtype=np.float32))
    out = np.empty((rows, dim), np.float32)
    for s in range(0, rows, 50_000):
        n = min(50_000, rows - s)
        noise = normalize(rng.standard_normal((n, dim), dtype=np.float32))
        out[s : s + n] = normalize(centres[rng.integers(0, 2000, n)] + 0.8 * noise)
    return out


def build(out: Path, rows: int, seed_ref: Path | None) -> dict:
    rng = np.random.default_rng(0)
    bb = create_backbone("efficientnet-lite0", None)
    c1, c2, c3 = bb.info.channels
    out.mkdir(parents=True, exist_ok=False)
    t0 = time.perf_counter()
    emb = embeddings(rows, c3, seed_ref, rng)
    pool = 256  # random maps of lite0's shapes, encoded once and cycled
    maps = FeatureMaps(
        torch.rand(pool, c1, 14, 14) * 4,
        torch.relu(torch.randn(pool, c2, 7, 7)) * 2,
        torch.rand(pool, c3, 1, 1),
        torch.zeros(pool, c3),
        torch.randn(pool, bb.info.stats_dim),
    )
    maps = maps._replace(embedding=maps.z3.flatten(1))
    codec = MapCodec.fit(maps)
    blobs = codec.encode(maps)
    dists = rng.dirichlet(np.ones(10), size=rows).astype("<f4")
    db = store._connect(out / store.DB_NAME)
    db.executescript(store._SCHEMA)
    meta = {
        "format": store.FORMAT, "backbone": bb.info.name, "weights_hash": bb.info.weights_hash,
        "labels": "synthetic", "images": "/nonexistent", "count": str(rows), "store_maps": "compact",
        "complete": "0", "backbone_info": json.dumps(bb.info.to_dict()), "labels_format": "synthetic",
        "labels_skipped": "[]",
    }  # fmt: skip
    with db:
        db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        db.executemany(
            "INSERT INTO items (idx, image_id, path, dist) VALUES (?, ?, ?, ?)",
            ((i, str(i), f"{i}.jpg", dists[i].tobytes()) for i in range(rows)),
        )
    save_codec(db, codec)
    for s in range(0, rows, 1024):
        idx = list(range(s, min(rows, s + 1024)))
        with db:
            store.write_rows(db, idx, emb[idx], [blobs[i % pool] for i in idx], "compact")
    write_s = time.perf_counter() - t0
    del emb
    t = time.perf_counter()
    store._finalize(db, out)
    db.execute("PRAGMA journal_mode=DELETE")
    db.close()
    return {"write_s": round(write_s, 1), "finalize_s": round(time.perf_counter() - t, 1)}


_PEAK = """
def peak_gb():
    with open("/proc/self/status") as f:
        return round(int(next(x for x in f if x.startswith("VmHWM")).split()[1]) / 2**20, 2)
"""

_QUERY = (
    _PEAK
    + """
import sys, time, json, numpy as np
t00 = time.perf_counter()
from piaa.features.reference import Reference
from piaa.features.index import NeighborIndex
import faiss
t0 = time.perf_counter()
ref = Reference.open(sys.argv[1])
if sys.argv[2] == "exact":
    ref._index = NeighborIndex(ref.embeddings)
q = np.random.default_rng(5).standard_normal((1, ref.embeddings.shape[1])).astype("f4")
t1 = time.perf_counter()
ref.neighbors(q, 50)
t2 = time.perf_counter()
print(json.dumps({"imports_s": round(t0 - t00, 2), "open_s": round(t1 - t0, 2),
                  "query_s": round(t2 - t1, 3), "total_s": round(t2 - t0, 2),
                  "peak_gb": peak_gb(),
                  "index": ref.index.kind}))
"""
)

_PERSONALIZE = (
    _PEAK
    + """
import sys, time, json, numpy as np, torch
from piaa.features.reference import Reference
from piaa.features.index import probe_queries
from piaa.models.train import TrainConfig, cached_source, fit_generic, new_head
torch.set_num_threads(2)
t0 = time.perf_counter()
ref = Reference.open(sys.argv[1])
album = probe_queries(ref.embeddings, 100, seed=11)  # 100 album photos near the corpus
rows = ref.neighbor_union(album, 50)
t1 = time.perf_counter()
maps = ref.maps(rows)
t2 = time.perf_counter()
cfg = TrainConfig()
info = ref.meta.backbone_info
ch = info["channels"]; sd = info["stats_dim"]
head = new_head(ch, cfg, sd)
from piaa.settings import torch_threads
with torch_threads(1):  # as piaa personalize trains (PIAA_TORCH_THREADS unset)
    fit_generic(head, cached_source(maps), torch.from_numpy(ref.distributions[rows]), cfg)
t3 = time.perf_counter()
print(json.dumps({"neighbours": int(len(rows)), "search_s": round(t1 - t0, 2), "maps_s": round(t2 - t1, 2),
                  "train_s": round(t3 - t2, 1), "total_s": round(t3 - t0, 1),
                  "peak_gb": peak_gb()}))
"""
)


def run(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def cli_query(ref: Path, photo: Path | None, repeats: int) -> dict:
    """``piaa reference neighbors REF PHOTO --k 5`` in fresh processes: wall seconds and peak RSS (GB)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    if photo is None:  # a smooth synthetic scene, JPEG-encoded like a photo
        from PIL import Image

        rng = np.random.default_rng(7)
        yy, xx = np.mgrid[0:375, 0:500] / 500
        img = np.stack([0.5 + 0.3 * np.sin(6 * rng.uniform(-1, 1) * xx + 3 * yy) for _ in range(3)], -1)
        photo = tmp / "query.jpg"
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(photo, quality=90)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cmd = [sys.executable, "-m", "piaa.cli", "reference", "neighbors", str(ref), str(photo), "--k", "5"]

    # Peak RSS from GNU time when there is one: a child's ru_maxrss also counts this (larger) process's
    # memory when it was spawned from it (Linux keeps the high-water mark across exec).
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").is_file() else None)
    timed = [gnu_time, "-o", str(tmp / "rss.txt"), "-f", "%M", *cmd] if gnu_time else cmd

    def once() -> tuple[float, float]:
        with open(tmp / "out.txt", "w+") as out:
            t = time.perf_counter()
            proc = subprocess.Popen(timed, stdout=out, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode:
                out.seek(0)
                raise RuntimeError(out.read()[-2000:])
        kb = int((tmp / "rss.txt").read_text().split()[-1]) if gnu_time else usage.ru_maxrss
        return wall, kb / 2**20  # KB -> GB

    load_before = os.getloadavg()
    first = once()
    runs = [once() for _ in range(repeats)]
    walls, peaks = [w for w, _ in runs], [p for _, p in runs]
    return {
        "command": " ".join(["piaa", *cmd[3:]]),
        "first_run_s": round(first[0], 2),
        "wall_s_median": round(statistics.median(walls), 2),
        "wall_s_min_max": [round(min(walls), 2), round(max(walls), 2)],
        "peak_gb_median": round(statistics.median(peaks), 2),
        "peak_gb_max": round(max(peaks), 2),
        "repeats": repeats,
        "peak_rss_from": "GNU time" if gnu_time else "wait4 (counts the benchmark's own memory too)",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rows", type=int, default=255_000)
    ap.add_argument("--seed-ref", type=Path, help="a real reference whose embeddings are replicated")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--personalize", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--cli-repeats", type=int, default=5, help="timed runs of the neighbors command")
    ap.add_argument("--photo", type=Path, help="the query photo of the command (default: a synthetic one)")
    ap.add_argument("--only-cli", action="store_true", help="only time the command, on an existing --out")
    ap.add_argument(
        "--markdown", type=Path, help="also write the results, with their provenance, to this file"
    )
    a = ap.parse_args()
    prov = Provenance()
    if a.only_cli:
        res = {"piaa reference neighbors (end to end)": cli_query(a.out, a.photo, a.cli_repeats)}
        print(json.dumps(res))
        prov.write(a.markdown, f"```json\n{json.dumps(res, indent=1)}\n```")
        return
    res: dict = {"rows": a.rows, "embeddings": "real+noise" if a.seed_ref else "synthetic clusters"}
    if not a.skip_build:
        res["build"] = build(a.out, a.rows, a.seed_ref)
    sizes = {p.name: p.stat().st_size for p in a.out.iterdir() if p.is_file()}
    res["disk_gb"] = {k: round(v / 1e9, 3) for k, v in sizes.items()}
    res["disk_gb_total"] = round(sum(sizes.values()) / 1e9, 2)
    db = sqlite3.connect(a.out / store.DB_NAME)
    per = db.execute("SELECT AVG(LENGTH(z1) + LENGTH(z2) + LENGTH(z3) + LENGTH(stats)) FROM maps").fetchone()[
        0
    ]
    db.close()
    res["map_bytes_per_image"] = round(per)
    res["index"] = json.loads((a.out / INDEX_META).read_text()) if (a.out / INDEX_META).exists() else "exact"
    emb = np.load(a.out / store.EMB_NAME, mmap_mode="r")
    q = probe_queries(emb, 200, seed=42)  # not the tuning queries
    from piaa.features.reference import Reference

    ref = Reference.open(a.out)
    _, truth = exact_search(emb, q, 50)
    t = time.perf_counter()
    _, found = ref.neighbors(q, 50)
    res["recall@50"] = round(recall_at(truth, found), 4)
    res["query_ms_batched"] = round((time.perf_counter() - t) * 1000 / len(q), 2)
    res["open+1 query (saved index)"] = run(_QUERY, str(a.out), "saved")
    res["open+1 query (exact, in memory)"] = run(_QUERY, str(a.out), "exact")
    res["piaa reference neighbors (end to end)"] = cli_query(a.out, a.photo, a.cli_repeats)
    if a.personalize:
        res["personalize (100 photos, K=50: search + maps + generic training)"] = run(
            _PERSONALIZE, str(a.out)
        )
    res["bench_peak_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(json.dumps(res, indent=1))
    prov.write(a.markdown, f"```json\n{json.dumps(res, indent=1)}\n```")


if __name__ == "__main__":
    main()
