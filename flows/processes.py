"""Prefect's local ephemeral API servers left behind by runs that were killed.

Without ``PREFECT_API_URL`` a run starts Prefect's ephemeral API as a child process (uvicorn
serving ``prefect.server.api.server:create_app``). A run killed with ``kill -9`` cannot stop it,
so it lives on as an orphan. The CLI marks the children of each run with the run's pid and start
time (:func:`mark_owner`); the next run on the same ``PREFECT_HOME`` finds the servers whose
owner is gone (or that were re-parented to init without a mark) and ends them.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
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
    failure). Call the wait before the first flow.

    The server's start is a child process importing Prefect's server and migrating its
    database (4-6 s), which otherwise begins only when the first flow asks for the API. The
    child is spawned at once, with the command and environment Prefect's own
    ``SubprocessASGIServer`` gives it (:func:`_spawn`), before this process imports Prefect's
    server module (1.4 s) and the flows (torch, scikit-learn, statsforecast: about 3 s), so on
    a machine with a second core the child's start and those imports overlap; the child is then
    handed to ``SubprocessASGIServer()``, the one instance Prefect's client asks for, so the
    client finds it running and stops it at exit as its own. Should the child die before it
    answers (its port taken meanwhile, say), Prefect starts its own, as it would have."""
    import threading

    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return lambda: None
    port = _free_port()
    child = _spawn(port)
    atexit.register(_end, child)  # should the run end before the child is handed over
    failed: list[BaseException] = []
    imported = threading.Event()

    def adopt() -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            imported.set()  # the rest polls the child
            server = SubprocessASGIServer()
            if server.running:  # started already (not by us): ours is not needed
                _end(child)
                return
            server.port, server.server_process, server.running = port, child, True
            if _answers(server.api_url, child):
                atexit.register(server.stop)  # as Prefect's start registers it
                return
            _end(child)  # gone, or never answered: Prefect's own start, as before
            server.port, server.server_process, server.running = None, None, False
            server.start()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the wait, in the main thread
            _end(child)
            failed.append(exc)
        finally:
            imported.set()

    thread = threading.Thread(target=adopt, name="prefect-api-start", daemon=True)
    thread.start()
    imported.wait()  # Prefect's server module first (needed anyway): imports in two threads
    # at once contend for the interpreter and would serialise

    def wait() -> None:
        thread.join()
        if failed:
            raise failed[0]

    return wait


def _end(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.kill()
    child.wait()


def _free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now (the system's choice)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(port: int) -> subprocess.Popen[bytes]:
    """Prefect's ephemeral API server on ``port``: the command and environment of
    ``SubprocessASGIServer._run_uvicorn_command`` (Prefect 3.9.1; ``tests/unit/
    test_processes.py`` compares the two), without importing Prefect's server module."""
    import prefect
    from prefect.settings import get_current_settings

    command = [
        sys.executable, "-m", "uvicorn",
        "--app-dir", str(prefect.__module_path__.parent),
        "--factory", _APP.decode(),
        "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "error", "--lifespan", "on",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        **get_current_settings().to_environment_variables(exclude_unset=True),
    }
    logging.getLogger("prefect").info(
        "Starting temporary server on http://127.0.0.1:%d (in the background)", port
    )
    return subprocess.Popen(command, env=env)


def _answers(api_url: str, child: subprocess.Popen[bytes]) -> bool:
    """Poll the child's health endpoint as Prefect does (every 0.1 s, for
    ``server.ephemeral.startup_timeout_seconds``); False if it exits or never answers."""
    import httpx
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    deadline = time.monotonic() + float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                return False
            try:
                if client.get(f"{api_url}/health").status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    return False
