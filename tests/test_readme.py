"""The README's two commands are the ones CI runs, so a green CI proves the README works."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [b.strip() for b in blocks if "pip install" in b or "pytest" in b][:2]


def test_readme_has_setup_and_test_commands():
    setup, tests = readme_commands()
    assert "pip install torch==2.13.0" in setup and setup.index("torch==2.13.0") < setup.index("-e")
    assert setup.endswith("piaa demo")
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_commands():
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    for cmd in readme_commands():
        assert cmd in ci


def test_ci_builds_the_docs_with_warnings_as_errors():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "mkdocs build --strict" in ci
    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "test"
    ]
    assert any(dep.startswith("mkdocs-material") for dep in test_extra)  # CI installs only .[test]


def test_readme_is_short_and_keeps_the_typical_session():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    session = re.search(r"## A typical session\n\n```text\n(.*?)```", text, flags=re.S)
    assert session is not None
    commands = [ln.split("#")[0].split()[:2] for ln in session.group(1).splitlines()]
    verbs = ["score", "collect", "personalize", "profile", "cull", "score", "retouch"]
    assert [c[1] for c in commands] == verbs


@pytest.mark.slow
def test_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    """The five lines, verbatim, in a home folder holding what they name."""
    import numpy as np

    from conftest import synthetic_photo
    from piaa.preferences import PreferenceStore

    code = re.search(r"## In Python\n\n```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert code is not None
    album = tmp_path / "Pictures" / "2024"
    holiday = tmp_path / "holiday"
    album.mkdir(parents=True)
    holiday.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        synthetic_photo(rng).save(album / f"p{i:02d}.jpg", quality=90)
    for i in range(3):
        synthetic_photo(rng).save(holiday / f"h{i}.jpg", quality=90)
    synthetic_photo(rng).save(tmp_path / "photo.jpg", quality=90)
    with PreferenceStore(tmp_path / "me.sqlite") as store:
        for i in range(0, 12, 2):
            store.add(f"p{i:02d}.jpg", f"p{i + 1:02d}.jpg")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    printed: list[tuple] = []
    exec(compile(code.group(1), "README.md", "exec"), {"print": lambda *a: printed.append(a)})
    score, score_range = printed[0]
    assert score_range == (1.0, 10.0) and 1.0 <= score <= 10.0
    assert sorted(Path(p).name for p, _ in printed[1:]) == ["h0.jpg", "h1.jpg", "h2.jpg"]
    assert (tmp_path / "me" / "config.json").is_file()
