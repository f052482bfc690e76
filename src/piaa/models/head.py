"""The aesthetic head of the paper's Fig. 4, on any registered backbone.

Z1 (mid-level map), Z2 (last map) and Z3 (pooled last map) come from the backbone. Two attention
modules turn (Z1, Z3) and (Z2, Z3) into spatial maps A1, A2 in [0, 1]; Z1' = A1 ⊙ Z1 and Z2' = A2 ⊙ Z2
are average-pooled, concatenated and fed to one fully connected layer with 10 outputs and a softmax.
The score is the mean of that distribution, sum_i i * p_i, on 1-10 (higher is better).

Details the paper leaves open, and what we chose:

- Attention module: an additive attention gate (Oktay et al., 2018): A = sigmoid(psi(ReLU(W_z Z +
  up(W_g Z3)))), with 1x1 convolutions W_z, W_g (to ``hidden`` = 64 channels) and psi (to one channel). Z3
  acts as the gating context and is resized to Z's grid (bilinear), so it works whether Z3 is VGG16's
  7x7 pool5 or EfficientNet's globally pooled 1x1 map. psi's bias starts at 2 so every A starts near
  0.88: training begins close to plain pooling and learns where to look.
- Pooling: the spatial mean of A ⊙ Z.
- The pooled vectors are NOT normalised before the fully connected layer (``norm="none"``, the
  default): their overall magnitude carries exposure, contrast and colour strength, which is much of
  what personal taste is about. Layer normalisation (``norm="layer"``) removes it and measured worse
  on simulated persons (the settings sweep in the README).
- Dropout before the fully connected layer (0.2), as EfficientNet's own classifier uses.
- Low-level statistics (``stats`` > 0, piaa's default; 0 is the paper's head exactly): the fully
  connected layer also reads the channel mean and std of the backbone's early layers
  (``FeatureMaps.stats``), standardized with constants fitted once on the generic training images. The
  paper fine-tunes all of VGG16, so its deep maps can learn exposure and colour; piaa freezes the
  backbone for speed, and its deep maps are built to ignore them. Measured on simulated persons: the
  README's evaluation table ("w/o low-level statistics").
- Ablation "without attention": A = 1 everywhere (the gates are absent).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from piaa.backbones import Backbone, FeatureMaps
from piaa.errors import UsageError
from piaa.models.losses import score_from_distribution


@dataclass(frozen=True)
class HeadConfig:
    channels: tuple[int, int, int]
    attention: bool = True
    hidden: int = 64
    dropout: float = 0.2
    bins: int = 10
    norm: str = "none"  # or "layer"
    stats: int = 0  # length of FeatureMaps.stats read by the head (0: the paper's head)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> HeadConfig:
        return cls(**{**d, "channels": tuple(d["channels"])})


class AttentionGate(nn.Module):
    """A = sigmoid(psi(ReLU(W_z Z + up(W_g Z3)))): where in Z, given the global context Z3, to look.

    The 1x1 convolutions are computed as ``Linear`` layers over channel-last positions (the same
    function as ``Conv2d`` with 1x1 kernels); a global 1x1 Z3 is then a plain broadcast."""

    def __init__(self, c_in: int, c_ctx: int, hidden: int) -> None:
        super().__init__()
        self.w_z = nn.Linear(c_in, hidden)
        self.w_g = nn.Linear(c_ctx, hidden, bias=False)
        self.psi = nn.Linear(hidden, 1)
        nn.init.constant_(self.psi.bias, 2.0)

    def forward(self, z: torch.Tensor, z3: torch.Tensor) -> torch.Tensor:
        n, _, h, w = z.shape
        zt = z.flatten(2).transpose(1, 2)  # N x HW x C
        if z3.shape[-2:] == (1, 1):
            g = self.w_g(z3.flatten(1))[:, None, :]  # global context, broadcast over positions
        else:
            g = self.w_g(z3.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(n, -1, *z3.shape[-2:])
            g = F.interpolate(g, size=(h, w), mode="bilinear", align_corners=False).flatten(2).transpose(1, 2)
        a = torch.sigmoid(self.psi(F.relu(self.w_z(zt) + g)))  # N x HW x 1
        return a.transpose(1, 2).reshape(n, 1, h, w)


class AestheticHead(nn.Module):
    """Feature maps -> logits over the 10 score bins."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3 = config.channels
        self.gate1 = AttentionGate(c1, c3, config.hidden) if config.attention else None
        self.gate2 = AttentionGate(c2, c3, config.hidden) if config.attention else None
        if config.norm not in ("none", "layer"):
            raise UsageError(f"norm must be 'none' or 'layer', not {config.norm!r}")
        self.norm1: nn.Module = nn.LayerNorm(c1) if config.norm == "layer" else nn.Identity()
        self.norm2: nn.Module = nn.LayerNorm(c2) if config.norm == "layer" else nn.Identity()
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(c1 + c2 + config.stats, config.bins)
        if config.stats:
            self.register_buffer("stats_mean", torch.zeros(config.stats))
            self.register_buffer("stats_std", torch.ones(config.stats))
            self.register_buffer("stats_fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit_stats_scaling(self, stats: torch.Tensor) -> None:
        """Standardize the low-level statistics with constants of these (training) images, once: fixed
        afterwards, so scores never depend on what else is in a batch."""
        if self.config.stats and not bool(self.stats_fitted):
            stats = stats.float()
            self.stats_mean.copy_(stats.mean(0))
            if len(stats) > 1:
                self.stats_std.copy_(stats.std(0, unbiased=False).clamp_min(1e-4))
            self.stats_fitted.fill_(True)

    def attention_maps(self, f: FeatureMaps) -> tuple[torch.Tensor, torch.Tensor]:
        """A1 and A2 (N x 1 x H x W, in [0, 1]); all ones without attention."""
        if self.gate1 is None or self.gate2 is None:
            return torch.ones_like(f.z1[:, :1]), torch.ones_like(f.z2[:, :1])
        return self.gate1(f.z1, f.z3), self.gate2(f.z2, f.z3)

    def pool(self, f: FeatureMaps) -> torch.Tensor:
        """The attended, pooled features [mean(A1 ⊙ Z1), mean(A2 ⊙ Z2)] (N x (c1 + c2)), followed by
        the standardized low-level statistics when the head reads them."""
        a1, a2 = self.attention_maps(f)
        parts = [(a1 * f.z1).mean(dim=(2, 3)), (a2 * f.z2).mean(dim=(2, 3))]
        if self.config.stats:
            parts.append((f.stats.float() - self.stats_mean) / self.stats_std)
        return torch.cat(parts, dim=1)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled features -> logits: the layers after the attention modules."""
        c1, c2 = self.config.channels[:2]
        v = torch.cat(
            [self.norm1(pooled[:, :c1]), self.norm2(pooled[:, c1 : c1 + c2]), pooled[:, c1 + c2 :]], dim=1
        )
        return self.fc(self.dropout(v))

    def forward(self, f: FeatureMaps) -> torch.Tensor:
        return self.classify(self.pool(f))

    def distribution(self, f: FeatureMaps) -> torch.Tensor:
        return self.forward(f).softmax(dim=-1)

    def score(self, f: FeatureMaps) -> torch.Tensor:
        return score_from_distribution(self.distribution(f))


class AestheticModel(nn.Module):
    """Backbone + head: sRGB pixels in [0, 1] (N x 3 x H x W, any size) -> 10-bin score distribution,
    differentiable down to the pixels: the f(x) of the paper's aesthetic loss 10 - f(x) (section 4.6)."""

    def __init__(self, backbone: Backbone, head: AestheticHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.distribution(self.backbone(self.backbone.preprocess.tensor(x)))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores (N,) on 1-10, higher is better."""
        return score_from_distribution(self.forward(x))
