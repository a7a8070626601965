"""The log of one ``forecast-pipeline`` command (:class:`RunLog`) and its exit codes: every
line logged kept in memory and written to a file when the command fails, the console without
tracebacks, and the user's ``error:`` lines."""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import sys
import tempfile
import traceback
from typing import Any

# Exit codes (README, Command line): 0 done; 1 refused, with `error:` lines saying what to fix
# (bad input, settings, a full or read-only disk, the database); 2 a bad command line
# (argparse); 3 an unexpected error, i.e. a bug; 130 interrupted (Ctrl-C).
EXIT_REFUSED, EXIT_BUG, EXIT_INTERRUPTED = 1, 3, 130


class _NoTraceback(logging.Formatter):
    """Formats a record as ``inner`` does, without its exception traceback or stack. Prefect's
    engines log a failed task's or flow's exception with its traceback, at every level of the
    run, so one refused file printed the same traceback three or four times."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        # a copy: the handlers after this one (the run log) still get the traceback
        bare = logging.makeLogRecord(record.__dict__)
        bare.exc_info, bare.exc_text, bare.stack_info = None, None, None
        return self.inner.format(bare)


def _is_console(handler: logging.Handler) -> bool:
    if any(cls.__name__ == "PrefectConsoleHandler" for cls in type(handler).__mro__):
        return True
    streams = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    return type(handler) is logging.StreamHandler and handler.stream in streams


class RunLog:
    """The log of one command: everything logged (Prefect's run logs, warnings, this package's
    logs at DEBUG) and the traceback of a failure, kept in memory and written to
    ``<data_dir>/reports/logs/cli-<UTC time>.log`` when the command fails (or to the temporary
    folder when that cannot be written: a read-only or full data folder is one of the failures
    it reports). Meanwhile the console handlers (Prefect's) show their lines without tracebacks,
    unless ``debug``. :meth:`fail` prints the user's ``error:`` lines and the log's path."""

    def __init__(self, command: str, debug: bool) -> None:
        self.command, self.debug = command, debug
        self.data_dir: str | None = None
        self.buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        self.handler.setLevel(logging.DEBUG)
        self._undo: list[Any] = []

    def attach(self) -> None:
        consoles = [
            h
            for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
            if isinstance(logger, logging.Logger)
            for h in logger.handlers
            if _is_console(h)
        ]
        consoles = list(dict.fromkeys(consoles))  # one handler may serve several loggers
        plain = logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s")
        self.handler.setFormatter(consoles[0].formatter if consoles else plain)  # Prefect's
        root = logging.getLogger()
        root.addHandler(self.handler)
        self._undo.append(lambda: root.removeHandler(self.handler))
        # this package's DEBUG lines go to the log, not to the console (as before)
        package = logging.getLogger("pipeline_lib")
        shown, level = package.getEffectiveLevel(), package.level
        package.setLevel(logging.DEBUG)
        self._undo.append(lambda: package.setLevel(level))

        def as_before(record: logging.LogRecord) -> bool:
            return record.levelno >= shown or not record.name.startswith("pipeline_lib")

        for console in consoles:
            console.addFilter(as_before)
            self._undo.append(lambda h=console: h.removeFilter(as_before))
            if not self.debug:
                formatter = console.formatter
                console.setFormatter(_NoTraceback(formatter))
                self._undo.append(lambda h=console, f=formatter: h.setFormatter(f))

    def detach(self) -> None:
        while self._undo:
            self._undo.pop()()

    def fail(self, exc: BaseException) -> int:
        """Log ``exc`` with its traceback, write the log, print what the user needs; the exit
        code: 1 for an error the user can fix, 130 when interrupted, 3 for a bug."""
        from pipeline_lib.errors import find_user_error, one_line

        record = logging.LogRecord(
            __name__, logging.ERROR, __file__, 0, "forecast-pipeline %s failed", (self.command,),
            (type(exc), exc, exc.__traceback__),
        )  # fmt: skip
        self.handler.handle(record)
        path = self.save()
        if self.debug:
            traceback.print_exception(exc, file=sys.stderr)
        if isinstance(exc, KeyboardInterrupt):
            lines, code = ["interrupted"], EXIT_INTERRUPTED
        elif (user := find_user_error(exc)) is not None:
            lines, code = user.user_lines(), EXIT_REFUSED
        else:  # a bug: its type and message, shortened; the traceback is in the log
            text = one_line(str(exc))
            what = f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
            lines, code = [f"unexpected {what} (a bug: please report it, with the log)"], EXIT_BUG
        for line in lines:
            print(f"error: {line}", file=sys.stderr)
        if path is not None:
            print(f"details: {path}", file=sys.stderr)
        return code

    def save(self) -> str | None:
        """Write the log; its path, or None when no folder could take it."""
        from pipeline_lib import paths
        from pipeline_lib.store import atomic_write_bytes, join

        name = f"cli-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}.log"
        folders = [paths.reports_dir(self.data_dir, "logs")] if self.data_dir else []
        folders.append(os.path.join(tempfile.gettempdir(), "forecast-pipeline", "logs"))
        data = self.buffer.getvalue().encode("utf-8")
        for folder in folders:
            url = join(folder, name)
            try:
                atomic_write_bytes(url, data)
            except Exception:  # noqa: BLE001 - the next folder, or no log: never hide the error
                continue
            return url
        return None
