"""What every ``piaa`` command shares: the Typer apps, one-line errors (exit 2), output writing.

Nothing a user named (a file, a folder, a store, a name from a CSV) is ever read as rich markup: every
message goes out through :func:`say`, :func:`warn` or :func:`fail` as plain text (``holiday [/]`` would
otherwise crash rich or lose its brackets), and table cells through :func:`cell`. Help texts are
click's plain ones (``rich_markup_mode=None``, :class:`PlainCommand`): ``pip install piaa[ray]`` stays
as written, and no type hint (``<bool>``, ``<list[Path]>``) clutters the options.
"""

from __future__ import annotations

import csv
import functools
import gc
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from piaa.errors import UsageError
from piaa.io import written_by_piaa

if TYPE_CHECKING:
    import click

_TYPE_WORDS = {"Path": "PATH", "str": "TEXT", "int": "INTEGER", "float": "FLOAT"}
_TYPE_HINT = re.compile(r" <(?:list\[)?([A-Za-z]+)\]?(?: range)?>")


def _plain_type(match: re.Match[str]) -> str:
    return f" {_TYPE_WORDS.get(match.group(1), match.group(1).upper())}"


# this Typer vendors its own click (typer._click), whose UsageError is not exported: found from the one
# exception it does export, so this works with a Typer on the real click too
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _one_line_usage_errors(parse: Callable[[click.Context, list[str]], list[str]]):
    """A mistake on the command line (a missing option, a bad value) is one line and exit status 2,
    as every other error is, not click's usage block."""

    def parse_args(self: click.Command, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return parse(self, ctx, args)
        except _UsageError as e:
            if ctx.resilient_parsing or type(e).__name__ == "NoArgsIsHelpError":  # `piaa prefs`: the help
                raise
            from piaa.errors import one_line

            fail(f"{one_line(e.format_message())} (see `{ctx.command_path} --help`)")
            raise typer.Exit(2) from None

    return parse_args


class PlainCommand(TyperCommand):
    """A command whose help reads as click's: ``--output PATH``, ``PATHS...``, not ``--output <Path>``,
    ``{paths}... <list[Path]>`` (this Typer writes type hints in every line; no setting turns them off);
    usage errors are one line."""

    parse_args = _one_line_usage_errors(TyperCommand.parse_args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [re.sub(r"[{]([^}]*)[}]", lambda m: m.group(1).upper(), p) for p in pieces]

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":  # its name says what it is: PATHS..., STORE
                args.append((re.sub(r" <[^>]*>", "", record[0]).upper(), record[1]))
            else:
                opts.append((_TYPE_HINT.sub(_plain_type, record[0]).strip(), record[1]))
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class PlainGroup(TyperGroup):
    """A group whose commands are :class:`PlainCommand` (set here, once, for every module's commands)."""

    parse_args = _one_line_usage_errors(TyperGroup.parse_args)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            if type(command) is TyperCommand:
                command.__class__ = PlainCommand


def _typer(help: str, **kwargs: Any) -> typer.Typer:
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, cls=PlainGroup, **kwargs)


app = _typer("Personalized image aesthetic assessment.", add_completion=False)
reference_app = _typer("Build and query a reference corpus (crowd-rated images).")
app.add_typer(reference_app, name="reference")
prefs_app = _typer("A person's preference store: import, export, inspect.")
app.add_typer(prefs_app, name="prefs")
console = Console(emoji=False, highlight=False)
err_console = Console(stderr=True, emoji=False, highlight=False)


def user_path(value: str) -> Path:
    """The ``parser`` of every path argument and option: a path as the user typed it, ``~`` expanded,
    and the empty string refused (``Path("")`` is the current folder, so ``piaa score ''`` scored it)."""
    if isinstance(value, Path):
        return value
    if not str(value).strip():
        raise typer.BadParameter("an empty name is not a file or folder")
    return Path(os.path.expanduser(str(value)))


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


def plural(n: int, noun: str, many: str | None = None) -> str:
    """``"1 photo"``, ``"2 photos"``: the count and the noun, agreeing."""
    return f"{n} {noun if n == 1 else (many or noun + 's')}"


def cell(value: object) -> Text:
    """A table cell or title shown as written: never read as rich markup, control characters escaped."""
    from piaa.errors import where

    return Text(where(str(value)))


def say(msg: str) -> None:
    """One message on stdout, as plain text."""
    console.print(msg, markup=False, soft_wrap=True)


def warn(msg: str) -> None:
    """A warning (skipped files, ignored judgements) on stderr, in yellow, as plain text."""
    err_console.print(msg, style="yellow", markup=False, soft_wrap=True)


def fail(msg: str) -> None:
    """``error: <msg>`` on stderr; ``msg`` as plain text."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", msg), soft_wrap=True)


_interrupt_note: list[str] = []


def on_interrupt(note: str) -> None:
    """What Ctrl-C at this point leaves behind, said as the one line after ``interrupted:``."""
    _interrupt_note[:] = [note]


def _user_errors() -> tuple[type[Exception], ...]:
    """Only the errors piaa raises for the user's input (every class in :mod:`piaa.errors`) and the OS's
    about their files: any other exception, a ValueError from a bug included, is a bug and shows as one,
    with its traceback and exit status 1."""
    from piaa.errors import PiaaError

    return (PiaaError, OSError)


def error_line(e: BaseException) -> str:
    """One line for a user-caused error; an ``OSError`` (a full disk, a permission) names its file."""
    from piaa.errors import one_line, where

    if isinstance(e, OSError) and not str(e).startswith(str(e.filename or "\0")) and e.filename:
        return f"{where(e.filename)}: {one_line(e.strerror or e)}"
    return one_line(e)


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can cause into one line and exit status 2 instead of a traceback, and
    Ctrl-C into one line saying what was (or was not) written, exit status 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _interrupt_note[:] = ["nothing was written"]
        try:
            return fn(*args, **kwargs)
        except _user_errors() as e:
            fail(error_line(e))
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            pass
        # out of the except block, the interrupt's traceback is gone, and with it the generators it left
        # suspended: their progress bars close now, before the line below, not after it
        gc.collect()
        err_console.print(
            Text.assemble(("interrupted:", "bold red"), " ", _interrupt_note[0]), soft_wrap=True
        )
        raise typer.Exit(130)

    return wrapper


def report_failures(failures: Any, noun: str = "image", what: str = "skipped") -> None:
    if len(failures):
        warn(failures.summary(noun, what))


def report_sidecar_failures(failures: Any) -> None:
    """``--xmp``: the sidecars that could not be written (a malformed existing one, a read-only folder)
    reported as such, not as skipped photos, whose results are kept. The caller exits 2 at the end."""
    report_failures(failures, "sidecar", "not written (the photos' results are kept)")


def writable_folder(folder: Path, what: str) -> None:
    """Refuse, before any work, a folder that cannot be made or written: ``ValueError`` naming ``what``
    (the option the user gave). Creates the folder (results go there anyway)."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: {what} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        import tempfile

        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise UsageError(f"{folder}: cannot write {what} there ({e.strerror or e})") from None


def check_results_folder(folder: Path, names: tuple[str, ...], option: str = "--out") -> None:
    """Refuse, before the work, a results folder holding a file of the user's under one of the ``names``
    piaa writes there (results never replace your files): ``UsageError`` naming the file."""
    for name in names:
        if not written_by_piaa(folder / name):
            raise UsageError(
                f"{folder / name}: {option} holds this file and piaa did not write it; choose another "
                "folder (results never replace your files)"
            )


def check_output(
    path: Path | None, option: str = "--output", suffixes: tuple[str, ...] | None = (".csv", ".json")
) -> None:
    """Everything about an output file that can be known before the work: its suffix (one of
    ``suffixes``), that it is not a folder, that its folder can be written and, for results
    (``suffixes`` given), that it is not a file of the user's (:func:`piaa.io.written_by_piaa`).
    ``UsageError`` naming the file."""
    if path is None:
        return
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"{path}: {option} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise UsageError(f"{path}: {option} is a folder, not a file")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{path}: {option} cannot be written ({parent} is not a folder)")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{path}: {option} cannot be written (its folder is read-only)")
    if suffixes and not written_by_piaa(path):
        raise UsageError(
            f"{path}: {option} exists and is not a file piaa wrote; choose another name or remove it "
            "(results never replace your files)"
        )


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """CSV or JSON by suffix, written atomically."""
    from piaa.io import atomic_write_bytes, atomic_write_text

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
        # a file name that is not UTF-8 (bytes from an old camera card) is written back as its bytes
        atomic_write_bytes(path, buf.getvalue().encode("utf-8", "surrogateescape"))
    else:
        raise UsageError(f"{path}: output must end in .csv or .json")


