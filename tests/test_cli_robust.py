"""The command line as a user meets it: help texts, names that look like rich markup, checks before
work, Ctrl-C, --copy-top, exit statuses, and stores on read-only or full disks (issues 21, 23, 24)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import piaa
from conftest import synthetic_photo
from piaa.cli.main import app
from piaa.preferences import PreferenceStore

runner = CliRunner()
SRC = str(Path(piaa.__file__).resolve().parents[1])

# names that rich would read as markup: a closing tag with nothing to close, a style, a bare bracket
# joined as folder / file, "holiday [" / "] sunset.jpg" reads as "holiday [/] sunset.jpg": a closing tag
markup_text = st.text(alphabet="ab []boldre:", min_size=1, max_size=12).filter(lambda s: s.strip(" ."))


def photos(folder: Path, names: list[str], seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for name in names:
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        synthetic_photo(rng).save(p, quality=90)
        out.append(p)
    return out


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def boom(*args, **kwargs):
    raise AssertionError("work started before the inputs were checked")


# ------------------------------------------------------------------------------------------- help


def _commands(cmd, path: str = "piaa"):
    yield path, cmd
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, f"{path} {name}")


def test_every_command_and_option_has_a_help_text():
    missing = []
    for path, cmd in _commands(typer.main.get_command(app)):
        if not (cmd.help or "").strip():
            missing.append(path)
        for param in cmd.params:
            if param.name != "help" and not (getattr(param, "help", None) or "").strip():
                missing.append(f"{path} {param.name}")
    assert missing == []


def test_help_is_plain_text_without_type_hints():
    for path, _ in _commands(typer.main.get_command(app)):
        res = run(*path.split()[1:], "--help")
        assert res.exit_code == 0, (path, res.output)
        for clutter in ("<bool>", "<Path>", "<str>", "<int", "list[Path]", "{paths}"):
            assert clutter not in res.output, (path, clutter, res.output)
        assert not re.search(r"\w \.(\s|$)", res.output), (path, res.output)  # "simulated persons ."
    assert "pip install piaa[ray]" in run("score", "--help").output  # not eaten as rich markup
    assert "nima-ava" in run("score", "--help").output
    evaluate = run("evaluate", "--help").output
    assert "--test-workers" in evaluate and "--workers" not in evaluate.replace("--test-workers", "")
    assert "[default: ../shared/data/photos" in " ".join(evaluate.split())


def test_usage_mistakes_are_one_line_exit_2():
    for args, said in ((["score", "x"], "Missing option '--profile'"), (["score"], "Missing argument"),
                       (["score", "x", "--profile", "p", "--top", "0"], "'--top'")):  # fmt: skip
        res = run(*args)
        assert res.exit_code == 2 and res.output.startswith("error: ") and said in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1 and "score --help" in res.output
    assert "Commands:" in run("prefs").output  # a group without a command still shows its help


def test_evaluate_keeps_the_old_workers_option(tmp_path):
    for option in ("--test-workers", "--workers"):
        res = run("evaluate", "--dataset", "flickr-aes", "--dataset-root", tmp_path, "--reference", tmp_path,
                  "--out", tmp_path / "o", option, tmp_path / "w.txt")  # fmt: skip
        assert res.exit_code == 2 and "No such option" not in res.output, res.output
        assert "--images DIR" in res.output


# ------------------------------------------------------------------------------- markup in names


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(folder=markup_text, photo=markup_text, corrupt=markup_text)
def test_score_prints_markup_names_as_written(tmp_path_factory, folder, photo, corrupt):
    root = tmp_path_factory.mktemp("markup") / folder.strip()
    photos(root, [f"{photo}.jpg"])
    (root / f"{corrupt} bad.jpg").write_bytes(b"\xff\xd8\xff not a photo")
    (root / f"{corrupt}.txt").write_text("notes")
    res = run("score", root, "--profile", "nima-ava")
    assert res.exit_code == 2, res.output  # the corrupt photo
    assert "MarkupError" not in res.output and "Traceback" not in res.output
    assert f"{corrupt} bad.jpg" in res.output and f"{corrupt}.txt" in res.output
    assert "1 photo ranked" in res.output and "1 image skipped" in res.output


def test_score_on_the_issues_folder(tmp_path):
    root = tmp_path / "holiday ["
    photos(root, ["] sunset.jpg"])
    (root / "[bold]broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    res = run("score", root, "--profile", "nima-ava", "--output", tmp_path / "s.csv")
    assert res.exit_code == 2 and "[bold]broken.jpg" in res.output and "holiday [" in res.output, res.output
    assert "wrote 1 score to" in res.output  # not "1 scores"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(markup_text, min_size=2, max_size=4, unique=True),
    store=markup_text,
)
def test_prefs_commands_print_markup_names_as_written(tmp_path_factory, names, store):
    tmp = tmp_path_factory.mktemp("prefs")
    album = tmp / "album"
    photos(album, ["a.jpg"])
    csv_file = tmp / "p.csv"
    names = [f"n{n.strip()}" for n in names]
    rows = [f"a.jpg,{n}.jpg" for n in names]
    csv_file.write_text("preferred,other\n" + "\n".join(rows) + "\n")
    res = run("prefs", "show", csv_file, "--album", album)
    assert res.exit_code == 0, res.output
    assert f"{names[0]}.jpg" in res.output and "not in" in res.output
    path = tmp / f"{store.strip()}.sqlite"
    res = run("prefs", "import", path, csv_file)
    assert res.exit_code == 0 and str(path) in res.output, res.output
    res = run("prefs", "export", path, tmp / "out [/].csv")
    assert res.exit_code == 0 and "out [/].csv" in res.output, res.output


def test_prefs_import_into_a_store_named_like_markup(tmp_path):
    csv_file = tmp_path / "old [bold]prefs.csv"
    csv_file.write_text("preferred,other\nold/[/]gone.jpg,b.jpg\n")
    res = run("prefs", "import", tmp_path / "st [/]me.sqlite", csv_file)  # a folder "st [" not made yet
    assert res.exit_code == 2 and "st [/]me.sqlite: cannot create the store" in res.output, res.output
    (tmp_path / "st [").mkdir()
    res = run("prefs", "import", tmp_path / "st [/]me.sqlite", csv_file)
    assert res.exit_code == 0 and "st [/]me.sqlite: imported 1 judgement (" in res.output, res.output


def test_control_characters_from_a_csv_are_printed_escaped(tmp_path):
    album = tmp_path / "album"
    photos(album, ["a.jpg"])
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("preferred,other\na.jpg,\x1b[31mred.jpg\na.jpg,bell\x07.jpg\na.jpg,nul\x00.jpg\n")
    res = run("prefs", "show", csv_file, "--album", album)
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output and "\x00" not in res.output
    assert "\\x1b[31mred.jpg" in res.output and "bell\\x07.jpg" in res.output and "nul\\x00.jpg" in res.output


# ------------------------------------------------------------------------------ checks before work


def test_score_checks_its_output_before_scoring(tmp_path, monkeypatch):
    photos(tmp_path / "album", ["a.jpg"])
    monkeypatch.setattr("piaa.models.profile.load_profile", boom)
    res = run("score", tmp_path / "album", "--profile", "nima-ava", "--output", tmp_path / "out.txt")
    assert res.exit_code == 2 and "out.txt: --output must end in .csv or .json" in res.output, res.output
    (tmp_path / "f").write_text("x")
    res = run("score", tmp_path / "album", "--profile", "nima-ava", "--output", tmp_path / "f" / "s.csv")
    assert res.exit_code == 2 and "s.csv" in res.output, res.output
    both = ["--copy-top", tmp_path / "a", "--link-top", tmp_path / "b"]
    res = run("score", tmp_path / "album", "--profile", "nima-ava", *both)
    assert res.exit_code == 2 and "not both" in res.output


def test_score_refuses_an_empty_path():
    res = run("score", "", "--profile", "nima-ava")
    assert res.exit_code == 2 and "empty name" in res.output and "rank" not in res.output, res.output


def test_every_path_argument_and_option_refuses_an_empty_name():
    """Path("") is the current folder: ``piaa cull ''`` walked it, ``--out ''`` wrote there. Every path
    parameter goes through the one parser that refuses it (a click.Path type means it was missed)."""
    import typing

    from piaa.cli._common import user_path

    def callbacks(t):
        yield from (c.callback for c in t.registered_commands)
        for g in t.registered_groups:
            yield from callbacks(g.typer_instance)

    loose = []
    for fn in callbacks(app):
        for name, hint in typing.get_type_hints(fn, include_extras=True).items():
            path_like = typing.get_origin(hint) is typing.Annotated and "Path" in str(hint.__origin__)
            if path_like and getattr(hint.__metadata__[0], "parser", None) is not user_path:
                loose.append(f"{fn.__name__} {name}")
    assert len(list(callbacks(app))) > 10
    assert loose == []
    for args in (["cull", ""], ["retouch", "", "--out", "r"], ["collect", "--album", "", "--store", "s"]):
        res = run(*args, "--profile", "nima-ava") if args[0] != "collect" else run(*args)
        assert res.exit_code == 2 and "empty name" in res.output, (args, res.output)


def test_results_never_replace_a_file_piaa_did_not_write(tmp_path, monkeypatch):
    photos(tmp_path / "album", ["a.jpg"])
    mine = tmp_path / "mydata.csv"
    mine.write_text("important,spreadsheet\n1,2\n")
    monkeypatch.setattr("piaa.models.profile.load_profile", boom)
    for cmd in ("score", "cull"):
        res = run(cmd, tmp_path / "album", "--profile", "nima-ava", "--output", mine)
        assert res.exit_code == 2 and "not a file piaa wrote" in res.output, (cmd, res.output)
        assert mine.read_text() == "important,spreadsheet\n1,2\n"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.html").write_text("<html><title>my notes</title></html>")
    res = run("cull", tmp_path / "album", "--profile", "nima-ava", "--out", tmp_path / "out")
    assert res.exit_code == 2 and "report.html" in res.output and "did not write" in res.output, res.output


def test_a_rerun_replaces_its_own_results(tmp_path):
    photos(tmp_path / "album", ["a.jpg", "b.jpg"])
    for out in ("s.csv", "s.json"):
        for _ in range(2):
            res = run("score", tmp_path / "album", "--profile", "nima-ava", "--output", tmp_path / out)
            assert res.exit_code == 0, res.output
    res = run(
        "cull", tmp_path / "album", "--profile", "nima-ava", "--no-eyes", "--output", tmp_path / "c.csv"
    )
    assert res.exit_code == 0 and "wrote 2 rows to" in res.output, res.output
    for _ in range(2):
        res = run("cull", tmp_path / "album", "--profile", "nima-ava", "--no-eyes", "--out", tmp_path / "o")
        assert res.exit_code == 0, res.output


def test_bad_sidecar_and_engine_values_are_refused_before_the_work(tmp_path, monkeypatch):
    photos(tmp_path / "album", ["a.jpg"])
    monkeypatch.setattr("piaa.models.profile.load_profile", boom)
    res = run("score", tmp_path / "album", "--profile", "nima-ava", "--sidecar", "foo")  # even without --xmp
    assert res.exit_code == 2 and "--sidecar foo: choose one of darktable, adobe" in res.output, res.output
    for cmd in ("score", "cull"):
        res = run(cmd, tmp_path / "album", "--profile", "nima-ava", "--engine", "foo")
        assert res.exit_code == 2 and "unknown engine 'foo'" in res.output, (cmd, res.output)


def test_explaining_a_built_in_model_says_it_has_no_judgements():
    res = run("profile", "explain", "nima-ava")
    assert res.exit_code == 2 and "nima-ava: a built-in generic model holds no judgements" in res.output


def test_a_profile_that_cannot_be_saved_is_refused_before_training(tmp_path):
    from piaa.models.profile import ProfileError, check_save_target

    (tmp_path / "file").write_text("x")
    with pytest.raises(ProfileError, match="cannot save the profile there"):
        check_save_target(tmp_path / "file" / "me")
    check_save_target(tmp_path / "new" / "me")  # a folder still to be made is fine
    assert not (tmp_path / "new").exists()


def test_score_copy_top_into_a_file_is_refused_before_scoring(tmp_path, monkeypatch):
    photos(tmp_path / "album", ["a.jpg"])
    (tmp_path / "best").write_text("not a folder")
    monkeypatch.setattr("piaa.models.profile.Profile.iter_score_files", boom)
    res = run("score", tmp_path / "album", "--profile", "nima-ava", "--copy-top", tmp_path / "best")
    assert res.exit_code == 2 and "best: --copy-top exists and is not a folder" in res.output, res.output
    res = run("score", tmp_path / "album", "--profile", "nima-ava", "--copy-top", tmp_path / "album")
    assert res.exit_code == 2 and "is a folder being scored" in res.output, res.output


def test_personalize_checks_before_training(tmp_path, monkeypatch):
    photos(tmp_path / "album", ["a.jpg", "b.jpg"])
    monkeypatch.setattr("piaa.models.personalize.personalize", boom)
    base = ["personalize", "--album", tmp_path / "album", "--out", tmp_path / "p"]
    res = run(*base, "--generic", "nima-ava", "--reference", tmp_path)
    assert res.exit_code == 2 and "not both" in res.output, res.output
    res = run(*base)
    assert res.exit_code == 2 and "--generic nima-ava" in res.output, res.output
    header = tmp_path / "h.csv"
    header.write_text("preferred,other\n")
    res = run(*base, "--generic", "nima-ava", "--prefs", header)
    assert res.exit_code == 2 and "h.csv: holds no judgements" in res.output, res.output
    res = run(*base, "--generic", "nima-ava", "--prefs", tmp_path / "album")
    assert res.exit_code == 2 and "album: is a folder, not a preferences file" in res.output, res.output


def test_prefs_import_checks(tmp_path):
    store = tmp_path / "s.sqlite"
    with PreferenceStore(store) as s:
        s.add("a.jpg", "b.jpg")
    res = run("prefs", "import", tmp_path / "new.sqlite", store)
    assert res.exit_code == 2 and "is a preference store (SQLite), not a CSV" in res.output, res.output
    assert not list(tmp_path.glob("new.sqlite*"))  # a failed import leaves no new store behind
    res = run("prefs", "import", tmp_path, tmp_path / "x.csv")
    assert res.exit_code == 2, res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("preferred,other\na.jpg,b.jpg\nc.jpg\n")
    res = run("prefs", "import", tmp_path / "new.sqlite", bad)
    assert res.exit_code == 2 and "bad.csv:3" in res.output and not list(tmp_path.glob("new.sqlite*"))
    (tmp_path / "folder.sqlite").mkdir()
    res = run("prefs", "show", tmp_path / "folder.sqlite")
    assert res.exit_code == 2 and "is a folder" in res.output and "I/O" not in res.output, res.output
    good = tmp_path / "good.csv"
    good.write_text("preferred,other\na.jpg,b.jpg\n")
    res = run("prefs", "import", tmp_path / "folder.sqlite", good)
    assert res.exit_code == 2 and "is a folder" in res.output and "I/O" not in res.output, res.output
    res = run("prefs", "export", store, tmp_path / "folder.sqlite")
    assert res.exit_code == 2 and "is a folder, not a file" in res.output, res.output


def test_evaluate_and_reference_build_check_their_folders_first(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr("piaa.evaluation.protocol.simulated_world", boom)
    res = run("evaluate", "--photos", tmp_path, "--out", tmp_path / "file")
    assert res.exit_code == 2 and "file: --out exists and is not a folder" in res.output, res.output
    labels = tmp_path / "AVA.txt"
    labels.write_text("1 1000 0 0 0 1 2 3 0 0 0 0 0 0 0\n")
    monkeypatch.setattr("piaa.features.reference.build_reference", boom)
    res = run(
        "reference", "build", "--labels", labels, "--images", tmp_path / "none", "--out", tmp_path / "r"
    )
    assert res.exit_code == 2 and "none: --images folder not found" in res.output, res.output
    res = run("reference", "build", "--labels", labels, "--images", tmp_path, "--out", tmp_path / "file")
    assert res.exit_code == 2 and "--out exists and is not a folder" in res.output, res.output


# ------------------------------------------------------------------------------------------ Ctrl-C


def test_score_interrupted_writes_what_was_scored_as_partial(tmp_path, monkeypatch):
    from piaa.models.profile import Profile, ScoreResult

    files = photos(tmp_path / "album", ["a.jpg", "b.jpg", "c.jpg"])

    def two_then_ctrl_c(self, paths, **kwargs):
        yield ScoreResult(str(paths[0]), 4.0, [0.1] * 10)
        yield ScoreResult(str(paths[1]), 6.0, [0.1] * 10)
        raise KeyboardInterrupt

    monkeypatch.setattr(Profile, "iter_score_files", two_then_ctrl_c)
    out = tmp_path / "s.csv"
    out.write_text("rank,path,score\n1,old.jpg,9\n")
    res = run("score", tmp_path / "album", "--profile", "nima-ava", "--output", out)
    assert res.exit_code == 130 and "Traceback" not in res.output, res.output
    assert "interrupted: 2 of 3 photos scored; wrote them, ranked, to" in res.output
    assert len(res.output.strip().splitlines()) == 1
    partial = (tmp_path / "s.partial.csv").read_text().splitlines()
    assert partial == ["rank,path,score", f"1,{files[1]},6.0", f"2,{files[0]},4.0"]
    assert out.read_text() == "rank,path,score\n1,old.jpg,9\n"  # what the user had is kept
    res = run("score", tmp_path / "album", "--profile", "nima-ava")
    assert res.exit_code == 130 and "nothing was written (no --output)" in res.output


@pytest.mark.parametrize(
    ("target", "args", "said"),
    [
        (
            "piaa.models.personalize.personalize",
            ["personalize", "--generic", "nima-ava"],
            "no profile was written",
        ),
        ("piaa.features.reference.build_reference", ["reference", "build"], "run the same command again"),
        ("piaa.evaluation.protocol.run", ["evaluate"], "nothing was written"),
    ],
)
def test_long_commands_interrupted_say_what_was_left_in_one_line(tmp_path, monkeypatch, target, args, said):
    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(target, ctrl_c)
    photos(tmp_path / "album", ["a.jpg"])
    labels = tmp_path / "AVA.txt"
    labels.write_text("1 a 0 0 0 1 2 3 0 0 0 0 0 0 0\n")
    monkeypatch.setattr("piaa.evaluation.protocol.simulated_world", lambda *a, **k: None)
    extra = {
        "personalize": ["--album", tmp_path / "album", "--out", tmp_path / "p"],
        "reference": ["--labels", labels, "--images", tmp_path / "album", "--out", tmp_path / "r"],
        "evaluate": ["--photos", tmp_path / "album", "--out", tmp_path / "bench"],
    }[args[0]]
    res = run(*args, *extra)
    assert res.exit_code == 130 and said in res.output and "Traceback" not in res.output, res.output
    assert res.output.startswith("interrupted: ") and len(res.output.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------- --copy-top


def test_copy_top_and_link_top_hand_the_best_photos_on(tmp_path):
    files = photos(tmp_path / "album", ["a.jpg", "b.jpg", "x/a.jpg", "y/a.jpg"])
    stamp = 1_600_000_000
    for f in files:
        os.utime(f, (stamp, stamp))
    best = tmp_path / "best"
    res = run("score", tmp_path / "album", "--profile", "nima-ava", "--top", "4", "--output",
              tmp_path / "best.csv", "--copy-top", best)  # fmt: skip
    assert res.exit_code == 0 and "copied 4 photos to" in res.output, res.output
    assert sorted(p.name for p in best.iterdir()) == ["a-2.jpg", "a-3.jpg", "a.jpg", "b.jpg"]
    ranked = [r.split(",")[1] for r in (tmp_path / "best.csv").read_text().splitlines()[1:]]
    copies = {p.read_bytes() for p in best.iterdir()}
    assert copies == {Path(p).read_bytes() for p in ranked}
    assert all(p.stat().st_mtime == stamp for p in best.iterdir())
    res = run("score", tmp_path / "album", "--profile", "nima-ava", "--top", "4", "--copy-top", best)
    assert res.exit_code == 0 and len(list(best.iterdir())) == 4, res.output  # a re-run adds no duplicate
    assert "copied 0 photos to" in res.output and "(4 already there)" in res.output, res.output
    links = tmp_path / "links"
    res = run("score", tmp_path / "album", "--profile", "nima-ava", "--top", "2", "--link-top", links)
    assert res.exit_code == 0 and "linked 2 photos to" in res.output, res.output
    assert all(p.is_symlink() and Path(os.readlink(p)).is_absolute() for p in links.iterdir())
    assert {os.path.realpath(p) for p in links.iterdir()} <= {os.path.realpath(f) for f in files}


def test_copy_top_never_overwrites_a_different_file(tmp_path):
    from piaa.cli.model import place_photos

    src = photos(tmp_path / "album", ["a.jpg"])[0]
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "a.jpg").write_bytes(b"someone else's photo")
    placed = place_photos([src], tmp_path / "best")
    assert [p.name for p in placed] == ["a-2.jpg"]
    assert (tmp_path / "best" / "a.jpg").read_bytes() == b"someone else's photo"
    assert not [p for p in (tmp_path / "best").iterdir() if p.name.startswith(".")]  # no temporaries left


# --------------------------------------------------------------------- exit status of personalize


@pytest.mark.slow
def test_personalize_lists_unreadable_photos_exits_2_and_show_counts_the_same(tmp_path):
    album = tmp_path / "al [bold]bum ["
    files = photos(album, [f"p{i}.jpg" for i in range(6)])
    (album / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    prefs = tmp_path / "prefs.csv"
    rows = [
        f"{files[0]},p1.jpg",
        "p1.jpg,p2.jpg",
        f"../{album.name}/p3.jpg,{files[4]}",
        "p4.jpg,old/[/]gone.jpg",
    ]
    prefs.write_text("preferred,other\n" + "\n".join(rows) + "\n")
    res = run("personalize", "--generic", "nima-ava", "--album", album, "--prefs", prefs, "--out",
              tmp_path / "p", "--rank-epochs", "2", "--no-select")  # fmt: skip
    assert res.exit_code == 2 and "broken.jpg" in res.output and "1 image skipped" in res.output, res.output
    assert (tmp_path / "p" / "config.json").is_file()  # the profile is written all the same
    data = json.loads((tmp_path / "p" / "config.json").read_text())["data"]
    assert data["pairs_stated"] == 3 and "1 judgement name" in res.output and "old/[/]gone.jpg" in res.output
    res = run("prefs", "show", prefs, "--album", album)
    assert res.exit_code == 0 and "3 judgements over 5 images -> 3 effective pairs" in res.output, res.output
    assert "1 judgement name photos that are not in" in res.output and "old/[/]gone.jpg" in res.output


# ------------------------------------------------------------------------------------------ stores


def _unshare(script: str, tmp: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a private mount namespace, where it may mount read-only binds and tiny tmpfs."""
    env = {**os.environ, "PYTHONPATH": SRC, "PY": sys.executable}
    return subprocess.run(
        ["unshare", "-m", "sh", "-ec", script], cwd=tmp, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def mounts(tmp_path):
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a real read-only mount")
    probe = _unshare("mkdir -p m && mount -t tmpfs -o size=64k tmpfs m", tmp_path)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount here: {probe.stderr.strip()}")
    return tmp_path


@pytest.mark.parametrize("pending_wal", [False, True])
def test_a_store_in_a_read_only_mount_is_read(mounts, pending_wal):
    """A real read-only bind mount (root ignores chmod): show and export read the store, WAL included."""
    folder = mounts / "ro"
    folder.mkdir()
    store = folder / "prefs.sqlite"
    with PreferenceStore(store) as s:
        for i in range(3):
            s.add(f"a{i}.jpg", f"b{i}.jpg")
    if pending_wal:  # judgements still in the WAL, not yet checkpointed into the file
        db = sqlite3.connect(store)
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("INSERT INTO judgements (preferred, other, created) VALUES ('c.jpg', 'd.jpg', 0)")
        db.commit()
        shutil.copy(store.with_name("prefs.sqlite-wal"), mounts / "wal")
        db.close()  # checkpoints and removes the WAL: put the pending one back
        shutil.copy(mounts / "wal", store.with_name("prefs.sqlite-wal"))
        store.with_name("prefs.sqlite-shm").unlink(missing_ok=True)
    else:
        assert not store.with_name("prefs.sqlite-wal").exists()
    n = 4 if pending_wal else 3
    script = (
        "mount --bind ro ro && mount -o remount,ro,bind ro\n"
        "touch ro/x 2>/dev/null && exit 7\n"
        '"$PY" -m piaa.cli.main prefs show ro/prefs.sqlite\n'
        '"$PY" -m piaa.cli.main prefs export ro/prefs.sqlite out.csv\n'
    )
    res = _unshare(script, mounts)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{n} judgements over {2 * n} images" in res.stdout
    assert len((mounts / "out.csv").read_text().splitlines()) == n + 1


def test_read_only_decision_without_a_mount(tmp_path, monkeypatch):
    """The same logic where no mount can be made: the folder is declared unwritable."""
    import piaa.preferences.store as store_mod

    store = tmp_path / "p.sqlite"
    with PreferenceStore(store) as s:
        s.add("a.jpg", "b.jpg")
    monkeypatch.setattr(store_mod, "folder_writable", lambda path: False)
    with PreferenceStore(store, readonly=True) as s:
        assert "immutable=1" in s._read_uri() and len(s) == 1


@pytest.mark.slow
def test_a_full_disk_is_named_and_a_failed_import_leaves_nothing(mounts):
    rows = "".join(f"photo-{i:06d}-{'x' * 60}.jpg,other-{i:06d}-{'y' * 60}.jpg\n" for i in range(4000))
    (mounts / "big.csv").write_text("preferred,other\n" + rows)
    script = (
        "mkdir -p m && mount -t tmpfs -o size=192k tmpfs m\n"
        "set +e\n"
        '"$PY" -m piaa.cli.main prefs import m/new.sqlite big.csv; echo "rc=$?"\n'
        "ls -a m\n"
    )
    res = _unshare(script, mounts)
    assert "rc=2" in res.stdout, res.stdout + res.stderr
    assert "new.sqlite: cannot write the preference store: the disk is full" in res.stderr, res.stderr
    assert "new.sqlite" not in res.stdout.split("rc=2")[1]  # neither the store nor its -wal, -shm


@pytest.mark.slow
def test_reference_build_again_in_a_read_only_folder_has_nothing_to_do(mounts, lite0):
    from piaa.features.reference import build_reference

    images = mounts / "im ["
    photos(images, [f"] {i}.jpg" for i in range(4)])  # "im [/] 0.jpg": a closing tag for rich
    labels = mounts / "labels.csv"
    rows = "".join(f"] {i}.jpg,0,0,1,2,3,2,1,0,0,0\n" for i in range(4))
    labels.write_text("image,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10\n" + rows)
    ref = mounts / "ref [bold]"
    build_reference(labels, images, ref, backbone=lite0, progress=False)
    res = run("reference", "neighbors", ref, images / "] 0.jpg", "--k", "2")
    assert res.exit_code == 0 and "im [/] 0.jpg" in res.output, res.output
    script = (
        "mount --bind 'ref [bold]' 'ref [bold]' && mount -o remount,ro,bind 'ref [bold]'\n"
        '"$PY" -m piaa.cli.main reference build --labels labels.csv --images "im [" --out "ref [bold]"\n'
    )
    res = _unshare(script, mounts)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ref [bold]: complete (4 images embedded), nothing to do" in res.stdout
    assert "readonly" not in res.stderr and "Traceback" not in res.stderr


# ------------------------------------------------------------------------------ messages and files


def test_damaged_files_with_a_real_signature_are_called_damaged(tmp_path):
    from PIL import Image

    from piaa.data.images import ImageError, load_image

    for fmt, name in (("PNG", "PNG"), ("WEBP", "WebP")):
        p = tmp_path / f"x.{fmt.lower()}"
        Image.new("RGB", (40, 30), "red").save(p, fmt)
        data = bytearray(p.read_bytes())
        data[12:30] = bytes(18)  # the header's chunk after the signature
        p.write_bytes(bytes(data))
        with pytest.raises(ImageError, match=f"damaged {name} file"):
            load_image(p)
    (tmp_path / "t.png").write_text("just text")
    with pytest.raises(ImageError, match="unrecognised format"):
        load_image(tmp_path / "t.png")


def test_label_counts_that_overflow_are_listed_not_stored_as_zeros(tmp_path):
    from piaa.data.labels import read_labels

    p = tmp_path / "labels.csv"
    huge = ",".join(["1e308"] * 10)
    p.write_text(f"image_id,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10\na,1,2,3,4,5,6,7,8,9,10\nb,{huge}\n")
    labels = read_labels(p)
    assert labels.ids == ["a"] and np.isclose(labels.distributions.sum(), 1)
    assert labels.skipped == [f"{p}:3: image b: vote counts too large (their sum overflows)"]


def test_check_reference_refuses_a_photo_folder_at_start_up(tmp_path):
    from piaa.features.reference import ReferenceCorpusError, check_reference

    photos(tmp_path / "album", ["a.jpg"])
    with pytest.raises(ReferenceCorpusError, match="a folder of photos, not a reference corpus"):
        check_reference(tmp_path / "album")
    with pytest.raises(ReferenceCorpusError, match="no such folder"):
        check_reference(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReferenceCorpusError, match="not a piaa reference"):
        check_reference(tmp_path / "empty")


@pytest.mark.slow
def test_ctrl_c_to_a_real_reference_build_is_one_line_and_keeps_what_was_embedded(tmp_path):
    """SIGINT, as a terminal sends it, to a running `piaa reference build` (not a monkeypatched step)."""
    import signal
    import time

    n = 120
    photos(tmp_path / "imgs", [f"{i}.jpg" for i in range(n)])
    (tmp_path / "AVA.txt").write_text("".join(f"{i + 1} {i} 0 0 1 2 3 2 1 0 0 0 0 0 0\n" for i in range(n)))
    cmd = [sys.executable, "-m", "piaa.cli", "reference", "build", "--labels", "AVA.txt", "--images", "imgs",
           "--out", "ref"]  # fmt: skip
    # a test run started in the background by a shell without job control inherits SIGINT ignored, and so
    # would the command: give it the default handler, as a terminal's foreground job has
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**os.environ, "PYTHONPATH": SRC}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    done, t0 = 0, time.monotonic()
    while not done and time.monotonic() - t0 < 120 and proc.poll() is None:
        time.sleep(0.05)
        try:
            db = sqlite3.connect(f"file:{tmp_path / 'ref' / 'reference.sqlite'}?mode=ro", uri=True)
            done = db.execute("SELECT COUNT(*) FROM items WHERE status = 1").fetchone()[0]
            db.close()
        except sqlite3.Error:
            pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert done and proc.returncode == 130, (done, proc.returncode, out, err)
    assert "Traceback" not in err and out == ""
    last = err.strip().splitlines()[-1]
    assert last == "interrupted: what was embedded is kept in ref; run the same command again to resume"
    db = sqlite3.connect(f"file:{tmp_path / 'ref' / 'reference.sqlite'}?mode=ro", uri=True)
    kept = db.execute("SELECT COUNT(*) FROM items WHERE status = 1").fetchone()[0]
    db.close()
    assert done <= kept < n  # what was embedded before the interrupt is still there, the rest is not


