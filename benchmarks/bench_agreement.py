"""How honest is the page's "your model agrees with you N%"? Nested cross-validation against the
selection's own figure, both checked against what really happens on photos nobody judged.

For each simulated person (``piaa.evaluation.simulate.random_user``: the crowd's taste plus personal
weights, judging with noise) an album of real photos (default 80 of ../shared/data/photos, embedded
once by the shipped ``nima-ava``) is split into photos the person judges (``--judged``) and photos never
shown. ``--pairs`` random pairs of judged photos are clicked; then

* the selection (``piaa.models.selection.fit_personal``) builds the personal model from ``nima-ava``
  and reports its winning candidate's cross-validated accuracy (biased upward: it was chosen for it);
* ``piaa.models.agreement.held_out_agreement`` reports the nested figure the page and
  ``piaa personalize`` show;
* the truth: how often the personal model orders the never-shown photos as the person's noisy clicks
  would (500 random pairs among them, or all), and the generic model likewise.

Prints a Markdown table (mean over people and, in brackets, mean absolute error against the truth).

    python benchmarks/bench_agreement.py [--people 12] [--photos 80] [--judged 50] [--pairs 100]
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch

from piaa.data.images import iter_image_files, load_image
from piaa.evaluation.simulate import judge_pairs, photo_attributes, random_user
from piaa.features.extract import FeatureExtractor
from piaa.models.agreement import held_out_agreement
from piaa.models.profile import load_profile
from piaa.models.selection import _scores, fit_personal
from piaa.models.train import TrainConfig, cached_source, pool_features
from piaa.preferences import enrich_transitive
from piaa.settings import QUIET

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"


def _pairs(rng: np.random.Generator, idx: np.ndarray, n: int) -> list[tuple[int, int]]:
    """``n`` distinct random pairs of ``idx`` (all of them when there are fewer)."""
    n = min(n, len(idx) * (len(idx) - 1) // 2)
    seen: set[frozenset[int]] = set()
    out = []
    while len(out) < n:
        a, b = (int(x) for x in rng.choice(idx, 2, replace=False))
        if frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            out.append((a, b))
    return out


def _accuracy(head, source, pairs: list[tuple[int, int]]) -> float:
    rows = torch.tensor(pairs).reshape(-1)
    s = _scores(head, pool_features(head, source, rows)).view(-1, 2)
    return float(((s[:, 0] > s[:, 1]).float() + 0.5 * (s[:, 0] == s[:, 1]).float()).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=12)
    ap.add_argument("--photos", type=int, default=80)
    ap.add_argument("--judged", type=int, default=50)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--album", type=Path, default=PHOTOS)
    args = ap.parse_args()
    t0 = time.perf_counter()
    files = list(iter_image_files([args.album]))[: args.photos]
    generic = load_profile("nima-ava")
    kept, maps = FeatureExtractor(generic.backbone, QUIET).collect(files)
    files = [files[i] for i in kept]
    attrs = np.stack([photo_attributes(load_image(f, draft_size=(256, 256))) for f in files])
    source = cached_source(maps)
    cfg = TrainConfig()
    rows = {k: [] for k in ("winner", "nested", "truth", "nested_generic", "truth_generic")}
    for person in range(args.people):
        rng = np.random.default_rng(person)
        taste = random_user(rng)
        utility = taste.utility(attrs)
        order = rng.permutation(len(files))
        judged, unseen = order[: args.judged], order[args.judged :]
        stated = judge_pairs(taste, utility, _pairs(rng, judged, args.pairs), rng)
        test = judge_pairs(taste, utility, _pairs(rng, unseen, 500), rng)
        enriched = enrich_transitive([(str(a), str(b)) for a, b in stated])
        train = torch.tensor([(int(a), int(b)) for a, b in enriched])
        head = copy.deepcopy(generic.head)
        sel = fit_personal(head, source, train, len(stated), cfg)
        honest = held_out_agreement(generic.head, source, torch.tensor(stated), cfg, curve=False)
        assert honest is not None
        rows["winner"].append(sel.cv_accuracy.get(sel.choice, float("nan")))
        rows["nested"].append(honest.personal)
        rows["truth"].append(_accuracy(head, source, test))
        rows["nested_generic"].append(honest.generic)
        rows["truth_generic"].append(_accuracy(generic.head, source, test))
        print(
            f"person {person}: {sel.choice}; winner CV {rows['winner'][-1]:.3f}, "
            f"nested {honest.personal:.3f}, "
            f"unseen photos {rows['truth'][-1]:.3f} (generic: nested {honest.generic:.3f}, "
            f"unseen {rows['truth_generic'][-1]:.3f})",
            flush=True,
        )
    r = {k: np.array(v) for k, v in rows.items()}
    mae = lambda est, truth: float(np.abs(r[est] - r[truth]).mean())  # noqa: E731
    print(f"\n{args.people} people, {len(files)} photos ({args.judged} judged), {args.pairs} pairs each, "
          f"{time.perf_counter() - t0:.0f} s\n")  # fmt: skip
    print("| figure | personal model | generic model |")
    print("|---|---|---|")
    print(f"| selection's winning candidate, its own CV accuracy | {r['winner'].mean():.3f} "
          f"(error {mae('winner', 'truth'):.3f}) | — |")  # fmt: skip
    print(f"| nested CV (the page, `piaa personalize`) | {r['nested'].mean():.3f} "
          f"(error {mae('nested', 'truth'):.3f}) | {r['nested_generic'].mean():.3f} "
          f"(error {mae('nested_generic', 'truth_generic'):.3f}) |")  # fmt: skip
    truth, truth_generic = r["truth"].mean(), r["truth_generic"].mean()
    print(f"| truth: pairs of photos never shown | {truth:.3f} | {truth_generic:.3f} |")
    above = {k: int((r[k] > r["truth"]).sum()) for k in ("winner", "nested")}
    n = args.people
    print(f"\nabove the truth for {above['winner']} of {n} people (winner CV), {above['nested']} (nested)")


if __name__ == "__main__":
    from piaa.settings import RunSettings, torch_threads

    with torch_threads(RunSettings.from_env().torch_threads):  # this script is the entry point
        main()
