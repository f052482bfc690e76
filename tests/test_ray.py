"""Reference builds and scoring on a (local) Ray cluster give what a local run gives."""

import json
import sqlite3

import numpy as np
import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from piaa.cli.main import app  # noqa: E402
from piaa.features.reference import DB_NAME, Reference, build_reference  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _rows(path):
    db = sqlite3.connect(path / DB_NAME)
    items = db.execute("SELECT idx, image_id, status, error IS NULL FROM items ORDER BY idx").fetchall()
    maps = db.execute("SELECT idx, z1, z2, z3, stats FROM maps ORDER BY idx").fetchall()
    db.close()
    return items, maps


def test_ray_build_equals_a_local_build(local_ray, ref_corpus, tmp_path, lite0):
    args = (ref_corpus["labels"], ref_corpus["images"])
    local = build_reference(*args, tmp_path / "LOCAL", backbone=lite0, batch_size=4, progress=False)
    remote = build_reference(*args, tmp_path / "RAY", backbone=lite0, batch_size=4, progress=False, ray=True)
    assert (remote.embedded, remote.total) == (local.embedded, local.total) == (17, 20)
    assert sorted(p.name for p, _ in remote.failures) == sorted(p.name for p, _ in local.failures)
    (li, lm), (ri, rm) = _rows(tmp_path / "LOCAL"), _rows(tmp_path / "RAY")
    assert li == ri and [m[0] for m in lm] == [m[0] for m in rm]
    for a, b in zip(lm, rm, strict=True):
        for x, y in zip(a[1:], b[1:], strict=True):
            np.testing.assert_allclose(np.frombuffer(x, "<f2"), np.frombuffer(y, "<f2"), atol=2e-2, rtol=1e-2)
    lr, rr = Reference.open(tmp_path / "LOCAL"), Reference.open(tmp_path / "RAY")
    np.testing.assert_allclose(rr.embeddings, lr.embeddings, atol=1e-4)
    q = np.asarray(lr.embeddings[:3])
    np.testing.assert_array_equal(rr.neighbors(q, 5)[1], lr.neighbors(q, 5)[1])


def test_ray_build_resumes_a_local_one(local_ray, ref_corpus, tmp_path, lite0):
    args = (ref_corpus["labels"], ref_corpus["images"])
    out = tmp_path / "R"
    build_reference(*args, out, backbone=lite0, batch_size=4, limit=10, progress=False)
    db = sqlite3.connect(out / DB_NAME)
    db.execute("UPDATE items SET status = 0, embedding = NULL WHERE idx >= 5")  # as if killed half-way
    db.execute("UPDATE meta SET value = '0' WHERE key = 'complete'")
    db.commit()
    db.close()
    rep = build_reference(*args, out, backbone=lite0, batch_size=4, limit=10, progress=False, ray="local")
    assert rep.resumed_from == 5 and rep.newly_embedded == 5 and rep.embedded == 10
    assert len(Reference.open(out)) == 10


def test_cli_score_with_ray_equals_local(local_ray, demo_world, tmp_path):
    ex = demo_world["example"]
    runner = CliRunner()
    prof = tmp_path / "me"
    res = runner.invoke(
        app, ["personalize", "--album", str(ex.album), "--reference", str(demo_world["reference"]),
              "--out", str(prof), "--generic-epochs", "1", "--rank-epochs", "1"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = {}
    for name, extra in (("local", []), ("ray", ["--ray", "local"])):
        out[name] = tmp_path / f"{name}.json"
        res = runner.invoke(
            app, ["score", str(ex.album), "--profile", str(prof), "--output", str(out[name]), *extra]
        )
        assert res.exit_code == 0, res.output
    local, remote = (json.loads(out[n].read_text()) for n in ("local", "ray"))
    assert len(local) == len(remote) > 30
    by_path = {r["path"]: r["score"] for r in remote}
    assert set(by_path) == {r["path"] for r in local}
    for r in local:
        assert by_path[r["path"]] == pytest.approx(r["score"], abs=2e-3)
