import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from piaa.backbones import BackboneError, create_backbone, list_backbones
from piaa.backbones.base import file_hash
from piaa.settings import QUIET

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968}  # espresso, cup


def test_registry_lists_the_backbones():
    assert {"efficientnet-lite0", "efficientnet-lite2", "vgg16", "nima-mobilenet"} <= set(list_backbones())


def test_unknown_backbone_names_the_choices():
    with pytest.raises(BackboneError, match="efficientnet-lite0"):
        create_backbone("resnet9000")


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite2"])
def test_embedded_weights_are_real_imagenet_weights(name):
    bb = create_backbone(name)
    pp = bb.preprocess
    x = pp.to_tensor(
        np.stack([pp.from_pil(Image.fromarray(data.chelsea())), pp.from_pil(Image.fromarray(data.coffee()))])
    )
    with torch.no_grad():
        top = bb.classify(x).argmax(1).tolist()
    assert top[0] in CAT_CLASSES
    assert top[1] in COFFEE_CLASSES


@pytest.mark.parametrize(
    ("name", "size", "c1", "s1", "s2"),
    [
        ("efficientnet-lite0", 224, 112, 14, 7),
        ("efficientnet-lite2", 260, 120, 17, 9),
    ],
)
def test_lite_feature_maps(name, size, c1, s1, s2):
    bb = create_backbone(name)
    assert bb.preprocess.size == size
    with torch.no_grad():
        f = bb(torch.zeros(2, 3, size, size))
    assert f.z1.shape == (2, c1, s1, s1)
    assert f.z2.shape == (2, 1280, s2, s2)
    assert f.z3.shape == (2, 1280, 1, 1)
    assert f.embedding.shape == (2, bb.info.embed_dim)
    assert bb.info.channels == (c1, 1280, 1280)
    torch.testing.assert_close(f.embedding, f.z2.mean((2, 3)))


def test_packaged_weights_hash_is_stable_and_random_weights_reproducible(lite0):
    again = create_backbone("efficientnet-lite0")
    assert lite0.info.weights_hash == again.info.weights_hash != "random"
    r1, r2 = create_backbone("efficientnet-lite0", None), create_backbone("efficientnet-lite0", None)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(r1(x).z2, r2(x).z2)
        assert not torch.allclose(r1(x).z2, lite0(x).z2)


def test_preprocess_squashes_whole_image_and_normalises(lite0):
    pp = lite0.preprocess
    img = Image.new("RGB", (400, 100), (255, 0, 128))
    arr = pp.from_pil(img)
    assert arr.shape == (224, 224, 3) and arr.dtype == np.uint8
    x = pp.to_array(arr)
    assert x.shape == (1, 3, 224, 224)
    np.testing.assert_allclose(x[0, :, 100, 100], [1.0, -1.0, 128 / 127.5 - 1], atol=1e-6)


def test_vgg16_taps_with_random_weights():
    bb = create_backbone("vgg16", weights=None)
    with torch.no_grad():
        f = bb(torch.zeros(1, 3, 224, 224))
    assert f.z1.shape == (1, 512, 28, 28)  # conv4_3
    assert f.z2.shape == (1, 512, 14, 14)  # conv5_3
    assert f.z3.shape == (1, 512, 7, 7)  # pool5
    assert f.embedding.shape == (1, 512)
    assert bb.info.preprocess.mean == (0.485, 0.456, 0.406)


