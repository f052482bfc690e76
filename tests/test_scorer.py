"""The one way in: ``create_scorer`` / ``load_profile`` callable on every kind of image, as a metric and
as a differentiable loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import piaa
from conftest import synthetic_photo
from piaa.models.profile import Profile, ProfileError
from piaa.models.train import TrainConfig, new_head


@pytest.fixture(scope="module")
def profile_dir(lite0, tmp_path_factory):
    torch.manual_seed(0)
    head = new_head(lite0.info.channels, TrainConfig(), stats=lite0.info.stats_dim)
    head.fit_stats_scaling(torch.randn(8, lite0.info.stats_dim) + 1)
    out = tmp_path_factory.mktemp("scorer") / "p"
    Profile(head, lite0, {"name": "test"}).save(out)
    return out


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    for i in range(3):
        synthetic_photo(rng, 120, 90).save(folder / f"p{i}.png")
    return folder


def test_scorer_is_a_metric_with_range_and_direction(profile_dir):
    s = piaa.create_scorer(profile_dir)
    assert s.score_range == (1.0, 10.0) and s.lower_better is False
    assert "Scorer(" in repr(s)


def test_every_route_gives_the_same_score(profile_dir, photos):
    s = piaa.create_scorer(profile_dir)
    path = photos / "p0.png"
    from_path = s(path)
    assert isinstance(from_path, float) and 1.0 <= from_path <= 10.0
    img = Image.open(path).convert("RGB")
    assert s(img) == pytest.approx(from_path, abs=1e-4)
    assert s(np.asarray(img)) == pytest.approx(from_path, abs=1e-4)
    assert s(str(path)) == pytest.approx(from_path, abs=1e-4)
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
    t = s(x)
    assert t.shape == (1,) and not t.requires_grad
    assert float(t) == pytest.approx(from_path, abs=1e-4)
    # as a loss, pixels take torch's differentiable resize instead of Pillow's: close, not identical
    assert float(piaa.create_scorer(profile_dir, as_loss=True)(x)) == pytest.approx(from_path, abs=0.15)
    other = s(photos / "p1.png")
    assert other != pytest.approx(from_path, abs=1e-6)  # the scorer tells photos apart


def test_folders_and_lists_give_ranked_results(profile_dir, photos):
    s = piaa.create_scorer(profile_dir)
    results = s(photos)
    assert sorted(r.path for r in results) == sorted(str(p) for p in photos.glob("*.png"))
    assert all(len(r.distribution) == 10 and abs(sum(r.distribution) - 1) < 1e-4 for r in results)
    listed = s([photos / "p2.png", photos / "p0.png"])
    assert [r.path for r in listed] == [str(photos / "p2.png"), str(photos / "p0.png")]


def test_as_loss_is_differentiable_down_to_the_pixels(profile_dir):
    s = piaa.create_scorer(profile_dir, as_loss=True)
    x = torch.rand(2, 3, 64, 80, requires_grad=True)
    loss = (10 - s(x)).mean()  # the paper's aesthetic loss (section 4.6)
    loss.backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(not p.requires_grad for p in s.model().parameters())  # the model itself stays frozen


def test_unknown_scorer_is_one_line(tmp_path):
    with pytest.raises(ProfileError, match="no such folder"):
        piaa.create_scorer(tmp_path / "nope")


def test_bad_tensor_shape_is_a_clear_error(profile_dir):
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        piaa.create_scorer(profile_dir)(torch.rand(4, 64, 64))


def test_a_profile_whose_input_pipeline_differs_is_refused(profile_dir, tmp_path):
    import json
    import shutil

    bad = tmp_path / "p"
    shutil.copytree(profile_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["backbone"]["preprocess"]["interpolation"] = "nearest"
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ProfileError, match="input interpolation='nearest', but it is now 'bicubic'"):
        piaa.load_profile(bad)
