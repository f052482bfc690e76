"""The evaluation protocol and ``piaa bench`` on a small photo folder (the demo's example photos)."""

import numpy as np
import pytest
from typer.testing import CliRunner

from piaa.cli.main import app
from piaa.evaluation import protocol as bench
from piaa.models.train import TrainConfig

FAST = TrainConfig(generic_epochs=2, rank_epochs=3)


@pytest.fixture(scope="module")
def world(demo_world):
    return bench.simulated_world(demo_world["example"].album, persons=2, album_size=40, progress=False)


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
    result = bench.run(world, xs=(10, 20), splits=1, config=FAST, progress=False)
    table = result.table()
    for m in [*bench.METHODS, "oracle (noise-free taste)"]:
        assert m in table
        assert len(result.rho[(m, 10)]) == 2
    assert all(-1 <= r <= 1 for v in result.rho.values() for r in v)
    assert np.mean(result.rho[("oracle (noise-free taste)", 20)]) > 0.5


def test_unknown_method_is_refused(world):
    with pytest.raises(ValueError, match="unknown methods"):
        bench.run(world, methods=["magic"], progress=False)


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
    assert "flickr-aes needs --images DIR and --workers FILE" in res.output
    assert "Traceback" not in res.output
