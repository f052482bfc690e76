"""The ``piaa`` command line: one module per group of commands, registered on one Typer app.

Every user-facing failure is one line on stderr and exit status 2."""

from __future__ import annotations

from typing import Annotated

import typer

from piaa.cli import collect, evaluate, model, prefs, reference, retouch  # noqa: F401  (register the commands)
from piaa.cli._common import app


def _print_version(value: bool) -> None:
    if value:
        from piaa.version import __version__

        typer.echo(f"piaa {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """Personalized image aesthetic assessment."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
