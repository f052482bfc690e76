"""Personalized retouching: operators, differentiable scorer, parameter finding, API and CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance
from typer.testing import CliRunner

from conftest import synthetic_photo
from piaa.cli.main import app
from piaa.evaluation.simulate import haze, photo_attributes
from piaa.features.extract import FeatureExtractor
from piaa.models.profile import Profile
from piaa.models.train import TrainConfig, cached_source, fit_ranking, new_head
from piaa.retouch import (
    OPS,
    RetouchSettings,
    apply_ops,
    find_params,
    get_ops,
    pixel_scorer,
    retouch_image,
    train_predictor,
)
from piaa.retouch.core import _contexts, apply_full, thumbnail
from piaa.retouch.ops import dark_channel
from piaa.retouch.scoring import to_pil, to_tensor
from piaa.settings import RunSettings

runner = CliRunner()


def _bright(x: torch.Tensor) -> float:
    return float(x.mean())


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [synthetic_photo(rng, 120, 90) for _ in range(8)]


@pytest.fixture(scope="module")
def bright_profile(lite0, photos) -> Profile:
    """A head trained in seconds to prefer the brighter of two exposures of the same scene (its
    low-level statistics standardized on more varied images, as a reference corpus would)."""
    factors = (0.5, 0.8, 1.2)
    imgs = [ImageEnhance.Brightness(p).enhance(f) for p in photos for f in factors]
    varied = [ImageEnhance.Color(p).enhance(s) for p in photos for s in (0.0, 2.0)]
    fe = FeatureExtractor(lite0, RunSettings(engine="torch", progress=False))
    maps = fe.images(imgs)
    pairs = [(3 * s + j, 3 * s + i) for s in range(len(photos)) for i in range(3) for j in range(i + 1, 3)]
    cfg = TrainConfig(rank_epochs=30, rank_lr=2e-3, batch_size=8)
    head = new_head(lite0.info.channels, cfg, lite0.info.stats_dim)
    head.fit_stats_scaling(torch.cat([maps.stats, fe.images(varied).stats]))
    fit_ranking(head, cached_source(maps), torch.tensor(pairs), cfg)
    return Profile(head, lite0, {})


# ------------------------------------------------------------------------------------------ ops


@pytest.mark.parametrize("name", list(OPS))
def test_each_op_is_identity_at_zero_params_and_zero_strength(name):
    op = OPS[name]
    x = torch.rand(2, 3, 37, 53)
    assert torch.allclose(op.apply(x, torch.zeros(op.size)), x, atol=1e-5)
    assert torch.allclose(op.apply(x, torch.full((op.size,), 2.0), strength=0.0), x, atol=1e-5)


def test_exposure_brightens_monotonically_with_ev_and_curve():
    x = to_tensor(synthetic_photo(np.random.default_rng(0)))
    ev = [_bright(OPS["exposure"].apply(x, torch.tensor([r, 0.0]))) for r in (-1.0, -0.3, 0.0, 0.3, 1.0)]
    curve = [_bright(OPS["exposure"].apply(x, torch.tensor([0.0, r]))) for r in (-1.0, 0.0, 1.0)]
    assert ev == sorted(ev) and ev[0] < ev[-1] - 0.1
    assert curve == sorted(curve) and curve[0] < curve[-1] - 0.1


def test_saturation_raises_colourfulness():
    img = synthetic_photo(np.random.default_rng(0))
    x = to_tensor(img)
    col = [
        photo_attributes(to_pil(OPS["colour"].apply(x, torch.tensor([r, 0.0, 0.0]))))[1] for r in (-1, 0, 1)
    ]
    assert col[0] < col[1] < col[2]


def test_temperature_warms():
    x = to_tensor(synthetic_photo(np.random.default_rng(0)))
    warm = OPS["colour"].apply(x, torch.tensor([0.0, 1.0, 0.0]))
    assert float((warm[:, 0] - warm[:, 2]).mean()) > float((x[:, 0] - x[:, 2]).mean()) + 0.02


def test_dehaze_clears_a_synthetic_hazy_photo():
    clear = to_tensor(synthetic_photo(np.random.default_rng(0), 160, 120)) * 0.8
    hazy = clear * 0.5 + 0.9 * 0.5  # I = J t + A (1 - t), t = 0.5, airlight 0.9
    op = OPS["dehaze"]
    out = op.apply(hazy, torch.tensor([2.0, 0.0]), **op.context(hazy))
    assert float(dark_channel(out).mean()) < float(dark_channel(hazy).mean()) - 0.1
    assert float(out.std()) > float(hazy.std()) * 1.3
    assert float((out - clear).abs().mean()) < float((hazy - clear).abs().mean())
    assert haze(to_pil(out)) < haze(to_pil(hazy))


def test_unknown_op_and_wrong_parameter_count_are_refused():
    with pytest.raises(ValueError, match="unknown retouching op"):
        get_ops("exposure,sharpen")
    with pytest.raises(ValueError, match="parameters"):
        apply_ops(torch.rand(1, 3, 8, 8), get_ops("exposure"), torch.zeros(3))


def test_full_resolution_path_matches_tensor_path():
    img = synthetic_photo(np.random.default_rng(2), 301, 207)
    ops = get_ops("exposure,colour,dehaze")
    raw = torch.tensor([0.8, -0.4, 0.3, 0.5, -0.5, 0.6, 0.3])
    x = to_tensor(img)
    ctx = _contexts(ops, thumbnail(img, 224))
    a = np.asarray(to_pil(apply_ops(x, ops, raw, 0.7, ctx)), int)
    b = np.asarray(apply_full(img, ops, raw, 0.7, ctx), int)
    assert np.abs(a - b).max() <= 2 and np.abs(a - b).mean() < 0.5


# --------------------------------------------------------------------------------------- scorer


def test_pixel_scorer_agrees_with_profile_score(bright_profile, photos, tmp_path):
    files = []
    for i, p in enumerate(photos[:4]):
        files.append(tmp_path / f"{i}.jpg")
        ImageEnhance.Brightness(p).enhance(0.6 + 0.3 * i).save(files[-1], quality=95)
    ref = [r.score for r in bright_profile.score(files)]
    assert max(ref) - min(ref) > 0.3  # the check below means something
    scorer = pixel_scorer(bright_profile)
    with torch.no_grad():
        mine = [float(scorer(to_tensor(Image.open(f).convert("RGB")))) for f in files]
    assert np.abs(np.array(mine) - np.array(ref)).max() < 0.05


def test_gradients_flow_from_score_to_pixels_and_params(bright_profile, photos):
    bright_profile.head.zero_grad(set_to_none=True)
    scorer = pixel_scorer(bright_profile)
    x = to_tensor(photos[0]).requires_grad_(True)
    scorer(x).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    ops = get_ops("exposure,colour,dehaze")
    thumb = thumbnail(photos[0], 224)
    raw = torch.full((7,), 0.1, requires_grad=True)
    scorer(apply_ops(thumb, ops, raw, 1.0, _contexts(ops, thumb))).sum().backward()
    assert torch.isfinite(raw.grad).all() and bool((raw.grad != 0).all())
    assert all(p.grad is None for p in bright_profile.head.parameters())  # the profile is untouched


# ---------------------------------------------------------------------------- finding parameters


def test_bright_profile_brightens_a_dark_photo_and_scores_rise(bright_profile, photos):
    dark = ImageEnhance.Brightness(photos[5]).enhance(0.5)
    r = retouch_image(bright_profile, dark, RetouchSettings(ops="exposure", steps=10))
    assert r.score_after > r.score_before
    assert r.params["exposure"]["ev"] > 0
    assert np.asarray(r.image).mean() > np.asarray(dark).mean() + 3
    half = retouch_image(bright_profile, dark, RetouchSettings(ops="exposure", strength=0.0, steps=1))
    assert np.array_equal(np.asarray(half.image), np.asarray(dark))


def test_params_found_on_thumbnail_apply_at_full_resolution(bright_profile, photos, tmp_path):
    big = photos[3].resize((1031, 643))
    path = tmp_path / "big.png"
    big.save(path)
    out = retouch_image(bright_profile, path, RetouchSettings(steps=3)).image
    assert isinstance(out, Image.Image) and out.size == (1031, 643) and out.mode == "RGB"


def test_learned_predictor_starts_at_identity_and_trains(bright_profile, photos):
    scorer = pixel_scorer(bright_profile)
    ops = get_ops("exposure,colour")
    thumbs = torch.cat([thumbnail(ImageEnhance.Brightness(p).enhance(0.6), 224) for p in photos[:4]])
    untrained = train_predictor(scorer, thumbs, ops, epochs=0)
    assert torch.equal(find_params(scorer, thumbs, ops, "learned", untrained), torch.zeros(4, 5))
    net = train_predictor(scorer, thumbs, ops, epochs=3, batch_size=4, lr=3e-2)
    raw = find_params(scorer, thumbs, ops, "learned", net)
    with torch.no_grad():
        before = scorer(thumbs)
        after = scorer(apply_ops(thumbs, ops, raw))
    assert float(after.mean()) > float(before.mean())
    again = train_predictor(scorer, thumbs, ops, epochs=3, batch_size=4, lr=3e-2)  # same seed: same net
    assert torch.equal(find_params(scorer, thumbs, ops, "learned", again), raw)
    with pytest.raises(ValueError, match="predictor"):
        find_params(scorer, thumbs, ops, "learned", None)


def test_auto_method_learns_only_with_an_album_or_a_predictor():
    from piaa.retouch.core import MIN_ALBUM, resolve_method

    assert resolve_method("auto", None, 0) == "optimize"
    assert resolve_method("auto", None, MIN_ALBUM) == "learned"
    assert resolve_method("optimize", None, 100) == "optimize"
    with pytest.raises(ValueError, match="unknown method"):
        resolve_method("magic", None)


# ------------------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def profile_dir(bright_profile, tmp_path_factory):
    return bright_profile.save(tmp_path_factory.mktemp("prof") / "bright")


def test_write_new_never_replaces_a_file(tmp_path):
    from piaa.retouch.batch import write_new

    (tmp_path / "a.jpg").write_bytes(b"original")
    assert write_new(tmp_path, "a.jpg", b"1") == tmp_path / "a-retouched.jpg"
    assert write_new(tmp_path, "a.jpg", b"2") == tmp_path / "a-retouched-2.jpg"
    assert write_new(tmp_path, "b.jpg", b"3") == tmp_path / "b.jpg"
    assert (tmp_path / "a.jpg").read_bytes() == b"original"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a-retouched-2.jpg",
        "a-retouched.jpg",
        "a.jpg",
        "b.jpg",
    ]


def _exif_rotated_jpeg(path, img):
    """Stored sideways with orientation 6 (rotate 90° clockwise to view)."""
    ex = Image.Exif()
    ex[0x0112] = 6
    ex[0x010F] = "TestCam"
    img.transpose(Image.Transpose.ROTATE_90).save(path, quality=92, exif=ex.tobytes())


@pytest.fixture
def quick_predictor(monkeypatch):
    """The learned predictor trains 2 epochs instead of 8 (tests are about the plumbing)."""
    from piaa.retouch.core import PREDICTOR_SETTINGS

    monkeypatch.setitem(PREDICTOR_SETTINGS, "epochs", 2)


def test_cli_writes_results_never_overwrites_and_lists_bad_files(
    profile_dir, photos, tmp_path, quick_predictor
):
    src = tmp_path / "in"
    src.mkdir()
    ImageEnhance.Brightness(photos[0]).enhance(0.5).save(src / "a.jpg", quality=90)
    photos[1].save(src / "b.png")
    _exif_rotated_jpeg(src / "c.jpg", photos[2])  # upright: 120 x 90
    (src / "bad.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    originals = {p.name: p.read_bytes() for p in src.iterdir()}
    args = ["retouch", str(src), "--profile", str(profile_dir), "--ops", "exposure,colour", "--out"]
    res = runner.invoke(app, [*args, str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert "bad.jpg" in res.output and "1 image skipped" in res.output
    assert "Traceback" not in res.output
    out = tmp_path / "out"
    written = {p.name for p in out.iterdir()}
    assert written == {"a.jpg", "b.png", "c.jpg", "report.html", ".piaa-retouch.jsonl"}
    assert Image.open(out / "a.jpg").format == "JPEG" and Image.open(out / "b.png").format == "PNG"
    c = Image.open(out / "c.jpg")
    assert c.size == (120, 90)  # orientation applied to the pixels...
    assert c.getexif()[0x0112] == 1 and c.getexif()[0x010F] == "TestCam"  # ...and the tag reset
    assert "data:image/jpeg;base64" in (out / "report.html").read_text()
    # --out is the input folder: results get new names; no original changes (learned: trained on the inputs)
    res = runner.invoke(app, [*args, str(src), "--no-report", "--method", "learned"])
    assert res.exit_code == 2, res.output
    assert {p.name: p.read_bytes() for p in src.iterdir() if p.name in originals} == originals
    assert (src / "a-retouched.jpg").is_file() and (src / "b-retouched.png").is_file()


@pytest.mark.parametrize("inside", [".", "retouched"])
def test_cli_rerun_into_the_album_does_not_retouch_its_own_results(profile_dir, photos, tmp_path, inside):
    """--out is the album (or a folder in it): a second run keeps the first run's results and does not
    take them as new photos (no ``a-retouched-retouched.jpg``, no ``report.html`` retouched)."""
    src = tmp_path / "album"
    src.mkdir()
    photos[0].save(src / "a.jpg", quality=90)
    out = src / inside
    args = ["retouch", str(src), "--profile", str(profile_dir), "--ops", "exposure", "--method", "optimize"]
    first = runner.invoke(app, [*args, "--out", str(out)])
    assert first.exit_code == 0, first.output
    after_first = sorted(p.relative_to(src) for p in src.rglob("*"))
    second = runner.invoke(app, [*args, "--out", str(out)])
    assert second.exit_code == 0, second.output
    assert "1 photo was already retouched" in second.output
    assert "left out" in second.output and "earlier result" in second.output
    assert sorted(p.relative_to(src) for p in src.rglob("*")) == after_first
    assert not any("retouched-retouched" in p.name for p in src.rglob("*"))
    # a result named on the command line stays an input: the user asked for it
    from piaa.cli.retouch import _without_earlier_results

    result = (out / ("a-retouched.jpg" if inside == "." else "a.jpg")).absolute()
    with pytest.raises(ValueError, match="only earlier results"):  # walked from the album: left out
        _without_earlier_results([result], [src], out)
    assert _without_earlier_results([result], [result], out) == [result]


def test_cli_compare_generic_needs_a_generic_model(profile_dir, photos, tmp_path):
    """A profile that carries no generic model (saved before piaa kept it): one line, exit 2; --generic
    still works as an override."""
    photos[0].save(tmp_path / "a.jpg")
    base = ["retouch", str(tmp_path / "a.jpg"), "--profile", str(profile_dir), "--out", str(tmp_path / "o")]
    res = runner.invoke(app, [*base, "--compare-generic"])
    assert res.exit_code == 2 and "--generic" in res.output and "Traceback" not in res.output
    assert "does not carry its generic model" in res.output
    res = runner.invoke(app, [*base, "--compare-generic", "--generic", str(profile_dir), "--ops", "exposure"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "generic" / "a.jpg").is_file()
    page = (tmp_path / "o" / "report.html").read_text()
    assert page.count("<figure>") == 3 and "generic" in page


# ------------------------------------------------------------------------- the generic model kept


def _darker_twin(profile: Profile) -> torch.nn.Module:
    """A generic head that differs from the personal one (it likes dark photos: the score flipped)."""
    import copy

    head = copy.deepcopy(profile.head)
    with torch.no_grad():
        head.fc.weight.mul_(-1.0)
        head.fc.bias.copy_(head.fc.bias.flip(0))
    return head


@pytest.fixture(scope="module")
def carrying_dir(bright_profile, tmp_path_factory):
    """The bright profile saved with a generic model that prefers dark photos."""
    prof = Profile(
        bright_profile.head, bright_profile.backbone, {}, generic_head=_darker_twin(bright_profile)
    )
    return prof.save(tmp_path_factory.mktemp("carry") / "bright-with-generic")


def test_profile_saves_and_loads_its_generic_model(carrying_dir, bright_profile, photos, tmp_path):
    import shutil

    from piaa.models.profile import GENERIC, ProfileError, load_profile

    assert (carrying_dir / GENERIC).is_file()
    loaded = load_profile(carrying_dir)
    gen = loaded.generic()
    assert gen is not None and gen.backbone is loaded.backbone  # the backbone is shared, not loaded twice
    img = [ImageEnhance.Brightness(photos[0]).enhance(f) for f in (0.5, 1.3)]
    personal = [r.score for r in loaded.score(img)]
    generic = [r.score for r in gen.score(img)]
    assert personal[1] > personal[0] and generic[1] < generic[0]  # two different models, as saved
    assert (
        load_profile(carrying_dir)
        .generic()
        .head.state_dict()["fc.bias"]
        .equal(_darker_twin(bright_profile).state_dict()["fc.bias"])
    )
    # a profile from before piaa kept the generic model still loads, without one
    assert Profile.load(bright_profile.save(tmp_path / "old")).generic() is None
    # the generic weights are checked like the profile's own
    broken = tmp_path / "broken"
    shutil.copytree(carrying_dir, broken)
    data = bytearray((broken / GENERIC).read_bytes())
    data[-3] ^= 0xFF
    (broken / GENERIC).write_bytes(bytes(data))
    with pytest.raises(ProfileError, match=r"generic\.safetensors: corrupt"):
        load_profile(broken)
    (broken / GENERIC).unlink()
    with pytest.raises(ProfileError, match=r"partial profile \(generic\.safetensors is missing\)"):
        load_profile(broken)


def test_personalize_keeps_the_generic_model_it_started_from(tmp_path):
    import piaa

    rng = np.random.default_rng(5)
    album = tmp_path / "album"
    album.mkdir()
    for i in range(8):
        synthetic_photo(rng, 96, 72).save(album / f"{i}.jpg")
    (tmp_path / "prefs.csv").write_text(
        "preferred,other\n" + "".join(f"{i}.jpg,{i + 1}.jpg\n" for i in range(0, 7)), encoding="utf-8"
    )
    made = piaa.personalize(
        None, album, prefs=tmp_path / "prefs.csv", out=tmp_path / "me", generic="nima-ava", progress=False,
        select=False, rank_epochs=3,
    )  # fmt: skip
    nima = piaa.load_profile("nima-ava").head.state_dict()
    loaded = piaa.load_profile(tmp_path / "me")
    kept = loaded.generic().head.state_dict()
    assert all(torch.equal(kept[k], nima[k]) for k in nima)  # exactly the model it started from
    assert not all(torch.equal(loaded.head.state_dict()[k], nima[k]) for k in nima)  # fine-tuned away
    assert made.generic() is not None


def test_cli_compare_generic_uses_the_generic_model_the_profile_carries(carrying_dir, photos, tmp_path):
    dark = ImageEnhance.Brightness(photos[4]).enhance(0.7)
    dark.save(tmp_path / "a.jpg", quality=95)
    original = (tmp_path / "a.jpg").read_bytes()
    out = tmp_path / "o"
    args = ["retouch", str(tmp_path / "a.jpg"), "--profile", str(carrying_dir), "--out", str(out)]
    res = runner.invoke(app, [*args, "--compare-generic", "--ops", "exposure"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a.jpg").read_bytes() == original
    personal = np.asarray(Image.open(out / "a.jpg"), float).mean()
    generic = np.asarray(Image.open(out / "generic" / "a.jpg"), float).mean()
    assert personal > generic + 3  # the personal model brightens, its (dark-loving) generic one darkens
    page = (out / "report.html").read_text()
    assert page.count("<figure>") == 3 and "generic (reference)" in page


# --------------------------------------------------------------- the learned retoucher, trained once


def test_learned_retoucher_is_trained_once_and_saved_with_the_profile(
    carrying_dir, photos, tmp_path, monkeypatch, quick_predictor
):
    import shutil

    import piaa.retouch.cache as cache
    from piaa.retouch.batch import prepare_predictors
    from piaa.retouch.cache import predictor_path

    prof_dir = tmp_path / "me"
    shutil.copytree(carrying_dir, prof_dir)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, p in enumerate(photos):
        ImageEnhance.Brightness(p).enhance(0.5 + 0.1 * i).save(inputs / f"{i}.jpg", quality=90)
    args = ["retouch", str(inputs), "--profile", str(prof_dir), "--ops", "exposure", "--compare-generic"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "o1")])
    assert res.exit_code == 0, res.output
    assert "trained the personal retoucher on 8 photos" in res.output
    assert "trained the generic retoucher on 8 photos" in res.output
    saved = predictor_path(prof_dir, "personal", get_ops("exposure"))
    assert saved.is_file() and predictor_path(prof_dir, "generic", get_ops("exposure")).is_file()
    assert not list(prof_dir.glob("*.part"))
    # a later run reuses both: no training at all, and the same results
    trained = cache.train_predictor

    def no_training(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(cache, "train_predictor", no_training)
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "o2")])
    assert res.exit_code == 0, res.output
    assert "trained" not in res.output
    for name in ("0.jpg", "generic/0.jpg"):
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()
    from piaa.models.profile import load_profile
    from piaa.retouch.scoring import pixel_scorer

    prof = load_profile(prof_dir)
    method, found = prepare_predictors(
        prof, {"personal": pixel_scorer(prof)}, "exposure", "auto", train=False
    )
    assert method == "learned" and found["personal"] is not None
    # other ops have no predictor yet: without training, auto falls back to per-photo optimisation
    method, _ = prepare_predictors(
        prof, {"personal": pixel_scorer(prof)}, "exposure,colour", "auto", train=False
    )
    assert method == "optimize"
    # a stale predictor (saved for other weights) or a corrupt file is trained again and replaced
    monkeypatch.setattr(cache, "train_predictor", trained)
    net = cache.load_predictor(saved, "x", get_ops("exposure"))
    assert net is None  # the wrong key is refused
    saved.write_bytes(b"not a predictor")
    prof2 = Profile(prof.head, prof.backbone, prof.config, path=prof_dir)
    lines: list[str] = []
    method, found = prepare_predictors(
        prof2, {"personal": pixel_scorer(prof2)}, "exposure", "auto", inputs=sorted(inputs.iterdir()),
        log=lines.append,
    )  # fmt: skip
    assert method == "learned" and len(lines) == 2 and "saved to" in lines[1]
    assert lines[0].startswith("training the personal retoucher first, once for this profile: 8 photos")
    key = cache.predictor_key(pixel_scorer(prof2), get_ops("exposure"), "inputs")
    assert cache.load_predictor(saved, key, get_ops("exposure")) is not None


def test_piaa_retouch_image_is_the_public_api(profile_dir, photos):
    import piaa

    dark = ImageEnhance.Brightness(photos[5]).enhance(0.5)
    settings = piaa.RetouchSettings(ops=("exposure",), method="optimize", steps=4)
    out = piaa.retouch_image(str(profile_dir), dark, settings).image
    assert isinstance(out, Image.Image) and out.size == dark.size
    assert np.asarray(out, float).mean() > np.asarray(dark, float).mean() + 3
    r = piaa.retouch_image(
        profile_dir, dark, piaa.RetouchSettings(ops="exposure", method="optimize", steps=2)
    )
    assert r.method == "optimize" and set(r.params) == {"exposure"}
    assert not callable(piaa.retouch)  # a plain package: one way in, one return type
    with pytest.raises(ValueError, match="unknown retouching op"):
        piaa.RetouchSettings(ops=("sharpen",))
    with pytest.raises(ValueError, match="strength must be in"):
        piaa.RetouchSettings(strength=2)


def test_cli_retouches_with_the_shipped_model_from_a_fresh_install(photos, tmp_path):
    """``--profile nima-ava``: no training, no folder (its input pipeline resizes with "nearest")."""
    dark = ImageEnhance.Brightness(photos[6]).enhance(0.6)
    dark.save(tmp_path / "a.jpg", quality=95)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    out = tmp_path / "o"
    args = ["retouch", str(tmp_path / "a.jpg"), str(tmp_path / "bad.jpg"), "--profile", "nima-ava"]
    res = runner.invoke(app, [*args, "--out", str(out), "--ops", "exposure"])
    assert res.exit_code == 2 and "bad.jpg" in res.output and "Traceback" not in res.output
    assert (out / "a.jpg").is_file() and Image.open(out / "a.jpg").size == dark.size
    assert "nima-ava" in (out / "report.html").read_text()
    res = runner.invoke(app, [*args, "--out", str(out), "--compare-generic"])
    assert res.exit_code == 2 and "--generic" in res.output and "Traceback" not in res.output


def test_collect_page_prepares_the_learned_retoucher_and_then_uses_it(
    carrying_dir, photos, tmp_path, quick_predictor
):
    """What ``piaa collect`` does after training: train both models' predictors in the background, save
    them with the profile, and retouch ranked photos with them (before that, per-photo optimisation)."""
    import shutil

    from piaa.models.profile import load_profile
    from piaa.retouch.cache import predictor_path
    from piaa.web.retouching import BeforeAfter

    prof_dir = tmp_path / "me-profile"
    shutil.copytree(carrying_dir, prof_dir)
    files = {}
    for i, p in enumerate(photos):
        files[f"{i}.jpg"] = tmp_path / f"{i}.jpg"
        ImageEnhance.Brightness(p).enhance(0.6 + 0.1 * i).save(files[f"{i}.jpg"], quality=92)
    profile = load_profile(prof_dir)
    ba = BeforeAfter(files)
    before = ba.retouch(profile, "0.jpg")
    assert before["method"] == "optimize" and list(before["images"]) == ["original", "generic", "personal"]
    ba.prepare(profile)
    assert ba.state == "ready", ba.message
    ops = get_ops("exposure,colour,dehaze")
    assert (
        predictor_path(prof_dir, "personal", ops).is_file()
        and predictor_path(prof_dir, "generic", ops).is_file()
    )
    after = ba.retouch(profile, "0.jpg")
    assert after["method"] == "learned" and set(after["scores"]) == {"personal", "generic"}
    assert after["scores"]["personal"]["personal"] > after["scores"]["personal"]["original"]
    with pytest.raises(KeyError):
        ba.retouch(profile, "../elsewhere.jpg")


def test_cli_out_that_is_a_file_is_one_error_before_any_work(photos, tmp_path, monkeypatch):
    """``--out`` naming an existing file once failed every photo with a raw ``FileExistsError`` (after
    training the predictor); it is one line naming --out, exit 2, and the file is untouched."""
    photos[0].save(tmp_path / "a.jpg")
    (tmp_path / "taken.jpg").write_bytes(b"mine")
    monkeypatch.setattr("piaa.retouch.batch.retouch_files", lambda *a, **k: pytest.fail("worked first"))
    args = ["retouch", str(tmp_path / "a.jpg"), "--profile", "nima-ava", "--out", str(tmp_path / "taken.jpg")]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "taken.jpg: --out exists and is not a folder" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert (tmp_path / "taken.jpg").read_bytes() == b"mine"


def test_cli_out_that_cannot_be_written_is_one_error_before_any_work(photos, tmp_path, monkeypatch):
    """An --out that cannot be made a folder (here under a file; a read-only disk alike) failed every photo
    with a raw ``FileNotFoundError``/``NotADirectoryError`` blamed on the photo."""
    photos[0].save(tmp_path / "a.jpg")
    (tmp_path / "file").write_bytes(b"mine")
    monkeypatch.setattr("piaa.retouch.batch.retouch_files", lambda *a, **k: pytest.fail("worked first"))
    out = tmp_path / "file" / "out"
    res = runner.invoke(app, ["retouch", str(tmp_path / "a.jpg"), "--profile", "nima-ava", "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert f"{out}: cannot write the results there" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
