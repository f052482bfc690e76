"""A personal profile: the trained aesthetic model of one person, saved as a folder.

    PROFILE/model.safetensors   head weights (and backbone weights when it was fine-tuned too)
    PROFILE/config.json         backbone and weights hash, head, training settings, piaa version, data
                                summary, and the checksum of model.safetensors
    PROFILE/preferences.csv     the stated preferences it learned from (header ``preferred,other``)
    PROFILE/generic.safetensors the generic model it was personalized from (head weights; absent in
                                profiles saved before piaa carried it, or with a fine-tuned backbone),
                                so retouching can compare the generic and the personal edit
    PROFILE/retouch-*.safetensors  learned retouching predictors trained for this profile (a cache,
                                written later by ``piaa retouch``; :mod:`piaa.retouch.cache`)

Saving is atomic: the folder is written beside the target under a temporary name and renamed into
place, so a crash leaves either the old profile or the new one, never a mixture. Loading checks every
part and says in one line what is wrong.

Scores are on 1-10, higher is better: the mean of the predicted 10-bin score distribution.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from piaa.backbones import Backbone, BackboneError, FeatureMaps, create_backbone
from piaa.data.images import FailureLog, ImageError, iter_image_files, load_image
from piaa.errors import ProfileError, file_error, one_line
from piaa.features.extract import FeatureExtractor
from piaa.io import atomic_write_text, fsync_dir, remove_stale_temporaries, sha256_file, temp_prefix
from piaa.models.config import TrainConfig
from piaa.models.head import AestheticHead, HeadConfig
from piaa.models.losses import score_from_distribution
from piaa.settings import RunSettings
from piaa.version import __version__

FORMAT = "piaa-profile-1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
PREFS = "preferences.csv"
GENERIC = "generic.safetensors"


PROFILE_VERSION = 1  # the layout of config.json this piaa writes (its "format", piaa-profile-1)


@dataclass(frozen=True)
class ProfileConfig:
    """A profile's ``config.json``, typed: what it is (``name``, ``description``; ``origin`` and
    ``generic_of`` for a generic model handed out by :meth:`Profile.generic`), how it was trained
    (``training``, a :class:`~piaa.models.train.TrainConfig`; None for a built-in model), what it saw
    (``data``: album, pairs, selection, agreement, losses; :meth:`PersonalizeReport.summary`), and, once
    saved, the piaa version and time, backbone, head and checksummed files.

    ``version`` is the layout (:data:`PROFILE_VERSION`): every layout older piaa wrote loads (absent keys
    are None or empty, a training config without the newer settings gets their defaults); one from a
    newer piaa is refused. Keys it does not know are kept in ``extra`` and written back. Read fields by
    name; :meth:`to_dict` gives the JSON object ``config.json`` holds."""

    version: int = PROFILE_VERSION
    name: str | None = None
    description: str | None = None
    origin: str | None = None
    generic_of: str | None = None
    training: TrainConfig | None = None
    data: dict[str, Any] = field(default_factory=dict)
    piaa_version: str | None = None
    saved: str | None = None
    backbone: dict[str, Any] | None = None
    backbone_finetuned: bool = False
    head: dict[str, Any] | None = None
    generic_head: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str | os.PathLike[str] = "profile") -> ProfileConfig:
        """Read ``config.json``'s object (or an in-memory profile's dict, which may lack ``format``).
        Raises :class:`ProfileError` naming ``source`` for a newer layout or a field of the wrong type."""
        if isinstance(raw, ProfileConfig):
            return raw
        fmt = raw.get("format")
        version = PROFILE_VERSION
        if fmt is not None:
            prefix, _, number = str(fmt).rpartition("-")
            if prefix != "piaa-profile" or not number.isdigit():
                raise file_error(ProfileError, source, f"not a {FORMAT} profile (format {fmt!r})")
            version = int(number)
            if version > PROFILE_VERSION:
                raise file_error(
                    ProfileError, source, f"made by a newer piaa (format {fmt}); this piaa reads {FORMAT}"
                )
        try:
            training = raw.get("training")
            typed = TrainConfig.from_dict(training) if isinstance(training, Mapping) else None
            known = {k: raw[k] for k in _CONFIG_FIELDS if k in raw and k != "training"}
            for key in ("data", "files", "backbone", "head", "generic_head"):
                if known.get(key) is not None and not isinstance(known[key], Mapping):
                    raise ValueError(f"{key} is not an object")
            known.update(
                backbone_finetuned=bool(known.get("backbone_finetuned", False)),
                data=dict(known.get("data") or {}),
                files=dict(known.get("files") or {}),
            )
            extra = {k: v for k, v in raw.items() if k not in _CONFIG_FIELDS and k != "format"}
            return cls(version=version, training=typed, extra=extra, **known)
        except (TypeError, ValueError) as e:
            raise file_error(ProfileError, source, f"corrupt or from an incompatible piaa ({e})") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``config.json`` (None fields and empty ``data``/``files`` left out; ``format``
        once there is a head, that is once saved or loaded), readable by older piaa."""
        out: dict[str, Any] = {**self.extra}
        for key in _CONFIG_FIELDS:
            value = getattr(self, key)
            if key == "training" and value is not None:
                value = value.to_dict()
            if value is not None and (value or key not in ("data", "files")):
                out[key] = value
        if self.head is not None:
            out["format"] = f"piaa-profile-{self.version}"
        return out


