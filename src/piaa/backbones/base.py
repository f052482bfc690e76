"""What every backbone shares: its preprocessing, its metadata and the feature maps it returns.

A backbone carries its own preprocessing (timm's ``pretrained_cfg`` idea), so a reference corpus, a
profile and a scoring run that name the same backbone always see pixels prepared the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.error
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from PIL import Image

from piaa.data.images import as_rgb_image, load_image
from piaa.errors import BackboneError
from piaa.io import sha256_file

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch is imported where it is used, not here: this module (configs, preprocessing, the ONNX graph cache)
# is all that answering a neighbour query from a cached ONNX graph needs, and importing torch costs about
# a second. ``Backbone``, an ``nn.Module``, lives in ``module.py``; importing it from here still works.


def __getattr__(name: str) -> Any:
    if name == "Backbone":
        from piaa.backbones.module import Backbone

        return Backbone
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


@dataclass(frozen=True)
class Preprocess:
    """How raw pixels become network input.

    ``resize="squash"`` scales the whole photo to ``size`` x ``size`` without cropping: aesthetics
    depend on composition, and a centre crop would cut away exactly what a person judges.

    ``draft=True`` lets JPEG decoding shrink big photos by DCT scaling first (several times faster).
    A backbone ported from a framework that resizes the full decoded image (NIMA: Keras's ``load_img``,
    nearest neighbour) sets ``draft=False``: nearest neighbour would sample other pixels, and NIMA's mean
    scores moved by up to 0.29 (35 photos).
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "squash"
    interpolation: str = "bicubic"
    draft: bool = True

    def load(self, path: str | Path, *, previews: bool = False) -> np.ndarray:
        """Decode ``path`` to a ``size`` x ``size`` x 3 uint8 array (raises ``ImageError``). With ``draft``,
        JPEGs and RAW files are decoded at reduced size when that still covers ``size``: much faster;
        ``previews``: camera JPEGs from their embedded preview (:func:`~piaa.data.images.load_image`)."""
        img = load_image(path, draft_size=(self.size, self.size) if self.draft else None, previews=previews)
        return self.from_pil(img)

    def from_pil(self, img: Image.Image | np.ndarray) -> np.ndarray:
        """An in-memory image (PIL or numpy) as a ``size`` x ``size`` x 3 uint8 array, through
        :func:`~piaa.data.images.as_rgb_image` (upright, sRGB, RGB) so it matches the file route. Raises
        ValueError for a bad array or mode, ``ImageError`` for a corrupt lazily opened image."""
        img = as_rgb_image(img)
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), _RESAMPLE[self.interpolation], reducing_gap=3.0)
        return np.asarray(img, dtype=np.uint8)

    def to_array(self, batch: np.ndarray) -> np.ndarray:
        """N x H x W x 3 uint8 -> normalised N x 3 x H x W float32, in numpy: torch's worker threads
        would otherwise spin and steal the cores ONNX Runtime is about to use."""
        x = np.asarray(batch)
        if x.ndim == 3:
            x = x[None]
        scale = np.float32(255.0) * np.asarray(self.std, np.float32)
        x = (x.astype(np.float32) - np.float32(255.0) * np.asarray(self.mean, np.float32)) / scale
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def to_tensor(self, batch: np.ndarray) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.to_array(batch))

    def to_dict(self) -> dict:
        return asdict(self)

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        """The same preparation in torch, differentiable: N x 3 x H x W sRGB in [0, 1], any size ->
        normalised N x 3 x size x size (for scoring as a loss, e.g. retouching). Resizing is torch's
        antialiased interpolation (scores differ from the file path's Pillow resize by a few hundredths);
        the resized pixels are rounded to 8 bits with the identity as gradient ("straight-through",
        Bengio et al. 2013), since the low-level statistics respond to quantization noise and every image
        a head was trained on is 8-bit: on a steep head that took the difference from 0.19 to 0.04."""
        import torch

        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected N x 3 x H x W pixels in [0, 1], got shape {tuple(x.shape)}")
        if tuple(x.shape[-2:]) != (self.size, self.size):
            mode = "nearest-exact" if self.interpolation == "nearest" else self.interpolation
            kw = {} if mode == "nearest-exact" else {"antialias": True, "align_corners": False}
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode=mode, **kw)
            x = x.clamp(0.0, 1.0)  # bicubic overshoots; Pillow's uint8 result is clipped too
        x = x + (torch.round(x * 255.0) / 255.0 - x).detach()  # 8-bit, straight-through gradient
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


