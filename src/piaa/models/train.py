"""Training: the generic model by EMD regression on a user's reference neighbours, then the personal
model by pairwise-ranking fine-tuning (the paper's sections 3.2-3.4).

piaa's default freezes the backbone and trains the aesthetic head on cached feature maps: the maps of
every image are computed once, so an epoch costs only the head (milliseconds per batch on a CPU) and
personalization takes seconds instead of hours. ``finetune_backbone=True`` trains the backbone too, on
pixels, as the paper does (slow on a CPU).

Defaults differ from the paper's learning rates because a freshly initialised head on frozen features
is not a pretrained VGG16: the paper's 3e-7 would not move it. They were chosen by measurement
(``piaa evaluate --set KEY=VALUE``; the README's settings sweep gives the numbers): the optimiser is still
Adam, regression is still batch 32, ranking still halves its rate every 500 iterations.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from piaa.backbones import Backbone, FeatureMaps
from piaa.backbones.base import seeded
from piaa.errors import UsageError
from piaa.models.config import SettingError, TrainConfig  # noqa: F401  (TrainConfig's home is config.py)
from piaa.models.head import AestheticHead, HeadConfig
from piaa.models.losses import emd_loss, get_rank_loss, score_from_distribution
from piaa.settings import QUIET, RunSettings

FeatureSource = Callable[[torch.Tensor], FeatureMaps]


def cached_source(maps: FeatureMaps) -> FeatureSource:
    """Index into precomputed maps (stored as float16 to halve memory; computed in float32)."""

    def get(idx: torch.Tensor) -> FeatureMaps:
        return FeatureMaps(*(t[idx].float() for t in maps))

    return get


def pixel_source(backbone: Backbone, pixels: np.ndarray) -> FeatureSource:
    """Run the (trainable) backbone on preprocessed uint8 pixels: full fine-tuning."""

    def get(idx: torch.Tensor) -> FeatureMaps:
        return backbone(backbone.preprocess.to_tensor(pixels[idx.numpy()]))

    return get


def _optimizer(
    params: list[torch.nn.Parameter], backbone: Backbone | None, lr: float, cfg: TrainConfig
) -> torch.optim.Adam:
    groups = [{"params": params, "lr": lr}]
    if backbone is not None:
        groups.append(
            {"params": [p for p in backbone.parameters() if p.requires_grad], "lr": cfg.backbone_lr}
        )
    return torch.optim.Adam(groups, weight_decay=cfg.weight_decay)


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def fit_generic(
    head: AestheticHead,
    source: FeatureSource,
    distributions: torch.Tensor,
    cfg: TrainConfig,
    *,
    backbone: Backbone | None = None,
    run: RunSettings = QUIET,
) -> list[float]:
    """EMD regression (eq. 1, r = 2) of the head on reference images; returns the loss per epoch.
    ``run``: how (its progress bar; torch's thread count is the entry point's hold)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    dists = torch.as_tensor(distributions, dtype=torch.float32)
    fit_stats_scaling(head, source, torch.arange(len(dists)))
    opt = _optimizer(list(head.parameters()), backbone, cfg.generic_lr, cfg)

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        return emd_loss(dists[idx], head.distribution(source(idx)))

    # Cost grows with the neighbour union (up to K x album photos); past ``generic_steps`` updates more
    # epochs over thousands of neighbours mostly repeat what the first ones taught.
    epochs = min(cfg.generic_epochs, max(1, cfg.generic_steps // max(1, -(-len(dists) // cfg.batch_size))))
    with seeded(True, cfg.seed):  # dropout's draws, without touching the caller's random state
        return _loop(head, loss_of, len(dists), opt, None, cfg, epochs, gen, "generic model", run)


@torch.no_grad()
def fit_stats_scaling(head: AestheticHead, source: FeatureSource, items: torch.Tensor) -> None:
    """Fix the head's low-level-statistics standardization on these training items, unless already
    fixed (a ranking fine-tune keeps the generic model's)."""
    if head.config.stats and not bool(head.stats_fitted) and len(items):
        chunks = [source(items[i : i + 256]).stats for i in range(0, len(items), 256)]
        head.fit_stats_scaling(torch.cat(chunks))


def _loop(
    head: AestheticHead,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    n: int,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler | None,
    cfg: TrainConfig,
    epochs: int,
    gen: torch.Generator,
    desc: str,
    run: RunSettings,
) -> list[float]:
    """Mini-batch Adam over ``n`` items for ``epochs``; the mean loss of each epoch."""
    head.train()
    history = []
    for _ in tqdm(range(epochs), desc=desc, unit="epoch", disable=not run.progress):
        total = 0.0
        for idx in _batches(n, cfg.batch_size, gen):
            loss = loss_of(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total += loss.item() * len(idx)
        history.append(total / max(n, 1))
    head.eval()
    return history


def fit_ranking(
    head: AestheticHead,
    source: FeatureSource,
    pairs: torch.Tensor,
    cfg: TrainConfig,
    *,
    backbone: Backbone | None = None,
    run: RunSettings = QUIET,
) -> list[float]:
    """Fine-tune on (preferred, other) index pairs with a ranking loss (eq. 2 for the hinge).

    ``cfg.rank_scope="last"`` trains only the layers after the attention modules (normalisation and the
    fully connected layer) on pooled features computed once; ``"head"`` trains the whole head (and the
    backbone when one is given), recomputing the features at every step.
    """
    if len(pairs) == 0:
        return []
    pairs = torch.as_tensor(pairs, dtype=torch.long)
    fit_stats_scaling(head, source, torch.unique(pairs))  # only without a generic model
    if cfg.rank_scope == "last" and backbone is None:
        ids, rows = torch.unique(pairs, return_inverse=True)
        return fit_pooled(head, pool_features(head, source, ids), rows.view(-1, 2), cfg, run=run)
    if cfg.rank_scope != "head" and cfg.rank_scope != "last":
        raise UsageError(f"rank_scope must be 'last' or 'head', not {cfg.rank_scope!r}")
    params = list(head.parameters())

    def scores_of(idx: torch.Tensor) -> torch.Tensor:
        return score_from_distribution(head.distribution(source(idx)))

    return _rank_loop(head, params, scores_of, pairs, cfg, backbone, run)


@torch.no_grad()
def pool_features(head: AestheticHead, source: FeatureSource, ids: torch.Tensor) -> torch.Tensor:
    """The head's attended, pooled features of ``ids`` (N x D): what the layers after the attention
    modules read, computed once so that ranking on them costs only those layers."""
    head.eval()
    return torch.cat([head.pool(source(ids[i : i + 64])) for i in range(0, len(ids), 64)])


def last_layers(head: AestheticHead) -> list[torch.nn.Parameter]:
    """The parameters a ``rank_scope="last"`` fine-tune trains: normalisation and the FC layer."""
    return [*head.norm1.parameters(), *head.norm2.parameters(), *head.fc.parameters()]


def fit_pooled(
    head: AestheticHead,
    pooled: torch.Tensor,
    pairs: torch.Tensor,
    cfg: TrainConfig,
    *,
    run: RunSettings = QUIET,
) -> list[float]:
    """Rank-train the layers after the attention modules on pooled features (``pairs`` index rows of
    ``pooled``); the mean loss per epoch."""
    if len(pairs) == 0:
        return []

    def scores_of(idx: torch.Tensor) -> torch.Tensor:
        return score_from_distribution(head.classify(pooled[idx]).softmax(dim=-1))

    return _rank_loop(head, last_layers(head), scores_of, pairs, cfg, None, run)


SPREAD = TrainConfig.spread  # the default weight of the converged fit's entropy-loss term


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats of distributions over the last axis (N x K -> N); 0 log 0 = 0."""
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


def fit_pooled_convex(
    head: AestheticHead,
    pooled: torch.Tensor,
    pairs: torch.Tensor,
    l2: float,
    *,
    max_iter: int = 100,
    spread: float | None = None,
) -> list[float]:
    """Fit the fully connected layer's weights to the pairs by full-batch L-BFGS (``pairs`` index rows
    of ``pooled``): the logistic ranking loss (RankNet's) of the scores plus ``l2`` times the squared
    distance of the weights from where they started, plus ``spread`` (default :data:`SPREAD`) times the
    mean entropy (nats) each photo's distribution lost below the one it started with, solved to
    convergence instead of a fixed number of Adam epochs. The attention modules, the normalisation and
    the bias stay as they were; no dropout. Returns the objective before and after (an empty list when
    there are no pairs).

    Why the spread term: the logistic loss never stops rewarding a wider gap, and the score is the mean
    of a softmax, so without it the fit drives the preferred photos' logits until all their mass sits in
    the highest bin the generic model reaches (issue 23: a dozen photos at 8.00 with distributions
    (..., 0.0004, 0.9996, 0, 0)): ties at the top and no gradient left for the retoucher. The L2 pull
    on the weights does not prevent it, because the pooled features are large (``norm="none"``)."""
    if len(pairs) == 0:
        return []
    spread = SPREAD if spread is None else spread
    head.eval()
    seen: list[torch.Tensor] = []
    hook = head.fc.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    with torch.no_grad():
        head.classify(pooled)
    hook.remove()
    v, start, bias = seen[0], head.fc.weight.detach().clone(), head.fc.bias.detach()
    used = torch.unique(pairs)
    with torch.no_grad():
        h0 = entropy(torch.softmax(v[used] @ start.T + bias, dim=-1))
    delta = torch.zeros_like(start, requires_grad=True)
    opt = torch.optim.LBFGS([delta], max_iter=max_iter, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        p = torch.softmax(v @ (start + delta).T + bias, dim=-1)
        s = score_from_distribution(p)
        d = s[pairs[:, 0]] - s[pairs[:, 1]]
        loss = get_rank_loss("logistic")(d, torch.zeros_like(d)) + l2 * (delta**2).sum()
        if spread > 0:
            loss = loss + spread * torch.relu(h0 - entropy(p[used])).mean()
        return loss

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    with torch.no_grad():
        before = float(objective())
    opt.step(closure)
    with torch.no_grad():
        head.fc.weight.copy_(start + delta.detach())
        return [before, float(objective())]


def _rank_loop(
    head: AestheticHead,
    params: list[torch.nn.Parameter],
    scores_of: Callable[[torch.Tensor], torch.Tensor],
    pairs: torch.Tensor,
    cfg: TrainConfig,
    backbone: Backbone | None,
    run: RunSettings,
) -> list[float]:
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    rank_loss = get_rank_loss(cfg.rank_loss)
    kwargs = {"margin": cfg.margin} if cfg.rank_loss == "hinge" else {}
    opt = _optimizer(params, backbone, cfg.rank_lr, cfg)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_halve_every, gamma=0.5)
    anchor = [p.detach().clone() for p in params] if cfg.anchor > 0 else None

    def loss_of(b: torch.Tensor) -> torch.Tensor:
        s = scores_of(pairs[b].reshape(-1)).view(-1, 2)
        loss = rank_loss(s[:, 0], s[:, 1], **kwargs)
        if anchor is not None:
            loss = loss + cfg.anchor * sum(((q - a) ** 2).sum() for q, a in zip(params, anchor, strict=True))
        return loss

    with seeded(True, cfg.seed + 1):  # dropout's draws, without touching the caller's random state
        return _loop(
            head, loss_of, len(pairs), opt, sched, cfg, cfg.rank_epochs, gen, "personal model", run
        )


def new_head(channels: tuple[int, int, int], cfg: TrainConfig, stats: int = 0) -> AestheticHead:
    """A freshly initialised head, reproducible for ``cfg.seed``; ``stats`` is the backbone's
    ``stats_dim`` (read only when ``cfg.low_level``)."""
    with seeded(True, cfg.seed):
        return AestheticHead(
            HeadConfig(
                channels=tuple(channels),
                attention=cfg.attention,
                norm=cfg.head_norm,
                stats=stats if cfg.low_level else 0,
            )
        )
