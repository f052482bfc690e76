"""End to end: reference + album + preferences -> profile -> scores."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from piaa.demo import EXPOSURES, sample_photo
from piaa.features.reference import Reference
from piaa.models.personalize import personalize
from piaa.models.profile import Profile, ProfileError, load_profile

FAST = {"generic_epochs": 8, "rank_epochs": 15}


def _exposure(path):
    """Album files are named <scene>-e<exposure index>s<saturation index>.jpg."""
    return EXPOSURES[int(path.stem.split("-e")[1][0])]


def _brighter_pairs(files, rng, n=100):
    pairs = []
    while len(pairs) < n:
        a, b = rng.choice(len(files), 2, replace=False)
        ea, eb = _exposure(files[a]), _exposure(files[b])
        if ea != eb:
            pairs.append((files[a], files[b]) if ea > eb else (files[b], files[a]))
    return pairs


@pytest.fixture(scope="module")
def brightness_profile(demo_world, tmp_path_factory):
    ex = demo_world["example"]
    rng = np.random.default_rng(0)
    prefs = tmp_path_factory.mktemp("prefs") / "prefs.csv"
    lines = ["preferred,other"] + [f"{a.name},{b.name}" for a, b in _brighter_pairs(ex.album_files, rng)]
    prefs.write_text("\n".join(lines) + "\n")
    out = tmp_path_factory.mktemp("profiles") / "bright"
    prof = personalize(demo_world["reference"], ex.album, prefs, out, progress=False, **FAST)
    return prof, out


def test_profile_that_likes_brighter_ranks_brighter_held_out_photo_higher(brightness_profile, demo_world):
    prof, _ = brightness_profile
    album_scenes = {p.stem.split("-e")[0] for p in demo_world["example"].album_files}
    held_out = [
        n for n in ("chelsea", "rocket", "astronaut", "coffee", "retina", "camera") if n not in album_scenes
    ]
    assert held_out, "the test needs scenes the profile never saw"
    for scene in held_out:
        base = sample_photo(scene)
        dark, bright = (ImageEnhance.Brightness(base).enhance(f) for f in (0.65, 1.35))
        s_dark, s_bright = (r.score for r in prof.score([dark, bright]))
        assert s_bright > s_dark, scene


def test_report_counts_pairs_and_neighbours(brightness_profile, demo_world):
    rep = brightness_profile[0].report
    assert rep.album_images == 105
    assert rep.pairs_stated <= 100 and rep.pairs_inferred > 0
    assert 50 <= rep.neighbors <= len(Reference.open(demo_world["reference"]))
    assert len(rep.generic_loss) == FAST["generic_epochs"]
    # the chosen personalization's losses: none (generic kept), per epoch (fine-tune), before/after (fit)
    expected = {"generic": 0, "fine-tune": FAST["rank_epochs"], "fit": 2}[rep.selection.kind]
    assert len(rep.ranking_loss) == expected and rep.summary()["selection"]["choice"] == rep.selection.choice


def test_report_ranks_the_album_like_scoring_its_files(brightness_profile, demo_world):
    prof, _ = brightness_profile
    files = demo_world["example"].album_files
    album = demo_world["example"].album
    fresh = {f.relative_to(album).as_posix(): r.score for f, r in zip(files, prof.score(files), strict=True)}
    assert prof.report.album_scores is not None and set(prof.report.album_scores) == set(fresh)
    for name, score in fresh.items():  # from the float16 maps cached for training
        assert prof.report.album_scores[name] == pytest.approx(score, abs=0.02)


def test_saved_profile_reloads_with_identical_scores(brightness_profile, demo_world):
    prof, out = brightness_profile
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "generic.safetensors",  # the generic model it started from (piaa retouch --compare-generic)
        "model.safetensors",
        "preferences.csv",
    ]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["backbone"]["name"] == "efficientnet-lite0" and cfg["training"]["margin"] == 0.1
    assert cfg["data"]["pairs_stated"] == prof.report.pairs_stated
    again = load_profile(out)
    files = demo_world["example"].album_files[:10]
    np.testing.assert_allclose(
        [r.score for r in again.score(files)], [r.score for r in prof.score(files)], atol=1e-5
    )
    assert len(again.pairs) == prof.report.pairs_stated


def test_without_preferences_gives_the_generic_model(demo_world, tmp_path):
    prof = personalize(
        demo_world["reference"], demo_world["example"].album, None, tmp_path / "g", progress=False, **FAST
    )
    assert prof.report.pairs_stated == 0 and prof.report.ranking_loss == []
    scores = [r.score for r in prof.score(demo_world["example"].album_files[:20])]
    assert all(1 <= s <= 10 for s in scores) and np.std(scores) > 0


def test_same_seed_same_profile(demo_world, tmp_path):
    def train():
        ref, album = demo_world["reference"], demo_world["example"].album
        return personalize(ref, album, None, None, progress=False, generic_epochs=3, seed=5)

    a, b = train(), train()
    for x, y in zip(a.head.state_dict().values(), b.head.state_dict().values(), strict=True):
        assert np.array_equal(x.numpy(), y.numpy())


def test_ablation_switches(demo_world):
    prof = personalize(
        demo_world["reference"],
        demo_world["example"].album,
        None,
        None,
        progress=False,
        attention=False,
        pretrain=False,
        low_level=False,
        generic_epochs=2,
    )
    assert prof.head.gate1 is None and prof.report.generic_loss == []
    assert prof.head.config.stats == 0 and prof.head.fc.in_features == 112 + 1280


def test_preferences_naming_unknown_images_are_reported(demo_world, tmp_path):
    prefs = tmp_path / "p.csv"
    files = demo_world["example"].album_files
    prefs.write_text(f"preferred,other\n{files[0].name},{files[1].name}\nnot-here.jpg,{files[2].name}\n")
    prof = personalize(
        demo_world["reference"],
        demo_world["example"].album,
        prefs,
        None,
        progress=False,
        generic_epochs=1,
        rank_epochs=1,
    )
    assert prof.report.unknown_images == ["not-here.jpg"] and prof.report.pairs_stated == 1


# ------------------------------------------------------------------------------ broken profiles


@pytest.fixture
def profile_copy(brightness_profile, tmp_path):
    dst = tmp_path / "p"
    shutil.copytree(brightness_profile[1], dst)
    return dst


def test_missing_folder(tmp_path):
    with pytest.raises(ProfileError, match="no such folder"):
        Profile.load(tmp_path / "nope")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "config.json").unlink(), "config.json is missing"),
        (lambda p: (p / "model.safetensors").unlink(), "model.safetensors is missing"),
        (lambda p: (p / "config.json").write_text('{"format": "piaa-prof'), "corrupt"),
        (
            lambda p: (p / "model.safetensors").write_bytes((p / "model.safetensors").read_bytes()[:1000]),
            "checksum",
        ),
    ],
)
def test_partial_or_corrupt_profile_gives_one_line_error(profile_copy, damage, message):
    damage(profile_copy)
    with pytest.raises(ProfileError, match=message) as e:
        Profile.load(profile_copy)
    assert "\n" not in str(e.value) and str(profile_copy) in str(e.value)


def test_profile_from_other_weights_is_refused(profile_copy):
    cfg = json.loads((profile_copy / "config.json").read_text())
    cfg["backbone"]["weights_hash"] = "0123456789abcdef"
    (profile_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ProfileError, match="weights 0123456789abcdef"):
        Profile.load(profile_copy)


def test_saving_over_an_existing_profile_is_atomic(brightness_profile, tmp_path):
    prof, _ = brightness_profile
    out = tmp_path / "p"
    prof.save(out)
    first = (out / "model.safetensors").read_bytes()
    prof.save(out)
    assert (out / "model.safetensors").read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no temporary or backup folders left


def test_full_fine_tuning_trains_the_backbone_and_saves_it(demo_world, tmp_path):
    ex = demo_world["example"]
    album = tmp_path / "album"
    album.mkdir()
    for f in ex.album_files[:6]:
        shutil.copy(f, album / f.name)
    prefs = tmp_path / "p.csv"
    names = [f.name for f in ex.album_files[:6]]
    prefs.write_text("preferred,other\n" + "".join(f"{names[i]},{names[i + 1]}\n" for i in range(5)))
    prof = personalize(
        demo_world["reference"],
        album,
        prefs,
        tmp_path / "ft",
        progress=False,
        k=3,
        finetune_backbone=True,
        generic_epochs=1,
        rank_epochs=1,
        backbone_lr=1e-3,
    )
    assert prof.backbone_finetuned and prof.backbone.info.weights_hash not in ("random", "")
    again = load_profile(tmp_path / "ft")
    assert again.backbone.info.weights_hash == prof.backbone.info.weights_hash
    generic_backbone = Reference.open(demo_world["reference"]).create_backbone()
    moved = [
        not np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(
            again.backbone.state_dict().values(), generic_backbone.state_dict().values(), strict=True
        )
    ]
    assert any(moved)
    files = ex.album_files[:4]
    np.testing.assert_allclose(
        [r.score for r in again.score(files)], [r.score for r in prof.score(files)], atol=1e-3
    )


def test_reference_without_maps_computes_neighbour_maps(demo_world, tmp_path):
    from piaa.features.reference import build_reference

    ex = demo_world["example"]
    build_reference(ex.labels, ex.reference_images, tmp_path / "ref", store_maps=False, progress=False)
    assert not Reference.open(tmp_path / "ref").has_maps
    with_maps = personalize(demo_world["reference"], ex.album, None, None, progress=False, generic_epochs=2)
    without = personalize(tmp_path / "ref", ex.album, None, None, progress=False, generic_epochs=2)
    assert without.report.neighbors == with_maps.report.neighbors
    files = ex.album_files[:8]
    np.testing.assert_allclose(
        [r.score for r in without.score(files)], [r.score for r in with_maps.score(files)], atol=0.05
    )  # stored maps are float16, fresh ones are rounded the same way


def test_neighbour_maps_streamed_from_the_store_train_the_same_model(demo_world, monkeypatch):
    import piaa.models.personalize as pers

    ex = demo_world["example"]
    kwargs = {"progress": False, "generic_epochs": 2, "rank_epochs": 2}
    in_memory = personalize(demo_world["reference"], ex.album, None, None, **kwargs)
    monkeypatch.setattr(pers, "MAPS_IN_MEMORY", 1)  # every batch read from the store
    streamed = personalize(demo_world["reference"], ex.album, None, None, **kwargs)
    a, b = in_memory.report.album_scores, streamed.report.album_scores
    assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-5 for k in a)


def test_saving_never_replaces_a_folder_that_is_not_a_profile(tmp_path):
    """``piaa personalize --out ALBUM`` once replaced the album folder (its photos deleted) by the profile."""
    prof = load_profile("nima-ava")
    album = tmp_path / "album"
    album.mkdir()
    (album / "photo.jpg").write_bytes(b"my photo")
    with pytest.raises(ProfileError, match="not a profile") as e:
        prof.save(album)
    assert str(album) in str(e.value) and "\n" not in str(e.value)
    assert [p.name for p in album.iterdir()] == ["photo.jpg"]
    assert (album / "photo.jpg").read_bytes() == b"my photo"
    empty = tmp_path / "empty"
    empty.mkdir()
    prof.save(empty)  # an empty folder, or a profile, may be replaced
    prof.save(empty)
    assert (empty / "config.json").exists()


def test_personalize_refuses_an_album_as_out_before_training(tmp_path, monkeypatch):
    album = tmp_path / "album"
    album.mkdir()
    (album / "photo.jpg").write_bytes(b"my photo")
    monkeypatch.setattr("piaa.models.personalize.load_statements", lambda *a: pytest.fail("worked first"))
    with pytest.raises(ProfileError, match="not a profile"):
        personalize(None, album, None, album, generic="nima-ava", progress=False)
    assert (album / "photo.jpg").read_bytes() == b"my photo"


def test_personalize_expands_home_in_paths_as_the_readme_writes_them(tmp_path, monkeypatch):
    """README: ``piaa.personalize(None, "~/Pictures/2024", prefs=..., out="me", generic="nima-ava")``;
    "~/album" was taken literally ("~/album: album folder not found")."""
    monkeypatch.setenv("HOME", str(tmp_path))
    album = tmp_path / "album"
    album.mkdir()
    for i, v in enumerate((40, 120, 200)):
        Image.new("RGB", (64, 48), (v, v // 2, 255 - v)).save(album / f"p{i}.jpg")
    (tmp_path / "prefs.csv").write_text("preferred,other\np2.jpg,p0.jpg\np1.jpg,p0.jpg\n")
    prof = personalize(None, "~/album", prefs="~/prefs.csv", out="~/me", generic="nima-ava", progress=False)
    assert prof.report.album_images == 3 and prof.report.pairs_stated == 2
    assert (tmp_path / "me" / "config.json").is_file() and not (tmp_path / "~").exists()


def test_saving_into_an_unwritable_folder_names_the_profile_not_a_temporary(tmp_path, monkeypatch):
    """``--out /read-only/me`` said "/read-only/.me.123.xyz.part: Permission denied" (a name the user never
    gave); the same for an --output file written atomically."""
    import tempfile

    from piaa.io import atomic_write_text

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ProfileError) as e:
        load_profile("nima-ava").save(tmp_path / "me")
    assert str(e.value) == f"{tmp_path / 'me'}: cannot save the profile (Permission denied)"
    with pytest.raises(OSError) as e:
        atomic_write_text(tmp_path / "s.json", "{}")
    assert e.value.filename == str(tmp_path / "s.json") and e.value.strerror == "Permission denied"
