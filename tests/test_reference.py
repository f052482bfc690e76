import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import synthetic_photo, write_ava
from piaa.backbones import create_backbone
from piaa.cli.main import app
from piaa.features.extract import FeatureExtractor
from piaa.features.reference import DB_NAME, Reference, ReferenceCorpusError, build_reference
from piaa.settings import QUIET


@pytest.fixture(scope="module")
def built(ref_corpus, tmp_path_factory, lite0):
    out = tmp_path_factory.mktemp("ref") / "REF"
    rep = build_reference(
        ref_corpus["labels"], ref_corpus["images"], out, backbone=lite0, batch_size=4, progress=False
    )
    return out, rep


def test_build_embeds_good_images_and_reports_bad_ones(built, ref_corpus):
    out, rep = built
    assert rep.total == 20 and rep.embedded == 17
    bad = sorted(p.name for p, _ in rep.failures)
    assert bad == [f"{i}.jpg" for i in ref_corpus["ids"][17:]]
    reasons = dict((p.name, r) for p, r in rep.failures)
    assert "no such file" in reasons["1018.jpg"]
    assert "truncated" in reasons["1017.jpg"] or "corrupt" in reasons["1017.jpg"]


def test_open_holds_labels_paths_and_unit_embeddings(built, ref_corpus):
    ref = Reference.open(built[0])
    assert ref.ids == ref_corpus["ids"][:17]
    np.testing.assert_allclose(ref.distributions, ref_corpus["dists"][:17], atol=1e-6)
    assert ref.paths[0] == ref_corpus["images"] / "1000.jpg"
    np.testing.assert_allclose(np.linalg.norm(ref.embeddings, axis=1), 1.0, atol=1e-5)
    assert ref.backbone_name == "efficientnet-lite0"
    assert ref.meta.labels_format == "ava"


def test_neighbors_match_brute_force_cosine(built, lite0):
    ref = Reference.open(built[0])
    q = np.random.default_rng(1).normal(size=(3, ref.embeddings.shape[1])).astype(np.float32)
    sims, rows = ref.neighbors(q, k=5)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    brute = qn @ ref.embeddings.T
    for i in range(3):
        assert list(rows[i]) == list(np.argsort(-brute[i])[:5])
        np.testing.assert_allclose(sims[i], np.sort(brute[i])[::-1][:5], atol=1e-5)
    sims, rows = ref.neighbors(ref.embeddings[4:5], k=50)
    assert rows.shape == (1, 17)  # k is capped at the corpus size
    assert rows[0, 0] == 4 and sims[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_stored_maps_match_fresh_extraction(built, ref_corpus, lite0):
    ref = Reference.open(built[0])
    maps = ref.maps([0, 5])
    fresh = torch.cat(
        [b.features.z2 for b in FeatureExtractor(lite0, QUIET).files([ref.paths[0], ref.paths[5]])]
    )
    assert maps.z1.shape[1:] == (112, 14, 14) and maps.z3.shape[1:] == (1280, 1, 1)
    assert maps.z2.dtype == torch.float16  # as stored: what training on cached maps holds
    torch.testing.assert_close(maps.z2.float(), fresh, atol=2e-2, rtol=1e-2)
    stats = FeatureExtractor(lite0, QUIET).images([Image.open(ref.paths[0]), Image.open(ref.paths[5])]).stats
    assert maps.stats.shape == (2, lite0.info.stats_dim)
    torch.testing.assert_close(maps.stats, stats, atol=2e-2, rtol=1e-2)


def test_maps_of_an_older_store_without_statistics_are_refused(built, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(built[0], old)
    db = sqlite3.connect(old / DB_NAME)
    db.execute("UPDATE meta SET value = 'piaa-reference-1' WHERE key = 'format'")
    db.commit()
    db.close()
    ref = Reference.open(old)  # neighbours still work: the embeddings are unchanged
    assert ref.neighbors(ref.embeddings[:1], 3)[1][0, 0] == 0
    with pytest.raises(ReferenceCorpusError, match="older piaa .* build the reference again"):
        ref.maps([0])


def test_mismatched_backbone_is_refused(built, ref_corpus):
    ref = Reference.open(built[0])
    with pytest.raises(ReferenceCorpusError, match="built with efficientnet-lite0"):
        ref.check_backbone(create_backbone("efficientnet-lite0", weights=None))
    with pytest.raises(ReferenceCorpusError, match="different settings"):
        build_reference(
            ref_corpus["labels"],
            ref_corpus["images"],
            built[0],
            backbone="efficientnet-lite2",
            progress=False,
        )


def test_open_refuses_missing_or_incomplete_store(tmp_path):
    with pytest.raises(ReferenceCorpusError, match="not a piaa reference"):
        Reference.open(tmp_path)
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('complete','0');"
    )
    db.commit()
    db.close()
    with pytest.raises(ReferenceCorpusError, match="incomplete"):
        Reference.open(tmp_path)


def test_csv_mean_score_labels(tmp_path, ref_corpus, lite0):
    csv = tmp_path / "labels.csv"
    csv.write_text("image,mean\n1000.jpg,6.3\n1001.jpg,2.0\n")
    build_reference(csv, ref_corpus["images"], tmp_path / "R", backbone=lite0, progress=False)
    ref = Reference.open(tmp_path / "R")
    np.testing.assert_allclose(ref.mean_scores(), [6.3, 2.0], atol=1e-5)


def test_killed_build_resumes_without_corruption(tmp_path):
    rng = np.random.default_rng(3)
    images = tmp_path / "img"
    images.mkdir()
    ids = [f"{i}" for i in range(40)]
    for i in ids:
        synthetic_photo(rng, 160, 120).save(images / f"{i}.jpg")
    write_ava(tmp_path / "AVA.txt", ids, rng)
    out = tmp_path / "REF"
    code = (
        "from piaa.features.reference import build_reference;"
        f"build_reference({str(tmp_path / 'AVA.txt')!r}, {str(images)!r}, {str(out)!r}, weights=None,"
        " engine='torch', batch_size=2, workers=0, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    done = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        try:
            db = sqlite3.connect(out / DB_NAME, timeout=1)
            done = db.execute("SELECT COUNT(*) FROM items WHERE status = 1").fetchone()[0]
            db.close()
        except sqlite3.Error:
            continue
        if done >= 6:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert 6 <= done < 40, "the build must be killed part-way for this test to mean anything"
    db = sqlite3.connect(out / DB_NAME)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with pytest.raises(ReferenceCorpusError, match="incomplete"):
        Reference.open(out)
    rep = build_reference(tmp_path / "AVA.txt", images, out, weights=None, engine="torch", progress=False)
    assert rep.resumed_from >= done and rep.embedded == 40
    assert rep.newly_embedded == 40 - rep.resumed_from
    resumed = Reference.open(out)
    clean = tmp_path / "CLEAN"
    build_reference(tmp_path / "AVA.txt", images, clean, weights=None, engine="torch", progress=False)
    fresh = Reference.open(clean)
    assert resumed.ids == fresh.ids
    np.testing.assert_allclose(resumed.embeddings, fresh.embeddings, atol=1e-5)


def test_cli_build_and_neighbors(tmp_path, ref_corpus):
    runner = CliRunner()
    out = tmp_path / "REF"
    res = runner.invoke(
        app,
        [
            "reference",
            "build",
            "--labels",
            str(ref_corpus["labels"]),
            "--images",
            str(ref_corpus["images"]),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "17 of 20 images embedded" in res.output
    query = ref_corpus["images"] / "1003.jpg"
    res = runner.invoke(
        app,
        ["reference", "neighbors", str(out), str(query), "--k", "3", "--output", str(tmp_path / "nn.json")],
    )
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "nn.json").read_text())
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0]["image_id"] == "1003" and rows[0]["similarity"] > 0.999


def test_cli_errors_are_one_line(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "reference",
            "build",
            "--labels",
            str(tmp_path / "nope.txt"),
            "--images",
            str(tmp_path),
            "--out",
            str(tmp_path / "R"),
        ],
    )
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert "nope.txt" in res.output


