"""Every method the benchmark compares: piaa, its ablations (paper section 4.3) and the baselines.

A method maps one :class:`~piaa.evaluation.protocol.Split` to scores for its test photos (higher is
better; only their order matters). piaa and its ablations train the aesthetic head; the baselines
follow the papers the paper compares with, on the same backbone features, as far as their
descriptions allow (hence "-style" where an architecture is approximated).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from piaa.data.labels import mean_score
from piaa.models.losses import get_rank_loss
from piaa.models.train import cached_source
from piaa.registry import Registry

if TYPE_CHECKING:
    from piaa.evaluation.protocol import Split
    from piaa.evaluation.worlds import EvalWorld

__all__ = ["EVALUATION_METHODS", "Method"]

Method = Callable[["Split"], np.ndarray]
"""Split -> (T,) scores of the split's T test photos."""


# ------------------------------------------------------------------------------- piaa and its ablations


def _piaa(**overrides: object) -> Method:
    def run(s: Split) -> np.ndarray:
        return s.head_scores(s.rank(s.generic(), **overrides))

    return run


def _without_rankings(s: Split) -> np.ndarray:
    return s.head_scores(s.generic())


def _ablation(**overrides: object) -> Method:
    """piaa with one part switched off, in the generic model and the ranking fine-tune alike."""

    def run(s: Split) -> np.ndarray:
        return s.head_scores(s.rank(s.generic(**overrides), **overrides))

    return run


def _without_pretraining(s: Split) -> np.ndarray:
    return s.head_scores(s.rank(s.new_head()))


# ------------------------------------------------------------------------------------------- baselines


def _pair_features(s: Split) -> tuple[np.ndarray, np.ndarray]:
    x = s.world.photo_emb
    return x[s.pairs[:, 0]] - x[s.pairs[:, 1]], x


def _rsvm(s: Split) -> np.ndarray:
    """RankSVM (Joachims 2002): a linear SVM on embedding differences of the ordered pairs."""
    from sklearn.svm import LinearSVC

    d, x = _pair_features(s)
    if len(d) == 0:
        return np.zeros(len(s.test))
    # liblinear shuffles with a seed it draws from numpy's global state unless given one.
    svm = LinearSVC(C=1.0, fit_intercept=False, max_iter=5000, random_state=s.cfg.seed)
    svm.fit(np.vstack([d, -d]), np.r_[np.ones(len(d)), -np.ones(len(d))])
    return x[s.test] @ svm.coef_[0]


def _linear_fit(
    loss_fn: Callable[[torch.Tensor], torch.Tensor], dim: int, l2: float, steps: int = 300
) -> torch.Tensor:
    w = torch.zeros(dim + 1, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(w) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def _rsvr(s: Split) -> np.ndarray:
    """R-SVR after Park et al. (2017): one linear model with an epsilon-insensitive regression loss on
    the reference neighbours' mean scores and a ranking hinge on the person's pairs, jointly (squared
    hinges, so L-BFGS can solve it)."""
    x = torch.from_numpy(s.world.photo_emb).float()
    xr = torch.from_numpy(s.world.ref_emb[s.neighbors]).float()
    yr = torch.from_numpy(mean_score(s.world.ref_dists[s.neighbors]))
    p = torch.from_numpy(s.pairs)

    def loss(w: torch.Tensor) -> torch.Tensor:
        reg = torch.relu((xr @ w[:-1] + w[-1] - yr).abs() - 0.1) ** 2
        rank = torch.relu(1.0 - (x[p[:, 0]] - x[p[:, 1]]) @ w[:-1]) ** 2 if len(p) else torch.zeros(1)
        return reg.mean() + rank.mean()

    w = _linear_fit(loss, x.shape[1], l2=1e-3)
    return (x[torch.from_numpy(s.test)] @ w[:-1]).numpy()


def _pam(s: Split) -> np.ndarray:
    """PAM-style (after Ren et al. 2017): the generic score plus a personal residual, a linear function
    of the embedding learned from the pairs with a hinge loss and L2 regularisation."""
    g = torch.from_numpy(s.head_scores(s.generic(), np.arange(len(s.world.photo_emb)))).float()
    x = torch.from_numpy(s.world.photo_emb).float()
    p = torch.from_numpy(s.pairs)
    if len(p) == 0:
        return g[torch.from_numpy(s.test)].numpy()

    def loss(w: torch.Tensor) -> torch.Tensor:
        diff = g[p[:, 0]] - g[p[:, 1]] + (x[p[:, 0]] - x[p[:, 1]]) @ w[:-1]
        return (torch.relu(0.5 - diff) ** 2).mean()

    w = _linear_fit(loss, x.shape[1], l2=1e-2)
    t = torch.from_numpy(s.test)
    return (g[t] + x[t] @ w[:-1]).numpy()


def _seeded_mlp(n_in: int, hidden: int, seed: int) -> torch.nn.Sequential:
    """in -> hidden -> ReLU -> 1, initialised as torch's ``Linear`` does, from a local generator: the
    global random state is neither reseeded nor consumed (layers are built on the meta device)."""
    net = torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden, device="meta"),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 1, device="meta"),
    ).to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (net[0], net[2]):
            torch.nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=gen)
            bound = 1 / math.sqrt(layer.in_features)
            torch.nn.init.uniform_(layer.bias, -bound, bound, generator=gen)
    return net


