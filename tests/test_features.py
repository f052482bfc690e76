import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from piaa.data.images import FailureLog
from piaa.features.extract import ONNX_ATOL, FeatureExtractor
from piaa.features.index import normalize
from piaa.settings import QUIET, RunSettings

SAMPLES = ["chelsea", "coffee", "astronaut", "rocket", "camera", "coins"]


def _rgb(name):
    a = getattr(data, name)()
    return np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3]


@pytest.mark.parametrize(
    "name",
    ["efficientnet-lite0", "efficientnet-lite2", "nima-mobilenet", "efficientnet-lite0+nima-mobilenet"],
)
def test_onnx_fast_path_matches_pytorch(name):
    from piaa.backbones import create_backbone

    bb = create_backbone(name)
    imgs = [_rgb(n) for n in SAMPLES]
    fast = FeatureExtractor(bb, RunSettings(engine="onnx", progress=False)).images(imgs)
    ref = FeatureExtractor(bb, RunSettings(engine="torch", progress=False)).images(imgs)
    for a, b in zip(fast, ref, strict=True):
        assert a.shape == b.shape
        assert float((a - b).abs().max()) <= ONNX_ATOL
    cos = torch.nn.functional.cosine_similarity(fast.embedding, ref.embedding)
    assert float(cos.min()) > 0.99999


def test_files_keep_order_and_skip_bad_files(tmp_path, lite0):
    paths = []
    for i, n in enumerate(SAMPLES):
        p = tmp_path / f"{i}.png"
        Image.fromarray(_rgb(n)).save(p)
        paths.append(p)
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    paths.insert(2, tmp_path / "bad.jpg")
    paths.append(tmp_path / "missing.jpg")
    fe = FeatureExtractor(lite0, RunSettings(batch_size=3, workers=1, progress=False))
    failures = FailureLog()
    batches = list(fe.files(paths, failures=failures))
    got = [i for b in batches for i in b.indices]
    assert got == [0, 1, 3, 4, 5, 6]
    assert sorted(p.name for p, _ in failures) == ["bad.jpg", "missing.jpg"]
    emb = torch.cat([b.features.embedding for b in batches])
    direct = fe.images([_rgb(n) for n in SAMPLES]).embedding
    torch.testing.assert_close(emb, direct, atol=1e-4, rtol=1e-4)
    serial = list(FeatureExtractor(lite0, RunSettings(batch_size=3, workers=0, progress=False)).files(paths))
    torch.testing.assert_close(torch.cat([b.features.embedding for b in serial]), emb)


def test_unknown_engine_rejected(lite0):
    with pytest.raises(ValueError, match="engine"):
        FeatureExtractor(lite0, RunSettings(engine="tpu"))


def test_normalize_rows():
    e = normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(e, [[0.6, 0.8], [0.0, 0.0]])


def test_a_progress_bar_of_its_own_does_not_rebuild_the_network_session(lite0):
    fe = FeatureExtractor(lite0, QUIET)
    assert fe.with_progress(False) is fe
    shown = fe.with_progress(True)
    assert shown is not fe and shown.settings.progress and not fe.settings.progress
    assert shown._onnx is fe._onnx and shown.engine_name == fe.engine_name