def test_a_reference_in_which_nothing_could_be_embedded_is_refused(tmp_path, ref_corpus, lite0):
    images = tmp_path / "images"
    images.mkdir()
    (images / "1.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "AVA.txt").write_text("1 1 0 0 1 2 3 2 1 0 0 0 0 0 0\n2 2 0 0 1 2 3 2 1 0 0 0 0 0 0\n")
    with pytest.raises(ReferenceCorpusError, match="none of the 2 labelled images could be embedded"):
        build_reference(tmp_path / "AVA.txt", images, tmp_path / "REF", backbone=lite0, progress=False)
    with pytest.raises(ReferenceCorpusError, match="incomplete"):
        Reference.open(tmp_path / "REF")  # never a traceback from faiss later


def test_open_never_writes_and_works_in_a_read_only_folder(built, tmp_path):
    src, _ = built
    ref = tmp_path / "ro"
    shutil.copytree(src, ref)
    (ref / "embeddings.npy").unlink()  # derived file missing: rebuilt in memory, not on disk
    before = sorted((p.name, p.stat().st_mtime_ns) for p in ref.iterdir())
    ref.chmod(0o555)
    try:
        r = Reference.open(ref)
        assert len(r) == 17 and r.neighbors(r.embeddings[:1], 3)[1][0, 0] == 0
        assert r.maps([0, 1]).z1.shape[0] == 2
    finally:
        ref.chmod(0o755)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in ref.iterdir()) == before


def test_resumed_build_retries_images_that_failed_before(tmp_path, ref_corpus, lite0):
    images = tmp_path / "images"
    shutil.copytree(ref_corpus["images"], images)
    out = tmp_path / "REF"
    rep = build_reference(ref_corpus["labels"], images, out, backbone=lite0, batch_size=4, progress=False)
    assert rep.embedded == 17
    shutil.copy(images / "1000.jpg", images / "1017.jpg")  # the user fixes the truncated file
    again = build_reference(ref_corpus["labels"], images, out, backbone=lite0, batch_size=4, progress=False)
    assert again.retried == 3 and again.embedded == 18
    assert [p.name for p, _ in again.failures] == ["1018.jpg", "1019.jpg"]
    assert len(Reference.open(out)) == 18


def test_cli_lists_label_rows_without_votes(tmp_path, ref_corpus):
    labels = tmp_path / "AVA.txt"
    lines = ref_corpus["labels"].read_text().splitlines()
    parts = lines[0].split()
    lines[0] = " ".join(parts[:2] + ["0"] * 10 + parts[12:])
    labels.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(
        app, ["reference", "build", "--labels", str(labels), "--images", str(ref_corpus["images"]),
              "--out", str(tmp_path / "REF"), "--limit", "6"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "1 label row skipped" in res.output and "image 1000: zero votes" in res.output
