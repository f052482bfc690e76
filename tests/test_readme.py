"""The README's two commands are the ones CI runs, so a green CI proves the README works."""

import re
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