def walk(paths: list[Path], ignore: frozenset[Path] = frozenset()) -> list[Path]:
    """The photos under ``paths`` (folders walked recursively); every other file is listed with the
    reason it was skipped, except piaa's own outputs in ``ignore`` (absolute paths: a report an earlier
    run wrote among the photos), and finding no photo at all is a one-line error (exit 2)."""
    from piaa.data.images import FailureLog, iter_image_files

    found = FailureLog()
    files = list(iter_image_files(paths, skipped=found))
    skipped = FailureLog()
    for path, reason in found:
        if path.absolute() not in ignore:
            skipped.add(path, reason)
    if len(skipped):
        warn(skipped.summary("file"))
    if not files:
        raise UsageError(f"{', '.join(map(str, paths))}: no photos found")
    return files


def _write_and_report(
    output: Path | None,
    rows: list[dict[str, Any]],
    failures: Any,
    noun: str,
    then: Callable[[], None] | None = None,
) -> None:
    """The end of every batch command: the rows to ``output`` (when given), ``then`` (more outputs, such
    as score's copies), then the files that could not be read. A batch goes on past bad files and lists
    them; any bad file makes the exit status 2 (a user-caused error), after everything else was done.
    ``noun`` is singular ("score")."""
    if output:
        write_rows(output, rows)
        say(f"wrote {plural(len(rows), noun)} to {output}")
    if then is not None:
        then()
    report_failures(failures)
    if len(failures):
        raise typer.Exit(2)


