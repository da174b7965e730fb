"""The ``feraug`` command line. Each command group lives in its own module with a
``register(app)`` function; errors derived from :class:`FeraugError` print one line and exit 2."""

from __future__ import annotations

import errno
import sys
from importlib import import_module

import typer

from feraug.errors import FeraugError

app = typer.Typer(
    name="feraug",
    help="GAN-based data augmentation for facial expression recognition, measured fairly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = (
    "feraug.cli.data_cmd",
    "feraug.cli.train_cmd",
    "feraug.cli.demo_cmd",
    "feraug.cli.predict_cmd",
    "feraug.cli.gan_cmd",
    "feraug.cli.synth_cmd",
    "feraug.cli.experiment_cmd",
)

for _name in COMMAND_MODULES:
    try:
        _module = import_module(_name)
    except ModuleNotFoundError as exc:  # a command group not built yet
        if exc.name != _name:
            raise
        continue
    _module.register(app)


#: Errors of the environment, not of feraug: full disk, quota, read-only file system, access.
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def main() -> None:
    """Entry point: run the app (click handles usage errors and exit codes), turning feraug's
    own user errors into one clear line on stderr and exit status 2."""
    try:
        app()
    except FeraugError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except OSError as exc:  # the disk or the file system refused, outside an atomic save
        if exc.errno not in DISK_ERRORS:
            raise
        typer.secho(f"error: {exc.filename or 'a file'}: {exc.strerror}", fg=typer.colors.RED,
                    err=True)
        sys.exit(2)
