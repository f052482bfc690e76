"""Finding retouching parameters for a person, and applying them at full resolution.

The paper (section 4.6) trains retouching networks with an extra loss L_aesthetic(x) = 10 − f(x), f the
personal aesthetic model. piaa retouches with a few global operators (:mod:`piaa.retouch.ops`) and finds
their parameters in one of two ways, both minimising

    L(x) = (10 − f(x)) + λ · mean((x − original)²) + μ · Σ_k |tanh(raw_k)|

on the backbone-sized thumbnail (the fidelity term keeps the edit from drifting further than the
score gain pays for; the last, an L1 prior on each parameter as a share of its range, keeps an
operator the taste does not ask for at zero: without it a brightness-only taste got tint −0.13 and
temperature +0.15 that raised its score by less than 0.05 or lowered it, issue 23's mint tint):

- ``"optimize"``: per photo, Adam on the parameters (:func:`optimize_params`);
- ``"learned"``: as the paper does, a tiny network predicting the parameters from a 64 x 64 thumbnail,
  trained on the person's album with the same loss (:class:`ParamPredictor`,
  :func:`train_predictor`); a new photo then takes one forward pass.

Measured on simulated persons (``benchmarks/bench_retouch.py``, the README's table), the learned
predictor raises the person's true utility at least as much as per-photo optimisation and applies in
one forward pass instead of a dozen backbone forward+backward passes, so ``"auto"`` (the default) uses
it: the one saved with the profile (:mod:`piaa.retouch.cache`; trained once, on the profile's album,
and reused), else one trained on the photos given (at least :data:`MIN_ALBUM`). With nothing to train
on it falls back to per-photo optimisation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from piaa.data.images import load_image, to_rgb
from piaa.errors import UsageError
from piaa.retouch.full import apply_full, offsets
from piaa.retouch.ops import Op, apply_ops, get_ops
from piaa.retouch.scoring import PixelScorer, to_tensor

METHODS = ("auto", "optimize", "learned")
DEFAULT_METHOD = "auto"  # learned when there is an album (or a predictor), else optimize: see resolve_method
MIN_ALBUM = 8  # fewer photos than this are too few to train the learned predictor on
MAX_ALBUM = 64  # the predictor trains on at most this many photos (evenly spaced in the given order)
DEFAULT_OPS = ("exposure", "colour", "dehaze")
FIDELITY = 5.0  # λ: a mean squared change of 0.05 (a strong edit) costs 0.25 score points
PRIOR = 0.1  # μ: score points a parameter at its bound costs (|tanh(raw)| = 1); see retouch_loss
# how the learned predictor trains (part of a saved predictor's key: piaa.retouch.cache)
PREDICTOR_SETTINGS = {"epochs": 8, "batch_size": 8, "lr": 3e-3, "seed": 0, "arch": 1}


@dataclass
class RetouchResult:
    """One retouched photo: the full-resolution result, the parameters (by operator, squashed values at
    the strength used) and the personal score before and after (1-10, measured on the thumbnail)."""

    image: Image.Image
    params: dict[str, dict[str, float]]
    raw: np.ndarray  # the unconstrained parameters found (strength 1)
    score_before: float
    score_after: float
    method: str
    strength: float
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    kept_original: bool = False  # no edit raised the score: the original pixels, parameters all zero

    @property
    def gain(self) -> float:
        return self.score_after - self.score_before


def _contexts(ops: Sequence[Op], thumbs: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    return {op.name: op.context(thumbs) for op in ops}


def thumbnail(img: Image.Image, size: int, interpolation: str = "bicubic") -> torch.Tensor:
    """The backbone's view of a photo: squashed to size x size with Pillow, as ``Preprocess`` does,
    so parameters are found on exactly the pixels the profile scores (1 x 3 x size x size)."""
    resample = {
        "nearest": Image.Resampling.NEAREST,  # nima-ava's pipeline
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
    }[interpolation]
    img = to_rgb(img)
    if img.size != (size, size):
        img = img.resize((size, size), resample, reducing_gap=3.0)
    return to_tensor(img)


def retouch_loss(
    scorer: PixelScorer,
    x: torch.Tensor,
    original: torch.Tensor,
    fidelity: float,
    raw: torch.Tensor | None = None,
    prior: float = PRIOR,
) -> torch.Tensor:
    """Per image (N,): (10 − f(x)) + λ · mean squared change (the paper's aesthetic loss plus
    fidelity), plus ``prior`` times the parameters' summed share of their range (``raw``: N x K
    unconstrained parameters; the module docstring says why)."""
    loss = (10.0 - scorer(x)) + fidelity * ((x - original) ** 2).mean(dim=(1, 2, 3))
    if raw is not None and prior > 0:
        loss = loss + prior * torch.tanh(raw).abs().sum(dim=1)
    return loss


def optimize_params(
    scorer: PixelScorer,
    thumbs: torch.Tensor,
    ops: Sequence[Op],
    *,
    steps: int = 12,
    lr: float = 0.15,
    fidelity: float = FIDELITY,
    init: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-photo parameters (N x K) by Adam on :func:`retouch_loss`, all N thumbnails at once (each has
    its own parameters; the loss is a sum, so they do not interact). Returns, per photo, the parameters
    of the step with the lowest loss seen (the identity when nothing beats it)."""
    ops = list(ops)
    ctx = _contexts(ops, thumbs)
    k = sum(op.size for op in ops)
    raw = (init.detach().clone() if init is not None else torch.zeros(len(thumbs), k)).requires_grad_(True)
    opt = torch.optim.Adam([raw], lr=lr)
    best = raw.detach().clone()
    best_loss = torch.full((len(thumbs),), float("inf"))
    for _ in range(steps + 1):
        loss = retouch_loss(scorer, apply_ops(thumbs, ops, raw, 1.0, ctx), thumbs, fidelity, raw)
        with torch.no_grad():
            better = loss < best_loss
            best_loss = torch.where(better, loss, best_loss)
            best[better] = raw.detach()[better]
        if _ == steps:
            break
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    return best


