"""The README's main job: the demo runs every stage and personalization helps the simulated person."""

import re

import pytest

from piaa.demo import run
from piaa.models.selection import Selection


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    results = run(tmp_path / "demo", seed=0, verbose=True)
    assert results["personal_spearman"] > results["generic_spearman"] + 0.1
    assert results["personal_pairwise"] > results["generic_pairwise"]
    page = (tmp_path / "demo" / "report.html").read_text()
    thumbs = re.findall(r'<img src="([^"]+)"', page)
    assert len(thumbs) == 4 * 42 and all((tmp_path / "demo" / t).is_file() for t in thumbs)
    assert results["nima-ava personal_spearman"] > results["nima-ava_spearman"] + 0.1  # no reference needed
    for name in ("profile", "profile-generic", "profile-nima", "reference"):
        assert (tmp_path / "demo" / name).is_dir()
    # the store is closed for good: no write-ahead log or shared-memory file beside it
    left = sorted(p.name for p in (tmp_path / "demo").glob("preferences.sqlite*"))
    assert left == ["preferences.sqlite"]
    out = capsys.readouterr().out
    assert "moved moved" not in out and "Spearman rho" in out  # --verbose carries the numbers


def test_in_words_says_what_happened_without_jargon():
    moved = Selection(alpha=1.0, cv_accuracy={"generic": 0.57, "fit 0.1": 0.82}, folds=5, choice="fit 0.1")
    kept = Selection(alpha=0.0, cv_accuracy={"generic": 0.6, "fit 0.1": 0.61}, folds=5, choice="generic")
    from piaa.demo import in_words

    assert in_words(moved).startswith("learned from the choices") and "82%" in in_words(moved)
    assert "57%" in in_words(moved)
    assert in_words(kept).startswith("kept the starting model") and "60%" in in_words(kept)
    for text in (in_words(moved), in_words(kept), in_words(Selection())):
        assert not re.search(r"L2|alpha|fine-tune|\bfit\b", text)


def test_close_store_files_removes_the_log_a_read_only_reader_left(tmp_path):
    from piaa.demo import close_store_files
    from piaa.preferences import PreferenceStore

    path = tmp_path / "p.sqlite"
    with PreferenceStore(path) as store:
        store.add("a.jpg", "b.jpg")
    with PreferenceStore(path, readonly=True) as store:
        assert len(store.pairs()) == 1
    assert (tmp_path / "p.sqlite-wal").exists()  # what SQLite leaves after a read-only close
    close_store_files(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.sqlite"]
    with PreferenceStore(path, readonly=True) as store:
        assert [tuple(p) for p in store.pairs()] == [("a.jpg", "b.jpg")]
