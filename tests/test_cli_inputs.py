"""The command line on photos as people have them: phone formats, stray files, nothing readable, names
typed by hand, a full disk. Every user-caused failure is one line and exit status 2."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import synthetic_photo
from piaa.cli.main import app
from piaa.models.profile import Profile
from piaa.models.train import TrainConfig, new_head

runner = CliRunner()


@pytest.fixture(scope="module")
def profile_dir(lite0, tmp_path_factory):
    head = new_head(lite0.info.channels, TrainConfig(), stats=lite0.info.stats_dim)
    head.fit_stats_scaling(torch.randn(8, lite0.info.stats_dim))
    out = tmp_path_factory.mktemp("cli-inputs") / "p"
    Profile(head, lite0, {}).save(out)
    return out


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


def test_phone_formats_are_scored_and_stray_files_listed(tmp_path, profile_dir):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    rng = np.random.default_rng(0)
    synthetic_photo(rng).save(tmp_path / "IMG_0001.HEIC", format="HEIF")
    synthetic_photo(rng).save(tmp_path / "IMG_0002.avif", format="AVIF")
    synthetic_photo(rng).save(tmp_path / "old.jfif", format="JPEG")
    (tmp_path / "notes.txt").write_text("shopping list")
    res = runner.invoke(app, ["score", str(tmp_path), "--profile", str(profile_dir)])
    assert res.exit_code == 0, res.output
    assert "3 photos ranked" in res.output
    assert "notes.txt" in res.output and "1 file skipped" in res.output


def test_nothing_readable_is_exit_2_naming_the_file(tmp_path, profile_dir):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a photo")
    res = runner.invoke(app, ["score", str(tmp_path / "broken.jpg"), "--profile", str(profile_dir)])
    assert res.exit_code == 2, res.output
    assert "broken.jpg" in res.output and "Traceback" not in res.output


def test_an_empty_folder_is_one_line(tmp_path, profile_dir):
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["score", str(tmp_path / "empty"), "--profile", str(profile_dir)])
    assert res.exit_code == 2
    assert "no photos found" in _one_error_line(res.output)


def test_full_disk_on_output_is_one_line_naming_the_file(tmp_path, profile_dir, monkeypatch):
    synthetic_photo(np.random.default_rng(1)).save(tmp_path / "a.png")
    out = tmp_path / "scores.csv"

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    args = ["score", str(tmp_path / "a.png"), "--profile", str(profile_dir), "--output", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    line = _one_error_line(res.output)
    assert str(out) in line and "No space left" in line
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_preferences_naming_no_album_photo_are_refused(demo_world, tmp_path):
    prefs = tmp_path / "prefs.csv"
    prefs.write_text("preferred,other\nnot-here-1.jpg,not-here-2.jpg\n")
    res = runner.invoke(
        app,
        ["personalize", "--reference", str(demo_world["reference"]), "--album",
         str(demo_world["example"].album), "--prefs", str(prefs), "--out", str(tmp_path / "p"),
         "--generic-epochs", "1"],
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    line = _one_error_line(res.output)
    assert "none of the 1 judgements name two photos of the album" in line
    assert "prefs.csv" in line  # the file whose judgements do not match
    assert not (tmp_path / "p").exists()


def test_names_typed_with_spaces_and_decomposed_accents_still_personalize(demo_world, tmp_path):
    import unicodedata

    album = tmp_path / "album"
    album.mkdir()
    files = demo_world["example"].album_files[:12]
    for i, f in enumerate(files):
        (album / f"café-{i}.jpg").write_bytes(f.read_bytes())
    nfd = [unicodedata.normalize("NFD", f"café-{i}.jpg") for i in range(12)]  # as macOS writes them
    prefs = tmp_path / "prefs.csv"
    prefs.write_text("preferred, other\n" + "".join(f"{nfd[i]}, {nfd[i + 1]}\n" for i in range(0, 12, 2)))
    res = runner.invoke(
        app,
        ["personalize", "--reference", str(demo_world["reference"]), "--album", str(album), "--prefs",
         str(prefs), "--out", str(tmp_path / "p"), "--generic-epochs", "1", "--rank-epochs", "1"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "personal profile" in res.output and "6 stated" in res.output


def test_a_profile_swap_killed_halfway_still_loads_and_leftovers_go(profile_dir, tmp_path):
    import shutil

    from piaa.models.profile import load_profile

    target = tmp_path / "me"
    shutil.copytree(profile_dir, target)
    dead = 2**22 + 12345  # a pid that is not running
    target.rename(tmp_path / f".me.old-{dead}")  # killed after moving the old profile aside
    (tmp_path / f".me.{dead}.x1.part").mkdir()  # and the new one half-written
    assert load_profile(target).head is not None  # the old profile is back where it belongs
    assert target.is_dir() and not (tmp_path / f".me.old-{dead}").exists()
    load_profile(target).save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me"]


def test_full_disk_while_saving_a_profile_is_one_line(profile_dir, tmp_path, monkeypatch):
    from piaa.errors import PiaaError
    from piaa.models.profile import ProfileError, load_profile

    prof = load_profile(profile_dir)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("safetensors.torch.save_file", full)
    with pytest.raises(ProfileError, match=r"me: cannot save the profile \(No space left on device\)") as e:
        prof.save(tmp_path / "me")
    assert isinstance(e.value, PiaaError)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_during_a_reference_build_is_one_line_naming_the_file(ref_corpus, tmp_path, monkeypatch):
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # the derived embeddings file cannot be written
    out = tmp_path / "REF"
    args = ["reference", "build", "--labels", str(ref_corpus["labels"])]
    args += ["--images", str(ref_corpus["images"])]
    res = runner.invoke(app, [*args, "--out", str(out), "--limit", "4"])
    assert res.exit_code == 2, res.output
    line = _one_error_line(res.output)
    assert "No space left" in line and str(out) in line and "Traceback" not in res.output
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]
