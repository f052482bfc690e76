"""Explaining a profile: the fit recovers a known taste, ``piaa profile explain`` end to end from a
profile made with ``--generic nima-ava``, its errors, and the collect page's /api/explain."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import ImageEnhance
from typer.testing import CliRunner

from conftest import synthetic_photo
from piaa.cli.main import app
from piaa.models.explain import ExplainError, fit_explanation


def _pairs_from(utility: np.ndarray, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Bradley-Terry judgements: a preferred to b with probability sigmoid(u_a - u_b)."""
    a, b = rng.integers(0, len(utility), (2, n_pairs))
    a, b = a[a != b], b[a != b]
    first = rng.uniform(size=len(a)) < 1 / (1 + np.exp(-(utility[a] - utility[b])))
    return np.where(first[:, None], np.stack([a, b], 1), np.stack([b, a], 1))


def test_the_fit_recovers_a_brightness_taste_and_hides_noise():
    rng = np.random.default_rng(1)
    n = 60
    values = {
        "crowd": rng.normal(size=n),
        "brightness": rng.uniform(size=n),
        "noise": rng.normal(size=n),
        "flat": np.ones(n),
    }
    utility = 0.5 * values["crowd"] + 10 * values["brightness"]
    pairs = _pairs_from(utility, 200, rng)
    exp = fit_explanation(values, pairs, [f"p{i}.jpg" for i in range(n)], folds=5, seed=0)
    axes = {a.name: a for a in exp.axes}
    bright = axes["brightness"]
    assert bright.shown and bright.weight > 0 and all(w > 0 for w in bright.fold_weights)
    assert len(bright.fold_weights) == 5 and exp.folds == 5
    assert bright.weight > abs(axes["crowd"].weight)  # brightness matters more to this person
    assert not axes["flat"].shown and "does not vary" in axes["flat"].reason
    # the examples are the judged photos at both ends of brightness
    order = np.argsort(-values["brightness"][np.unique(pairs)])
    assert bright.high[0] == f"p{np.unique(pairs)[order[0]]}.jpg"
    assert bright.low[0] == f"p{np.unique(pairs)[order[-1]]}.jpg"
    assert exp.accuracy_cv > 0.8 > exp.accuracy_crowd
    hidden = 0
    for s in range(40):  # a pure-noise axis is almost never shown
        values["noise"] = np.random.default_rng(100 + s).normal(size=n)
        noise = next(a for a in fit_explanation(values, pairs, seed=s).axes if a.name == "noise")
        hidden += not noise.shown
        assert noise.shown or noise.reason
    assert hidden >= 36, hidden
    json.dumps(exp.to_dict())  # serializable


def test_a_person_who_dislikes_brightness_gets_a_negative_weight():
    rng = np.random.default_rng(3)
    values = {"crowd": rng.normal(size=40), "brightness": rng.uniform(size=40)}
    exp = fit_explanation(values, _pairs_from(-8 * values["brightness"], 150, rng))
    bright = exp.axes[1]
    assert bright.shown and bright.weight < 0 and "less than the crowd" in bright.describe()


def test_too_few_pairs_is_an_error():
    with pytest.raises(ExplainError, match="at least 4"):
        fit_explanation({"crowd": np.arange(5.0)}, np.array([[0, 1], [2, 3]]))


