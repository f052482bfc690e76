"""``piaa retouch``: retouch photo files toward a person's taste, safely.

- Results go into an output folder, one per input, under the input's name and in its format (JPEG at
  quality 95), at full resolution, sRGB (an embedded ICC profile is converted to sRGB first), with the
  input's EXIF kept, its orientation applied to the pixels and the orientation tag reset to 1.
- No existing file is ever written over, originals included: when ``DIR/name`` exists (``--out`` is the
  input's own folder, a second run, or two inputs with the same name), the result is named
  ``stem-retouched.ext``, then ``stem-retouched-2.ext``, ... The name is claimed with a hard link of a
  fully written temporary file, which fails instead of replacing a file that appeared meanwhile.
- A batch goes on past unreadable files and lists them at the end (the CLI exits 2).
- ``report.html`` shows original / generic retouch / personal retouch thumbnails (embedded, so the page
  is one file) with both models' scores.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm.auto import tqdm

from piaa.data.images import FailureLog, ImageError, load_image
from piaa.retouch.core import (
    DEFAULT_METHOD,
    DEFAULT_OPS,
    MIN_ALBUM,
    ParamPredictor,
    RetouchResult,
    resolve_method,
    retouch_image,
    thumbnail,
)
from piaa.retouch.ops import get_ops
from piaa.retouch.scoring import PixelScorer, pixel_scorer

_ORIENTATION = 0x0112
_SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}, "PNG": {}, "TIFF": {}, "BMP": {}}
_EXIF_FORMATS = {"JPEG", "WEBP", "PNG", "TIFF"}


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
    ``stem-retouched.ext``, ``stem-retouched-2.ext``, ...: never over an existing file. Returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = os.path.splitext(name)
    candidates = (
        name,
        f"{stem}-retouched{suffix}",
        *(f"{stem}-retouched-{k}{suffix}" for k in range(2, 10_000)),
    )
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        for cand in candidates:
            path = folder / cand
            if (taken and path in taken) or os.path.lexists(path):
                continue
            try:
                os.link(tmp, path)  # atomic and exclusive: fails if the name appeared meanwhile
            except FileExistsError:
                continue
            except OSError:  # no hard links here (some network/FAT file systems): check, then rename
                if os.path.lexists(path):
                    continue
                os.rename(tmp, path)
            return path
        raise FileExistsError(f"{folder / name}: no free name for the result")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def encode(img: Image.Image, fmt: str, exif: bytes | None, name: str = "") -> bytes:
    """The image in ``fmt`` (JPEG quality 95), with ``exif`` where the format carries it. Multi-picture
    JPEGs (Pillow's "MPO", from many cameras) are written as plain JPEG; a format piaa does not write
    falls back to the one the file name's suffix says, else PNG."""
    fmt = "JPEG" if fmt == "MPO" else fmt
    if fmt not in _SAVE_OPTIONS:
        fmt = Image.registered_extensions().get(os.path.splitext(name)[1].lower(), "PNG")
        fmt = fmt if fmt in _SAVE_OPTIONS else "PNG"
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
    progress: bool = False,
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
            if progress and not bars:  # only once training starts: a saved predictor needs no bar
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
        raise ValueError(
            f"method 'learned' needs at least {MIN_ALBUM} readable photos to train on "
            "(--album, the profile's album, or the photos being retouched)"
        )
    return "optimize", {k: None for k in scorers}


def retouch_files(
    profile: Any,
    files: Sequence[Path],
    out: Path,
    *,
    ops: Sequence[str] | str = DEFAULT_OPS,
    strength: float = 1.0,
    method: str = DEFAULT_METHOD,
    generic: Any = None,
    album: Sequence[Path] | None = None,
    failures: FailureLog | None = None,
    progress: bool = True,
    on_result: Callable[[FileResult], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[FileResult]:
    """Retouch every file into ``out`` (see the module docstring); ``generic`` (a profile) also
    retouches with the generic model into ``out/generic``. ``method``: see :func:`prepare_predictors`
    (the learned predictor is trained once per profile and saved with it). Unreadable files go to
    ``failures``; ``log`` receives one-line notes (a predictor trained and where it was saved)."""
    get_ops(ops)  # unknown op names fail before any work
    failures = failures if failures is not None else FailureLog()
    scorers = {"personal": pixel_scorer(profile)}
    if generic is not None:
        scorers["generic"] = pixel_scorer(generic)
    method, predictors = prepare_predictors(
        profile, scorers, ops, method, album=album, inputs=files, progress=progress, log=log
    )
    results: list[FileResult] = []
    taken: set[Path] = set()
    for path in tqdm(files, desc="retouching", unit="photo", disable=not progress):
        try:
            img, fmt, exif = read_photo(path)
            runs = {
                k: retouch_image(None, img, ops, strength, method, predictor=predictors[k], scorer=sc)
                for k, sc in scorers.items()
            }
            name = Path(path).name
            output = write_new(out, name, encode(runs["personal"].image, fmt, exif, name), taken)
            taken.add(output)
            res = FileResult(Path(path), output, runs["personal"])
            if "generic" in runs:
                res.generic = runs["generic"]
                res.generic_output = write_new(
                    out / "generic", name, encode(runs["generic"].image, fmt, exif, name)
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
        except (OSError, ValueError) as e:  # e.g. a format that cannot be written, a full disk
            failures.add(path, e)
            continue
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
    scores of both models (the page style of ``piaa demo``'s report; thumbnails embedded). Like the
    photos, it never replaces an existing file (``report-retouched.html`` then); returns its path."""
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
    return write_new(path.parent, path.name, page.encode("utf-8"))