class FeatureMaps(NamedTuple):
    """The paper's Z1 (mid-level map), Z2 (last map), Z3 (pooled last map), a retrieval embedding, and
    the low-level statistics of the layers below Z1 (see :func:`channel_stats`)."""

    z1: torch.Tensor
    z2: torch.Tensor
    z3: torch.Tensor
    embedding: torch.Tensor
    stats: torch.Tensor


def channel_stats(*maps: torch.Tensor) -> torch.Tensor:
    """Per-channel spatial mean and standard deviation of early feature maps, concatenated (N x S).

    Exposure, colour and contrast are much of what personal taste is about, but ImageNet's deep
    features do not expose them: on scenes it has not seen, a linear read-out recovers brightness from
    these statistics and not from the embedding or pooled Z1 (``tests/test_backbones.py``). The paper
    can fine-tune all of VGG16 to learn them; a frozen backbone cannot. These are the "style"
    statistics of Gatys et al. and AdaIN, and the multi-level pooling of Hosu et al.'s MLSP aesthetics
    model."""
    import torch

    parts = []
    for m in maps:
        var, mean = torch.var_mean(m, dim=(2, 3), unbiased=False)
        parts += [mean, torch.sqrt(var + 1e-6)]
    return torch.cat(parts, dim=1)


@dataclass(frozen=True)
class BackboneConfig:
    """A backbone's metadata without its network (timm's ``pretrained_cfg``): input pipeline, output
    sizes, licence, where its weights come from. ``get_backbone_config(name)`` reads it unbuilt."""

    name: str
    preprocess: Preprocess
    channels: tuple[int, int, int]  # channels of Z1, Z2, Z3
    embed_dim: int
    stats_dim: int  # length of FeatureMaps.stats
    summary: str
    license: str
    offline: bool  # pretrained weights available without a network
    weights_url: str = ""  # where the pretrained weights come from when they are not packaged


@dataclass(frozen=True)
class BackboneInfo:
    """A built backbone's config plus the weights it holds: what travels into every store and profile
    made with it (``to_dict``), and what they check on load."""

    config: BackboneConfig
    weights: str  # "imagenet", "ava", "random" or a file path
    weights_hash: str
    description: str = ""
    extra: dict = field(default_factory=dict)

    name = property(lambda self: self.config.name)
    preprocess = property(lambda self: self.config.preprocess)
    channels = property(lambda self: self.config.channels)
    embed_dim = property(lambda self: self.config.embed_dim)
    stats_dim = property(lambda self: self.config.stats_dim)
    license = property(lambda self: self.config.license)

    def to_dict(self) -> dict:
        c = self.config
        return {
            "name": c.name,
            "preprocess": c.preprocess.to_dict(),
            "channels": list(c.channels),
            "embed_dim": c.embed_dim,
            "stats_dim": c.stats_dim,
            "weights": self.weights,
            "weights_hash": self.weights_hash,
            "description": self.description,
            "license": c.license,
            "extra": self.extra,
        }


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def file_hash(path: str | Path) -> str:
    """Short sha256 of a weights file, cached per (path, size, mtime): stores compare it to refuse a
    backbone whose weights differ from the ones they were built with."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = sha256_file(p)[:16]
    return _HASH_CACHE[key]


def state_hash(module: nn.Module) -> str:
    """Short sha256 of a module's weights: names weights that exist only in memory (fine-tuned)."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.pth``/``.pt`` or ``.safetensors`` state dict, with a one-line error on failure."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise BackboneError(f"{p}: weights file not found")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(p))
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any decoding failure is the same problem for a user
        raise BackboneError(f"{p}: not a readable PyTorch state dict ({type(e).__name__})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise BackboneError(f"{p}: not a state dict")
    return sd


def download_weights(name: str, url: str) -> Path:
    """``url``'s file in torch's hub cache, downloaded there if it is not there yet (to a temporary name,
    renamed when complete). Raises ``BackboneError`` naming the URL and the cache path when offline."""
    import torch

    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), progress=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        raise BackboneError(
            f"{name}: its weights are not on this machine and could not be downloaded ({e}). Download "
            f"{url} and pass it with --weights PATH (or weights=PATH), or put it at {path}."
        ) from None
    return path


def cache_dir() -> Path:
    """Where piaa keeps derived files (exported ONNX graphs); ``PIAA_CACHE`` overrides."""
    root = os.environ.get("PIAA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "piaa"
    )
    return Path(root)


@contextlib.contextmanager
def seeded(active: bool, seed: int = 0) -> Iterator[None]:
    """Random weights are reproducible, so a ``random`` weights hash names one network."""
    if not active:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
