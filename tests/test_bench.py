"""The evaluation protocol and ``piaa bench`` on a small photo folder (the demo's example photos)."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from piaa.cli.main import app
from piaa.data.datasets import RatedAlbum
from piaa.evaluation import protocol as bench
from piaa.evaluation.worlds import PooledAlbum
from piaa.models.train import TrainConfig
from piaa.settings import QUIET

FAST = TrainConfig(generic_epochs=2, rank_epochs=3)


@pytest.fixture(scope="module")
def world(demo_world):
    return bench.simulated_world(demo_world["example"].album, persons=2, album_size=40, run=QUIET)


def test_simulated_world_has_albums_reference_and_ratings(world):
    assert len(world.albums) == 2
    assert len(world.ref_emb) + len(world.photo_emb) == 105
    for a in world.albums:
        assert len(a.photos) == 40 and set(np.unique(a.scores)) <= {2.0, 4.0, 6.0, 8.0, 10.0}
        assert len(np.unique(a.scores)) == 5 and a.truth is not None
    np.testing.assert_allclose(world.ref_dists.sum(1), 1, atol=1e-5)


def test_split_follows_the_protocol(world):
    rng = np.random.default_rng(0)
    album = world.albums[0]
    s = bench.make_split(world, album, 10, rng, TrainConfig(k=5))
    assert len(s.train) == 10 and len(s.test) == 30 and not set(s.train) & set(s.test)
    score = dict(zip(album.photos.tolist(), album.scores, strict=True))
    assert all(score[a] > score[b] for a, b in s.pairs)  # equal ratings discarded, preferred first
    assert set(s.pairs.ravel()) <= set(s.train)
    assert len(s.neighbors) <= 50  # neighbours of the 10 training photos only


def test_run_reports_every_method_and_the_oracle(world):
    result = bench.run(world, xs=(10, 20), splits=1, config=FAST, settings=QUIET)
    table = result.table()
    for m in [*bench.EVALUATION_METHODS, "oracle (noise-free taste)"]:
        assert m in table
        assert len(result.rho[(m, 10)]) == 2
    assert all(-1 <= r <= 1 for v in result.rho.values() for r in v)
    assert np.mean(result.rho[("oracle (noise-free taste)", 20)]) > 0.5


def test_unknown_method_is_refused(world):
    with pytest.raises(ValueError, match="unknown methods"):
        bench.run(world, methods=["magic"], settings=QUIET)


def test_cli_quick_bench_writes_table_and_plot(demo_world, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "bench",
            "--photos",
            str(demo_world["example"].album),
            "--quick",
            "--methods",
            "piaa (full),R-SVM",
            "--splits",
            "1",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    md = (tmp_path / "results.md").read_text()
    assert "| **piaa (full)** |" in md and "| R-SVM |" in md
    assert (tmp_path / "results.png").stat().st_size > 1000


@pytest.mark.parametrize("name", ["flickr-aes", "FLICKR_AES", "flickr aes"])
def test_cli_flickr_aes_without_its_files_is_one_line_error(name, tmp_path):
    res = CliRunner().invoke(
        app,
        ["bench", "--dataset", name, "--dataset-root", str(tmp_path), "--reference", str(tmp_path)],
    )
    assert res.exit_code != 0
    assert "flickr-aes needs --images DIR and --test-workers FILE" in res.output
    assert "Traceback" not in res.output


def test_every_registered_method_scores_every_test_photo(world):
    tiny = TrainConfig(generic_epochs=1, rank_epochs=1, k=5)
    s = bench.make_split(world, world.albums[0], 10, np.random.default_rng(1), tiny)
    for name, method in bench.EVALUATION_METHODS.items():
        pred = method(s)
        assert pred.shape == s.test.shape and np.isfinite(pred).all(), name


def test_baselines_leave_the_global_random_state_alone(world):
    s = bench.make_split(world, world.albums[1], 10, np.random.default_rng(2), FAST)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    first = {m: bench.EVALUATION_METHODS[m](s) for m in ("R-SVM", "R-SVR", "RankIQA-style")}
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state()[1:], np_state[1:], strict=True))
    torch.manual_seed(123)  # another state must not change a seeded result
    np.random.seed(5)
    for m, pred in first.items():
        np.testing.assert_array_equal(bench.EVALUATION_METHODS[m](s), pred, err_msg=m)


def test_albums_are_rated_albums_with_their_photo_files(world):
    for a in world.albums:
        assert isinstance(a, RatedAlbum) and isinstance(a, PooledAlbum)
        assert len(a.images) == len(a.photos) == len(a.scores) and all(p.is_file() for p in a.images)


def test_dataset_world_keeps_readable_photos_of_large_enough_albums(demo_world, tmp_path):
    photos = sorted(demo_world["example"].album.glob("*.jpg"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    albums = [
        RatedAlbum("big", [*photos[:13], broken], np.linspace(1, 10, 14)),
        RatedAlbum("small", photos[13:20], np.full(7, 5.0)),  # under 12 photos: skipped
    ]
    w = bench.dataset_world(demo_world["reference"], albums, run=QUIET)
    (a,) = w.albums
    assert a.user == "big" and a.images == photos[:13]
    np.testing.assert_array_equal(a.scores, np.linspace(1, 10, 14)[:13])
    assert len(w.photo_emb) == 20 and a.truth is None
    np.testing.assert_allclose(np.linalg.norm(w.photo_emb, axis=1), 1, atol=1e-5)
