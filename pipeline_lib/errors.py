"""The errors a user can fix: bad input, bad settings, a full or read-only disk, the database.

``forecast-pipeline`` prints one of these as ``error: <message>`` lines (one per problem)
without a traceback, and exits with code 1 (flows/cli.py); any other exception is a bug and is
reported as one. Their messages name what is wrong and where (the file, column, rows and rule;
the config file and setting; the path and the operation) and what to do.

Each subclass also derives from the built-in type its callers already catch (``ValueError``,
``OSError``...), so ``except ValueError`` and the like keep working. Nothing here imports the
rest of the package (or Prefect), so every module can import it.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Iterator
from contextlib import contextmanager


class PipelineError(Exception):
    """Base of every error whose message tells the user what to fix (see the module doc)."""

    def user_lines(self) -> list[str]:
        """The message as the command line prints it: one line (a subclass may give several,
        one per problem)."""
        return [one_line(str(self))]


class ConfigError(PipelineError, ValueError):
    """The settings are invalid: one line per problem, each naming where it came from (the
    config file, a PIPELINE_* variable) and the setting."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = problems.splitlines() if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))

    def user_lines(self) -> list[str]:
        return list(self.problems)


class ConfigFileNotFound(ConfigError, FileNotFoundError):
    """The config file named by ``--config`` or ``PIPELINE_CONFIG`` does not exist."""


class StorageError(PipelineError, OSError):
    """Data could not be written (or a database file opened): the disk is full or read-only,
    or permission is denied. The message names the operation, the path and what to do."""

    def __init__(self, message: str, *, code: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.errno = code  # like the OSError it wraps, for callers that test it
        self.path = path


class CovariateMissing(PipelineError, ValueError):
    """A declared covariate that tonight's forecast needs has not arrived (policy
    ``required``): one line per series and covariate, naming the missing dates."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        hint = (
            'deliver the values, or set the covariate\'s missing = "mask" to forecast without them'
        )
        super().__init__("\n".join([*self.problems, hint]))

    def user_lines(self) -> list[str]:
        return str(self).splitlines()


class NotEnoughHistory(PipelineError, ValueError):
    """Too little history to train on as configured: the message says what was short and
    which settings ask for it (``start_date``, ``training.*``, ``model.lookback``, ``horizon``,
    ``backtest.*``)."""

    HINT = (
        "deliver more history (an earlier start_date), or ask for less: a shorter "
        "model.lookback, horizon or backtest (backtest.last_n x backtest.step rows are held out)"
    )

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}; {self.HINT}")


class DatabaseError(PipelineError, RuntimeError):
    """The database cannot be used as configured (e.g. no driver installed for its URL)."""


# errno -> what to do about it (the message says what happened: strerror)
_STORAGE_ADVICE: dict[int, str] = {
    _errno.ENOSPC: "free space on that disk (or point data_dir at another one), then run again",
    _errno.EDQUOT: "free space or raise the disk quota, then run again",
    _errno.EROFS: "remount it read-write, or point data_dir (PIPELINE_DATA_DIR) at a writable "
    "folder",
    _errno.EACCES: "give this user access to it, or point data_dir (PIPELINE_DATA_DIR) at a "
    "folder it may write",
    _errno.EPERM: "give this user access to it, or point data_dir (PIPELINE_DATA_DIR) at a "
    "folder it may write",
}
STORAGE_ERRNOS = frozenset(_STORAGE_ADVICE)


def storage_error(exc: OSError, operation: str, path: str | None = None) -> StorageError | None:
    """A :class:`StorageError` for ``exc`` that names ``operation`` (e.g. ``"writing"``), the
    path (default: the exception's file name) and what to do; None when its errno is not a
    storage error a user can fix (full disk, quota, read-only, permission)."""
    advice = _STORAGE_ADVICE.get(exc.errno) if exc.errno is not None else None
    if advice is None:
        return None
    where = path or exc.filename
    target = f" {where}" if where else ""
    reason = exc.strerror or str(exc)
    message = f"{operation}{target} failed ({reason}): {advice}"
    return StorageError(message, code=exc.errno, path=str(where) if where else None)


@contextmanager
def storage_errors(operation: str, path: str) -> Iterator[None]:
    """Turn an OSError of a full or read-only disk, a used-up quota or a denied permission into
    a :class:`StorageError` naming ``operation``, ``path`` and what to do
    (the OSError alone names neither the operation nor, often, the path). Other errors pass."""
    try:
        yield
    except StorageError:
        raise  # already says where and what (an inner write)
    except OSError as exc:
        wrapped = storage_error(exc, operation, path)
        if wrapped is None:
            raise
        raise wrapped from exc


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, nearest first."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]


def find_user_error(exc: BaseException) -> PipelineError | None:
    """The user-facing error behind ``exc``: ``exc`` itself, or one in its chain (an
    orchestrator may wrap what a task raised). An ``OSError`` of a full or read-only disk that
    no writer wrapped counts too. None: a bug."""
    chain = list(_chain(exc))
    for current in chain:
        if isinstance(current, PipelineError):
            return current
    for current in chain:
        if isinstance(current, OSError) and (found := storage_error(current, "accessing")):
            return found
    return None


def one_line(text: str) -> str:
    """A multi-line message on one line: lines stripped, list dashes dropped, joined with
    ``"; "`` (or a space after a line ending in ``:``)."""
    out = ""
    for raw in text.splitlines():
        line = raw.strip().removeprefix("- ").strip()
        if not line:
            continue
        out = line if not out else f"{out}{' ' if out.endswith(':') else '; '}{line}"
    return out
