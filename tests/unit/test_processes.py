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
