"""Orphaned Prefect API servers: found by PREFECT_HOME and a dead owner, and ended."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.processes import OWNER, _start_time, end_orphaned_servers, orphaned_servers

APP = "prefect.server.api.server:create_app"


def _server(home: Path, owner: str) -> subprocess.Popen[bytes]:
    """A stand-in with the command line and environment of an ephemeral API server."""
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT__SERVER_EPHEMERAL": "1", OWNER: owner}
    code = "import time; time.sleep(60)"
    return subprocess.Popen([sys.executable, "-c", code, "--factory", APP], env=env)


def test_a_server_whose_owner_died_is_found_and_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = f"{os.getpid()}:{_start_time(os.getpid())}"
    orphan = _server(tmp_path / "home", f"{dead.pid}:12345")
    owned = _server(tmp_path / "home", me)  # its owner (this process) is alive
    elsewhere = _server(tmp_path / "other-home", f"{dead.pid}:12345")
    home = str(tmp_path / "home")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and orphan.pid not in orphaned_servers(home):
            time.sleep(0.05)  # until the stand-ins have started
        assert orphaned_servers(home) == [orphan.pid]
        monkeypatch.setenv("PREFECT_HOME", home)
        assert end_orphaned_servers(grace_s=5) == [orphan.pid]
        assert orphan.wait(10) is not None
        assert owned.poll() is None and elsewhere.poll() is None
    finally:
        for proc in (orphan, owned, elsewhere):
            proc.kill()
            proc.wait(10)


def test_the_api_starts_early_only_without_an_api_url_and_its_failure_is_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.server.api import server
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import flows.processes as processes

    spawned: list[int] = []
    real_spawn = processes._spawn
    monkeypatch.setattr(processes, "_spawn", lambda port: spawned.append(port))
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        processes.start_api_early()()
    assert spawned == []  # a configured API: nothing of ours to start

    # the child dies before it answers (its port taken meanwhile, say): Prefect's own start
    # runs, and its failure reaches the run's thread
    def dying(port: int) -> subprocess.Popen[bytes]:
        spawned.append(port)
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])

    def broken(self: object) -> None:
        raise RuntimeError("port in use")

    monkeypatch.setattr(processes, "_spawn", dying)
    monkeypatch.setattr(server.SubprocessASGIServer, "start", broken)
    prior = server.SubprocessASGIServer._instances.pop(None, None)
    try:
        with temporary_settings(restore_defaults={PREFECT_API_URL}):  # no API URL
            wait = processes.start_api_early()
            with pytest.raises(RuntimeError, match="port in use"):
                wait()  # raised in the run's thread, before its first flow
        assert len(spawned) == 1
        assert server.SubprocessASGIServer().running is False
    finally:
        server.SubprocessASGIServer._instances.pop(None, None)
        if prior is not None:
            server.SubprocessASGIServer._instances[None] = prior
    monkeypatch.setattr(processes, "_spawn", real_spawn)


def test_the_early_server_is_started_as_prefect_starts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command and environment of the early child are those of Prefect's own start."""
    from prefect.server.api import server

    import flows.processes as processes

    calls: list[tuple[list[str], dict[str, str]]] = []

    class Recorder:
        def __init__(self, args: list[str], env: dict[str, str], **_: object) -> None:
            calls.append((list(args), dict(env)))

    monkeypatch.setattr(subprocess, "Popen", Recorder)
    processes._spawn(8123)
    server.SubprocessASGIServer(port=8123)._run_uvicorn_command()
    server.SubprocessASGIServer._instances.pop(8123, None)
    (ours, ours_env), (prefects, prefects_env) = calls
    assert ours == prefects
    assert ours_env == prefects_env


def test_a_run_adopts_its_early_server_and_stops_it_at_exit(tmp_path: Path) -> None:
    """In a process of its own (Prefect reads PREFECT_HOME when imported): the server the run
    started early is the one Prefect's client finds, it answers, and it ends with the run."""
    code = (
        "import flows.cli, httpx\n"
        "from flows.processes import start_api_early\n"
        "start_api_early()()\n"
        "from prefect.server.api.server import SubprocessASGIServer\n"
        "from prefect.client.orchestration import get_client\n"
        "server = SubprocessASGIServer()\n"
        "with get_client(sync_client=True) as client:\n"
        "    url = str(client.api_url)\n"
        "print(server.server_process.pid, httpx.get(server.api_url + '/health').status_code,\n"
        "      url.rstrip('/') == server.api_url)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    pid, status, same = out.stdout.split()
    assert (status, same) == ("200", "True")
    deadline = time.monotonic() + 10
    while _start_time(int(pid)) is not None and time.monotonic() < deadline:
        time.sleep(0.1)  # stopped by the run's exit (Prefect's stop, registered at exit)
    assert _start_time(int(pid)) is None
    assert (tmp_path / "prefect-home").is_dir()  # the server's database: in the run's home


@pytest.mark.parametrize(("given", "seen"), [(None, "120.0"), ("45", "45.0")])
def test_the_cli_waits_for_prefects_local_api_as_long_as_it_says(
    given: str | None, seen: str
) -> None:
    # Prefect reads its settings once, when it is imported: the CLI's patient default must be
    # set before that, or a loaded machine's demo fails after Prefect's own 20 s
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_SERVER_EPHEMERAL")}
    if given is not None:  # a user's own setting wins
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = given
    code = (
        "import flows.cli\n"
        "from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as s\n"
        "print(float(s.value()))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == seen
