"""Write docs/cli.md, the command-line reference, from the Typer app itself (every command and option).

    python tools/gen_cli_docs.py            # rewrite docs/cli.md
    python tools/gen_cli_docs.py --check    # exit 1 if docs/cli.md is out of date (tests/test_docs.py)

The page is generated, never edited by hand: the help texts in ``src/piaa/cli/`` are its source.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "cli.md"

HEADER = """# Command-line reference

Every `piaa` command and option: each command's `--help`, generated from the program itself by
`python tools/gen_cli_docs.py` (do not edit this page by hand; `tests/test_docs.py` fails when it is out
of date). Guides to the commands: [score](guide/score.md), [collect](guide/collect.md),
[personalize](guide/personalize.md), [cull](guide/cull.md), [review](guide/review.md),
[retouch](guide/retouch.md), [reference corpora](guide/reference.md).
"""


WIDTH = 100  # fixed, so that the page does not depend on the terminal it is generated in


def _command(cmd: Any, path: list[str], ctx: Any, out: list[str]) -> None:
    """A heading per command and its ``--help`` exactly as ``piaa`` prints it, then its sub-commands."""
    level = "#" * min(len(path) + 1, 4)
    out.append(f"{level} `{' '.join(path)}`\n")
    out.append("```text\n" + cmd.get_help(ctx).rstrip() + "\n```\n")
    if hasattr(cmd, "list_commands"):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                _command(sub, [*path, name], type(ctx)(sub, info_name=name, parent=ctx), out)


def render() -> str:
    """The whole page, from ``piaa.cli.app`` (Typer ships its own click: duck-typed here)."""
    import typer.main

    from piaa.cli import app

    root = typer.main.get_command(app)
    ctx = root.make_context("piaa", [], resilient_parsing=True, terminal_width=WIDTH, max_content_width=WIDTH)
    out = [HEADER]
    _command(root, ["piaa"], ctx, out)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only say whether docs/cli.md is up to date")
    ns = ap.parse_args(argv)
    page = render()
    if ns.check:
        if not PAGE.is_file() or PAGE.read_text() != page:
            print(
                f"{PAGE.relative_to(ROOT)} is out of date: run python tools/gen_cli_docs.py", file=sys.stderr
            )
            return 1
        return 0
    from piaa.io import atomic_write_text

    atomic_write_text(PAGE, page)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
