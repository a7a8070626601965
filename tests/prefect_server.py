"""A real Prefect server and process worker as child processes, for the integration tests.

Each runs in a process group of its own (``start_new_session``) with the test's own
``PREFECT_HOME``, so stopping one ends everything it started (a process worker runs each flow
run as a child in its group), and a scan of ``/proc`` finds anything left behind: a process in
one of those groups, or any process whose environment names that ``PREFECT_HOME``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 80) -> str:
    """The last ``lines`` lines of a log file (empty when there is none)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any PREFECT_* or PIPELINE_* variable, plus ``extra``:
    a child sees only the Prefect and pipeline settings the test gives it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PIPELINE_"))}
    return {**env, **extra}


def wait_until(
    check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5
) -> T:
    """Call ``check`` until it returns something other than None (returned), at most
    ``timeout`` seconds; then fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies excluded) whose process group is ``pgid``."""
    found = []
    for pid in _pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            found.append(pid)
    return found


def processes_with_env(entry: str) -> list[int]:
    """Processes whose environment holds ``entry`` (``NAME=value``); processes this user may
    not read are skipped."""
    needle = entry.encode()
    found = []
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # permission denied, or gone meanwhile
            continue
        if needle in env.split(b"\0"):
            found.append(pid)
    return found


def describe(pids: Sequence[int]) -> list[str]:
    """``pid: command line`` of each process, for a failure message."""
    out = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            cmd = "?"
        out.append(f"{pid}: {cmd.strip()}")
    return out


def _proc_status(pid: int) -> str:
    """A process's state, thread count and signal masks (/proc/<pid>/status), for a message."""
    keep = ("State", "Threads", "SigBlk", "SigIgn", "SigCgt")
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "gone"
    return ", ".join(" ".join(x.split()) for x in lines if x.split(":")[0] in keep)


@dataclass
class Service:
    """A child process leading its own process group, its output in ``log``."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    killed: bool = False  # SIGTERM was not enough
    stop_seconds: float | None = None  # how long stopping took

    @classmethod
    def start(
        cls, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path
    ) -> Service:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(name, proc, log)

    @property
    def pgid(self) -> int:
        return self.proc.pid  # a session leader's group id is its pid

    def stop(self, grace: float = 20.0) -> list[int]:
        """SIGTERM the whole group, wait up to ``grace`` seconds for all of it to end, then
        SIGKILL what is left. Returns the pids still alive after that (none expected)."""
        if not group_members(self.pgid) and self.proc.poll() is not None:
            return []
        began = time.monotonic()
        self._signal(signal.SIGTERM)
        deadline = began + grace
        while group_members(self.pgid) and time.monotonic() < deadline:
            self.proc.poll()  # reap the leader
            time.sleep(0.2)
        lingering: list[str] = []
        if members := group_members(self.pgid):
            self.killed = True
            lingering = [
                f"{line} [{_proc_status(pid)}]"
                for pid, line in zip(members, describe(members), strict=True)
            ]
            self._signal(signal.SIGKILL)
            deadline = time.monotonic() + 10
            while group_members(self.pgid) and time.monotonic() < deadline:
                self.proc.poll()
                time.sleep(0.2)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.stop_seconds = time.monotonic() - began
        if self.killed:  # in the warnings summary: which one, and the end of its log
            warnings.warn(
                f"{self.name} ignored SIGTERM for {grace:.0f} s and was killed "
                f"({self.stop_seconds:.1f} s to stop); still running then: {lingering}; its log "
                f"ends:\n{tail(self.log, 15)}",
                stacklevel=2,
            )
        return group_members(self.pgid)

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            pass


@dataclass
class PrefectServer:
    """``prefect server start`` on 127.0.0.1 with its own home folder and database (a SQLite
    file in the home folder unless ``database_url`` names another), and the process workers
    started against it."""

    home: Path
    logs: Path
    database_url: str | None = None  # the server's own database; default SQLite in home
    server_env: Mapping[str, str] = field(default_factory=dict)
    ui: bool = False  # serve the UI too (its pages call this server's API)
    port: int = 0
    server: Service | None = None
    workers: list[Service] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a client of this server (CLI, worker): its API and home folder."""
        return clean_env(PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.home), **extra)

    def start(self, timeout: float = 120.0) -> None:
        """Start the server and wait until its API answers /health."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = clean_env(
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_DATABASE_CONNECTION_URL=self.database_url
            or f"sqlite+aiosqlite:///{self.home}/prefect.db",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_UI_ENABLED="true" if self.ui else "false",
            # the UI's pages call the API here (by default port 4200, not this server's)
            **({"PREFECT_SERVER_UI_API_URL": self.api_url} if self.ui else {}),
            **self.server_env,
        )
        argv = [sys.executable, "-m", "prefect", "server", "start"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.server = Service.start("server", argv, env, self.home, self.logs / "server.log")

        def healthy() -> bool | None:
            if self.server is not None and self.server.proc.poll() is not None:
                raise RuntimeError(
                    f"prefect server exited with {self.server.proc.returncode}:\n"
                    + tail(self.server.log)
                )
            try:
                return httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200 or None
            except httpx.HTTPError:
                return None

        try:
            wait_until(healthy, timeout, f"the Prefect server on {self.api_url}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; server log:\n{tail(self.server.log)}") from None

    def start_worker(self, pool: str, env: Mapping[str, str], name: str = "worker") -> Service:
        """``prefect worker start --pool <pool> --type process``, from the home folder (the
        deployment's pull step moves each flow run to the repository)."""
        argv = [sys.executable, "-m", "prefect", "worker", "start"]
        argv += ["--pool", pool, "--type", "process", "--name", f"{name}-{self.port}"]
        worker = Service.start(name, argv, env, self.home, self.logs / f"{name}.log")
        self.workers.append(worker)
        return worker

    def deploy_pipeline(self, config: Path, cwd: Path) -> None:
        """``forecast-pipeline deploy --config <config>`` against this server: the work pool,
        the concurrency limit and the deployments of deploy/prefect.yaml; it must succeed."""
        cli = Path(sys.executable).with_name("forecast-pipeline")
        deployed = subprocess.run(
            [str(cli), "deploy", "--config", str(config)],
            env=self.env(),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]

    @contextmanager
    def client(self) -> Iterator[Any]:
        """A synchronous Prefect client on this server's API."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.api_url}):
            with get_client(sync_client=True) as client:
                yield client

    def stop(self) -> list[str]:
        """Stop the workers, then the server; returns what is still running (expected: no
        line): members of their process groups, or any process with this PREFECT_HOME."""
        left: list[int] = []
        for service in [*self.workers, *([self.server] if self.server else [])]:
            left += service.stop()
        marked = processes_with_env(f"PREFECT_HOME={self.home}")
        for pid in marked:  # a child that left its group: end it too, but report it
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return describe(sorted(set(left) | set(marked)))
