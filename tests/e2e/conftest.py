"""End-to-end fixtures: a temporary local Prefect API (Prefect's test harness, on PostgreSQL) and
small configs."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.conftest import for_prefect_server, pg_database
from tests.prefect_server import free_port

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

SMALL_MODEL = """
horizon = {horizon}
start_date = "{start_date}"
data_dir = "{data_dir}"

[model]
lookback = 20
hidden_size = 8
embedding_dim = 2

[training]
max_epochs = 3
patience = 2
finetune_epochs = 1
train_window_days = 500
finetune_window_days = 60
retrain_every_days = {retrain_every_days}

[drift]
recent_days = 60

[tuning]
lookback = [15, 20]
hidden_size = [4, 8]
num_layers = [1]
batch_size = [64]
"""


@pytest.fixture(scope="session")
def prefect_api(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[None]:
    """A Prefect API for the flows the tests call, for the whole session (of each xdist worker).

    Prefect's test harness, but on a throw-away PostgreSQL database instead of its SQLite
    file: on SQLite, the first concurrency request of each task tag (every tagged task asks
    for its tag's slots) fails with "database is locked" whenever another write is under way,
    and Prefect's client retries it after 2, 4, 8 s (35 such waits in test_nightly_e2e: 124 s
    on SQLite, 62 s on PostgreSQL). With PIPELINE_SKIP_POSTGRES=1 the harness's own SQLite
    is used."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    if os.environ.get("PIPELINE_SKIP_POSTGRES") == "1":
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=120):
            yield
        return
    with pg_database(request.getfixturevalue("pg_admin_url")) as url, _harness_on(url):
        yield


@contextmanager
def _harness_on(database_url: str) -> Iterator[None]:
    """What ``prefect.testing.utilities.prefect_test_harness`` does (Prefect 3.9), with the
    server's database at ``database_url``."""
    import prefect.context
    import prefect.settings
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.server.database.dependencies import temporary_database_interface
    from prefect.utilities.asyncutils import run_coro_as_sync

    db_setting = prefect.settings.PREFECT_SERVER_DATABASE_CONNECTION_URL
    with ExitStack() as stack:
        stack.enter_context(temporary_database_interface())
        stack.enter_context(
            prefect.settings.temporary_settings(
                updates={db_setting: for_prefect_server(database_url)}
            )
        )
        server = SubprocessASGIServer(port=free_port())
        prior = SubprocessASGIServer._instances.get(None)
        SubprocessASGIServer._instances[None] = server  # flows find this server, not a new one
        server.start(timeout=120)
        stack.enter_context(
            prefect.settings.temporary_settings(
                updates={prefect.settings.PREFECT_API_URL: server.api_url}
            )
        )
        stack.enter_context(
            prefect.context._temporary_global_settings_context(  # noqa: SLF001
                prefect.context.get_settings_context()
            )
        )
        try:
            yield
        finally:

            async def drain() -> None:  # logs and events first, or they hit a stopped server
                try:
                    result = APILogWorker.instance().drain()
                    if inspect.isawaitable(result):
                        await result
                except RuntimeError:  # never started
                    pass
                result = EventsWorker.drain_all()
                if inspect.isawaitable(result):
                    await result

            run_coro_as_sync(drain())
            server.stop()
            if prior is not None:
                SubprocessASGIServer._instances[None] = prior
            else:
                SubprocessASGIServer._instances.pop(None, None)


def write_config(
    path: Path,
    data_dir: Path,
    extra: str = "",
    horizon: int = 7,
    start_date: str = "2014-07-01",
    retrain_every_days: int = 28,
) -> Path:
    path.write_text(
        SMALL_MODEL.format(
            horizon=horizon,
            start_date=start_date,
            data_dir=data_dir.as_posix(),
            retrain_every_days=retrain_every_days,
        )
        + extra
    )
    return path
