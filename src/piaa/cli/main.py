"""The ``piaa`` command line: one module per group of commands, registered on one Typer app.

Every user-facing failure is one line on stderr and exit status 2."""

from __future__ import annotations

from piaa.cli import collect, cull, evaluate, model, prefs, reference, retouch, review  # noqa: F401  (register)
from piaa.cli._common import app


def main() -> None:
    app()


def _add_version_option() -> None:
    """``piaa --version``: an eager option on the root callback."""
    import typer

    from piaa.version import __version__

    def print_version(value: bool) -> None:
        if value:
            typer.echo(f"piaa {__version__}")
            raise typer.Exit()

    def root(
        version: bool = typer.Option(
            False, "--version", is_eager=True, callback=print_version, help="Print the version and exit."
        ),
    ) -> None:
        """Personalized image aesthetic assessment."""

    app.callback()(root)


_add_version_option()


if __name__ == "__main__":
    main()
