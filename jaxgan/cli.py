"""The command line of jaxgan's programs: a config dataclass turned into ``--kebab-case``
options, and the contract every program keeps: bad input is one line on stderr and exit status
2, no traceback; a run that stops early exits with its own code.

An experiment declares its options as dataclass fields with :func:`option` (help text, allowed
values) and runs as ``cli_main(NAME, Config, train, description)``.

Why not tyro or simple-parsing (the latter ships with tensorflow-datasets): both turn a
dataclass into a parser well, but report bad values in their own multi-line formats, and
neither has presets (``--preset tutorial`` setting defaults that explicit options still
override); argparse behind :class:`OneLineParser` keeps the one-line, exit-2 contract with a
few dozen lines of our own.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import math
import os
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

from jaxgan.data import DataError
from jaxgan.parallel import initialize_distributed, tpu_pod_environment
from jaxgan.workdir import DISK_ERRORS, experiment_module


class UsageError(Exception):
    """Bad options: reported as one line on stderr with exit status 2 (as is DataError)."""


class TrainingStopped(Exception):
    """Training ended before its last epoch: ``cli_main`` prints the message and exits with
    ``exit_code`` (0 after a signal, with the state saved; :data:`EXIT_DIVERGED` on divergence).
    """

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def disk_error_message(error: OSError, workdir: str) -> str:
    """One line for a disk error: what could not be written (a file, else the run's files in
    ``workdir``), why, and how to go on."""
    where = f" {error.filename}" if error.filename else f" the run's files in {workdir}"
    fix = "free space" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "make it writable"
    return (
        f"cannot write{where}: {error.strerror or error}; {fix} and rerun the same command to "
        "resume from the last checkpoint"
    )


EXIT_DIVERGED = 3
EXIT_UNHEALTHY = 4  # --stop-on-warning stopped the run (state saved)


def option(
    default: Any, help: str, *, choices: Sequence[str] | None = None, group: str | None = None
) -> Any:
    """A config field with its ``--help`` text (and, for strings, the allowed values), listed
    in ``--help`` under ``group`` (None: the program's own options, listed first)."""
    metadata = {"help": help, "choices": choices, "group": group}
    if isinstance(default, list | tuple):
        return dataclasses.field(default_factory=lambda: tuple(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def require(condition: bool, message: str) -> None:
    """Raises :class:`UsageError` with ``message`` unless ``condition``."""
    if not condition:
        raise UsageError(message)


def require_widths(config: Any, *names: str) -> None:
    """Raises :class:`UsageError` unless every layer width in the named fields is >= 1."""
    for name in names:
        widths = getattr(config, name) or ()  # None: the experiment's default widths
        require(all(w >= 1 for w in widths), f"--{flag(name)} widths must be >= 1, got {widths}")


def flag(name: str) -> str:
    return name.replace("_", "-")


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage dump), exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def finite_float(text: str) -> float:
    """argparse's type of float options: a number, not inf or nan (which would train to a
    non-finite loss at the first step)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _argument(field: dataclasses.Field, annotation: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"default": field.default, "help": field.metadata.get("help", "")}
    if field.default_factory is not dataclasses.MISSING:
        kwargs["default"] = field.default_factory()
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # X | None
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if annotation is bool:
        return {**kwargs, "action": argparse.BooleanOptionalAction}
    if typing.get_origin(annotation) is tuple:
        element = typing.get_args(annotation)[0]
        return {**kwargs, "type": finite_float if element is float else element, "nargs": "+"}
    kind = finite_float if annotation is float else annotation
    return {**kwargs, "type": kind, "choices": field.metadata.get("choices")}


def config_parser(config_cls: type, prog: str, description: str) -> argparse.ArgumentParser:
    """A parser with one ``--kebab-case`` option per field of ``config_cls``, defaults shown,
    in the fields' groups (:func:`option`)."""
    parser = OneLineParser(
        prog=prog,
        usage="%(prog)s [options]",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hints = typing.get_type_hints(config_cls)
    fields = dataclasses.fields(config_cls)
    program = prog.rsplit(" ", 1)[-1].rsplit(".", 1)[-1] or "program"
    groups = {None: parser.add_argument_group(f"{program} options")}
    for field in sorted(fields, key=lambda f: f.metadata.get("group") is not None):
        name = field.metadata.get("group")
        if name not in groups:
            groups[name] = parser.add_argument_group(name)
        groups[name].add_argument(f"--{flag(field.name)}", **_argument(field, hints[field.name]))
    return parser


# Options naming data: stored absolute, so evaluate, generate and a resume find the data from
# any directory (the workdir stays as given).
PATH_OPTIONS = ("data_dir", "tfds_data_dir", "data_cache")


def absolute_paths(config):
    """``config`` with its :data:`PATH_OPTIONS` made absolute (``~`` expanded)."""
    paths = {
        name: os.path.abspath(os.path.expanduser(getattr(config, name)))
        for name in PATH_OPTIONS
        if getattr(config, name, None) is not None
    }
    return dataclasses.replace(config, **paths) if paths else config


def writable_folder(path: str | os.PathLike, option: str) -> None:
    """Raises :class:`UsageError` unless ``path`` is a folder, or can be made one, that this
    process can write: not a file, not under a file, not on a read-only filesystem."""
    target = Path(path).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise UsageError(f"{option} {path} is a file, not a folder: give a folder's path")
    existing = next(p for p in (target, *target.parents) if p.exists())
    if not existing.is_dir():
        raise UsageError(f"{option} {path} is under {existing}, which is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(
            f"{option} {path} cannot be written: {existing} is read-only or not ours; "
            "choose another place"
        )


def output_file(path: str | os.PathLike, option: str, suffixes: Sequence[str]) -> Path:
    """``path`` checked as a file to write: a name ending in one of ``suffixes``, in a folder
    that exists or can be made (:func:`writable_folder`; it is made when written, by
    :func:`make_parent`)."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in suffixes:
        raise UsageError(
            f"{option} {path}: the file is written as {suffixes[0][1:].upper()}; give a name "
            f"ending in {' or '.join(suffixes)}"
        )
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file's name")
    writable_folder(path.parent, f"{option} {path}: its folder")
    return path


def make_parent(path: Path) -> Path:
    """``path``, its folder made when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def check_paths(config: Any) -> None:
    """Checks the paths a config names before anything is written: the workdir and the data
    cache must be writable folders (:func:`writable_folder`), the data folders folders."""
    writable_folder(config.workdir, "--workdir")
    if getattr(config, "data_cache", None) is not None:
        writable_folder(config.data_cache, "--data-cache")
    for name in ("data_dir", "tfds_data_dir"):
        value = getattr(config, name, None)
        if value is not None and Path(value).exists() and not Path(value).is_dir():
            raise UsageError(f"--{flag(name)} {value} is a file, not a folder")


def same_path(a: str | None, b: str | None) -> bool:
    """Whether two spellings of a path name the same place (both None counts)."""
    if a is None or b is None:
        return a == b
    return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))


def cli_main(
    name: str,
    config_cls: type,
    train: Callable[[Any], Any],
    description: str,
    argv: Sequence[str] | None = None,
) -> None:
    """Parses options into ``config_cls``, validates them, and runs ``train``.

    ``name`` is the experiment's module (a built-in's bare name, or one's own module);
    ``config_cls`` a :class:`~jaxgan.trainer.TrainConfig` subclass.

    A :class:`UsageError` (from validation) or :class:`~jaxgan.data.DataError` (from loading
    data) becomes one line on stderr and exit status 2; experiments load and check everything
    before they write to the workdir. :class:`TrainingStopped` prints its message and exits
    with its code.
    """
    prog = f"python -m {experiment_module(name)}"
    parser = config_parser(config_cls, prog, description)
    if config_cls.PRESETS:
        preset = parser.parse_known_args(argv)[0].preset
        parser.set_defaults(**config_cls.PRESETS[preset])
    args = parser.parse_args(argv)
    try:
        config = absolute_paths(config_cls(**vars(args)))
        config.validate()
        check_paths(config)
        pod = None if config.distributed else tpu_pod_environment()
        if pod:
            print(f"joining the other hosts as --distributed does: {pod}", file=sys.stderr)
        if config.distributed or pod:
            initialize_distributed(
                config.coordinator_address, config.num_processes, config.process_id
            )
            if jax.process_index() > 0:  # process 0 reports for all
                sys.stdout = open(os.devnull, "w")  # for the rest of the process
        train(config)
    except (UsageError, DataError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        if e.errno not in DISK_ERRORS:
            raise
        print(f"{prog}: error: {disk_error_message(e, config.workdir)}", file=sys.stderr)
        sys.exit(2)
    except TrainingStopped as e:
        print(f"{prog}: {e}", file=sys.stderr if e.exit_code else sys.stdout)
        sys.exit(e.exit_code)
