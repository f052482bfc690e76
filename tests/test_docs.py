"""The documentation stays true to the code: the generated CLI reference, the version, the licence."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]


def _gen_cli_docs():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "tools" / "gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_cli_reference_is_up_to_date():
    gen = _gen_cli_docs()
    page = gen.render()
    assert (ROOT / "docs" / "cli.md").read_text() == page, (
        "docs/cli.md is stale: python tools/gen_cli_docs.py"
    )


def test_cli_reference_lists_every_command_and_option():
    import typer.main

    from piaa.cli import app

    page = _gen_cli_docs().render()
    root = typer.main.get_command(app)
    ctx = root.make_context("piaa", [], resilient_parsing=True)
    seen = 0
    for name in root.list_commands(ctx):
        cmd = root.get_command(ctx, name)
        subs = (
            [(f"{name} {s}", cmd.get_command(ctx, s)) for s in cmd.list_commands(ctx)]
            if hasattr(cmd, "list_commands")
            else [(name, cmd)]
        )
        for full, sub in subs:
            assert f"`piaa {full}`" in page
            for p in sub.params:
                if p.param_type_name == "option" and not p.hidden:
                    section = page.split(f"`piaa {full}`\n", 1)[1].split("\n#", 1)[0]
                    assert f" {p.opts[0]}" in section, (full, p.opts)
                    seen += 1
    assert seen > 50


def test_check_mode_fails_on_a_stale_page(tmp_path, monkeypatch):
    gen = _gen_cli_docs()
    stale = tmp_path / "cli.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(gen, "PAGE", stale)
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0
    assert stale.read_text() == gen.render()


def test_version_option_prints_the_package_version():
    from piaa.cli import app
    from piaa.version import __version__

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"piaa {__version__}"
    out = subprocess.run([sys.executable, "-m", "piaa.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"piaa {__version__}"


def test_licence_file_matches_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "Apache-2.0" and "LICENSE" in meta["license-files"]
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert meta["dynamic"] == ["version"]  # the version is written once, in piaa/version.py


def test_changelog_names_this_version():
    from piaa.version import __version__

    log = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in log
    assert re.search(rf"^## \[{re.escape(__version__)}\]", log, flags=re.M)


def test_every_test_the_quick_lane_skips_still_exists():
    import ast

    from conftest import SLOW_MODULES, SLOW_TESTS

    for module in SLOW_MODULES:
        assert (ROOT / "tests" / module).is_file(), module
    for name in SLOW_TESTS:
        module, func = name.split("::")
        tree = ast.parse((ROOT / "tests" / module).read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert func in defined, f"{name} is listed in tests/conftest.py SLOW_TESTS but does not exist"


def test_benchmark_tables_carry_their_provenance(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from _provenance import Provenance
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    prov = Provenance([str(ROOT / "benchmarks" / "bench_active.py"), "--people", "3"])
    out = tmp_path / "t.md"
    prov.write(out, "| a | b |\n|---|---|\n| 1 | 2 |")
    text = out.read_text()
    head = text.split("\n\n")[0]
    for field in ("- date: ", "- commit: ", "- machine: ", "- load average (1, 5, 15 min): ", "- command: "):
        assert field in head
    assert "`python benchmarks/bench_active.py --people 3`" in head
    assert re.search(r"- commit: [0-9a-f]{7,}", head)  # the checkout's commit
    assert f"{os.cpu_count()} cores" in head
    assert text.rstrip().endswith("| 1 | 2 |")
    prov.write(None, "nothing")  # no --markdown: nothing written, no error


def test_a_benchmark_that_prints_lines_writes_them_under_the_header(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from _provenance import Provenance
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out = tmp_path / "t.md"
    with Provenance(["benchmarks/bench_throughput.py"]).tee(out):
        print("round 1: score 12.0/s")
    assert "round 1: score 12.0/s" in capsys.readouterr().out  # still printed
    text = out.read_text()
    assert text.startswith("- date: ") and "```text\nround 1: score 12.0/s\n```" in text


def test_every_test_named_for_a_readme_promise_exists():
    text = (ROOT / "docs" / "contributing.md").read_text()
    section = text.split("## The README's promises and the tests that hold them", 1)[1]
    named = re.findall(r"`(tests/test_\w+\.py)::(test_\w+)`", section)
    assert len(named) >= 15
    for path, name in named:
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), flags=re.M), f"{path}::{name} is gone"
