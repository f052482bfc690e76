"""Differentiable global retouching operators: exposure, colour and dehaze (the three retouching tasks
of the paper's section 4.6, Figs. 7-9).

Each operator maps an sRGB batch ``img`` (N x 3 x H x W, float in [0, 1]) and a few unconstrained
parameters ``raw`` (N x K, or K) to a retouched batch of the same shape. ``raw`` is squashed into a sane
range inside the operator (tanh), so a gradient step can never produce an absurd edit, and every
operator is the identity at ``raw = 0`` and at ``strength = 0``: ``strength`` scales the squashed
parameters, so 0.5 is "half the edit".

The parameters are global scalars, independent of resolution: parameters found on a 224 x 224
thumbnail apply unchanged to the 12-megapixel original. Dehazing also needs the image's airlight,
which :meth:`Dehaze.context` estimates once (on the thumbnail) and which is passed on with the
parameters; its transmission map is recomputed at the target resolution from the same ω and airlight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from piaa.errors import UsageError
from piaa.registry import Registry

LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 / sRGB luminance weights (linear light)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 decoding, [0, 1] -> [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp_min(1e-8) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """IEC 61966-2-1 encoding, [0, 1] -> [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-8) ** (1 / 2.4) - 0.055)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W weighted channel sum (Rec. 709 weights)."""
    w = x.new_tensor(LUMA).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _as_batch(raw: torch.Tensor, n: int, k: int) -> torch.Tensor:
    raw = torch.as_tensor(raw, dtype=torch.float32)
    if raw.dim() == 1:
        raw = raw.unsqueeze(0)
    if raw.shape[-1] != k:
        raise ValueError(f"expected {k} parameters per image, got {raw.shape[-1]}")
    return raw.expand(n, k) if raw.shape[0] == 1 else raw


def _scalar(p: torch.Tensor) -> torch.Tensor:
    """N -> N x 1 x 1 x 1 for broadcasting over an image batch."""
    return p.view(-1, 1, 1, 1)


@dataclass(frozen=True)
class Op:
    """One retouching operator. Subclasses define ``names`` (one per parameter), ``bounds`` (the
    largest magnitude of each squashed parameter) and ``_apply``."""

    name: ClassVar[str] = ""
    names: ClassVar[tuple[str, ...]] = ()
    bounds: ClassVar[tuple[float, ...]] = ()

    @property
    def size(self) -> int:
        return len(self.names)

    def squash(self, raw: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """Unconstrained (N x K) -> bounded parameters: ``bound * tanh(raw) * strength``."""
        return torch.tanh(raw) * raw.new_tensor(self.bounds) * float(strength)

    def context(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        """Image-derived constants the operator needs (estimated once, on the thumbnail)."""
        return {}

    def apply(
        self, img: torch.Tensor, raw: torch.Tensor, strength: float = 1.0, **context: torch.Tensor
    ) -> torch.Tensor:
        """Retouch ``img`` (N x 3 x H x W in [0, 1]) with unconstrained parameters ``raw`` (N x K or K);
        returns the same shape, in [0, 1]. Raises ValueError when ``raw`` has the wrong length."""
        p = self.squash(_as_batch(raw, img.shape[0], self.size), strength)
        return self._apply(img, p, **context).clamp(0.0, 1.0)

    def describe(self, raw: torch.Tensor, strength: float = 1.0) -> dict[str, float]:
        """The squashed parameters of one image, by name (what a report shows)."""
        p = self.squash(_as_batch(raw, 1, self.size)[:1], strength)[0]
        return {n: round(float(v), 4) for n, v in zip(self.names, p, strict=True)}

    def _apply(self, img: torch.Tensor, p: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class Exposure(Op):
    """Exposure in linear light, then a midtone curve.

    - ``ev`` in [-1.5, 1.5] stops: linear light times g = 2^ev through a Reinhard-style roll-off
      g·L / (1 + (g − 1)·L), which is the identity at g = 1, monotone in g for every L, and keeps
      0 -> 0 and 1 -> 1, so brightening compresses highlights instead of clipping them.
    - ``curve`` α in [-1, 1]: Zero-DCE's light-enhancement curve LE(x) = x + α·x·(1 − x) on the sRGB
      values, applied twice (Guo et al., CVPR 2020, eq. 1-2, with one global α instead of pixel maps).
    """

    name: ClassVar[str] = "exposure"
    names: ClassVar[tuple[str, ...]] = ("ev", "curve")
    bounds: ClassVar[tuple[float, ...]] = (1.5, 1.0)

    def _apply(self, img: torch.Tensor, p: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        g = _scalar(torch.exp2(p[:, 0]))
        lin = srgb_to_linear(img)
        x = linear_to_srgb(g * lin / (1.0 + (g - 1.0) * lin))
        alpha = _scalar(p[:, 1])
        for _ in range(2):
            x = x + alpha * x * (1.0 - x)
        return x


@dataclass(frozen=True)
class Colour(Op):
    """Saturation and white balance.

    - ``saturation`` s in [-0.8, 0.8]: each pixel moves away from (s > 0) or toward (s < 0) its own
      luminance by a factor 1 + s, in sRGB (what photo editors' saturation sliders do).
    - ``temperature`` t in [-0.25, 0.25] and ``tint`` m in [-0.15, 0.15]: white-balance gains in linear
      light, R·(1 + t), B·(1 − t), G·(1 − m), renormalised to keep the luminance of white.
    """

    name: ClassVar[str] = "colour"
    names: ClassVar[tuple[str, ...]] = ("saturation", "temperature", "tint")
    bounds: ClassVar[tuple[float, ...]] = (0.8, 0.25, 0.15)

    def white_balance(self, img: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The per-channel part (a curve per channel: piaa applies it at full resolution as a LUT)."""
        t, m = p[:, 1], p[:, 2]
        gains = torch.stack([1.0 + t, 1.0 - m, 1.0 - t], dim=1)  # N x 3
        gains = gains / (gains * gains.new_tensor(LUMA)).sum(1, keepdim=True)
        return linear_to_srgb(srgb_to_linear(img) * gains.view(-1, 3, 1, 1))

    @staticmethod
    def saturation_matrix(s: float) -> tuple[float, ...]:
        """The saturation step as a 3 x 3 matrix on sRGB values, (1 + s)·I − s·1·wᵀ with w the luminance
        weights, row-major with zero offsets (the 12-tuple ``PIL.Image.convert`` takes)."""
        rows = []
        for i in range(3):
            rows += [(1.0 + s) * (i == j) - s * LUMA[j] for j in range(3)] + [0.0]
        return tuple(rows)

    def _apply(self, img: torch.Tensor, p: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        x = self.white_balance(img, p)
        y = luminance(x)
        return y + (1.0 + _scalar(p[:, 0])) * (x - y)


def _odd(n: float) -> int:
    k = max(3, int(round(n)))
    return k if k % 2 else k + 1


def min_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    """Differentiable k x k minimum filter (stride 1, same size): −maxpool(−x), separable."""
    x = -F.max_pool2d(-x, (1, k), stride=1, padding=(0, k // 2))
    return -F.max_pool2d(-x, (k, 1), stride=1, padding=(k // 2, 0))


def box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r + 1)^2 window, windows cut at the border; separable (rows, then columns), which
    is exact for a rectangular window and O(r) instead of O(r²) per pixel."""
    k = 2 * r + 1
    x = F.avg_pool2d(x, (1, k), stride=1, padding=(0, r), count_include_pad=False)
    return F.avg_pool2d(x, (k, 1), stride=1, padding=(r, 0), count_include_pad=False)


def dark_channel(img: torch.Tensor, patch: int | None = None) -> torch.Tensor:
    """He et al.'s dark channel: the minimum over colour channels and over a patch (N x 1 x H x W).
    The default patch is 15 pixels at 600 pixels (He et al.'s setting), scaled with the short side."""
    k = patch or _odd(15 * min(img.shape[-2:]) / 600)
    return min_pool(img.min(dim=1, keepdim=True).values, k)


def estimate_airlight(img: torch.Tensor) -> torch.Tensor:
    """He et al.'s airlight: the mean colour of the 0.1 % pixels with the brightest dark channel
    (N x 3; at least one pixel). Not differentiated: a constant of the image."""
    with torch.no_grad():
        dc = dark_channel(img).flatten(1)
        k = max(1, dc.shape[1] // 1000)
        idx = dc.topk(k, dim=1).indices  # N x k
        pix = img.flatten(2).gather(2, idx[:, None, :].expand(-1, 3, -1))
        return pix.mean(2).clamp(0.05, 1.0)


@dataclass(frozen=True)
class Dehaze(Op):
    """Dark-channel-prior dehazing (He, Sun & Tang, CVPR 2009): J = (I − A) / max(t, t0) + A with
    t = 1 − ω · darkchannel(I / A), refined by a guided filter (He et al. 2010; computed on a copy of at
    most 512 pixels and its linear coefficients upsampled, the "fast guided filter", He & Sun 2015).

    - ``omega`` ω in [-0.5, 0.95]: haze removed (He et al. keep 5 %, ω = 0.95); negative ω *adds* haze
      (t > 1 pulls colours toward the airlight), so ω = 0 sits inside the range and gradient descent
      can move either way from the identity.
    - ``airlight`` a in [-0.3, 0.3]: scales the estimated airlight A by 1 + a.

    t0 = 0.1 bounds the amplification. A comes from :meth:`context` (estimated once on the thumbnail)
    or, when not given, from ``img`` itself.
    """

    name: ClassVar[str] = "dehaze"
    names: ClassVar[tuple[str, ...]] = ("omega", "airlight")
    bounds: ClassVar[tuple[float, ...]] = (0.95, 0.3)
    t0: float = 0.1
    work_side: int = 512
    eps: float = 1e-3

    def squash(self, raw: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        t = torch.tanh(raw)
        omega = torch.where(
            t[:, 0] > 0, 0.95 * t[:, 0], 0.5 * t[:, 0]
        )  # asymmetric bound, slope 0.95 / 0.5 at 0
        return torch.stack([omega, 0.3 * t[:, 1]], dim=1) * float(strength)

    def context(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"airlight": estimate_airlight(img)}

    def airlight(self, img: torch.Tensor, p: torch.Tensor, airlight: torch.Tensor | None) -> torch.Tensor:
        """The airlight used (N x 3 x 1 x 1): the estimate (from ``img`` when not given) times 1 + a."""
        if airlight is None:
            airlight = estimate_airlight(img)
        return (airlight.to(img).view(-1, 3, 1, 1) * (1.0 + _scalar(p[:, 1]))).clamp(0.05, 1.0)

    def guided_coefficients(
        self, small: torch.Tensor, p: torch.Tensor, a: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """On a copy of at most ``work_side`` pixels: the raw transmission 1 − ω·darkchannel(I / A),
        guided-filtered with the luminance as guide; returns the filter's smoothed linear coefficients
        (A', B'), so that t = A'·luminance + B' at any resolution (bilinearly upsampled)."""
        t_raw = 1.0 - _scalar(p[:, 0]) * dark_channel(small / a)
        g = luminance(small)
        r = max(1, int(round(min(small.shape[-2:]) / 20)))
        mi, mp = box(g, r), box(t_raw, r)
        coef_a = (box(g * t_raw, r) - mi * mp) / (box(g * g, r) - mi * mi + self.eps)
        coef_b = mp - coef_a * mi
        return box(coef_a, r), box(coef_b, r)

    def work_copy(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        scale = min(1.0, self.work_side / max(h, w))
        return img if scale == 1.0 else F.interpolate(img, scale_factor=scale, mode="area")

    def _apply(self, img: torch.Tensor, p: torch.Tensor, **context: torch.Tensor) -> torch.Tensor:
        a = self.airlight(img, p, context.get("airlight"))
        coef_a, coef_b = self.guided_coefficients(self.work_copy(img), p, a)
        if coef_a.shape[-2:] != img.shape[-2:]:
            coef_a = F.interpolate(coef_a, size=img.shape[-2:], mode="bilinear", align_corners=False)
            coef_b = F.interpolate(coef_b, size=img.shape[-2:], mode="bilinear", align_corners=False)
        t = coef_a * luminance(img) + coef_b
        return (img - a) / t.clamp_min(self.t0) + a


COLOR_ALIASES = {"color": "colour"}


def _op_key(name: str) -> str:
    key = name.strip().lower()
    return COLOR_ALIASES.get(key, key)


OPS: Registry[Op] = Registry("retouching op", key=_op_key)
"""The registered operators by name (``color`` is ``colour``)."""
for _op in (Exposure(), Colour(), Dehaze()):
    OPS.register(_op.name, _op)


def get_ops(names: str | Sequence[str | Op]) -> list[Op]:
    """Operators by name (comma-separated string or sequence of names or operators), in pipeline order
    (dehaze first, then exposure, then colour: haze removal needs the unedited airlight, and colour
    edits come last as in a raw converter). Raises ValueError for an unknown or empty list."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    names = [n.name if isinstance(n, Op) else n for n in names]
    if not names:
        raise UsageError(f"no retouching op given; choose one of: {', '.join(OPS)}")
    wanted = {OPS.resolve(n) for n in names}
    return [OPS.get(n) for n in ("dehaze", "exposure", "colour") if n in wanted]


def apply_ops(
    img: torch.Tensor,
    ops: list[Op],
    raw: torch.Tensor,
    strength: float = 1.0,
    context: dict[str, dict[str, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Apply ``ops`` in order; ``raw`` (N x sum(K) or sum(K)) holds their parameters concatenated."""
    raw = torch.as_tensor(raw, dtype=torch.float32)
    total = sum(op.size for op in ops)
    if raw.shape[-1] != total:
        raise ValueError(f"expected {total} parameters for {[op.name for op in ops]}, got {raw.shape[-1]}")
    i = 0
    for op in ops:
        img = op.apply(img, raw[..., i : i + op.size], strength, **((context or {}).get(op.name, {})))
        i += op.size
    return img


__all__ = [
    "OPS",
    "Colour",
    "Dehaze",
    "Exposure",
    "Op",
    "apply_ops",
    "dark_channel",
    "estimate_airlight",
    "get_ops",
    "linear_to_srgb",
    "min_pool",
    "srgb_to_linear",
]
