"""Throughput arrangement (decoding on the network threads, one torch thread for the head while files
stream, ``--workers`` on every command that reads many photos) and embedded camera previews: the fast
paths must give the same scores as the plain ones."""

from __future__ import annotations

import importlib.util
import io
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageOps
from typer.testing import CliRunner

from conftest import synthetic_photo
from piaa.cli.main import app
from piaa.data.images import RENDERING_INTENT, FailureLog, load_image
from piaa.features.extract import FeatureExtractor
from piaa.models.profile import Profile
from piaa.models.train import TrainConfig, new_head
from piaa.settings import QUIET, RunSettings

SHARED_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"


def _bench_throughput():
    path = Path(__file__).parents[1] / "benchmarks" / "bench_throughput.py"
    spec = importlib.util.spec_from_file_location("bench_throughput", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_BENCH = _bench_throughput()
LARGE_THUMBNAIL = _BENCH.LARGE_THUMBNAIL_FULL_HD  # MPF "Large Thumbnail (Full HD Equivalent)"
save_with_preview = _BENCH.save_with_preview  # a JPEG carrying a preview in MPF, as a camera writes it


@pytest.fixture(scope="module")
def profile(lite0):
    torch.manual_seed(0)
    head = new_head(lite0.info.channels, TrainConfig(), stats=lite0.info.stats_dim)
    head.fit_stats_scaling(torch.randn(8, lite0.info.stats_dim) + 1)
    return Profile(head, lite0, {"name": "test"})


def _old_scores(profile: Profile, paths: list[Path]) -> np.ndarray:
    """Today's arrangement before this change: one decode process feeding the ONNX calls, with no
    embedded previews (the plain photos here have none)."""
    fe = FeatureExtractor(profile.backbone, RunSettings(workers=1, batch_size=8, progress=False))
    scores = [profile.score_features(b.features)[0] for b in fe.files(paths)]
    return np.concatenate(scores)


@pytest.mark.skipif(not SHARED_PHOTOS.is_dir(), reason="shared photos not available")
def test_real_photos_score_as_before(profile):
    paths = sorted(SHARED_PHOTOS.iterdir())[:20]
    old = _old_scores(profile, paths)
    profile._extractor = None
    on_threads = RunSettings(workers=0)  # decoding on the network threads, whatever this machine's cores
    new = np.array([r.score for r in profile.score_files(paths, progress=False, settings=on_threads)])
    assert len(new) == 20
    assert np.abs(new - old).max() <= 0.01
    eager = FeatureExtractor(profile.backbone, RunSettings(engine="torch", progress=False))  # reference
    ref = np.concatenate([profile.score_features(b.features)[0] for b in eager.files(paths)])
    assert np.abs(new - ref).max() <= 0.01


def _independent_pixels(path: Path, size: int) -> np.ndarray:
    """What piaa documents it does to a JPEG before the network, in plain Pillow: DCT-scaled decoding
    no smaller than the input, EXIF orientation, the embedded profile converted to sRGB, 8-bit RGB,
    a bicubic squash to ``size`` x ``size``."""
    with Image.open(path) as im:
        im.draft("RGB", (size, size))
        im.load()
        im = ImageOps.exif_transpose(im)
        icc = im.info.get("icc_profile")
        if icc:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            im = ImageCms.profileToProfile(im, src, srgb, renderingIntent=RENDERING_INTENT, outputMode="RGB")
        im = im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
        return np.asarray(im)


@pytest.mark.skipif(not SHARED_PHOTOS.is_dir(), reason="shared photos not available")
def test_real_photos_score_as_an_independent_pillow_and_pytorch_path(profile):
    """``piaa score``'s default path (decoding on the ONNX Runtime threads) against scores computed
    without piaa's loader, arrangement or ONNX: 43 real photos spread over the shared set, among them
    ones with colour profiles, greyscale ones and the three stored sideways (measured: within 1e-5)."""
    photos = sorted(SHARED_PHOTOS.iterdir())
    paths = [photos[i] for i in [*range(0, 1000, 25), 52, 473, 553]]
    prep = profile.backbone.preprocess
    assert (prep.resize, prep.interpolation, prep.draft) == ("squash", "bicubic", True)
    assert prep.mean == prep.std == (0.5, 0.5, 0.5)
    size = prep.size
    x = np.stack([_independent_pixels(p, size) for p in paths]).astype(np.float32) / 255.0
    x = torch.from_numpy((x - 0.5) / 0.5).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        ref = profile.score_features(profile.backbone.eval()(x))[0]
    profile._extractor = None
    new = np.array([r.score for r in profile.score_files(paths, progress=False, settings=RunSettings())])
    assert len(new) == len(paths)
    assert np.abs(new - np.asarray(ref)).max() <= 0.01


def test_threads_and_processes_give_the_same_batches(tmp_path, lite0):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(11):
        paths.append(tmp_path / f"{i}.jpg")
        synthetic_photo(rng, 160, 120).save(paths[-1], quality=90)
    paths.insert(4, tmp_path / "missing.jpg")
    runs = {}
    for workers in (0, 1):
        failures = FailureLog()
        fe = FeatureExtractor(lite0, RunSettings(batch_size=3, workers=workers, progress=False))
        batches = list(fe.files(paths, failures=failures))
        runs[workers] = batches
        assert [i for b in batches for i in b.indices] == [i for i in range(12) if i != 4]
        assert [p.name for p, _ in failures] == ["missing.jpg"]
    a = torch.cat([b.features.embedding for b in runs[0]])
    b = torch.cat([b.features.embedding for b in runs[1]])
    torch.testing.assert_close(a, b)


def test_torch_held_to_one_thread_while_files_stream(tmp_path, lite0):
    rng = np.random.default_rng(1)
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"{i}.png")
        synthetic_photo(rng).save(paths[-1])
    before = torch.get_num_threads()
    fe = FeatureExtractor(lite0, RunSettings(batch_size=2, workers=0, progress=False))
    assert fe.engine_name == "onnx"
    seen = [torch.get_num_threads() for _ in fe.files(paths)]
    assert seen == [1, 1, 1]
    assert torch.get_num_threads() == before
    gen = fe.files(paths)
    next(gen)
    gen.close()  # a consumer that stops early gets its threads back too
    assert torch.get_num_threads() == before


