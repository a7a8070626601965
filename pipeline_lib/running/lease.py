"""The writer lease: one run at a time writes a data folder and its database, whichever Prefect
API (ephemeral, a server, none) the run talks to.

A writing run (nightly, retrain, backfill) holds the lease for its whole run. It has two guards,
always taken in this order and held until the run ends:

- the data folder (a local one): an exclusive ``flock`` on ``<data dir>/state/writer.lock``;
- the database: a session-level advisory lock on a connection kept open for the run
  (PostgreSQL), or an exclusive ``flock`` on ``<database file>.writer.lock`` (SQLite).

The operating system or the database server drops both the moment the holder's process ends,
however it ends (``kill -9`` included), so nothing waits for an expiry. The PostgreSQL session
asks the server for TCP keepalives, so a holder whose machine vanished is dropped within about a
minute. A remote data folder (``s3://...``) needs a database URL (see ``Settings``): there the
database guard alone keeps writers apart.

While it holds the lease, the holder's record (what, run id, host, pid, since) is the file
``<data dir>/state/writer.json``: a waiting run reads it to say whom it waits for and since when.
The holder removes it when it lets go; a record found by the next holder was left by a run that
died, and tells it which run to mark as crashed.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from pipeline_lib.errors import PipelineError
from pipeline_lib.store.fs import atomic_write_bytes, filesystem, join

log = logging.getLogger(__name__)

STATE = "state"
LOCK_FILE = "writer.lock"
HOLDER_FILE = "writer.json"
# pg_try_advisory_lock(classid, objid): the two-key space, apart from the one-key locks of the
# writers' scopes and the migration; "fcst" and "wrtr" as numbers.
_PG_KEYS = (0x66637374, 0x77727472)
_PG_KEEPALIVE = {
    "tcp_keepalives_idle": 30,
    "tcp_keepalives_interval": 10,
    "tcp_keepalives_count": 3,
}


class LeaseTimeout(PipelineError, TimeoutError):
    """The lease stayed taken for longer than the run may wait."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) the lease: what it runs, its run id, where, and since when (UTC)."""

    what: str
    run_id: str
    host: str
    pid: int
    since: str

    @classmethod
    def this_process(cls, what: str, run_id: str) -> Holder:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return cls(what, run_id, socket.gethostname(), os.getpid(), now)

    def describe(self) -> str:
        return f"{self.what} (run {self.run_id}, pid {self.pid} on {self.host}, since {self.since})"


def holder_url(data_dir: str) -> str:
    return join(data_dir, STATE, HOLDER_FILE)


def read_holder(data_dir: str) -> Holder | None:
    """The record of the current holder (or of one that died holding the lease), if any."""
    fs, path = filesystem(holder_url(data_dir))
    try:
        return Holder(**json.loads(fs.cat_file(path)))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:  # a half-written record of a dying holder
        log.warning("unreadable writer record %s (%s); ignored", holder_url(data_dir), exc)
        return None


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


class _FileGuard:
    """An exclusive ``flock`` on a local file, taken without blocking."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class _PostgresGuard:
    """A session advisory lock on a connection of its own, kept open while held."""

    def __init__(self, url: str, label: str) -> None:
        self.url, self.label = url, label
        self._conn: Connection | None = None
        self._engine: Any = None

    def try_acquire(self) -> bool:
        engine = create_engine(make_url(self.url), poolclass=NullPool)
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = False
        try:
            conn.execute(text("SELECT set_config('application_name', :n, false)"),
                         {"n": self.label[:63]})  # fmt: skip
            for name, value in _PG_KEEPALIVE.items():
                conn.execute(text("SELECT set_config(:k, :v, false)"), {"k": name, "v": str(value)})
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"),
                                    {"a": _PG_KEYS[0], "b": _PG_KEYS[1]}).scalar())  # fmt: skip
        finally:
            if not got:  # not taken, or failed: the session is not kept
                conn.close()
                engine.dispose()
        if got:
            self._conn, self._engine = conn, engine
        return got

    def alive(self) -> bool:
        """Whether the session holding the lock still answers."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - any failure means the session (and its lock) is gone
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"),
                                   {"a": _PG_KEYS[0], "b": _PG_KEYS[1]})  # fmt: skip
            except Exception:  # noqa: BLE001 - closing the session drops the lock anyway
                log.warning("could not unlock the writer lease's advisory lock; closing")
            finally:
                self._conn.close()
                self._engine.dispose()
                self._conn = self._engine = None