_CONFIG_FIELDS = tuple(f.name for f in fields(ProfileConfig) if f.name not in ("version", "extra"))
"""The keys of ``config.json`` that are ProfileConfig fields, in field order (``version`` is written as
``format``; ``extra`` holds the keys this piaa does not know)."""


def read_config(path: str | os.PathLike[str]) -> ProfileConfig:
    """A saved profile's metadata (``config.json``), read without building the network: what it was
    trained on, its backbone and head. Raises :class:`ProfileError` naming the file for a missing folder
    or file, or one that is not a piaa profile's config."""
    path = Path(path)
    _restore_interrupted_swap(path)
    if not path.is_dir():
        raise ProfileError(f"{path}: not a piaa profile (no such folder)")
    cfg_path = path / CONFIG
    if not cfg_path.is_file():
        raise ProfileError(f"{path}: not a piaa profile, or a partial one ({CONFIG} is missing)")
    try:
        raw = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProfileError(f"{cfg_path}: corrupt ({e})") from None
    if not isinstance(raw, dict) or raw.get("format") is None:
        raise ProfileError(
            f"{cfg_path}: not a {FORMAT} profile (format None)"
            if isinstance(raw, dict)
            else f"{cfg_path}: corrupt (not a JSON object)"
        )
    return ProfileConfig.from_dict(raw, cfg_path)


def check_save_target(path: Path) -> None:
    """Refuse, before any work, a place a profile cannot be saved to. Saving replaces the whole folder,
    so a folder of the user's own files (an album given as ``--out``) is refused, never replaced."""
    if path.exists() and not path.is_dir():
        raise ProfileError(f"{path}: exists and is not a folder")
    if path.is_dir() and not (path / CONFIG).exists() and any(path.iterdir()):
        raise ProfileError(f"{path}: a folder that is not a profile and is not empty; choose another")
    parent = path.absolute().parent  # saving writes a sibling folder, then renames it into place
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        import tempfile

        tempfile.TemporaryFile(dir=parent).close()
    except OSError as e:
        raise ProfileError(f"{path}: cannot save the profile there ({e.strerror or e})") from None


@dataclass
class ScoreResult:
    """One image's personal score (1-10, higher is better) and its 10-bin distribution."""

    path: str
    score: float
    distribution: list[float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "score": round(self.score, 4),
            "distribution": [round(p, 5) for p in self.distribution],
        }


