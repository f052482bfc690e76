"""Compact feature maps for AVA-sized references: ~9 KB an image instead of ~172 KB.

Z1 and Z2 are projected onto their leading principal channel directions (fitted once per reference on
the spatial positions of its first images; 16 of Z1's channels' directions, 64 of Z2's), and each
component map is stored as int8 with its own float16 scale. Z3 (the gating context, = the pooled Z2)
and the low-level statistics are stored float16, exactly as in a full store. Decoding gives maps of the
original shapes, so training code is unchanged. The trade-off: the head's generic pre-training sees
maps with the minor channel directions removed (measured in the README: reconstruction error and the
agreement of heads trained on full and on compact maps).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch

from piaa.backbones import FeatureMaps

RANKS = (16, 64)  # principal directions kept of Z1 and of Z2


def _positions(z: np.ndarray) -> np.ndarray:
    """N x C x H x W -> (N*H*W) x C."""
    return np.ascontiguousarray(z.transpose(0, 2, 3, 1).reshape(-1, z.shape[1]), dtype=np.float64)


class MapCodec:
    def __init__(self, means: list[np.ndarray], bases: list[np.ndarray], bounds: list[tuple[float, float]]):
        self.means = [m.astype(np.float32) for m in means]  # (C,)
        self.bases = [b.astype(np.float32) for b in bases]  # (C, r), orthonormal columns
        self.bounds = bounds  # value range seen at fit time: decoded maps are clipped to it

    @classmethod
    def fit(cls, z1: np.ndarray, z2: np.ndarray, ranks: Sequence[int] = RANKS) -> MapCodec:
        means, bases, bounds = [], [], []
        for z, r in zip((z1, z2), ranks, strict=True):
            x = _positions(z)
            m = x.mean(axis=0)
            xc = x - m
            w, v = np.linalg.eigh(xc.T @ xc)
            r = min(r, x.shape[1])
            means.append(m)
            bases.append(v[:, ::-1][:, :r])
            bounds.append((float(z.min()), float(z.max())))
        return cls(means, bases, bounds)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf, m1=self.means[0], m2=self.means[1], b1=self.bases[0], b2=self.bases[1],
            bounds=np.array(self.bounds, np.float64),
        )  # fmt: skip
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> MapCodec:
        f = np.load(io.BytesIO(data))
        return cls([f["m1"], f["m2"]], [f["b1"], f["b2"]], [tuple(b) for b in f["bounds"]])

    def encode(self, z: np.ndarray, which: int) -> list[bytes]:
        """One blob per image of map ``which`` (0: Z1, 1: Z2): r float16 scales, then r x H*W int8."""
        n, c, h, w = z.shape
        coef = np.einsum(
            "ncp,cr->nrp", z.reshape(n, c, h * w).astype(np.float32) - self.means[which][None, :, None],
            self.bases[which],
        )  # fmt: skip
        scale = np.abs(coef).max(axis=2) / 127.0
        scale = np.maximum(scale, 1e-8).astype(np.float16)
        codes = np.clip(np.rint(coef / scale.astype(np.float32)[:, :, None]), -127, 127).astype(np.int8)
        return [scale[i].tobytes() + codes[i].tobytes() for i in range(n)]

    def decode(self, blobs: Sequence[bytes], which: int, side: int, chunk: int = 256) -> torch.Tensor:
        """Blobs of :meth:`encode` -> float16 maps (N x C x side x side)."""
        base, mean = self.bases[which], self.means[which]
        c, r = base.shape
        lo, hi = self.bounds[which]
        out = np.empty((len(blobs), c, side * side), np.float16)
        for start in range(0, len(blobs), chunk):
            part = blobs[start : start + chunk]
            raw = np.frombuffer(b"".join(part), np.uint8).reshape(len(part), -1)
            scale = raw[:, : 2 * r].copy().view(np.float16).astype(np.float32)
            codes = raw[:, 2 * r :].copy().view(np.int8).reshape(len(part), r, side * side)
            coef = codes.astype(np.float32) * scale[:, :, None]
            z = np.einsum("nrp,cr->ncp", coef, base) + mean[None, :, None]
            out[start : start + len(part)] = np.clip(z, lo, hi)
        return torch.from_numpy(out.reshape(len(blobs), c, side, side))


def encode_maps(codec: MapCodec, f: FeatureMaps) -> list[tuple[bytes, bytes, bytes, bytes]]:
    """(z1, z2, z3, stats) blobs of every image of a batch, compact."""
    z1 = codec.encode(f.z1.float().numpy(), 0)
    z2 = codec.encode(f.z2.float().numpy(), 1)
    z3 = f.z3.numpy().astype("<f2")
    st = f.stats.numpy().astype("<f2")
    return [(z1[j], z2[j], z3[j].tobytes(), st[j].tobytes()) for j in range(len(z1))]