class ParamPredictor(nn.Module):
    """The learned retoucher: a 64 x 64 thumbnail -> all operators' unconstrained parameters (N x K).

    Three stride-2 convolutions (3 -> 16 -> 32 -> 32 channels), then the spatial mean and standard
    deviation of the last map and of the thumbnail itself (global exposure, contrast and colour), and
    one linear layer. The linear layer starts at zero, so an untrained predictor is the identity edit.
    About 15 k parameters: it learns a person's global edit style, not pixel-level detail."""

    side = 64

    def __init__(self, n_params: int, ops: Sequence[str] = DEFAULT_OPS) -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.out = nn.Linear(2 * 32 + 2 * 3, n_params)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="area")
        h = self.features(x)
        var, mean = torch.var_mean(h, dim=(2, 3), unbiased=False)
        pvar, pmean = torch.var_mean(x, dim=(2, 3), unbiased=False)
        return self.out(torch.cat([mean, var.sqrt(), pmean, pvar.sqrt()], dim=1))


def train_predictor(
    scorer: PixelScorer,
    thumbs: torch.Tensor,
    ops: Sequence[Op],
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    fidelity: float = FIDELITY,
    seed: int | None = None,
    on_epoch: Callable[[int, int], None] | None = None,
) -> ParamPredictor:
    """Train a :class:`ParamPredictor` on a person's album thumbnails (N x 3 x S x S, S the backbone's
    input size) with :func:`retouch_loss`: the paper's recipe (a retouching network trained with the
    personal aesthetic loss). Settings left None come from :data:`PREDICTOR_SETTINGS` (8 epochs,
    batches of 8, Adam at 3e-3, seed 0). Cost: epochs x N backbone forward+backward passes (about a
    minute for 64 photos on 2 CPU cores), paid once per profile when :mod:`piaa.retouch.cache` keeps
    the result. ``on_epoch(done, total)`` is called after each epoch. Deterministic for a given seed."""
    epochs = int(PREDICTOR_SETTINGS["epochs"] if epochs is None else epochs)
    batch_size = int(PREDICTOR_SETTINGS["batch_size"] if batch_size is None else batch_size)
    lr = float(PREDICTOR_SETTINGS["lr"] if lr is None else lr)
    seed = int(PREDICTOR_SETTINGS["seed"] if seed is None else seed)
    ops = list(ops)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ParamPredictor(sum(op.size for op in ops), [op.name for op in ops])
    ctx = _contexts(ops, thumbs)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(thumbs), generator=gen).split(batch_size):
            sub = {name: {k: v[idx] for k, v in c.items()} for name, c in ctx.items()}
            params = net(thumbs[idx])
            x = apply_ops(thumbs[idx], ops, params, 1.0, sub)
            loss = retouch_loss(scorer, x, thumbs[idx], fidelity, params).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if on_epoch is not None:
            on_epoch(_ + 1, epochs)
    return net.eval()


