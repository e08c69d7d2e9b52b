"""The ``structn2v`` command line: analyze-noise, train, predict, denoise, info, export-bmz, demo.

Every user mistake ends with one ``structn2v: error: ...`` line and exit status 2; warnings are
one ``warning: ...`` line on stderr. Outputs are checked before any long work, never replace an
input or an existing file without ``--overwrite``, and are written atomically. Ctrl-C during
``train`` stops like the GUI's Stop: the model trained so far is saved, then exit status 130;
SIGTERM (a batch scheduler's time limit, ``docker stop``) does the same with exit status 143. In the
other commands SIGTERM removes the unfinished output and exits 143 with one line; a closed standard
output (``structn2v info m.pt | head -1``) ends the command quietly.

Messages go through :mod:`logging` (logger ``napari_structn2v``): informational ones to stdout,
warnings and errors to stderr. ``train`` and ``predict`` draw a tqdm progress bar on stderr when it is
a terminal, and log a milestone line instead (every 5 % / 10 %) when it is not; ``--quiet`` leaves
only warnings, errors and the commands' results (the report of ``analyze-noise``, ``info``'s summary).

One module per command (``_noise``, ``_train``, ``_predict``, ``_model``: info and export-bmz,
``_demo``) and ``_console`` for the console output they share (log lines, progress, exit
statuses); this one holds the parser and :func:`main`.
"""
from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import NoReturn

from .. import __version__
from ..errors import ConfigError, StructN2VError, StructN2VWarning
from ..settings import option_of
from ._console import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    _stdout_to_devnull,
    console_logging,
    log,
)

#: CLI option of each setting, so that a ConfigError names what the user typed (the training
#: settings' from the settings table)
OPTION_OF = {
    **option_of(),
    "tile": "--tile",
    "overlap": "--overlap",
    "max_lag": "--max-lag",
    "cluster": "--cluster",
}

QUIET_HELP = "no progress bar and no information lines: only warnings, errors and the command's result"


class _Parser(argparse.ArgumentParser):
    """argparse with the package's one-line errors (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"structn2v: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``structn2v`` parser: one subcommand per module of this package."""
    # imported when the parser is built, not with the package
    from . import _demo, _denoise, _model, _noise, _predict, _train

    p = _Parser(prog="structn2v", description="Structured Noise2Void: remove spatially correlated noise without clean data.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    # --quiet after the command too; SUPPRESS keeps one given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=QUIET_HELP)
    sub = p.add_subparsers(dest="command", required=True)
    _noise.add_parser(sub, common)
    _train.add_parser(sub, common)
    _predict.add_parser(sub, common)
    _denoise.add_parser(sub, common)
    _model.add_export_parser(sub, common)
    _model.add_info_parser(sub, common)
    _demo.add_parser(sub, common)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``structn2v`` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(_attach_negative_values(sys.argv[1:] if argv is None else list(argv)))
    except SystemExit as exc:  # --help, --version, or a usage error already printed on one line
        return exc.code if isinstance(exc.code, int) else 2
    with console_logging(getattr(args, "quiet", False)), warnings.catch_warnings(), _sigterm_raises():
        warnings.simplefilter("always", StructN2VWarning)
        warnings.showwarning = _show_warning
        return _run(args)


def _raise_terminated(signum, frame) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises :class:`Terminated` for one command (in the main thread; ``train`` replaces
    this with its own handler that stops and saves)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _attach_negative_values(argv: list[str]) -> list[str]:
    """``--roi -10:5,0:64`` as ``--roi=-10:5,0:64``: argparse takes a value that starts with ``-``
    and is not a plain number for an option ("expected one argument") instead of the range the
    user typed, which then gets its own message ("starts before 0")."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE_RANGE.match(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


#: a value such as -10:5 or -3:9,0:64 (plain negative numbers argparse handles itself)
_NEGATIVE_RANGE = re.compile(r"^-\d+:[-\d:,]*$")


def _run(args: argparse.Namespace) -> int:
    """Run the chosen command; a user mistake becomes one error line and exit status 2."""
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        return _fail(f"{OPTION_OF.get(exc.field, exc.field)} {exc.problem}")
    except StructN2VError as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        return _closed_stdout()
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    except MemoryError:
        return _fail("out of memory; use smaller images, tiles, patches or batches")
    except Terminated:
        print("structn2v: terminated (SIGTERM); unfinished outputs were removed", file=sys.stderr, flush=True)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("structn2v: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _closed_stdout() -> int:
    """The reader of standard output went away (``| head -1``): nothing more to say to it."""
    _stdout_to_devnull()
    return EXIT_BROKEN_PIPE


def _fail(message: str) -> int:
    log.error("%s", message)  # one "structn2v: error: ..." line on stderr, also with --quiet
    return 2


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one ``warning: ...`` line; others as Python shows them."""
    if issubclass(category, StructN2VWarning):
        log.warning("%s", message)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