def test_decode_workers_setting(lite0, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    fe = FeatureExtractor(lite0, QUIET)
    assert FeatureExtractor(lite0, RunSettings(workers=2, progress=False)).decode_workers() == 2
    assert FeatureExtractor(lite0, RunSettings(workers=0)).decode_workers() == 0  # an explicit choice wins
    assert fe.streams == 2 and fe.decode_workers() == 0  # every core runs the network: decode there
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    assert fe.decode_workers() == 1  # a spare core decodes
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert fe.decode_workers() == 2
    assert FeatureExtractor(lite0, RunSettings(engine="torch", progress=False)).decode_workers() == 1
    with pytest.raises(ValueError, match="workers"):
        RunSettings(workers=-1)


@pytest.mark.parametrize(
    "argv",
    [["score"], ["personalize"], ["reference", "build"], ["reference", "neighbors"]],
)
def test_workers_option_on_every_command_that_reads_many_photos(argv):
    res = CliRunner().invoke(app, [*argv, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--workers" in res.output


def test_reference_build_batches_eight_by_default():
    import inspect

    from piaa.cli.reference import reference_build
    from piaa.features.reference import build_reference

    # the library's default is the run settings' (None: not given, so RunSettings' 8)
    assert inspect.signature(build_reference).parameters["batch_size"].default is None
    assert RunSettings.resolve(None, batch_size=None).batch_size == 8
    assert inspect.signature(reference_build).parameters["batch_size"].default == 8


# ---------------------------------------------------------------------------------------------------------
# embedded previews
# ---------------------------------------------------------------------------------------------------------


def _photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    if SHARED_PHOTOS.is_dir():
        with Image.open(sorted(SHARED_PHOTOS.iterdir())[seed]) as im:
            big = im.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    else:
        big = synthetic_photo(np.random.default_rng(seed), 160, 120).resize(size, Image.Resampling.BICUBIC)
    a = np.asarray(big).astype(np.int16) + np.random.default_rng(seed).normal(0, 5, (size[1], size[0], 1))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def _preview_of(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


def test_preview_stands_in_for_a_big_jpeg_when_asked(tmp_path):
    img = _photo((2400, 1600))
    path = save_with_preview(img, _preview_of(img, (960, 640)), tmp_path / "cam.jpg", quality=92)
    assert load_image(path, draft_size=(224, 224)).size == (600, 400)  # off by default: the photo, 1/4
    fast = load_image(path, draft_size=(224, 224), previews=True)
    assert fast.size == (960, 640)  # the preview, DCT-scaled no further than twice the request
    assert load_image(path, previews=True).size == (2400, 1600)  # no draft size: the photo itself
    too_small = load_image(path, draft_size=(600, 600), previews=True)
    assert too_small.size == (1200, 800)  # preview too small: the photo
    assert load_image(path, draft_size=(224, 224)).size == (600, 400)
    diff = np.abs(np.asarray(fast.resize((240, 160)), float) - np.asarray(img.resize((240, 160)), float))
    assert diff.mean() < 3


@pytest.mark.parametrize(
    ("preview_size", "mptype"),
    [
        ((400, 266), LARGE_THUMBNAIL),
        ((960, 540), LARGE_THUMBNAIL),
        ((960, 640), 0x000000),
        ((960, 640), 0x020002),
    ],
    ids=["too-small", "other-aspect", "undefined-type", "stereo-frame"],
)
def test_unfit_secondary_images_are_never_used(tmp_path, preview_size, mptype):
    img = _photo((2400, 1600))
    path = save_with_preview(img, _preview_of(img, preview_size), tmp_path / "cam.jpg", mptype=mptype)
    assert load_image(path, draft_size=(224, 224), previews=True).size == (600, 400)  # the photo, 1/4


def test_preview_takes_the_photos_orientation_and_profile(tmp_path):
    from PIL import ImageCms

    img = _photo((1800, 1200))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated 90 degrees clockwise
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = save_with_preview(
        img, _preview_of(img, (900, 600)), tmp_path / "cam.jpg", exif=exif, icc_profile=icc
    )
    fast = load_image(path, draft_size=(224, 224), previews=True)
    full = load_image(path)
    assert full.size == (1200, 1800) and fast.size == (600, 900)  # both upright
    diff = np.abs(np.asarray(fast.resize((60, 90)), float) - np.asarray(full.resize((60, 90)), float))
    assert diff.mean() < 3


def test_preview_scores_are_as_close_to_the_photo_as_draft_decoding(tmp_path, profile):
    """Camera-like JPEGs (3:2, with grain, 1620x1080 preview): scored from the preview, from the photo's
    draft decoding and from the full-resolution photo. The preview is about as faithful to the photo as
    the draft decoding is (measured: up to 0.03 from it for both)."""
    fe = FeatureExtractor(profile.backbone, QUIET)

    def score(images: list) -> np.ndarray:
        return profile.score_features(fe.forward(np.stack([fe.preprocess.from_pil(im) for im in images])))[0]

    paths = []
    for i in range(4):
        img = _photo((3000, 2000), seed=i)
        paths.append(
            save_with_preview(img, _preview_of(img, (1620, 1080)), tmp_path / f"m{i}.jpg", quality=92)
        )
    full = score([load_image(p) for p in paths])
    draft = score([load_image(p, draft_size=(224, 224)) for p in paths])
    preview = score([load_image(p, draft_size=(224, 224), previews=True) for p in paths])
    profile._extractor = None
    with_previews = RunSettings(previews=True, progress=False)
    via_files = np.array([r.score for r in profile.score_files(paths, settings=with_previews)])
    np.testing.assert_allclose(via_files, preview, atol=1e-4)
    assert np.abs(preview - full).max() <= max(0.04, np.abs(draft - full).max())
    assert np.abs(preview - full).mean() <= 0.02


def test_previews_travel_to_decode_processes_and_threads_alike(tmp_path, profile):
    """``RunSettings.previews`` is an argument, not a process-wide switch: decode processes (which a
    switch set in the parent after they start, or on a Ray actor, would not see) and the network
    threads both decode the preview, and an extractor without it decodes the photo."""
    paths = []
    for i in range(3):
        img = _photo((2400, 1600), seed=i)
        paths.append(save_with_preview(img, _preview_of(img, (960, 640)), tmp_path / f"c{i}.jpg", quality=92))

    def scores(**kw) -> np.ndarray:
        fe = FeatureExtractor(profile.backbone, RunSettings(batch_size=1, progress=False, **kw))
        batches = fe.files(paths)
        return np.concatenate([profile.score_features(b.features)[0] for b in batches])

    in_processes, on_threads = scores(workers=1, previews=True), scores(workers=0, previews=True)
    np.testing.assert_allclose(in_processes, on_threads, atol=1e-5)
    assert np.abs(scores(workers=1) - in_processes).max() > 1e-4  # the photo: another source


def test_score_previews_option(tmp_path, profile):
    img = _photo((1800, 1200))
    save_with_preview(img, _preview_of(img, (900, 600)), tmp_path / "cam.jpg", quality=92)
    profile.save(tmp_path / "p")
    runner = CliRunner()
    rows = {}
    for flag in ("--no-previews", "--previews"):
        out = tmp_path / f"{flag}.csv"
        argv = [
            "score",
            str(tmp_path / "cam.jpg"),
            "--profile",
            str(tmp_path / "p"),
            "--output",
            str(out),
            flag,
        ]
        res = runner.invoke(app, argv)
        assert res.exit_code == 0, res.output
        rows[flag] = float(out.read_text().splitlines()[1].split(",")[2])
    assert rows["--previews"] != rows["--no-previews"]  # a different source, within a few hundredths
    assert abs(rows["--previews"] - rows["--no-previews"]) < 0.1


def test_decoding_on_threads_leaves_the_warnings_machinery_as_it_was(tmp_path, lite0):
    """load_image's warning recorder is process-wide; overlapping loads on two threads must not leave
    one of them installed (every later warning of the process would vanish into it)."""
    import warnings

    rng = np.random.default_rng(2)
    paths = []
    for i in range(24):
        paths.append(tmp_path / f"{i}.jpg")
        synthetic_photo(rng, 64, 48).save(paths[-1], quality=80)
    showwarning, filters = warnings.showwarning, list(warnings.filters)
    fe = FeatureExtractor(lite0, RunSettings(batch_size=1, streams=2, workers=0, progress=False))
    assert sum(len(b.indices) for b in fe.files(paths)) == 24
    assert warnings.showwarning is showwarning and warnings.filters == filters


def test_a_broken_preview_falls_back_to_the_photo(tmp_path):
    img = _photo((2400, 1600))
    path = save_with_preview(img, _preview_of(img, (960, 640)), tmp_path / "cam.jpg", quality=92)
    with Image.open(path) as im:
        size, offset = im.mpinfo[0xB002][1]["Size"], im.mpinfo[0xB002][1]["DataOffset"]
    data = path.read_bytes()
    entry = struct.pack("<LLL", LARGE_THUMBNAIL, size, offset)
    path.write_bytes(data.replace(entry, struct.pack("<LLL", LARGE_THUMBNAIL, size // 2, offset)))
    assert load_image(path, draft_size=(224, 224), previews=True).size == (600, 400)  # the photo, 1/4
