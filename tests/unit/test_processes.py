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

    from flows.processes import start_api_early

    started: list[int] = []
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        monkeypatch.setattr(server.SubprocessASGIServer, "start", lambda self: started.append(1))
        start_api_early()()
    assert started == []  # a configured API: nothing of ours to start

    def broken(self: object) -> None:
        raise RuntimeError("port in use")

    monkeypatch.setattr(server.SubprocessASGIServer, "start", broken)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):  # no API URL
        wait = start_api_early()
        with pytest.raises(RuntimeError, match="port in use"):
            wait()  # raised in the run's thread, before its first flow


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
