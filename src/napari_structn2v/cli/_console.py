"""The CLI's console output, shared by :func:`~napari_structn2v.cli.main` and the commands: log lines
(logger ``napari_structn2v.cli``), progress (a tqdm bar on a terminal, milestone lines elsewhere) and the
exit statuses of an interrupted command.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any

from tqdm import tqdm

#: exit status after Ctrl-C (128 + SIGINT), also when the model so far was saved
EXIT_INTERRUPTED = 130
#: exit status after SIGTERM (128 + 15), also when the model so far was saved
EXIT_TERMINATED = 143
#: exit status when standard output was closed by its reader (128 + SIGPIPE, as the shell reports it)
EXIT_BROKEN_PIPE = 141


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the CLI's handler: a KeyboardInterrupt, so every
    ``except BaseException`` clean-up (temporary outputs) runs as it does for Ctrl-C."""


IMAGE_SUFFIXES = (".tif", ".tiff", ".npy", ".zarr")


log = logging.getLogger("napari_structn2v.cli")


class _ConsoleFormatter(logging.Formatter):
    """``message`` for information, ``warning: message``, ``structn2v: error: message``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            return f"structn2v: error: {message}"
        return f"warning: {message}" if record.levelno >= logging.WARNING else message


class _ConsoleHandler(logging.Handler):
    """Information to stdout, warnings and errors to stderr, through ``tqdm.write`` so that a live
    progress bar is redrawn under the line instead of being torn. The streams are looked up at each
    message (pytest's capsys and redirections replace them)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
            tqdm.write(self.format(record), file=stream)
            stream.flush()
        except BrokenPipeError:  # `structn2v predict ... | head -1`: the reader went away, the work goes on
            _stdout_to_devnull()
        except Exception:  # noqa: BLE001 - logging's own convention
            self.handleError(record)


@contextlib.contextmanager
def console_logging(quiet: bool = False):
    """Route the package's log records to the console for one command (INFO, or WARNING when quiet)."""
    logger = logging.getLogger("napari_structn2v")
    handler = _ConsoleHandler()
    handler.setFormatter(_ConsoleFormatter())
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _terminal() -> bool:
    """True when stderr is a terminal with a width: progress is a live bar there, milestone lines elsewhere."""
    try:
        return sys.stderr.isatty() and os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):  # no real file behind stderr (pytest, IDEs)
        return False


class Progress:
    """Progress of a long job: a tqdm bar on a terminal, else a log line at every ``1 / lines`` of the
    total (and the first and last). Nothing with ``quiet``. Use as a context manager."""

    def __init__(self, desc: str, unit: str, *, quiet: bool = False, lines: int = 20) -> None:
        self.desc, self.unit, self.quiet, self.lines = desc, unit, quiet, lines
        self.bar: Any = None
        self._shown = -1

    def update(self, done: int, total: int, line: str, **postfix: str) -> None:
        """``done`` of ``total`` units; ``line`` is the milestone text, ``postfix`` the bar's fields."""
        if self.quiet:
            return
        if _terminal():
            if self.bar is None:
                self.bar = tqdm(total=total, initial=max(done - 1, 0), desc=self.desc, unit=self.unit,
                                file=sys.stderr, dynamic_ncols=True, leave=True)
            if self.bar.total != total:
                self.bar.total = total
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(done - self.bar.n)
            return
        mark = int(self.lines * done / max(1, total))
        if self._shown < 0 or mark > self._shown or done == total:
            self._shown = mark
            log.info("%s", line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stdout_to_devnull() -> None:
    """Send the rest of standard output to /dev/null: Python would report the closed pipe again
    at every later line and when it flushes stdout at exit."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