class Profile:
    """A backbone plus a trained head. ``score`` mirrors ``piaa score``."""

    def __init__(
        self,
        head: AestheticHead,
        backbone: Backbone,
        config: ProfileConfig | Mapping[str, Any],
        *,
        backbone_finetuned: bool = False,
        pairs: Sequence[tuple[str, str]] = (),
        path: Path | None = None,
        generic_head: AestheticHead | None = None,
    ) -> None:
        self.head = head.eval()
        # the generic model this profile was personalized from (same backbone), when known
        self.generic_head = generic_head.eval() if generic_head is not None else None
        self.backbone = backbone.eval()
        self.config = ProfileConfig.from_dict(config)
        self.backbone_finetuned = backbone_finetuned
        self.pairs = list(pairs)
        self.path = path
        self.report: Any = None  # what personalize() saw and did, when it made this profile
        self._extractor: FeatureExtractor | None = None

    # ------------------------------------------------------------------------------------- scoring

    def extractor(self, settings: RunSettings | None = None) -> FeatureExtractor:
        """The extractor scoring runs on, as ``settings`` say (default: the defaults), kept for the next
        call: one already made is reused when it fits (an "auto" engine, or None workers or streams in
        ``settings``, fit any; the progress bar is the settings' own)."""
        s = settings or RunSettings()
        fe = self._extractor
        fits = fe is not None and (
            s.engine in ("auto", fe.engine_name)
            and s.workers in (None, fe.workers)
            and s.streams in (None, fe.streams)
            and (s.batch_size, s.previews) == (fe.batch_size, fe.previews)
        )
        if not fits:
            fe = self._extractor = FeatureExtractor(self.backbone, s)
        assert fe is not None
        return fe.with_progress(s.progress)

    @torch.inference_mode()
    def score_features(self, maps: FeatureMaps) -> tuple[np.ndarray, np.ndarray]:
        """Scores (N,) and distributions (N, 10) of precomputed feature maps."""
        p = self.head.distribution(FeatureMaps(*(t.float() for t in maps)))
        return score_from_distribution(p).numpy(), p.numpy()

    def score_files(
        self,
        paths: Sequence[str | Path],
        *,
        failures: FailureLog | None = None,
        progress: bool | None = None,
        engine: str | None = None,
        settings: RunSettings | None = None,
    ) -> list[ScoreResult]:
        """Score image files in input order; unreadable ones go to ``failures`` and are skipped.
        ``settings``: how to run (default :meth:`RunSettings.resolve`: progress bars on, engine "auto");
        ``progress`` and ``engine``, when given, replace its fields."""
        run = RunSettings.resolve(settings, progress=progress, engine=engine)
        return list(self.iter_score_files(paths, failures=failures, settings=run))

    def iter_score_files(
        self,
        paths: Sequence[str | Path],
        *,
        failures: FailureLog | None = None,
        progress: bool | None = None,
        engine: str | None = None,
        settings: RunSettings | None = None,
    ) -> Iterator[ScoreResult]:
        """:meth:`score_files` one result at a time, as batches finish: an interrupted caller keeps what
        was scored."""
        run = RunSettings.resolve(settings, progress=progress, engine=engine)
        for batch in self.extractor(run).files(list(paths), failures=failures, desc="scoring"):
            scores, dists = self.score_features(batch.features)
            for i, s, d in zip(batch.indices, scores, dists, strict=True):
                yield ScoreResult(str(paths[i]), float(s), d.tolist())

    def score(
        self,
        images: Sequence[str | Path | Image.Image | np.ndarray] | str | Path,
        *,
        progress: bool | None = None,
        settings: RunSettings | None = None,
    ) -> list[ScoreResult]:
        """Score files, folders (walked recursively) or in-memory images. Unreadable files raise.
        ``settings``: how to run (default: the environment's, without progress bars); ``progress``,
        when given, replaces its field."""
        run = settings if settings is not None else RunSettings.from_env(progress=False)
        run = RunSettings.resolve(run, progress=progress)
        if isinstance(images, (str, Path)):
            images = [images]
        if all(isinstance(x, (str, Path)) for x in images):
            files = list(iter_image_files(images))  # type: ignore[arg-type]
            failures = FailureLog()
            results = self.score_files(files, failures=failures, settings=run)
            if len(failures):
                path, reason = next(iter(failures))
                raise ImageError(path, reason)
            return results
        arrays = [x if isinstance(x, (Image.Image, np.ndarray)) else load_image(x) for x in images]
        scores, dists = self.score_features(self.extractor(run).images(arrays))
        return [
            ScoreResult(f"<image {i}>", float(s), d.tolist())
            for i, (s, d) in enumerate(zip(scores, dists, strict=True))
        ]

    # ------------------------------------------------------------------------------------ save/load

    def save(self, path: str | Path) -> Path:
        """Write the profile folder atomically (see the module docstring)."""
        from safetensors import SafetensorError
        from safetensors.torch import save_file

        from piaa.preferences import write_pairs_csv

        path = Path(path)
        check_save_target(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _restore_interrupted_swap(path)
        remove_stale_temporaries(path)
        try:
            tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=temp_prefix(path), suffix=".part"))
        except OSError as e:  # a read-only folder: name the profile, not the temporary folder
            raise ProfileError(f"{path}: cannot save the profile ({e.strerror or e})") from None
        umask = os.umask(0)
        os.umask(umask)
        try:
            tensors = {f"head.{k}": v.contiguous() for k, v in self.head.state_dict().items()}
            if self.backbone_finetuned:
                tensors.update(
                    {f"backbone.{k}": v.contiguous() for k, v in self.backbone.state_dict().items()}
                )
            save_file(tensors, str(tmp / WEIGHTS))
            files = {WEIGHTS: sha256_file(tmp / WEIGHTS)}
            generic: dict[str, Any] = {}
            if self.generic_head is not None and not self.backbone_finetuned:
                gen = {f"head.{k}": v.contiguous() for k, v in self.generic_head.state_dict().items()}
                save_file(gen, str(tmp / GENERIC))
                files[GENERIC] = sha256_file(tmp / GENERIC)
                generic = {"generic_head": self.generic_head.config.to_dict()}
            write_pairs_csv(tmp / PREFS, self.pairs)
            config = dataclasses.replace(
                self.config,
                version=PROFILE_VERSION,
                piaa_version=__version__,
                saved=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                backbone=self.backbone.info.to_dict(),
                backbone_finetuned=self.backbone_finetuned,
                head=self.head.config.to_dict(),
                generic_head=generic.get("generic_head"),
                files=files,
            )
            atomic_write_text(tmp / CONFIG, json.dumps(config.to_dict(), indent=2))
            for p in (tmp, *tmp.iterdir()):  # mkdtemp makes private files; a profile is an ordinary folder
                os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)
            old = None
            if path.exists():
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.rename(path, old)
            os.rename(tmp, path)
            fsync_dir(path.parent)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except (OSError, SafetensorError) as e:  # a full disk, a quota, a read-only folder
            reason = e.strerror if isinstance(e, OSError) and e.strerror else one_line(e)
            raise ProfileError(f"{path}: cannot save the profile ({reason})") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.path = path
        self.config = config
        return path

    @classmethod
    def load(cls, path: str | Path, *, backbone_weights: str | Path | None = None) -> Profile:
        """Open a profile, checking that every part is present, intact and usable here."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from piaa.preferences import PreferenceError, read_pairs_csv

        path = Path(path)
        config = read_config(path)
        w_path = path / WEIGHTS
        if not w_path.is_file():
            raise ProfileError(f"{path}: partial profile ({WEIGHTS} is missing)")
        if sha256_file(w_path) != config.files.get(WEIGHTS):
            raise ProfileError(f"{w_path}: corrupt (checksum does not match {CONFIG})")
        try:
            tensors = load_file(str(w_path))
            if config.head is None or config.backbone is None:
                raise KeyError("head" if config.head is None else "backbone")
            head_cfg = HeadConfig.from_dict(config.head)
            bb_info = config.backbone
        except (SafetensorError, KeyError, TypeError, ValueError) as e:
            raise ProfileError(
                f"{path}: corrupt or from an incompatible piaa ({type(e).__name__}: {e})"
            ) from None
        head = AestheticHead(head_cfg)
        _load_prefixed(head, tensors, "head.", f"{w_path}: weights do not fit the head in {CONFIG}")
        backbone = _profile_backbone(path, bb_info, config.backbone_finetuned, tensors, backbone_weights)
        generic_head = _load_generic(path, config)
        pairs: list[tuple[str, str]] = []
        if (path / PREFS).is_file():
            try:
                pairs = read_pairs_csv(path / PREFS)
            except PreferenceError as e:
                raise ProfileError(str(e)) from None
        return cls(
            head,
            backbone,
            config,
            backbone_finetuned=config.backbone_finetuned,
            pairs=pairs,
            path=path,
            generic_head=generic_head,
        )

    def generic(self) -> Profile | None:
        """The generic model this profile was personalized from, as a profile sharing this one's
        backbone (``piaa retouch --compare-generic``), or None when the profile does not carry it
        (saved by an older piaa, with a fine-tuned backbone, or built in memory without it)."""
        if self.generic_head is None:
            return None
        origin = self.config.data.get("generic") or "reference"
        config = ProfileConfig(name=f"generic ({origin})", origin=origin, generic_of=str(self.path or ""))
        return Profile(self.generic_head, self.backbone, config)

    @property
    def agreement(self) -> dict[str, Any] | None:
        """The held-out agreement with the person saved by ``personalize(agreement=True)``
        (:class:`piaa.models.agreement.Agreement` as a dict: fractions in [0, 1]), or None (not
        measured, or a profile saved by an older piaa)."""
        return self.config.data.get("agreement")


def _load_generic(path: Path, config: ProfileConfig) -> AestheticHead | None:
    """The carried generic head, checked like the weights; None for a profile that has none."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    saved = config.files.get(GENERIC)
    if saved is None:
        return None
    g_path = path / GENERIC
    if not g_path.is_file():
        raise ProfileError(f"{path}: partial profile ({GENERIC} is missing)")
    if sha256_file(g_path) != saved:
        raise ProfileError(f"{g_path}: corrupt (checksum does not match {CONFIG})")
    try:
        if config.generic_head is None:
            raise KeyError("generic_head")
        head = AestheticHead(HeadConfig.from_dict(config.generic_head))
        tensors = load_file(str(g_path))
    except (SafetensorError, KeyError, TypeError, ValueError) as e:
        reason = f"{type(e).__name__}: {e}"
        raise ProfileError(f"{g_path}: corrupt or from an incompatible piaa ({reason})") from None
    _load_prefixed(head, tensors, "head.", f"{g_path}: weights do not fit the generic head in {CONFIG}")
    return head