def resolve_method(method: str, predictor: ParamPredictor | None, album_size: int = 0) -> str:
    """``"auto"`` -> ``"learned"`` when a predictor exists or ``album_size`` >= :data:`MIN_ALBUM`,
    else ``"optimize"``; other methods unchanged. Raises ValueError for an unknown method."""
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if method != "auto":
        return method
    return "learned" if predictor is not None or album_size >= MIN_ALBUM else "optimize"


def album_thumbnails(
    images: Sequence[str | Path | Image.Image],
    size: int,
    failures: Any = None,
    interpolation: str = "bicubic",
) -> torch.Tensor:
    """Backbone-sized thumbnails of at most :data:`MAX_ALBUM` photos (evenly spaced), for training the
    predictor; unreadable files go to ``failures`` (a FailureLog) or raise ImageError when none."""
    from piaa.data.images import ImageError

    chosen = list(images)
    if len(chosen) > MAX_ALBUM:
        chosen = [chosen[round(i * (len(chosen) - 1) / (MAX_ALBUM - 1))] for i in range(MAX_ALBUM)]
    thumbs = []
    for im in chosen:
        try:
            src = im if isinstance(im, Image.Image) else load_image(im, draft_size=(size, size))
            thumbs.append(thumbnail(src, size, interpolation))
        except ImageError as e:
            if failures is None:
                raise
            failures.add(im, e)
    if not thumbs:
        raise UsageError("no readable photos to train the learned retoucher on")
    return torch.cat(thumbs)


def find_params(
    scorer: PixelScorer,
    thumbs: torch.Tensor,
    ops: Sequence[Op],
    method: str = DEFAULT_METHOD,
    predictor: ParamPredictor | None = None,
    *,
    steps: int = 12,
    lr: float = 0.15,
    fidelity: float = FIDELITY,
) -> torch.Tensor:
    """Parameters (N x K) for thumbnails by ``method``; ``"learned"`` needs a trained ``predictor``
    (raises ValueError otherwise, or for an unknown method); ``steps``, ``lr`` and ``fidelity`` are
    :func:`optimize_params`'s."""
    method = resolve_method(method, predictor)
    if method == "optimize":
        return optimize_params(scorer, thumbs, ops, steps=steps, lr=lr, fidelity=fidelity)
    if method == "learned":
        if predictor is None:
            raise UsageError(
                "method 'learned' needs a predictor trained on the person's album (train_predictor)"
            )
        if list(predictor.ops) != [op.name for op in ops]:
            raise UsageError(
                f"the predictor was trained for ops {predictor.ops}, not {[op.name for op in ops]}"
            )
        with torch.no_grad():
            return predictor(thumbs)
    raise AssertionError(method)


