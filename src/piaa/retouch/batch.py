"""``piaa retouch``: retouch photo files toward a person's taste, safely.

- Results go into an output folder, one per input, under the input's name and in its format (JPEG,
  WebP, HEIF and AVIF at quality 95; GIF quantised to 256 colours, as GIF is), at full resolution, 8-bit
  sRGB (an embedded ICC profile is converted to sRGB first), with the input's EXIF kept (less the
  TIFF structure tags, which describe the input's encoding, not the result's), its orientation applied
  to the pixels and the orientation tag reset to 1. A format piaa cannot write (camera RAW) gives a
  JPEG (RAW) or PNG named for what it is (``IMG_1.CR2`` -> ``IMG_1.jpg``): a file's suffix always says
  its format.
- No existing file is ever written over, originals included: when ``DIR/name`` exists (``--out`` is the
  input's own folder, or two inputs with the same name), the result is named ``stem-retouched.ext``,
  then ``stem-retouched-2.ext``, ... (:func:`piaa.io.write_exclusive`: claimed with a hard link of a
  fully written temporary file, which fails instead of replacing a file that appeared meanwhile; the
  user's normal file mode, not ``mkstemp``'s 0600).
- A re-run into the same folder resumes: ``DIR/.piaa-retouch.jsonl`` records each result (its source's
  path, size and modification time, and the model and settings), so a photo already retouched with the
  same settings is kept, not written again as a ``-retouched`` copy; ``report.html`` is piaa's own and
  is replaced.
- A batch goes on past unreadable files and past results that cannot be written (a full disk: the
  file and "the disk is full") and lists them at the end (the CLI exits 2).
- An edit is applied only when it raises the score it optimises (on the thumbnail); else the original
  pixels are written and the result says so (:attr:`RetouchResult.kept_original`).
- ``report.html`` shows original / generic retouch / personal retouch thumbnails (embedded, so the page
  is one file) with both models' scores.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import html
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm.auto import tqdm

from piaa.data.images import RAW_EXTENSIONS, FailureLog, ImageError, load_image
from piaa.errors import UsageError
from piaa.io import atomic_write_bytes, os_reason, write_exclusive
from piaa.retouch.core import (
    MIN_ALBUM,
    ParamPredictor,
    RetouchResult,
    RetouchSettings,
    apply_retouch,
    resolve_method,
    thumbnail,
)
from piaa.retouch.ops import get_ops
from piaa.retouch.scoring import PixelScorer, pixel_scorer
from piaa.settings import QUIET, RunSettings, torch_threads

_ORIENTATION = 0x0112
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 95},
    "WEBP": {"quality": 95},
    "PNG": {},
    "TIFF": {},
    "BMP": {},
    "GIF": {},
    "HEIF": {"quality": 95},
    "AVIF": {"quality": 95},
    "JPEG2000": {},
}
_EXIF_FORMATS = {"JPEG", "WEBP", "PNG", "TIFF", "HEIF", "AVIF"}
_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "HEIF": ".heic", "JPEG2000": ".jp2"}
# TIFF baseline and extension tags that describe how the pixels are stored (size, samples, compression,
# strips, tiles, photometric interpretation, colour maps, ...): Pillow's getexif() returns a TIFF's
# IFD0 with them, and written onto an 8-bit RGB result they make it unreadable (issue 24: greyscale
# 16-bit, CMYK and float inputs gave files "cannot identify image file").
_STRUCTURE_TAGS = frozenset(
    {
        254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281, 284, 288,
        289, 290, 291, 292, 293, 317, 320, 322, 323, 324, 325, 330, 332, 338, 339, 340, 341, 347, 512,
        513, 514, 515, 517, 518, 519, 520, 521, 529, 530, 531, 532, 32995, 32996, 32997, 32998, 34675,
    }
)  # fmt: skip
MANIFEST = ".piaa-retouch.jsonl"


@dataclass
class FileResult:
    """One input file: where its results went and the scores (1-10, on the backbone-sized thumbnail)
    of the original and of each retouch under each model (``scores[model][image]``)."""

    source: Path
    output: Path
    personal: RetouchResult
    generic_output: Path | None = None
    generic: RetouchResult | None = None
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    thumbs: dict[str, Image.Image] = field(default_factory=dict)


def read_photo(path: Path) -> tuple[Image.Image, str, bytes | None]:
    """Upright 8-bit sRGB pixels, the file's format, and its EXIF with the orientation tag reset to 1
    (None when it has none). Raises ImageError."""
    img = load_image(path)
    fmt, exif, icc, mode = "JPEG", None, None, ""
    with contextlib.suppress(Exception), Image.open(path) as raw:
        fmt, mode = raw.format or "JPEG", raw.mode
        icc = raw.info.get("icc_profile")
        ex = raw.getexif()
        for tag in _STRUCTURE_TAGS & set(ex):
            del ex[tag]
        if len(ex):
            ex[_ORIENTATION] = 1
            exif = ex.tobytes()
    if icc and mode in ("RGB", "RGBA"):  # other modes' profiles describe data to_rgb already converted
        img = _to_srgb(img, icc)
    return img, fmt, exif


def _to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """Convert from the embedded ICC profile to sRGB; unchanged when the profile cannot be used."""
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:  # noqa: BLE001 - a broken profile must not lose a good photo
        return img


def write_new(folder: Path, name: str, data: bytes, taken: set[Path] | None = None) -> Path:
    """Write ``data`` to ``folder/name`` or, when that exists (or is in ``taken``), to
    ``stem-retouched.ext``, ``stem-retouched-2.ext``, ...: never over an existing file
    (:func:`piaa.io.write_exclusive`). Returns the path; raises OSError naming the file."""
    stem, suffix = os.path.splitext(name)
    candidates = [
        name,
        f"{stem}-retouched{suffix}",
        *(f"{stem}-retouched-{k}{suffix}" for k in range(2, 10_000)),
    ]
    return write_exclusive(folder, [c for c in candidates if not (taken and folder / c in taken)], data)


def output_format(fmt: str, name: str) -> tuple[str, str]:
    """The format a result of an input in ``fmt`` named ``name`` is written in, and its file name: the
    input's format and name when Pillow writes that format and the name's suffix says it (MPO is
    written as plain JPEG); else the format the suffix says; else JPEG for camera RAW and PNG for the
    rest, the suffix changed to say so."""
    fmt = "JPEG" if fmt == "MPO" else fmt
    stem, suffix = os.path.splitext(name)
    said = Image.registered_extensions().get(suffix.lower())
    said = "JPEG" if said == "MPO" else said
    writable = lambda f: f in _SAVE_OPTIONS and f in Image.SAVE  # noqa: E731
    if said is not None and writable(said) and (said == fmt or not writable(fmt)):
        return said, name
    out = fmt if writable(fmt) else ("JPEG" if suffix.lower() in RAW_EXTENSIONS else "PNG")
    ext = _SUFFIX.get(out) or next((e for e, f in Image.registered_extensions().items() if f == out), ".png")
    return out, stem + ext


def encode(img: Image.Image, fmt: str, exif: bytes | None, name: str = "") -> bytes:
    """The image in ``fmt`` (see :func:`output_format`; JPEG quality 95), with ``exif`` where the
    format carries it."""
    fmt, _ = output_format(fmt, name or f"x{_SUFFIX.get(fmt, '.png')}")
    kwargs: dict[str, Any] = dict(_SAVE_OPTIONS[fmt])
    buf = io.BytesIO()
    if exif and fmt in _EXIF_FORMATS:
        try:
            img.save(buf, format=fmt, exif=exif, **kwargs)
            return buf.getvalue()
        except Exception:  # noqa: BLE001 - metadata Pillow cannot write must not lose the photo
            buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


class Manifest:
    """``DIR/.piaa-retouch.jsonl``: the results earlier runs wrote into ``DIR``, so that a re-run (after
    a kill, or with more photos) keeps them instead of writing ``-retouched`` copies. A result counts as
    done when its source's absolute path, size and modification time and the run's settings key match,
    and the result file is still there. One JSON line is appended (and fsynced) per result, so a batch
    of N photos writes O(N) bytes; a line torn by a kill, or any unreadable line, is ignored."""

    def __init__(self, folder: Path, settings: str) -> None:
        self.path = folder / MANIFEST
        self.settings = settings
        self.by_source: dict[str, list[dict[str, Any]]] = {}
        self.report: str | None = None
        with contextlib.suppress(OSError):
            for line in self.path.read_bytes().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(entry, dict):
                    continue
                if isinstance(entry.get("report"), str):
                    self.report = entry["report"]
                elif isinstance(entry.get("source"), str) and isinstance(entry.get("output"), str):
                    self.by_source.setdefault(entry["source"], []).append(entry)

    @staticmethod
    def _source(path: Path) -> dict[str, Any]:
        st = os.stat(path)
        return {"source": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def done(self, path: Path) -> Path | None:
        """The result an earlier run wrote for ``path`` with these settings, or None."""
        try:
            src = self._source(path)
        except OSError:
            return None
        for entry in reversed(self.by_source.get(src["source"], [])):
            same = all(entry.get(k) == v for k, v in src.items()) and entry.get("settings") == self.settings
            if same and (self.path.parent / entry["output"]).is_file():
                return self.path.parent / entry["output"]
        return None

    def add(self, path: Path, output: Path, generic_output: Path | None) -> None:
        entry = {**self._source(path), "settings": self.settings, "output": output.name}
        entry["generic"] = str(generic_output.relative_to(self.path.parent)) if generic_output else None
        self.by_source.setdefault(entry["source"], []).append(entry)
        self._append(entry)

    def results(self) -> set[Path]:
        """Every file an earlier run recorded writing into ``DIR`` (results, generic results, the
        report), whatever its settings: inputs walked from a folder that holds ``DIR`` leave them out."""
        folder = self.path.parent
        names = {e["output"] for es in self.by_source.values() for e in es}
        names |= {
            e["generic"] for es in self.by_source.values() for e in es if isinstance(e.get("generic"), str)
        }
        if self.report:
            names.add(self.report)
        return {(folder / n).absolute() for n in names}

    def owns_report(self, path: Path) -> bool:
        return self.report == path.name

    def set_report(self, path: Path) -> None:
        self.report = path.name
        self._append({"report": path.name})

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry).encode("utf-8") + b"\n"
        with contextlib.suppress(OSError):  # the results matter; the manifest only spares work later
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)


def settings_key(scorers: dict[str, PixelScorer], settings: RetouchSettings, method: str) -> str:
    """What makes two runs' results the same: the models' weights, the operators, strength, method
    (and any optimiser setting changed from its default)."""
    from piaa.retouch.cache import model_hash

    spec = {"models": {k: model_hash(sc) for k, sc in scorers.items()}, **settings.key(), "method": method}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


"""The per-photo step (:func:`piaa.retouch.core.apply_retouch`), looked up here at each photo."""


def _thumb(img: Image.Image, side: int = 256) -> Image.Image:
    t = img.copy()
    t.thumbnail((side, side), Image.Resampling.BICUBIC)
    return t


@torch.no_grad()
def _score(scorer: PixelScorer, images: Sequence[Image.Image]) -> list[float]:
    x = torch.cat([thumbnail(im, scorer.preprocess.size, scorer.preprocess.interpolation) for im in images])
    return [float(s) for s in scorer(x)]


def prepare_predictors(
    profile: Any,
    scorers: dict[str, PixelScorer],
    ops: Sequence[str] | str,
    method: str,
    *,
    album: Sequence[Path] | None = None,
    inputs: Sequence[Path] = (),
    train: bool = True,
    run: RunSettings = QUIET,
    log: Callable[[str], None] | None = None,
) -> tuple[str, dict[str, ParamPredictor | None]]:
    """The method that will run and a learned predictor per model (``scorers``: ``"personal"`` and
    maybe ``"generic"``), reused from the profile's folder when one was saved for these weights and
    ops, else trained once and saved there (:mod:`piaa.retouch.cache`). ``"auto"`` is ``"learned"``
    when every model has a predictor or one can be trained (at least ``MIN_ALBUM`` photos), else
    ``"optimize"``; ``"learned"`` without photos to train on raises ValueError."""
    from piaa.backbones.base import cache_dir
    from piaa.retouch.cache import cached_predictor, home_of, model_hash, training_photos

    op_list = get_ops(ops)
    predictors: dict[str, ParamPredictor | None] = {k: None for k in scorers}
    resolve_method(method, None)  # an unknown method fails first
    if method == "optimize":
        return method, predictors
    photos, source = training_photos(profile, album, inputs)
    may_train = train and (method == "learned" or len(photos) >= MIN_ALBUM)
    for role, sc in scorers.items():
        homes = [home_of(profile), cache_dir() / "retouch" / model_hash(sc)]
        bars: list[Any] = []

        def step(done: int, total: int, role: str = role, bars: list[Any] = bars) -> None:
            if run.progress and not bars:  # only once training starts: a saved predictor needs no bar
                bars.append(tqdm(total=total, desc=f"training the {role} retoucher", unit="epoch"))
            if bars:
                bars[0].update(done - bars[0].n)

        notes: list[str] = []
        try:
            predictors[role] = cached_predictor(
                sc, op_list, photos=photos, source=source, homes=homes, role=role, train=may_train,
                min_photos=1 if method == "learned" else MIN_ALBUM, log=notes.append, on_epoch=step,
                announce=log,
            )  # fmt: skip
        finally:
            for bar in bars:
                bar.close()
        for note in notes if log is not None else ():  # after the bar, not through it
            log(note)
    if all(p is not None for p in predictors.values()):
        return "learned", predictors
    if method == "learned":
        raise UsageError(
            f"method 'learned' needs at least {MIN_ALBUM} readable photos to train on "
            "(--album, the profile's album, or the photos being retouched)"
        )
    return "optimize", {k: None for k in scorers}


def retouch_files(
    profile: Any,
    files: Sequence[Path],
    out: Path,
    settings: RetouchSettings | None = None,
    *,
    generic: Any = None,
    album: Sequence[Path] | None = None,
    failures: FailureLog | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    log: Callable[[str], None] | None = None,
    resumed: list[tuple[Path, Path]] | None = None,
    progress: bool | None = None,
    run: RunSettings | None = None,
) -> list[FileResult]:
    """Retouch every file into ``out`` (see the module docstring); ``generic`` (a profile) also
    retouches with the generic model into ``out/generic``. ``method``: see :func:`prepare_predictors`
    (the learned predictor is trained once per profile and saved with it). Unreadable files go to
    ``failures`` and so do results that could not be written (the file and why: "the disk is full");
    ``log`` receives one-line notes (a predictor about to be trained, with the expected time, and
    where it was saved). Photos an earlier run already retouched into ``out`` with the same settings
    (:class:`Manifest`) are kept and listed in ``resumed`` as (source, earlier result). ``run``: how
    (default :meth:`RunSettings.resolve`); ``progress``, when given, replaces its field. Torch's thread
    count is held at ``run.torch_threads`` throughout."""
    settings = settings or RetouchSettings()  # bad settings fail here, before any work
    run = RunSettings.resolve(run, progress=progress)
    with torch_threads(run.torch_threads):
        return _retouch_files(
            profile, files, out, settings, generic, album, failures, on_result, log, resumed, run
        )


def _retouch_files(
    profile: Any,
    files: Sequence[Path],
    out: Path,
    settings: RetouchSettings,
    generic: Any,
    album: Sequence[Path] | None,
    failures: FailureLog | None,
    on_result: Callable[[FileResult], None] | None,
    log: Callable[[str], None] | None,
    resumed: list[tuple[Path, Path]] | None,
    run: RunSettings,
) -> list[FileResult]:
    if isinstance(profile, (str, os.PathLike)):
        from piaa.models.profile import load_profile

        profile = load_profile(profile)
    if isinstance(generic, (str, os.PathLike)):
        from piaa.models.profile import load_profile

        generic = load_profile(generic)
    failures = failures if failures is not None else FailureLog()
    scorers = {"personal": pixel_scorer(profile)}
    if generic is not None:
        scorers["generic"] = pixel_scorer(generic)
    method, predictors = prepare_predictors(
        profile, scorers, settings.ops, settings.method, album=album, inputs=files, run=run, log=log
    )
    chosen = dataclasses.replace(settings, method=method)
    results: list[FileResult] = []
    taken: set[Path] = set()
    manifest = Manifest(out, settings_key(scorers, settings, method))
    for path in tqdm(files, desc="retouching", unit="photo", disable=not run.progress):
        if (earlier := manifest.done(Path(path))) is not None:
            if resumed is not None:
                resumed.append((Path(path), earlier))
            continue
        try:
            img, fmt, exif = read_photo(path)
            runs = {k: apply_retouch(sc, img, chosen, predictors[k]) for k, sc in scorers.items()}
            fmt, name = output_format(fmt, Path(path).name)
            output = write_new(out, name, encode(runs["personal"].image, fmt, exif, name), taken)
            taken.add(output)
            res = FileResult(Path(path), output, runs["personal"])
            if "generic" in runs:
                res.generic = runs["generic"]
                res.generic_output = write_new(
                    out / "generic", output.name, encode(runs["generic"].image, fmt, exif, name)
                )
                images = {
                    "original": img,
                    "generic": runs["generic"].image,
                    "personal": runs["personal"].image,
                }
                res.scores = {
                    model: dict(zip(images, _score(sc, list(images.values())), strict=True))
                    for model, sc in scorers.items()
                }
            else:
                images = {"original": img, "personal": runs["personal"].image}
                r = runs["personal"]
                res.scores = {"personal": {"original": r.score_before, "personal": r.score_after}}
            res.thumbs = {k: _thumb(v) for k, v in images.items()}
        except ImageError as e:
            failures.add(path, e)
            continue
        except OSError as e:  # a full disk, a quota, a folder made read-only: the result is not written
            failures.add(path, f"not written ({os_reason(e)})")
            continue
        except ValueError as e:  # e.g. a format that cannot be written
            failures.add(path, e)
            continue
        manifest.add(Path(path), output, res.generic_output)
        results.append(res)
        if on_result is not None:
            on_result(res)
    return results


def _data_uri(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def write_report(
    path: Path, results: Sequence[FileResult], profile_name: str, generic_name: str | None
) -> Path:
    """``report.html``: one row per photo, original / generic retouch / personal retouch, each with the
    scores of both models (the page style of ``piaa demo``'s report; thumbnails embedded). It replaces
    the report an earlier piaa run wrote there (the folder's :class:`Manifest` says so), never another
    file (``report-retouched.html`` then); returns its path."""
    models = [m for m in ("personal", "generic") if any(m in r.scores for r in results)]
    labels = {"personal": f"personal ({profile_name})", "generic": f"generic ({generic_name})"}
    rows = []
    for r in results:
        cells = []
        for kind in ("original", "generic", "personal"):
            if kind not in r.thumbs:
                continue
            scores = "<br>".join(
                f"{m}: {r.scores[m][kind]:.2f}" for m in models if m in r.scores and kind in r.scores[m]
            )
            cells.append(
                f'<figure><img src="{_data_uri(r.thumbs[kind])}"><figcaption>{kind}<br>'
                f"<small>{scores}</small></figcaption></figure>"
            )
        params = "; ".join(
            f"{op}: " + ", ".join(f"{k} {v:+.2f}" for k, v in p.items())
            for op, p in r.personal.params.items()
        )
        if r.personal.kept_original:
            params = f"original kept: no edit raised the score ({params})"
        rows.append(
            f"<h2>{html.escape(r.source.name)} → {html.escape(r.output.name)}</h2>"
            f'<div class="row">{"".join(cells)}</div>'
            f"<p><small>personal edit ({r.personal.method}): {html.escape(params)}</small></p>"
        )
    legend = ", ".join(html.escape(labels[m]) for m in models)
    page = f"""<!doctype html><meta charset="utf-8"><title>piaa retouch</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}} .row{{display:flex;flex-wrap:wrap;gap:8px}}
figure{{margin:0;width:256px;text-align:center;font-size:13px}}
img{{max-width:256px;max-height:192px}} h2{{font-size:15px;margin-bottom:4px}}</style>
<h1>piaa retouch: original and retouched photos</h1>
<p>Scores on 1-10 (higher is better) by each model: {legend}. The personal retouch maximises the
personal model's score (the paper's section 4.6); the generic retouch maximises the generic model's.</p>
{"".join(rows)}
"""
    manifest = Manifest(path.parent, "")
    data = page.encode("utf-8")
    if not os.path.lexists(path) or manifest.owns_report(path):
        atomic_write_bytes(path, data)
        written = path
    else:
        written = write_new(path.parent, path.name, data)
    manifest.set_report(written)
    return written
