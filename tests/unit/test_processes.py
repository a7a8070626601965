"""The CLI's early Prefect API server: started as Prefect starts it, only without an API URL,
its failure raised; the startup timeout set before Prefect is imported. The tests that start
real servers are in ``tests/integration/test_server_processes.py``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


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
