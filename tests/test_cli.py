"""The command line: personalize, score, outputs, and one-line errors."""

import json

from typer.testing import CliRunner

from piaa.cli.main import app

runner = CliRunner()


def test_personalize_then_score_ranks_and_writes_outputs(demo_world, tmp_path):
    ex = demo_world["example"]
    files = ex.album_files
    prefs = tmp_path / "prefs.csv"
    prefs.write_text(
        "preferred,other\n" + "".join(f"{files[i].name},{files[i + 1].name}\n" for i in range(0, 20, 2))
    )
    out = tmp_path / "profile"
    res = runner.invoke(
        app,
        [
            "personalize",
            "--reference",
            str(demo_world["reference"]),
            "--album",
            str(ex.album),
            "--prefs",
            str(prefs),
            "--out",
            str(out),
            "--generic-epochs",
            "2",
            "--rank-epochs",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "10 stated" in res.output
    head = json.loads((out / "config.json").read_text())["head"]
    assert head["stats"] == 224  # efficientnet-lite0's low-level statistics, on by default
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really")
    res = runner.invoke(
        app,
        [
            "score",
            str(files[0]),
            str(files[1]),
            str(files[2]),
            str(bad),
            "--profile",
            str(out),
            "--output",
            str(tmp_path / "s.json"),
        ],
    )
    assert res.exit_code == 2, res.output  # a user-caused error, after the other photos were scored
    assert "broken.jpg" in res.output and "1 image skipped" in res.output
    rows = json.loads((tmp_path / "s.json").read_text())
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]
    assert len(rows[0]["distribution"]) == 10 and abs(sum(rows[0]["distribution"]) - 1) < 1e-3
    res = runner.invoke(
        app,
        ["score", str(ex.album), "--profile", str(out), "--top", "4", "--output", str(tmp_path / "s.csv")],
    )
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "rank,path,score" and len(lines) == 5


def test_score_with_a_broken_profile_is_one_line(tmp_path):
    (tmp_path / "p").mkdir()
    res = runner.invoke(app, ["score", str(tmp_path), "--profile", str(tmp_path / "p")])
    assert res.exit_code == 2
    assert "config.json is missing" in res.output and "Traceback" not in res.output


def test_personalize_with_bad_preferences_file(demo_world, tmp_path):
    prefs = tmp_path / "prefs.csv"
    prefs.write_text("winner,loser\na.jpg,b.jpg\n")
    res = runner.invoke(
        app,
        [
            "personalize",
            "--reference",
            str(demo_world["reference"]),
            "--album",
            str(demo_world["example"].album),
            "--prefs",
            str(prefs),
            "--out",
            str(tmp_path / "p"),
        ],
    )
    assert res.exit_code == 2 and "prefs.csv" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "p").exists()


def test_prefs_import_show_export(tmp_path):
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("preferred,other\na.jpg,b.jpg\nb.jpg,c.jpg\nb.jpg,a.jpg\n")
    store = tmp_path / "p.sqlite"
    res = runner.invoke(app, ["prefs", "import", str(store), str(csv_in)])
    assert res.exit_code == 0 and "imported 3 judgements" in res.output, res.output
    res = runner.invoke(app, ["prefs", "show", str(store)])
    assert "3 judgements over 3 images -> 2 effective pairs (1 contradiction," in res.output, res.output
    res = runner.invoke(app, ["prefs", "export", str(store), str(tmp_path / "out.csv"), "--resolved"])
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines == ["preferred,other,source", "b.jpg,a.jpg,csv:in.csv", "b.jpg,c.jpg,csv:in.csv"]
    res = runner.invoke(app, ["prefs", "export", str(store), str(csv_in)])  # the user's own CSV is kept
    assert res.exit_code == 2 and "in.csv: exists; give --force" in res.output, res.output
    assert csv_in.read_text().startswith("preferred,other\na.jpg,b.jpg\n")
    res = runner.invoke(app, ["prefs", "export", str(store), str(tmp_path / "out.csv"), "--force"])
    assert res.exit_code == 0 and len((tmp_path / "out.csv").read_text().splitlines()) == 4, res.output
    res = runner.invoke(app, ["prefs", "export", str(tmp_path / "none.sqlite"), str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and "no such preference store" in res.output


def test_bench_settings_are_typed_and_checked():
    import pytest

    from piaa.cli._common import parse_settings

    assert parse_settings(["rank_lr=1e-3", "attention=false", "rank_epochs=5"]) == {
        "rank_lr": 1e-3, "attention": False, "rank_epochs": 5,
    }  # fmt: skip
    with pytest.raises(ValueError, match="KEY one of"):
        parse_settings(["learning_rate=1"])
    with pytest.raises(ValueError, match="not a int"):
        parse_settings(["rank_epochs=many"])