@dataclass(frozen=True)
class RetouchSettings:
    """How to retouch: the one object that travels from the entry points (``piaa retouch``, the web page,
    :func:`piaa.retouch.retouch_image`) down to the optimiser, instead of loose keyword arguments.

    - ``ops``: any of ``"exposure"``, ``"colour"`` (``"color"``), ``"dehaze"`` (a sequence or a
      comma-separated string), kept as names in pipeline order;
    - ``strength`` in [0, 1] scales the edit (0: the original);
    - ``method``: ``"auto"``, ``"optimize"`` or ``"learned"`` (:func:`resolve_method`);
    - ``steps``, ``lr``, ``fidelity`` (λ): per-photo optimisation (:func:`optimize_params`).

    Raises :class:`~piaa.errors.UsageError` (a ValueError) for a value out of range or an unknown name.
    """

    ops: tuple[str, ...] | str = DEFAULT_OPS
    strength: float = 1.0
    method: str = DEFAULT_METHOD
    steps: int = 12
    lr: float = 0.15
    fidelity: float = FIDELITY

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(op.name for op in get_ops(self.ops)))
        if not 0.0 <= self.strength <= 1.0:
            raise UsageError(f"strength must be in [0, 1], not {self.strength}")
        resolve_method(self.method, None)
        if self.steps < 0 or self.lr <= 0 or self.fidelity < 0:
            raise UsageError(
                f"steps >= 0, lr > 0 and fidelity >= 0, not {self.steps}, {self.lr}, {self.fidelity}"
            )

    @property
    def op_list(self) -> list[Op]:
        return get_ops(self.ops)

    def key(self) -> dict[str, Any]:
        """What of these settings makes two results differ (the batch layer's resume key)."""
        spec: dict[str, Any] = {
            "ops": list(self.ops),
            "strength": float(self.strength),
            "method": self.method,
        }
        for name in ("steps", "lr", "fidelity"):  # defaults left out: old results' keys stay valid
            if getattr(self, name) != getattr(RetouchSettings, name):
                spec[name] = getattr(self, name)
        return spec


def _open(image: str | Path | Image.Image) -> Image.Image:
    return to_rgb(image) if isinstance(image, Image.Image) else load_image(image)


def apply_retouch(
    scorer: PixelScorer,
    image: str | Path | Image.Image,
    settings: RetouchSettings,
    predictor: ParamPredictor | None = None,
) -> RetouchResult:
    """Retouch one photo for ``scorer`` (the person's model on pixels): parameters found on the
    backbone-sized thumbnail by ``settings.method`` (``"auto"``: the learned ``predictor`` when given,
    else per-photo optimisation), applied to the full-resolution photo only when they raise the score
    there; else the result is the original (``kept_original``, all parameters zero). The algorithm
    layer: loading profiles and finding saved predictors is :func:`piaa.retouch.api.retouch_image`'s."""
    start = time.perf_counter()
    op_list = settings.op_list
    method = resolve_method(settings.method, predictor)
    if method == "learned" and predictor is None:
        raise UsageError("method 'learned' needs album= (the person's photos) or predictor=")
    img = _open(image)
    thumb = thumbnail(img, scorer.preprocess.size, scorer.preprocess.interpolation)
    raw = find_params(
        scorer,
        thumb,
        op_list,
        method,
        predictor,
        steps=settings.steps,
        lr=settings.lr,
        fidelity=settings.fidelity,
    )[0]
    ctx = _contexts(op_list, thumb)
    with torch.no_grad():
        after = apply_ops(thumb, op_list, raw[None], settings.strength, ctx)
        s_before, s_after = (float(v) for v in scorer(torch.cat([thumb, after])))
    kept = not s_after > s_before  # an edit that does not raise the score it optimises is not applied
    if kept:
        raw, s_after = torch.zeros_like(raw), s_before
        out = img.copy()
    else:
        out = apply_full(img, op_list, raw, settings.strength, ctx)
    params = {op.name: op.describe(raw[i : i + op.size], settings.strength) for op, i in offsets(op_list)}
    seconds = time.perf_counter() - start
    return RetouchResult(
        out,
        params,
        raw.numpy().copy(),
        s_before,
        s_after,
        method,
        settings.strength,
        seconds,
        kept_original=kept,
    )