def _restore_interrupted_swap(path: Path) -> None:
    """A save killed between moving the old profile aside and moving the new one in leaves no folder at
    ``path`` and the old one at ``.NAME.old-PID``: put it back, so ``path`` always loads."""
    if path.exists():
        return
    for old in sorted(path.parent.glob(f".{path.name}.old-*")):
        if old.is_dir() and (old / CONFIG).is_file():
            with contextlib.suppress(OSError):
                os.rename(old, path)
                return


def _load_prefixed(
    module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, problem: str
) -> None:
    try:
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    except RuntimeError as e:
        raise ProfileError(f"{problem} ({str(e).strip().splitlines()[0]})") from None


def _profile_backbone(
    path: Path, info: dict, finetuned: bool, tensors: dict[str, torch.Tensor], weights: str | Path | None
) -> Backbone:
    name, saved_hash = info.get("name"), info.get("weights_hash")
    if weights is None:
        weights = None if info.get("weights") == "random" else (info.get("weights") or "imagenet")
    try:
        bb = create_backbone(name, weights)
    except BackboneError as e:
        raise ProfileError(f"{path}: needs backbone {name}: {e}") from None
    if finetuned:
        _load_prefixed(bb, tensors, "backbone.", f"{path}: fine-tuned backbone weights do not fit {name}")
        bb.info = dataclasses.replace(bb.info, weights_hash=saved_hash)
    elif bb.info.weights_hash != saved_hash:
        raise ProfileError(
            f"{path}: trained on {name} weights {saved_hash}, but the {name} weights here hash to "
            f"{bb.info.weights_hash}"
        )
    check_preprocess(path / CONFIG, info.get("preprocess") or {}, bb, ProfileError)
    return bb


