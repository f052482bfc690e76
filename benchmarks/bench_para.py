"""The generic stage on real human labels: PARA's crowd means (research use only; never in the repo).

    python benchmarks/bench_para.py [--para ../shared/data/para] [--cache /tmp/piaa-cache]
        [--backbones efficientnet-lite0,nima-mobilenet] [--albums 10] [--album-size 100] [--rows ...]

Setting: the PARA photos of ``--para`` (``labels.csv`` with per-image crowd means on 1-5, mapped onto
1-10 as :mod:`piaa.data.labels.para` documents; photos under ``images/``), split once at random
(``--seed``): 4,000 are the reference (their crowd labels train the generic model), the other 1,000 the
test photos, scored by SRCC and PLCC against their real crowd means. Rows:

- NIMA-AVA zero-shot: ``nima-mobilenet``'s own AVA head (trained on AVA, never on PARA);
- per backbone, piaa's generic model (the head, EMD, piaa's default settings, as in ``piaa personalize``'s
  generic stage) trained on
  * *KNN, per album*: the test photos in ``--albums`` random albums of ``--album-size``; each album's
    model is trained on the union of its photos' K = 50 nearest reference photos (what ``piaa
    personalize`` does for an album) and scores that album; SRCC/PLCC over all scored photos, and the
    mean SRCC within albums;
  * *random, per album*: the same, on as many reference photos drawn at random (does the choice of
    neighbours matter, or only their number?);
  * *KNN, all test photos*: one model on the union of all 1,000 test photos' neighbours;
  * *whole reference*: one model on all 4,000 reference photos, no KNN; its notes give its SRCC on the
    album photos too (overall and within albums), the photos the per-album rows are scored on.

``--rows`` picks a subset of ``zero-shot,knn-album,random-album,knn-all,whole`` (default: all).

Features come from the frozen backbones once and are kept in ``--cache`` (npz), so reruns only train
heads. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from piaa.backbones import create_backbone
from piaa.data.labels import mean_score, read_labels
from piaa.evaluation.metrics import plcc, srcc
from piaa.evaluation.worlds import extract_cached
from piaa.features.index import NeighborIndex, normalize
from piaa.models.train import TrainConfig, cached_source, fit_generic, new_head

ROWS = ("zero-shot", "knn-album", "random-album", "knn-all", "whole")
DEFAULT_PARA = Path(__file__).resolve().parents[2] / "shared" / "data" / "para"


def load(para: Path, backbone: str, cache: Path | None, limit: int | None = None) -> dict:
    """Labels (1-10 distributions and means) and feature maps of the readable labelled photos."""
    labels = read_labels(para / "labels.csv")
    n = len(labels) if limit is None else min(limit, len(labels))
    files = [para / "images" / f for f in labels.files[:n]]
    bb = create_backbone(backbone)
    kept, maps = extract_cached(files, bb, cache)
    dists = labels.distributions[:n][kept]
    return {"files": [files[i] for i in kept], "kept": kept, "dists": dists, "maps": maps, "backbone": bb}


def take(maps, idx: np.ndarray):
    t = torch.from_numpy(np.asarray(idx))
    return type(maps)(*(x[t] for x in maps))


@torch.no_grad()
def head_scores(head, maps, rows: np.ndarray) -> np.ndarray:
    src = cached_source(maps)
    head.eval()
    out = [head.score(src(torch.from_numpy(rows[i : i + 256]))) for i in range(0, len(rows), 256)]
    return torch.cat(out).numpy()


def train_generic(maps, dists: np.ndarray, rows: np.ndarray, channels, cfg: TrainConfig):
    head = new_head(tuple(channels), cfg, maps.stats.shape[1])
    src = cached_source(maps)
    r = torch.from_numpy(np.asarray(rows))
    fit_generic(head, lambda i: src(r[i]), torch.from_numpy(dists[rows]), cfg)
    return head


def run(args: argparse.Namespace) -> list[tuple[str, str, float, float, str]]:
    rows_out: list[tuple[str, str, float, float, str]] = []
    cfg = TrainConfig(seed=args.seed)
    data = {b: load(args.para, b, args.cache, args.limit) for b in args.backbones}
    # the photos every backbone could read, in one order
    common = sorted(set.intersection(*(set(d["kept"]) for d in data.values())))
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(common))
    n_test = min(args.test, len(common) // 5)
    test_pos, ref_pos = np.sort(order[:n_test]), np.sort(order[n_test:])
    albums = [test_pos[rng.permutation(n_test)][i * args.album_size : (i + 1) * args.album_size]
              for i in range(min(args.albums, n_test // args.album_size))]  # fmt: skip
    print(f"{len(common)} photos: {len(ref_pos)} reference, {len(test_pos)} test; {len(albums)} albums "
          f"of {args.album_size}; K = {cfg.k}; seed {args.seed}")  # fmt: skip
    for d in data.values():
        pos = {k: i for i, k in enumerate(d["kept"])}
        rows = np.array([pos[common[i]] for i in range(len(common))])
        maps = take(d["maps"], rows)
        dists = d["dists"][rows].astype(np.float32)
        d["maps_c"], d["dists_c"] = maps, dists
    truth = mean_score(next(iter(data.values()))["dists_c"].astype(np.float64))
    t_test = truth[test_pos]

    want = set(args.rows)
    if "nima-mobilenet" in data and "zero-shot" in want:
        d = data["nima-mobilenet"]
        with torch.no_grad():
            emb = d["maps_c"].embedding.float()[torch.from_numpy(test_pos)]
            pred = mean_score(d["backbone"].head(emb)).numpy()
        rows_out.append(("NIMA-AVA zero-shot (nima-mobilenet's AVA head)", "nima-mobilenet",
                         srcc(pred, t_test), plcc(pred, t_test), "no PARA labels"))  # fmt: skip

    for b, d in data.items():
        maps, dists = d["maps_c"], d["dists_c"]
        ch = d["backbone"].info.channels
        emb = normalize(maps.embedding.float().numpy())
        index = NeighborIndex(emb[ref_pos])

        def fit(ref_local: np.ndarray, maps=maps, dists=dists, ch=ch):
            return train_generic(maps, dists, ref_pos[np.sort(ref_local)], ch, cfg)

        t0 = time.perf_counter()
        for name, pick in (("KNN", None), ("random", rng)):
            if f"{name.lower()}-album" not in want:
                continue
            pred = np.empty(len(test_pos))
            inner, sizes = [], []
            where = {p: i for i, p in enumerate(test_pos)}
            for album in albums:
                knn = index.union(emb[album], cfg.k)
                local = knn if pick is None else pick.choice(len(ref_pos), len(knn), replace=False)
                head = fit(local)
                p = head_scores(head, maps, album)
                pred[[where[a] for a in album]] = p
                inner.append(srcc(p, truth[album]))
                sizes.append(len(local))
            sc = np.concatenate([[where[a] for a in album] for album in albums])
            rows_out.append((f"generic, {name} per album (K = {cfg.k})", b, srcc(pred[sc], t_test[sc]),
                             plcc(pred[sc], t_test[sc]),
                             f"{np.mean(sizes):.0f} ref photos/album; SRCC within albums "
                             f"{np.mean(inner):.3f}"))  # fmt: skip
        if "knn-all" in want:
            knn = index.union(emb[test_pos], cfg.k)
            pred = head_scores(fit(knn), maps, test_pos)
            rows_out.append((f"generic, KNN of all test photos (K = {cfg.k})", b, srcc(pred, t_test),
                             plcc(pred, t_test), f"{len(knn)} ref photos"))  # fmt: skip
        if "whole" in want:
            pred = head_scores(fit(np.arange(len(ref_pos))), maps, test_pos)
            where = {p: i for i, p in enumerate(test_pos)}
            sc = np.concatenate([[where[a] for a in album] for album in albums]).astype(int)
            inner = np.mean([srcc(pred[[where[a] for a in album]], truth[album]) for album in albums])
            rows_out.append(("generic, whole reference (no KNN)", b, srcc(pred, t_test), plcc(pred, t_test),
                             f"{len(ref_pos)} ref photos; on the album photos SRCC "
                             f"{srcc(pred[sc], t_test[sc]):.3f}, within albums {inner:.3f}"))  # fmt: skip
        print(f"{b}: heads trained in {time.perf_counter() - t0:.0f} s", flush=True)
    return rows_out


def table(rows: list[tuple[str, str, float, float, str]]) -> str:
    lines = ["| method | backbone | SRCC | PLCC | trained on |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {b} | {s:.3f} | {p:.3f} | {n} |" for m, b, s, p, n in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--para", type=Path, default=DEFAULT_PARA)
    ap.add_argument("--backbones", default="efficientnet-lite0,nima-mobilenet")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/piaa-cache"))
    ap.add_argument("--test", type=int, default=1000, help="test photos (at most a fifth of all)")
    ap.add_argument("--albums", type=int, default=10)
    ap.add_argument("--album-size", type=int, default=100)
    ap.add_argument("--limit", type=int, default=None, help="only the first N labelled photos")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", default=",".join(ROWS), help="subset of " + ",".join(ROWS))
    ap.add_argument("--markdown", type=Path, help="also write the table, with its provenance, to this file")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by a test, not run
    from _provenance import Provenance

    prov = Provenance(None if argv is None else [__file__, *argv])
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown:
        raise SystemExit(f"--rows: unknown {unknown}; choose from {','.join(ROWS)}")
    args.backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]
    if not (args.para / "labels.csv").is_file():
        raise SystemExit(f"{args.para}/labels.csv not found (pass --para DIR)")
    t0 = time.perf_counter()
    out = table(run(args))
    print(out)
    minutes = f"({(time.perf_counter() - t0) / 60:.1f} min)"
    print(f"\n{minutes}")
    prov.write(args.markdown, f"{out}\n\n{minutes}")
    return out


if __name__ == "__main__":
    from piaa.settings import RunSettings, torch_threads

    with torch_threads(RunSettings.from_env().torch_threads):  # this script is the entry point
        main()