def _guards(data_dir: str, db_url: str, label: str) -> list[Any]:
    """The data folder's guard (local folders) and the database's, in the order taken."""
    guards: list[Any] = []
    if _is_local(data_dir):
        guards.append(_FileGuard(join(data_dir.removeprefix("file://"), STATE, LOCK_FILE)))
    url = make_url(db_url)
    if url.get_backend_name() == "postgresql":
        guards.append(_PostgresGuard(db_url, label))
    elif url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = str(Path(url.database.removeprefix("file:")).expanduser().resolve())
        guards.append(_FileGuard(f"{database}.writer.lock"))
    return guards


def _try_all(guards: list[Any]) -> bool:
    """Take every guard, or none (those taken are let go again)."""
    taken: list[Any] = []
    for guard in guards:
        if not guard.try_acquire():
            for held in reversed(taken):
                held.release()
            return False
        taken.append(guard)
    return True


def is_free(data_dir: str, db_url: str) -> bool:
    """Whether no live run holds the lease now (taken for an instant and let go)."""
    guards = _guards(data_dir, db_url, "forecast-pipeline probe")
    if not _try_all(guards):
        return False
    for guard in reversed(guards):
        guard.release()
    return True


@contextmanager
def writer_lease(
    data_dir: str,
    db_url: str,
    holder: Holder,
    wait_s: float,
    say: Callable[[str], None] = log.info,
    poll_s: float = 1.0,
    report_every_s: float = 60.0,
) -> Iterator[Holder | None]:
    """Hold the writer lease while the block runs; wait for it (up to ``wait_s``) first.

    While waiting, ``say`` is told whom the run waits for and since when, at once and then
    every ``report_every_s``. Yields the record a holder that died left behind (None when the
    last holder let go normally): the caller marks that run as crashed. Raises
    :class:`LeaseTimeout` naming the holder when the wait is over.
    """
    guards = _guards(data_dir, db_url, f"forecast-pipeline {holder.what} {holder.run_id}")
    started = time.monotonic()
    said = -report_every_s
    while not _try_all(guards):
        waited = time.monotonic() - started
        current = read_holder(data_dir)
        who = current.describe() if current else "a run that has not recorded itself yet"
        if waited >= wait_s:
            raise LeaseTimeout(
                f"{holder.what}: the data folder {data_dir} is still being written by {who} "
                f"after {waited:.0f} s of waiting; try again when it has finished"
            )
        if waited - said >= report_every_s:
            say(f"{holder.what}: waiting for {who} to finish writing {data_dir}")
            said = waited
        time.sleep(poll_s)
    with ExitStack() as stack:
        for guard in guards:  # let go in the reverse order
            stack.callback(guard.release)
        left_behind = read_holder(data_dir)
        atomic_write_bytes(holder_url(data_dir), json.dumps(asdict(holder)).encode())
        stack.callback(_remove_record, data_dir)
        stop = threading.Event()
        stack.callback(stop.set)
        pg = [g for g in guards if isinstance(g, _PostgresGuard)]
        if pg:
            threading.Thread(target=_watch, args=(pg[0], stop, holder), daemon=True).start()
        yield left_behind


def _watch(guard: _PostgresGuard, stop: threading.Event, holder: Holder) -> None:
    """Check every 30 s that the lock's session is alive; a lost session loses the lock."""
    while not stop.wait(30):
        if not guard.alive():
            log.error(
                "%s: the database session holding the writer lease was lost; another run may "
                "start writing now",
                holder.what,
            )
            return


def _remove_record(data_dir: str) -> None:
    fs, path = filesystem(holder_url(data_dir))
    try:
        fs.rm(path)
    except FileNotFoundError:
        pass
