"""Real Prefect API server processes: an orphaned server (found by PREFECT_HOME and a dead
owner) is ended, and a run adopts the server it started early and stops it at exit."""

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