def parse_settings(items: list[str], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``["rank_lr=1e-3", "attention=false", "alphas=0.5,1"]`` -> typed TrainConfig overrides, on top of
    ``base`` (the command's own options; ``--set`` wins). The one ``--set`` of ``piaa evaluate`` and
    ``piaa personalize``; raises :class:`~piaa.models.config.SettingError` naming the item."""
    from dataclasses import fields

    from piaa.models.config import SettingError, TrainConfig, coerce, kind_name

    known = {f.name: f for f in fields(TrainConfig)}
    out: dict[str, Any] = dict(base or {})
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise SettingError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(known)}")
        try:
            out[key] = coerce(known[key], value.strip())
        except (TypeError, ValueError):
            raise SettingError(f"--set {item!r}: {value!r} is not a {kind_name(known[key])}") from None
    return out


def settings_help() -> str:
    """``--set``'s help: every TrainConfig field with its default and help text (from the fields)."""
    from dataclasses import fields

    from piaa.models.config import TrainConfig

    def shown(v: Any) -> str:
        return ",".join(f"{x:g}" for x in v) if isinstance(v, tuple) else str(v).lower()

    keys = "; ".join(
        f"{f.name} ({shown(f.default)}): {f.metadata['help'].rstrip('.')}" for f in fields(TrainConfig)
    )
    return f"Training setting KEY=VALUE (repeatable). Keys: {keys}."


def train_option(name: str, **kwargs: Any) -> Any:
    """A ``typer.Option`` for TrainConfig field ``name``, its help text taken from the field."""
    from dataclasses import fields

    from piaa.models.config import TrainConfig

    text = next(f.metadata["help"] for f in fields(TrainConfig) if f.name == name)
    return typer.Option(help=kwargs.pop("help", text), **kwargs)