def _album(root: Path, n: int = 14, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    bright = {}
    for i in range(n):
        b = 0.4 + 1.2 * rng.random()
        ImageEnhance.Brightness(synthetic_photo(rng, 96, 72)).enhance(b).save(root / f"p{i:02d}.jpg")
        bright[f"p{i:02d}.jpg"] = b
    return bright


def _brighter_pairs(bright: dict[str, float], path: Path) -> Path:
    names = sorted(bright)
    lines = ["preferred,other"]
    for i, a in enumerate(names):
        for b in names[i + 1 : i + 5]:
            lines.append(f"{a},{b}" if bright[a] > bright[b] else f"{b},{a}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _personalize(album: Path, prefs: Path | None, out: Path) -> None:
    args = ["personalize", "--generic", "nima-ava", "--album", str(album), "--out", str(out),
            "--rank-epochs", "2", "--no-select", "--no-agreement"]  # fmt: skip
    res = CliRunner().invoke(app, args + (["--prefs", str(prefs)] if prefs else []))
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, Path]:
    """A profile made with --generic nima-ava from brighter-is-better judgements."""
    tmp = tmp_path_factory.mktemp("explain")
    bright = _album(tmp / "album")
    _personalize(tmp / "album", _brighter_pairs(bright, tmp / "prefs.csv"), tmp / "me")
    return tmp, tmp / "me"


def test_cli_explains_a_nima_ava_profile(made):
    tmp, profile = made
    out = tmp / "report"
    res = CliRunner().invoke(app, ["profile", "explain", str(profile), "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    axes = {a["name"]: a for a in data["axes"]}
    assert data["generic"] == "nima-ava" and data["pairs"] == 46 and data["photos"] == 14
    assert set(axes) == {"crowd", "brightness", "colourfulness", "contrast", "sharpness", "warmth"}
    assert axes["brightness"]["shown"] and axes["brightness"]["weight"] > 0, axes["brightness"]
    assert all(a["shown"] or a["reason"] for a in data["axes"])
    html = (out / "index.html").read_text()
    assert "<svg" in html and "brightness" in html and 'src="thumbs/0.jpg"' in html
    assert (out / "thumbs" / "0.jpg").is_file()
    assert json.loads((out / "explanation.json").read_text())["axes"] == data["axes"]
    res = CliRunner().invoke(app, ["profile", "explain", str(profile)])  # the table
    assert res.exit_code == 0 and "brightness" in res.output and "weighs it more than the crowd" in res.output
    assert "(hidden)" in res.output or all(a["shown"] for a in data["axes"])


def test_cli_errors_are_one_line(made, tmp_path):
    tmp, profile = made
    run = CliRunner().invoke
    generic = tmp_path / "generic"
    _personalize(tmp / "album", None, generic)
    res = run(app, ["profile", "explain", str(generic)])
    assert res.exit_code == 2 and "holds no judgements" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    res = run(app, ["profile", "explain", str(profile), "--album", str(tmp_path / "gone")])
    assert res.exit_code == 2 and "album folder not found" in res.output, res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run(app, ["profile", "explain", str(profile), "--album", str(empty)])
    assert res.exit_code == 2 and "none of the 14 judged photos is there" in res.output, res.output
    res = run(app, ["profile", "explain", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not a piaa profile" in res.output
    res = run(app, ["profile", "explain", str(profile), "--out", str(tmp / "album" / "report")])
    assert res.exit_code == 2 and "inside the album" in res.output, res.output
    assert not (tmp / "album" / "report").exists()
    (tmp_path / "heads.safetensors").write_bytes(b"not heads")
    res = run(app, ["profile", "explain", str(profile), "--heads", str(tmp_path / "heads.safetensors")])
    assert res.exit_code == 2 and "heads.safetensors" in res.output, res.output
    assert "Traceback" not in res.output


def test_heads_add_their_attributes_as_axes(made, tmp_path):
    """Heads trained on the profile's own backbone (here on made-up labels: nothing PARA-trained ships)
    add named axes; heads for another backbone are refused."""
    from piaa.models.attributes import AttributeHeads, pooled_features
    from piaa.models.explain import explain_profile
    from piaa.models.profile import load_profile

    tmp, path = made
    profile = load_profile(path)
    files = sorted((tmp / "album").glob("*.jpg"))
    maps = profile.extractor().images([synthetic_photo(np.random.default_rng(i)) for i in range(12)])
    x = pooled_features(maps)
    heads = AttributeHeads.fit(x, np.random.default_rng(0).normal(size=(12, 1)), ["made_up"],
                               backbones=[profile.backbone.name], licence="test")  # fmt: skip
    exp = explain_profile(profile, heads=heads)
    assert [a.name for a in exp.axes][-1] == "made_up" and exp.photos == len(files)
    other = AttributeHeads.fit(x, np.zeros((12, 1)) + np.arange(12)[:, None], ["q"],
                               backbones=["other-net"], licence="test")  # fmt: skip
    with pytest.raises(ExplainError, match="other-net"):
        explain_profile(profile, heads=other)


def test_collect_page_explains_the_trained_profile(tmp_path):
    from piaa.models.personalize import personalize
    from piaa.preferences import PreferenceStore
    from piaa.web import CollectConfig, create_app

    bright = _album(tmp_path / "album", 12, seed=2)
    store = tmp_path / "me.sqlite"
    names = sorted(bright)
    with PreferenceStore(store) as s:
        for i, a in enumerate(names):
            for b in names[i + 1 :]:  # every pair: 66
                s.add(*((a, b) if bright[a] > bright[b] else (b, a)), source="test")
        judged = len(s)
    cfg = CollectConfig(album=tmp_path / "album", store=store, strategy="random", auto_train=False)
    with TestClient(create_app(cfg), base_url="http://127.0.0.1") as c:
        r = c.post("/api/explain", json={})
        assert r.status_code == 409 and "train your model first" in r.json()["detail"]
    personalize(None, tmp_path / "album", store, tmp_path / "me-profile", generic="nima-ava",
                progress=False, agreement=False, rank_epochs=2)  # fmt: skip
    with TestClient(create_app(cfg), base_url="http://127.0.0.1") as c:  # the saved profile is shown
        deadline = time.monotonic() + 120
        while c.get("/api/train").json()["model"] is None:
            assert time.monotonic() < deadline, "the saved profile was not shown"
            time.sleep(0.1)
        d = c.post("/api/explain", json={}).json()
        axes = {a["name"]: a for a in d["axes"]}
        assert axes["brightness"]["shown"] and axes["brightness"]["weight"] > 0, axes
        assert d["generic"] == "nima-ava" and d["pairs"] == judged
        example = axes["brightness"]["high"][0]
        assert c.get(d["thumbs"][example]).headers["content-type"] == "image/jpeg"
        assert c.post("/api/explain", json={}).json() == d  # cached for this profile
        assert "explain-button" in c.get("/").text
