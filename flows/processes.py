"""Prefect's local ephemeral API servers left behind by runs that were killed.

Without ``PREFECT_API_URL`` a run starts Prefect's ephemeral API as a child process (uvicorn
serving ``prefect.server.api.server:create_app``). A run killed with ``kill -9`` cannot stop it,
so it lives on as an orphan. The CLI marks the children of each run with the run's pid and start
time (:func:`mark_owner`); the next run on the same ``PREFECT_HOME`` finds the servers whose
owner is gone (or that were re-parented to init without a mark) and ends them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

OWNER = "PIPELINE_EPHEMERAL_OWNER"  # "<pid>:<start time>" of the process that started it
_APP = b"prefect.server.api.server:create_app"


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state is [0]); None when the
    process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    fields = _stat(pid)
    return fields[19] if fields else None


def _parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def mark_owner() -> None:
    """Mark the ephemeral server this process may start as its own (call before any flow)."""
    os.environ[OWNER] = f"{os.getpid()}:{_start_time(os.getpid())}"


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _home(env: dict[str, str]) -> str:
    return str(Path(env.get("PREFECT_HOME", "~/.prefect")).expanduser().resolve())


def _owner_gone(env: dict[str, str], pid: int) -> bool:
    mark = env.get(OWNER)
    if mark is None:  # not started by our CLI: only a server re-parented to init is an orphan
        return _parent(pid) == 1
    owner, _, started = mark.partition(":")
    return not owner.isdigit() or _start_time(int(owner)) != started


def orphaned_servers(prefect_home: str | None = None) -> list[int]:
    """Pids of the ephemeral API servers of ``PREFECT_HOME`` whose run is gone."""
    home = _home({"PREFECT_HOME": prefect_home} if prefect_home else dict(os.environ))
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if _APP not in cmdline:
            continue
        env = _environ(int(entry.name))
        if env.get("PREFECT__SERVER_EPHEMERAL") != "1" or _home(env) != home:
            continue
        if _owner_gone(env, int(entry.name)):
            found.append(int(entry.name))
    return sorted(found)


def end_orphaned_servers(grace_s: float = 5.0) -> list[int]:
    """End the orphaned servers (SIGTERM, then SIGKILL after ``grace_s``); their pids."""
    pids = orphaned_servers()
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_start_time(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if _start_time(pid) is not None:
            _signal(pid, signal.SIGKILL)
    return pids


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def start_api_early() -> Callable[[], None]:
    """Start Prefect's ephemeral API server now, in the background, when this run will use one
    (no ``PREFECT_API_URL``); returns a wait that returns once it answers (re-raising its
    failure). Its start is a child process importing Prefect's server and migrating its
    database (about 6 s), which otherwise begins only when the first flow asks for the API;
    started before the flows are imported (torch, scikit-learn, statsforecast: a few
    seconds), the two overlap on a machine with a second core. The server is the one Prefect's
    client starts itself (``SubprocessASGIServer``, one per process), so the client finds it
    running; call the wait before the first flow, as the client would not wait for it."""
    import threading

    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return lambda: None
    failed: list[BaseException] = []
    imported = threading.Event()

    def start() -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            imported.set()  # the rest is the child's start: this thread only polls it
            SubprocessASGIServer().start()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the wait, in the main thread
            failed.append(exc)
        finally:
            imported.set()

    thread = threading.Thread(target=start, name="prefect-api-start", daemon=True)
    thread.start()
    imported.wait()  # Prefect's server module first (needed anyway): imports in two threads
    # at once contend for the interpreter and would serialise

    def wait() -> None:
        thread.join()
        if failed:
            raise failed[0]

    return wait
