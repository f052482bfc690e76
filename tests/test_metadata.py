"""Typed metadata: profile configs, reference metas, the selection's candidates and settings, ``--set``.

Old layouts are written here by hand exactly as earlier piaa wrote them, so the readers are held to
every layout on disk, not only to what they write themselves."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from piaa.cli._common import parse_settings, settings_help
from piaa.cli.main import app
from piaa.features.store import ReferenceCorpusError, ReferenceMeta
from piaa.models.config import SettingError, TrainConfig
from piaa.models.profile import Profile, ProfileConfig, ProfileError, load_profile
from piaa.models.selection import Candidate, Selection, SelectionError, candidate_list, candidates

# config.json's "training" as piaa wrote it before the selection's settings were TrainConfig fields
OLD_TRAINING = {
    "k": 7, "seed": 3, "attention": True, "head_norm": "none", "low_level": True, "pretrain": True,
    "generic_epochs": 10, "generic_steps": 400, "generic_lr": 0.001, "batch_size": 32, "rank_epochs": 20,
    "rank_lr": 0.0003, "rank_loss": "exp", "rank_scope": "last", "margin": 0.1, "lr_halve_every": 500,
    "weight_decay": 0.0001, "anchor": 0.0, "select": True, "finetune_backbone": False, "backbone_lr": 1e-05,
}  # fmt: skip
OLD_PROFILE = {
    "training": OLD_TRAINING,
    "data": {"album": "/photos", "pairs_stated": 12, "selection": {"choice": "fit 0.01", "alpha": 1.0}},
    "format": "piaa-profile-1",
    "piaa_version": "0.9.0",
    "saved": "2026-01-01T00:00:00+0000",
    "backbone": {"name": "nima-mobilenet", "weights_hash": "abc"},
    "backbone_finetuned": False,
    "head": {"channels": [1, 2, 3]},
    "files": {"model.safetensors": "00"},
    "some_future_note": "kept",
}
# a reference's meta table as build_reference wrote it (format 2), and one from before row counts (1)
OLD_META = {
    "format": "piaa-reference-2", "backbone": "efficientnet-lite0", "weights_hash": "h1",
    "labels": "/data/AVA.txt", "images": "/data/images", "count": "20", "store_maps": "compact",
    "complete": "1", "piaa_version": "0.9.0", "backbone_info": json.dumps({"channels": [40, 112, 320]}),
    "labels_format": "ava", "labels_skipped": json.dumps(["row 3: no votes"]), "embedded": "17",
}  # fmt: skip
OLDER_META = {
    "format": "piaa-reference-1", "backbone": "vgg16", "weights_hash": "h0", "labels": "l", "images": "i",
    "count": "5", "store_maps": "0", "complete": "1",
}  # fmt: skip


def test_old_profile_config_loads_typed_with_defaults_for_the_newer_settings():
    cfg = ProfileConfig.from_dict(OLD_PROFILE, "p/config.json")
    assert cfg.version == 1 and cfg.piaa_version == "0.9.0" and cfg.backbone_finetuned is False
    assert isinstance(cfg.training, TrainConfig)
    assert (cfg.training.k, cfg.training.seed, cfg.training.rank_loss) == (7, 3, "exp")
    assert cfg.training.alphas == TrainConfig().alphas and cfg.training.min_stated == 6  # defaults
    assert cfg.data["selection"]["choice"] == "fit 0.01" and cfg.extra == {"some_future_note": "kept"}
    # config.json's own object, as older piaa reads it
    raw = cfg.to_dict()
    assert raw["data"]["album"] == "/photos" and "name" not in raw and raw["training"]["k"] == 7


def test_profile_config_round_trips_and_keeps_unknown_keys():
    cfg = ProfileConfig.from_dict(OLD_PROFILE)
    d = cfg.to_dict()
    assert d["format"] == "piaa-profile-1" and d["some_future_note"] == "kept"
    assert d["training"]["alphas"] == [0.25, 0.5, 0.75, 1.0]  # JSON: lists
    assert ProfileConfig.from_dict(json.loads(json.dumps(d))) == cfg
    assert {k: d[k] for k in OLD_PROFILE if k != "training"} == {
        k: v for k, v in OLD_PROFILE.items() if k != "training"
    }


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({**OLD_PROFILE, "format": "piaa-profile-2"}, "made by a newer piaa (format piaa-profile-2)"),
        ({**OLD_PROFILE, "format": "other-1"}, "not a piaa-profile-1 profile"),
        ({**OLD_PROFILE, "training": {**OLD_TRAINING, "k": "many"}}, "training setting k: 'many' is not"),
        ({**OLD_PROFILE, "data": [1]}, "data is not an object"),
    ],
)
def test_bad_or_newer_profile_config_is_a_one_line_error_naming_the_file(raw, problem):
    with pytest.raises(ProfileError) as e:
        ProfileConfig.from_dict(raw, "p/config.json")
    assert str(e.value).startswith("p/config.json: ") and problem in str(e.value)
    assert "\n" not in str(e.value)


def test_saved_profile_records_the_selection_settings_and_an_old_one_loads(tmp_path):
    nima = load_profile("nima-ava")
    assert nima.config.name == "nima-ava" and nima.config.training is None
    tuned = Profile(nima.head, nima.backbone, ProfileConfig(name="me", training=TrainConfig(z=2.5)))
    tuned.save(tmp_path / "p")
    saved = json.loads((tmp_path / "p" / "config.json").read_text())
    assert saved["training"]["z"] == 2.5 and saved["training"]["lambdas"] == [0.1, 0.01, 0.001]
    assert Profile.load(tmp_path / "p").config.training == TrainConfig(z=2.5)
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "p", old)
    saved["training"] = OLD_TRAINING  # as an older piaa wrote it
    (old / "config.json").write_text(json.dumps(saved))
    loaded = Profile.load(old)
    assert loaded.config.training == TrainConfig.from_dict(OLD_TRAINING) and loaded.config.name == "me"
    saved["format"] = "piaa-profile-9"
    (old / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ProfileError, match=r"config.json: made by a newer piaa \(format piaa-profile-9\)"):
        Profile.load(old)


def test_old_reference_meta_loads_typed():
    m = ReferenceMeta.from_rows(OLD_META, "ref")
    assert (m.version, m.count, m.embedded, m.maps, m.complete) == (2, 20, 17, "compact", True)
    assert m.has_maps and m.backbone_info == {"channels": [40, 112, 320]}
    assert m.labels_skipped == ("row 3: no votes",) and m.to_rows()["labels_format"] == "ava"
    older = ReferenceMeta.from_rows(OLDER_META)
    assert (older.version, older.maps, older.has_maps, older.embedded, older.backbone_info) == (
        1, "none", False, None, None,
    )  # fmt: skip
    assert older.labels_format is None and "labels_format" not in older.to_rows()


def test_reference_meta_round_trips_its_rows():
    m = ReferenceMeta.from_rows(OLD_META)
    assert m.to_rows() == OLD_META
    assert ReferenceMeta.from_rows(m.to_rows()) == m
    full = ReferenceMeta.from_rows({**OLD_META, "store_maps": "1"})
    assert full.maps == "full" and full.to_rows()["store_maps"] == "1"


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ({**OLD_META, "format": "piaa-reference-3"}, "made by a newer piaa (format piaa-reference-3)"),
        ({**OLD_META, "store_maps": "some"}, "metadata is corrupt"),
        ({**OLD_META, "count": "x"}, "metadata is corrupt"),
    ],
)
def test_bad_or_newer_reference_meta_is_a_one_line_error(rows, problem):
    with pytest.raises(ReferenceCorpusError) as e:
        ReferenceMeta.from_rows(rows, "ref")
    assert str(e.value).startswith("ref: ") and problem in str(e.value) and "\n" not in str(e.value)


def test_candidates_are_typed_and_print_as_before():
    assert str(Candidate("fit", 0.01)) == "fit 0.01" and str(Candidate("generic")) == "generic"
    assert Candidate.parse("fine-tune 0.5") == Candidate("fine-tune", 0.5)
    assert [str(c) for c in candidate_list(20)] == candidates(20)
    assert candidates(20) == [
        "generic", "fit 0.1", "fit 0.01", "fit 0.001", "fine-tune 0.25", "fine-tune 0.5",
        "fine-tune 0.75", "fine-tune 1",
    ]  # fmt: skip
    for bad in ("fit", "fit much", "refit 1", ""):
        with pytest.raises(SelectionError):
            Candidate.parse(bad)
    sel = Selection(choice="fit 0.001")
    assert sel.kind == "fit" and sel.candidate.strength == 0.001 and "L2 pull 0.001" in sel.describe()


def test_the_selection_settings_shape_the_candidates():
    cfg = TrainConfig(alphas=(0.5,), lambdas=(2.0,), min_fit_photos=30)
    assert candidates(20, cfg) == ["generic", "fine-tune 0.5"]
    assert candidates(30, cfg) == ["generic", "fit 2", "fine-tune 0.5"]


def test_set_parses_every_kind_of_setting():
    got = parse_settings(["alphas=0.5,1", "z=2", "select=no", "k=9", "rank_loss=exp"], {"k": 3, "seed": 4})
    assert got == {"alphas": (0.5, 1.0), "z": 2.0, "select": False, "k": 9, "rank_loss": "exp", "seed": 4}
    assert TrainConfig(**got).alphas == (0.5, 1.0)
    for item, problem in [
        ("nope=1", "KEY one of k, seed"),
        ("k=1.5", "is not a int"),
        ("select=maybe", "is not a bool"),
        ("alphas=a,b", "is not a comma-separated list of float"),
    ]:
        with pytest.raises(SettingError, match=problem):
            parse_settings([item])
    text = settings_help()
    assert all(name in text for name in TrainConfig.help()) and "z (1.5): Selection: sign-test" in text


def test_personalize_takes_set_and_refuses_a_bad_one_in_one_line(tmp_path):
    (tmp_path / "album").mkdir()
    runner = CliRunner()
    res = runner.invoke(
        app, ["personalize", "--album", str(tmp_path / "album"), "--out", str(tmp_path / "p"),
              "--generic", "nima-ava", "--set", "max_folds=many"],
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "--set 'max_folds=many': 'many' is not a int" in res.output and "Traceback" not in res.output
    help_text = runner.invoke(app, ["personalize", "--help"], terminal_width=200).output
    assert "--set" in help_text and "min_fit_photos" in help_text