def test_vgg16_loads_a_torchvision_layout_state_dict(tmp_path):
    src = create_backbone("vgg16", weights=None)
    sd = {f"features.{k}": v * 0.5 for k, v in src.features.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(4096, 25088)  # torchvision files carry the classifier too
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(sd, path)
    bb = create_backbone("vgg16", weights=path)
    torch.testing.assert_close(bb.features[0].weight, src.features[0].weight * 0.5)
    assert bb.info.weights_hash == file_hash(path)


def test_vgg16_without_weights_offline_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(BackboneError) as e:
        create_backbone("vgg16")
    msg = str(e.value)
    assert "\n" not in msg
    assert "--weights" in msg and "vgg16-397923af.pth" in msg


def test_bad_weights_file_is_one_line_error(tmp_path):
    bad = tmp_path / "w.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BackboneError, match="w.pth: not a readable"):
        create_backbone("vgg16", weights=bad)
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(BackboneError, match="not a torchvision vgg16 state dict"):
        create_backbone("vgg16", weights=wrong)


def test_channel_stats_are_spatial_mean_and_std_per_channel():
    from piaa.backbones.base import channel_stats

    a = torch.tensor([[[[1.0, 3.0], [1.0, 3.0]], [[2.0, 2.0], [2.0, 2.0]]]])  # 1 x 2 x 2 x 2
    b = torch.zeros(1, 1, 3, 3)
    s = channel_stats(a, b)
    torch.testing.assert_close(s, torch.tensor([[2.0, 2.0, 1.0, 0.0, 0.0, 0.0]]), atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", ["efficientnet-lite0", "efficientnet-lite2", "vgg16", "nima-mobilenet"])
def test_every_backbone_yields_its_low_level_statistics(name):
    bb = create_backbone(name, weights=None)
    with torch.no_grad():
        f = bb(torch.randn(2, 3, 96, 96))
    assert f.stats.shape == (2, bb.info.stats_dim) and bb.info.stats_dim > 0
    assert torch.isfinite(f.stats).all()


def test_exposure_and_colour_are_readable_from_the_statistics_not_the_deep_features(demo_world, lite0):
    """Why the head reads the statistics: on scenes it has not seen, a linear read-out recovers a photo's
    brightness and colourfulness from them, but not from the embedding or the pooled Z1."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold, cross_val_predict

    from piaa.data.images import iter_image_files
    from piaa.evaluation.simulate import photo_attributes
    from piaa.features.extract import FeatureExtractor

    files = sorted(iter_image_files([demo_world["example"].album]))  # 7 scenes x 15 variants
    imgs = [Image.open(f).convert("RGB") for f in files]
    maps = FeatureExtractor(lite0, QUIET).images(imgs)
    attrs = np.stack([photo_attributes(im) for im in imgs])
    scenes = [f.name.split("-")[0] for f in files]

    def r2(x: np.ndarray, y: np.ndarray) -> float:
        x = (x - x.mean(0)) / (x.std(0) + 1e-6)
        p = cross_val_predict(Ridge(alpha=10.0), x, y, groups=scenes, cv=GroupKFold(len(set(scenes))))
        return 1 - float(((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())

    stats, emb, z1 = maps.stats.numpy(), maps.embedding.numpy(), maps.z1.mean((2, 3)).numpy()
    for j in (0, 1):  # brightness, colourfulness
        assert r2(stats, attrs[:, j]) > 0.7
        assert r2(emb, attrs[:, j]) < 0.4 and r2(z1, attrs[:, j]) < 0.4


@pytest.mark.parametrize("name", list_backbones())
def test_config_is_readable_without_building_and_matches_the_network(name):
    from piaa.backbones import get_backbone_config

    cfg = get_backbone_config(name)
    assert cfg.name == name and cfg.license and cfg.summary
    bb = create_backbone(name, weights=None)
    assert bb.info.preprocess == cfg.preprocess
    assert bb.info.channels == cfg.channels
    assert (bb.info.embed_dim, bb.info.stats_dim) == (cfg.embed_dim, cfg.stats_dim)
    x = bb.preprocess.to_tensor(np.zeros((1, cfg.preprocess.size, cfg.preprocess.size, 3), np.uint8))
    f = bb(x)
    assert f.embedding.shape == (1, cfg.embed_dim) and f.stats.shape == (1, cfg.stats_dim)
    assert f.z1.shape[1] == cfg.channels[0] and f.z2.shape[1] == cfg.channels[1]


def test_unknown_backbone_config_is_one_line():
    from piaa.backbones import BackboneError, get_backbone_config

    with pytest.raises(BackboneError, match="unknown backbone 'nope'"):
        get_backbone_config("nope")
