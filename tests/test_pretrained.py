"""The built-in ``nima-ava`` profile: NIMA's AVA scores, offline, as a scorer and as a generic model to
personalize from without any reference corpus."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import piaa
from piaa.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "weights" / "idealo-examples"


@pytest.fixture(scope="module")
def nima():
    return piaa.load_profile("nima-ava")


def test_nima_ava_is_listed_and_loads_without_a_folder(nima):
    assert "nima-ava" in piaa.list_scorers()
    assert nima.backbone.info.name == "nima-mobilenet"
    assert piaa.create_scorer("nima-ava").score_range == (1.0, 10.0)


def test_its_scores_are_nimas_own(nima, tmp_path):
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (180, 240, 3), dtype=np.uint8) for _ in range(3)]
    ours = [r.score for r in nima.score(imgs)]
    bb = nima.backbone
    with torch.no_grad():
        x = bb.preprocess.to_tensor(np.stack([bb.preprocess.from_pil(i) for i in imgs]))
        theirs = (bb.aesthetic_distribution(x) @ torch.arange(1, 11).float()).tolist()
    np.testing.assert_allclose(ours, theirs, atol=2e-4)  # ONNX vs eager only
    assert len(set(np.round(ours, 3))) == 3


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="needs ../shared/weights/idealo-examples")
def test_cli_scores_offline_with_no_reference_and_ranks_the_sunset_first(tmp_path):
    photos = sorted(EXAMPLES.glob("aesthetic*.jpg"))
    out = tmp_path / "s.json"
    res = CliRunner().invoke(app, ["score", *map(str, photos), "--profile", "nima-ava", "--output", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert len(rows) == 5 and Path(rows[0]["path"]).name == "aesthetic1.jpg"  # the sunset, as idealo's


def test_personalize_from_nima_ava_without_a_reference(tmp_path):
    from piaa.demo import EXPOSURES, make_example

    ex = make_example(tmp_path / "world", seed=0)
    exposure = {f: EXPOSURES[int(f.stem.split("-e")[1][0])] for f in ex.album_files}
    files = [f for f in ex.album_files if not f.stem.endswith("s1")]  # judged; the s1 variants are not
    held = [f for f in ex.album_files if f.stem.endswith("s1")]
    rng = np.random.default_rng(0)
    lines = ["preferred,other"]
    while len(lines) < 61:
        a, b = rng.choice(len(files), 2, replace=False)
        fa, fb = files[a], files[b]
        if exposure[fa] != exposure[fb]:
            lines.append(f"{fa.name},{fb.name}" if exposure[fa] > exposure[fb] else f"{fb.name},{fa.name}")
    prefs = tmp_path / "prefs.csv"
    prefs.write_text("\n".join(lines) + "\n")
    out = tmp_path / "me"
    res = CliRunner().invoke(
        app, ["personalize", "--generic", "nima-ava", "--album", str(ex.album), "--prefs", str(prefs),
              "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "generic model nima-ava" in res.output, res.output[-600:]
    assert " stated + " in res.output
    prof = piaa.load_profile(out)
    generic = piaa.load_profile("nima-ava")
    rho_personal = _spearman([r.score for r in prof.score(held)], [exposure[f] for f in held])
    rho_generic = _spearman([r.score for r in generic.score(held)], [exposure[f] for f in held])
    assert rho_personal > rho_generic + 0.2, (rho_personal, rho_generic)


def _spearman(a, b):
    from scipy.stats import spearmanr

    return spearmanr(a, b).statistic
