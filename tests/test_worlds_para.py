"""The PARA world: simulated persons whose generic appeal is PARA's real crowd mean (a tiny version on
the first photos of the shared sample; skipped without it), and its CLI switch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from piaa.data.labels import mean_score, read_labels
from piaa.evaluation import protocol as bench
from piaa.evaluation.simulate import SimulatedPerson, para_persons
from piaa.evaluation.worlds import other_backbone, para_world, simulated_world
from piaa.models.train import TrainConfig
from piaa.settings import QUIET

PARA = Path(__file__).parents[2] / "shared" / "data" / "para"
N = 60


def _need_para() -> Path:
    if not (PARA / "labels.csv").is_file():
        pytest.skip(f"shared PARA sample {PARA} is missing (expected in ../shared)")
    return PARA


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return para_world(_need_para(), persons=2, album_size=20, limit=N, cache_dir=cache, run=QUIET), cache


def test_para_persons_are_seeded_and_lean_on_the_crowd_differently() -> None:
    a, b = para_persons(12, 8, seed=0), para_persons(12, 8, seed=0)
    assert [p.crowd_weight for p in a] == [p.crowd_weight for p in b]
    assert len({round(p.crowd_weight, 6) for p in a}) == 8
    assert all(0.2 <= p.generic_share <= 0.6 and 0.3 <= p.content_weight <= 1.0 for p in a)
    assert [p.crowd_weight for p in para_persons(12, 8, seed=1)] != [p.crowd_weight for p in a]


def test_crowd_weight_enters_the_personal_part_only_when_set() -> None:
    rng = np.random.default_rng(0)
    attrs, mix, crowd = rng.normal(size=(50, 5)), rng.dirichlet(np.ones(4), 50), rng.normal(size=50)
    p = SimulatedPerson(rng.normal(size=5), rng.normal(size=4), 0.5, 0.0, 0.3)
    q = SimulatedPerson(p.weights, p.topics, 0.5, 0.0, 0.3, crowd_weight=5.0)
    follows = spearmanr(q.utility(attrs, mix, crowd), crowd)[0]
    assert follows > spearmanr(p.utility(attrs, mix, crowd), crowd)[0]
    truth, ratings = q.rate(attrs, mix, crowd, rng)
    assert set(np.unique(ratings)) == {1, 2, 3, 4, 5} and truth.shape == (50,)


def test_para_world_reference_carries_the_real_crowd_labels(world) -> None:
    w, _ = world
    labels = read_labels(PARA / "labels.csv")
    assert len(w.ref_emb) + len(w.photo_emb) == N and len(w.ref_emb) == N // 2
    real = {round(float(m), 5) for m in labels.mean_scores()[:N]}
    assert {round(float(m), 5) for m in mean_score(w.ref_dists.astype(np.float64))} <= real
    np.testing.assert_allclose(w.ref_dists.sum(1), 1, atol=1e-5)
    assert w.ref_maps.z1.shape[1] == w.channels[0] == 112  # efficientnet-lite0 learns
    assert "content from nima-mobilenet" in w.description


def test_para_world_persons_follow_the_real_crowd_partly(world) -> None:
    w, _ = world
    labels = read_labels(PARA / "labels.csv")
    paths = [str(PARA / "images" / f) for f in labels.files[:N]]
    crowd = dict(zip(paths, labels.mean_scores()[:N], strict=True))
    assert len(w.albums) == 2
    for a in w.albums:
        assert len(a.photos) == 20 and set(np.unique(a.scores)) <= {2.0, 4.0, 6.0, 8.0, 10.0}
        assert a.truth is not None and spearmanr(a.truth, a.scores)[0] > 0.5
        rho = spearmanr(a.truth, [crowd[str(p)] for p in a.images])[0]
        assert -0.95 < rho < 0.99  # the crowd matters, but the taste is not the crowd's


def test_para_world_is_seeded_and_reuses_its_cache(world) -> None:
    w, cache = world
    assert len(list(Path(cache).glob("*.npz"))) == 2  # one per backbone
    again = para_world(PARA, persons=2, album_size=20, limit=N, cache_dir=cache, run=QUIET)
    for a, b in zip(w.albums, again.albums, strict=True):
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.photos, b.photos)
    np.testing.assert_array_equal(w.ref_emb, again.ref_emb)


def test_para_world_runs_the_protocol(world) -> None:
    w, _ = world
    r = bench.run(
        w, methods=["piaa (full)", "R-SVM"], xs=(10,), splits=1, settings=QUIET,
        config=TrainConfig(generic_epochs=1, rank_epochs=2, k=5),
    )  # fmt: skip
    assert "oracle (noise-free taste)" in r.table() and "piaa (full)" in r.table()


def test_content_backbone_is_never_the_evaluated_one() -> None:
    assert other_backbone("efficientnet-lite0") == "nima-mobilenet"
    assert other_backbone("nima-mobilenet") == "efficientnet-lite0"
    with pytest.raises(ValueError, match="must differ"):
        para_world(
            _need_para(), limit=N, backbone="efficientnet-lite0", content_backbone="efficientnet-lite0",
            run=QUIET,
        )  # fmt: skip
    with pytest.raises(ValueError, match="unknown world"):
        simulated_world(PARA, kind="nope")


def test_cli_world_option(tmp_path, monkeypatch) -> None:
    from piaa.cli.main import app

    seen = {}

    def fake(photos, **kw):
        seen.update(kw, photos=photos)
        raise RuntimeError("stop here")

    monkeypatch.setattr(bench, "simulated_world", fake)
    args = ["evaluate", "--world", "para", "--photos", str(tmp_path), "--backbone", "nima-mobilenet",
            "--feature-cache", str(tmp_path / "c")]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert "stop here" in res.output or isinstance(res.exception, RuntimeError)
    assert seen["kind"] == "para" and seen["backbone"] == "nima-mobilenet"
    assert seen["cache_dir"] == tmp_path / "c" and seen["content_backbone"] is None
    res = CliRunner().invoke(app, ["evaluate", "--world", "mars", "--photos", str(tmp_path)])
    assert res.exit_code != 0 and "--world must be one of photos, para" in res.output