def _rankiqa(s: Split) -> np.ndarray:
    """RankIQA-style (Liu et al. 2017) with the person's rankings: a Siamese network (pooled backbone
    features -> MLP -> scalar score) trained on the pairs alone with the hinge loss."""
    src = cached_source(s.world.photo_maps)
    ids = torch.from_numpy(np.unique(np.r_[s.pairs.ravel(), s.test]))
    with torch.no_grad():
        f = src(ids)
        feats = torch.cat([f.z1.mean((2, 3)), f.z2.mean((2, 3))], 1)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    pos = {int(i): k for k, i in enumerate(ids)}
    net = _seeded_mlp(feats.shape[1], 64, s.cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-3)
    hinge = get_rank_loss("hinge")
    a = torch.tensor([pos[int(i)] for i in s.pairs[:, 0]], dtype=torch.long)
    b = torch.tensor([pos[int(i)] for i in s.pairs[:, 1]], dtype=torch.long)
    for _ in range(200 if len(a) else 0):
        out = net(feats).squeeze(1)
        loss = hinge(out[a], out[b], margin=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return net(feats[[pos[int(i)] for i in s.test]]).squeeze(1).numpy()


# ------------------------------------------------------------------------------------ the taste space


def _world_attributes(world: EvalWorld, both: bool = False) -> np.ndarray | None:
    """(P, A) the pool photos' attributes predicted by heads fitted on the reference's crowd attribute
    ratings (once per world), or None when the world's reference has none. ``both``: the heads read the
    world's backbone's pooled features and, beside them, the other backbone's for the same photos
    (:attr:`~piaa.evaluation.worlds.EvalWorld.other_pooled`; one backbone where the world has no other)."""
    key = "_taste_attributes_both" if both else "_taste_attributes"
    cached = world.__dict__.get(key)
    if cached is not None or world.ref_attributes is None:
        return cached
    from piaa.models.attributes import AttributeHeads, pooled_features

    ref, pool = pooled_features(world.ref_maps), pooled_features(world.photo_maps)
    if both and world.other_pooled is not None:
        other_ref, other_pool = world.other_pooled()
        ref, pool = np.hstack([ref, other_ref]), np.hstack([pool, other_pool])
    heads = AttributeHeads.fit(
        ref, world.ref_attributes, world.attribute_names, backbones=(), licence="the world's reference labels"
    )
    world.__dict__[key] = out = heads.predict_array(pool)
    world.__dict__[key + "_width"] = ref.shape[1]  # what the heads read: for tests and reports
    return out


def _taste(both: bool) -> Method:
    """A person's taste as a linear model on named axes (:func:`piaa.models.attributes.fit_taste`): the
    generic model's score, the attributes predicted by heads fitted on the reference's crowd attribute
    ratings (where the world has them; ``both``: heads on both backbones' pooled features) and the pixel
    attributes (where known), each standardized over the pool; the prior is the generic model and the
    pairs decide how far it moves."""

    def run(s: Split) -> np.ndarray:
        from piaa.models.attributes import fit_taste

        world = s.world
        cols = [s.head_scores(s.generic(), np.arange(len(world.photo_emb)))[:, None]]
        attrs = _world_attributes(world, both)
        cols += [a for a in (attrs, world.photo_pixels) if a is not None]
        z = np.hstack(cols).astype(np.float64)
        z = (z - z.mean(0)) / np.maximum(z.std(0), 1e-9)
        w, choice = fit_taste(z, s.pairs, s.stated, s.cfg.seed)
        s.cache.setdefault("taste choices", []).append(choice)
        return z[s.test] @ w

    return run


SUBJECTS = 8
"""Kinds of subject of ``taste space (+ subjects + residual)``: k-means clusters of the reference's
embeddings. Chosen before measuring: fewer than the worlds' 12 simulated kinds (the worlds' clusters are
not piaa's to copy) and few enough that, with the other named axes, 100 pairs still outnumber the
columns several times over."""
RESIDUAL_DIMS = 16
"""Principal components of the pooled deep features in the residual (chosen before measuring: the same
order as the named axes, so the residual cannot swamp them)."""
RESIDUAL_PENALTY = 10.0
"""The residual columns' L2 pull relative to the named axes' (chosen before measuring: an order of
magnitude, so at the weakest candidate pull, 0.01, the residual is pulled as hard as the named axes are
at 0.1; the pairs can move it only a little)."""


def _world_subjects(world: EvalWorld) -> np.ndarray:
    """(P, SUBJECTS) the pool photos' kinds of subject (:func:`piaa.models.attributes.subject_axes` on the
    reference's embeddings, seed 0), once per world."""
    cached = world.__dict__.get("_taste_subjects")
    if cached is None:
        from piaa.models.attributes import subject_axes

        cached = world.__dict__["_taste_subjects"] = subject_axes(world.ref_emb, world.photo_emb, SUBJECTS)
    return cached


def _world_residual(world: EvalWorld) -> np.ndarray:
    """(P, RESIDUAL_DIMS) the pool photos' pooled deep features reduced by a PCA fitted on the reference's
    (:func:`piaa.models.attributes.deep_residual`), once per world."""
    cached = world.__dict__.get("_taste_residual")
    if cached is None:
        from piaa.models.attributes import deep_residual, pooled_features

        ref, pool = pooled_features(world.ref_maps), pooled_features(world.photo_maps)
        cached = world.__dict__["_taste_residual"] = deep_residual(ref, pool, RESIDUAL_DIMS)
    return cached


def _taste_plus(s: Split) -> np.ndarray:
    """The taste space (:func:`_taste`, one backbone) with two more kinds of axis: :data:`SUBJECTS` kinds
    of subject learnt from the reference (named axes, pulled like the others) and a residual of
    :data:`RESIDUAL_DIMS` principal components of the deep features, pulled toward 0
    :data:`RESIDUAL_PENALTY` times harder, so the pairs move it only a little. Same prior (the generic
    model) and the same choice among candidates as the taste space."""
    from piaa.models.attributes import fit_taste

    world = s.world
    cols = [s.head_scores(s.generic(), np.arange(len(world.photo_emb)))[:, None]]
    attrs = _world_attributes(world)
    cols += [a for a in (attrs, world.photo_pixels) if a is not None]
    cols += [_world_subjects(world), _world_residual(world)]
    z = np.hstack(cols).astype(np.float64)
    z = (z - z.mean(0)) / np.maximum(z.std(0), 1e-9)
    penalty = np.ones(z.shape[1])
    penalty[-RESIDUAL_DIMS:] = RESIDUAL_PENALTY
    w, choice = fit_taste(z, s.pairs, s.stated, s.cfg.seed, penalty=penalty)
    s.cache.setdefault("taste choices", []).append(choice)
    return z[s.test] @ w


EVALUATION_METHODS: Registry[Method] = Registry("method")
"""The table's rows, in order: name -> method (``piaa evaluate --methods``)."""
EVALUATION_METHODS.register("piaa (full)", _piaa())
EVALUATION_METHODS.register("w/o rankings (generic)", _without_rankings)
EVALUATION_METHODS.register("w/o selection (the paper's fine-tune)", _piaa(select=False))
EVALUATION_METHODS.register("w/o attention", _ablation(attention=False))
EVALUATION_METHODS.register("w/o low-level statistics", _ablation(low_level=False))
EVALUATION_METHODS.register("w/o pre-training", _without_pretraining)
EVALUATION_METHODS.register("exponential loss", _piaa(rank_loss="exp"))
EVALUATION_METHODS.register("logistic loss", _piaa(rank_loss="logistic"))
EVALUATION_METHODS.register("R-SVM", _rsvm)
EVALUATION_METHODS.register("R-SVR", _rsvr)
EVALUATION_METHODS.register("RankIQA-style", _rankiqa)
EVALUATION_METHODS.register("PAM-style", _pam)
EVALUATION_METHODS.register("taste space", _taste(both=False))
EVALUATION_METHODS.register("taste space (both backbones)", _taste(both=True))
EVALUATION_METHODS.register("taste space (+ subjects + residual)", _taste_plus)
