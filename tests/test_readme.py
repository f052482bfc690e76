"""The README's two commands are the ones CI runs, so a green CI proves the README works."""

import re
import tomllib
from pathlib import Path

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
    assert [c[1] for c in commands] == ["score", "collect", "personalize", "cull", "score", "retouch"]
