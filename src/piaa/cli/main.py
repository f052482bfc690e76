"""The ``piaa`` command line: one module per group of commands, registered on one Typer app.

Every user-facing failure is one line on stderr and exit status 2."""

from __future__ import annotations

from piaa.cli import collect, cull, evaluate, model, prefs, reference, retouch, review  # noqa: F401  (register)
from piaa.cli._common import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
