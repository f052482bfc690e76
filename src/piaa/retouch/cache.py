"""The learned retoucher, trained once per profile and kept with it.

Training the predictor (:func:`~piaa.retouch.core.train_predictor`: epochs x photos backbone
forward+backward passes, about a minute on a laptop CPU) is a one-off cost per profile, not per run.
The trained network is saved next to the profile,

    PROFILE/retouch-<role>-<ops>.safetensors      role: "personal" or "generic"

(built-in profiles such as ``nima-ava``, and profiles in memory or in a folder piaa cannot write, keep
it in ``$PIAA_CACHE/retouch/``). The file carries a key in its metadata: a hash of the scoring model's
weights (head and backbone), the operators, the training settings and which photos it was trained on.
A later run whose key matches reuses it (a few milliseconds); one whose key differs — the profile was
retrained, other operators, another album — trains a new one and replaces the file. The write is
atomic (a temporary file renamed into place), so a killed run leaves the old predictor or the new one;
an unreadable or corrupt file is treated as stale.

The photos it trains on, in order of preference: ``album`` (``piaa retouch --album``); the album the
profile was personalized on (its ``config.json`` records it) when that folder still holds at least
:data:`~piaa.retouch.core.MIN_ALBUM` photos; else the photos being retouched. The training loss needs
no labels (the paper's L_aesthetic plus fidelity), so any of the person's photos serve.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from piaa.retouch.core import (
    FIDELITY,
    MAX_ALBUM,
    MIN_ALBUM,
    PREDICTOR_SETTINGS,
    PRIOR,
    ParamPredictor,
    album_thumbnails,
    train_predictor,
)
from piaa.retouch.ops import Op
from piaa.retouch.scoring import PixelScorer
from piaa.version import __version__

FORMAT = "piaa-retouch-predictor-1"


def model_hash(scorer: PixelScorer) -> str:
    """A short hash of everything the scores depend on: the head's and the backbone's weights."""
    from piaa.backbones.base import state_hash

    prof = scorer.profile
    backbone = prof.backbone.info.weights_hash if not prof.backbone_finetuned else state_hash(prof.backbone)
    return f"{state_hash(prof.head)}-{backbone}"


def predictor_key(scorer: PixelScorer, ops: Sequence[Op], source: str) -> str:
    """What a saved predictor must match to be reused (see the module docstring)."""
    spec = {
        "format": FORMAT,
        "model": model_hash(scorer),
        "ops": [op.name for op in ops],
        "settings": {**PREDICTOR_SETTINGS, "fidelity": FIDELITY, "prior": PRIOR, "max_album": MAX_ALBUM},
        "trained_on": source,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


def home_of(profile: Any) -> Path:
    """Where a profile's predictors live: its folder, or ``$PIAA_CACHE/retouch/<name>`` for a built-in
    or in-memory profile."""
    from piaa.backbones.base import cache_dir

    if getattr(profile, "path", None) is not None:
        return Path(profile.path)
    name = str(profile.config.name or "unnamed").replace(os.sep, "_")
    return cache_dir() / "retouch" / name


def predictor_path(home: Path, role: str, ops: Sequence[Op]) -> Path:
    return home / f"retouch-{role}-{'-'.join(op.name for op in ops)}.safetensors"


def training_photos(
    profile: Any, album: Sequence[Path] | None, inputs: Sequence[Path]
) -> tuple[list[Path], str]:
    """The photos the predictor trains on and a label for the key (see the module docstring)."""
    from piaa.data.images import iter_image_files

    if album:
        return list(album), "album:" + _fingerprint(album)
    config = getattr(profile, "config", None)  # a ProfileConfig, or nothing for a bare scorer
    recorded = config.data.get("album") if config is not None else None
    if recorded and Path(recorded).is_dir():
        files = list(iter_image_files([Path(recorded)]))
        if len(files) >= MIN_ALBUM:
            return files, f"profile album:{recorded}"
    return list(inputs), "inputs"


def _fingerprint(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(os.path.abspath(x) for x in paths):
        h.update(p.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()[:16]


def _pass_seconds(scorer: PixelScorer, thumb: Any) -> float:
    """Seconds of one backbone forward+backward pass on one thumbnail (the second of two: the first
    pays one-off set-up costs)."""
    took = 0.0
    for _ in range(2):
        x = thumb.clone().requires_grad_(True)
        t = time.perf_counter()
        scorer(x).sum().backward()
        took = time.perf_counter() - t
    return took


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def load_predictor(path: Path, key: str, ops: Sequence[Op]) -> ParamPredictor | None:
    """The predictor saved at ``path`` if its key matches, else None (missing, stale or corrupt)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("key") != key:
                return None
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
        net = ParamPredictor(sum(op.size for op in ops), [op.name for op in ops])
        net.load_state_dict(state)
    except (SafetensorError, OSError, RuntimeError, ValueError):
        return None
    return net.eval()