def check_preprocess(source: Path, saved: dict, backbone: Backbone, error: type[Exception]) -> None:
    """Refuse a backbone whose input pipeline differs from the one a store or profile was made with:
    the same weights fed differently prepared pixels give other features (keys absent from ``saved``,
    written by an older piaa, are not compared)."""
    now = backbone.info.preprocess.to_dict()
    diff = [
        k
        for k, v in saved.items()
        if k in now and (list(now[k]) if isinstance(now[k], tuple) else now[k]) != v
    ]
    if diff:
        k = diff[0]
        raise error(f"{source}: made with {backbone.name} input {k}={saved[k]!r}, but it is now {now[k]!r}")


def list_pretrained() -> list[str]:
    """Names of the profiles that ship with piaa (:data:`piaa.models.pretrained.PRETRAINED`)."""
    from piaa.models.pretrained import PRETRAINED

    return sorted(PRETRAINED)


def load_profile(path: str | os.PathLike[str], **kwargs: Any) -> Profile:
    """``piaa.load_profile(path_or_name).score(images)``: a profile folder, or a built-in profile by
    name (:func:`list_pretrained`, e.g. ``"nima-ava"``) when no such folder exists."""
    from piaa.models.pretrained import PRETRAINED

    if not Path(path).exists() and str(path) in PRETRAINED:
        return PRETRAINED.get(str(path))(**kwargs)
    return Profile.load(path, **kwargs)