def test_a_file_name_that_is_not_utf8_is_scored_and_written_back_as_its_bytes(tmp_path):
    folder = tmp_path / "card"
    photo = photos(folder, ["x.jpg"])[0]
    odd = Path(os.fsdecode(bytes(folder) + b"/IMG\xff.jpg"))  # latin-1 from an old camera card
    photo.rename(odd)
    res = run("score", folder, "--profile", "nima-ava", "--output", tmp_path / "s.csv")
    assert res.exit_code == 0 and "wrote 1 score" in res.output, res.output
    assert os.fsencode(odd) in (tmp_path / "s.csv").read_bytes()


def test_score_copy_top_inside_a_scored_folder_is_refused_before_scoring(tmp_path, monkeypatch):
    photos(tmp_path / "album", ["a.jpg"])
    monkeypatch.setattr("piaa.models.profile.Profile.iter_score_files", boom)
    res = run("score", tmp_path / "album", "--profile", "nima-ava", "--copy-top", tmp_path / "album" / "best")
    assert res.exit_code == 2 and "is inside" in res.output, res.output
    assert "a folder being scored" in res.output
    assert not (tmp_path / "album" / "best").exists()


def test_a_bug_shows_as_a_bug_and_a_user_error_as_one_line(tmp_path, monkeypatch):
    """Only piaa's own errors (PiaaError) and OS errors become exit 2: a ValueError from inside piaa is a
    bug, and must not be dressed up as the user's mistake (issue 22)."""
    from piaa.errors import UsageError

    photos(tmp_path / "album", ["a.jpg"])

    def bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr("piaa.models.profile.Profile.iter_score_files", bug)
    res = run("score", tmp_path / "album", "--profile", "nima-ava")
    assert res.exit_code == 1 and isinstance(res.exception, ValueError), res.output
    assert "error:" not in res.output  # not printed as a user's one-line error

    def user(*args, **kwargs):
        raise UsageError("x.jpg: a problem the user can fix")

    monkeypatch.setattr("piaa.models.profile.Profile.iter_score_files", user)
    res = run("score", tmp_path / "album", "--profile", "nima-ava")
    assert res.exit_code == 2 and "x.jpg: a problem the user can fix" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1 and res.exception.__class__ is SystemExit
