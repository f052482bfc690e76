"""What every ``piaa`` command shares: the Typer apps, one-line errors (exit 2), output writing."""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(help="Personalized image aesthetic assessment.", no_args_is_help=True, add_completion=False)
reference_app = typer.Typer(
    help="Build and query a reference corpus (crowd-rated images).", no_args_is_help=True
)
app.add_typer(reference_app, name="reference")
prefs_app = typer.Typer(help="A person's preference store: import, export, inspect.", no_args_is_help=True)
app.add_typer(prefs_app, name="prefs")
console = Console()

Workers = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Decode processes. Default: the cores the network threads leave (at most 2); none on 2 "
        "cores, where each network thread decodes its own batch (measured fastest there for small "
        "and camera-size photos alike).",
    ),
]
"""``--workers``, the same on every command that reads many photos."""
err_console = Console(stderr=True)


def _user_errors() -> tuple[type[Exception], ...]:
    from piaa.backbones import BackboneError
    from piaa.data.images import ImageError
    from piaa.data.labels import LabelFormatError
    from piaa.errors import PiaaError
    from piaa.features.reference import ReferenceError
    from piaa.models.profile import ProfileError
    from piaa.preferences import PreferenceError

    return (
        PiaaError, BackboneError, ImageError, LabelFormatError, PreferenceError, ProfileError, ReferenceError,
        OSError, ValueError,
    )  # fmt: skip


def error_line(e: BaseException) -> str:
    """One line for a user-caused error; an ``OSError`` (a full disk, a permission) names its file."""
    from piaa.errors import one_line, where

    if isinstance(e, OSError) and not str(e).startswith(str(e.filename or "\0")) and e.filename:
        return f"{where(e.filename)}: {one_line(e.strerror or e)}"
    return one_line(e)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can cause into one line and exit status 2 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _user_errors() as e:
            err_console.print(f"[bold red]error:[/] {escape(error_line(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def say(msg: str) -> None:
    console.print(msg, soft_wrap=True, highlight=False)


def report_failures(failures: Any, noun: str = "image") -> None:
    if len(failures):
        err_console.print(f"[yellow]{escape(failures.summary(noun))}[/]", highlight=False, soft_wrap=True)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """CSV or JSON by suffix, written atomically."""
    from piaa.io import atomic_write_text

    if path.suffix.lower() == ".json":
        atomic_write_text(path, json.dumps(rows, indent=2) + "\n")
    elif path.suffix.lower() == ".csv":
        import io

        buf = io.StringIO()
        flat = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in rows]
        fields = list(flat[0]) if flat else ["path"]
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(flat)
        atomic_write_text(path, buf.getvalue())
    else:
        raise ValueError(f"{path}: output must end in .csv or .json")


def walk(paths: list[Path]) -> list[Path]:
    """The photos under ``paths`` (folders walked recursively); every other file is listed with the
    reason it was skipped, and finding no photo at all is a one-line error (exit 2)."""
    from piaa.data.images import FailureLog, iter_image_files

    skipped = FailureLog()
    files = list(iter_image_files(paths, skipped=skipped))
    if len(skipped):
        err_console.print(f"[yellow]{escape(skipped.summary('file'))}[/]", highlight=False, soft_wrap=True)
    if not files:
        raise ValueError(f"{', '.join(map(str, paths))}: no photos found")
    return files


def _write_and_report(output: Path | None, rows: list[dict[str, Any]], failures: Any, noun: str) -> None:
    """The end of every batch command: the rows to ``output`` (when given), then the files that could
    not be read. A batch goes on past bad files and lists them; any bad file makes the exit status 2 (a
    user-caused error), after everything else was done."""
    if output:
        write_rows(output, rows)
        say(f"wrote {len(rows)} {noun} to {escape(str(output))}")
    report_failures(failures)
    if len(failures):
        raise typer.Exit(2)


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``["rank_lr=1e-3", "attention=false"]`` -> typed TrainConfig overrides."""
    from dataclasses import fields

    from piaa.models.train import TrainConfig

    types = {f.name: type(getattr(TrainConfig(), f.name)) for f in fields(TrainConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in types:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(types)}")
        kind = types[key]
        try:
            out[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
        except ValueError:
            raise ValueError(f"--set {item!r}: {value!r} is not a {kind.__name__}") from None
    return out