def save_predictor(path: Path, net: ParamPredictor, key: str, meta: dict[str, str]) -> bool:
    """Write atomically; False (nothing written) when the folder cannot be written."""
    from safetensors.torch import save

    from piaa.io import atomic_write_bytes

    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    data = save(state, metadata={"key": key, "format": FORMAT, "piaa_version": __version__, **meta})
    try:
        atomic_write_bytes(path, data)
    except OSError:
        return False
    return True


def cached_predictor(
    scorer: PixelScorer,
    ops: Sequence[Op],
    *,
    photos: Sequence[Path],
    source: str,
    homes: Sequence[Path],
    role: str = "personal",
    train: bool = True,
    min_photos: int = MIN_ALBUM,
    log: Callable[[str], None] | None = None,
    on_epoch: Callable[[int, int], None] | None = None,
    announce: Callable[[str], None] | None = None,
) -> ParamPredictor | None:
    """The learned predictor for ``scorer`` and ``ops``: reused from the first of ``homes`` holding one
    with the right key, else (``train=True``) trained on ``photos`` (at least ``min_photos`` readable)
    and saved to the first writable home. None when there is none and it may not or cannot be
    trained. ``announce`` receives one line before training starts (how many photos, the expected
    time: one backbone forward+backward pass timed here, times epochs x photos); ``log`` one line
    when one was trained; ``on_epoch(done, total)`` the training progress."""
    from piaa.data.images import FailureLog

    key = predictor_key(scorer, ops, source)
    for home in homes:
        net = load_predictor(predictor_path(home, role, ops), key, ops)
        if net is not None:
            return net
    if not train or len(photos) < min_photos:
        return None
    t = time.perf_counter()
    try:
        pre = scorer.preprocess
        thumbs = album_thumbnails(photos, pre.size, FailureLog(), pre.interpolation)
    except ValueError:  # not one readable photo
        return None
    if len(thumbs) < min_photos:
        return None
    if announce is not None:
        expected = int(PREDICTOR_SETTINGS["epochs"]) * len(thumbs) * _pass_seconds(scorer, thumbs[:1])
        announce(
            f"training the {role} retoucher first, once for this profile: {len(thumbs)} photos, about "
            f"{_duration(expected)} (later runs reuse it)"
        )
    net = train_predictor(scorer, thumbs, ops, on_epoch=on_epoch)
    seconds = time.perf_counter() - t
    meta = {"trained_on": source, "photos": str(len(thumbs)), "seconds": f"{seconds:.1f}"}
    saved = None
    for home in homes:
        if save_predictor(path := predictor_path(home, role, ops), net, key, meta):
            saved = path
            break
    if log is not None:
        where = f"saved to {saved} for later runs" if saved else "could not be saved (folder not writable)"
        log(f"trained the {role} retoucher on {len(thumbs)} photos in {seconds:.0f} s; {where}")
    return net
