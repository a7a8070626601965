"""``pipeline_lib``'s log records in the Prefect run logs.

``pipeline_lib`` never imports Prefect; it logs with the standard library under the
``pipeline_lib`` logger. Prefect ships the records of its own loggers to the API (the run's logs
in the UI); this adds its API handler to ``pipeline_lib``'s logger as well, as Prefect's
``PREFECT_LOGGING_EXTRA_LOGGERS`` would, but only for records made inside a flow or task run
(outside one, as in the CLI's own checks, Prefect would warn that there is no run to log to).
The records still reach the console through the root logger, as before.
"""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler
from prefect.settings import PREFECT_LOGGING_EXTRA_LOGGERS

LIBRARY = "pipeline_lib"


def _in_a_run(record: logging.LogRecord) -> bool:
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def send_library_logs_to_runs(level: int = logging.INFO) -> None:
    """Attach Prefect's API log handler to the ``pipeline_lib`` logger (once; not when
    ``PREFECT_LOGGING_EXTRA_LOGGERS`` already names it). Records below ``level`` stay local."""
    if LIBRARY in (PREFECT_LOGGING_EXTRA_LOGGERS.value() or []):
        return
    logger = logging.getLogger(LIBRARY)
    if any(isinstance(h, APILogHandler) for h in logger.handlers):
        return
    handler = APILogHandler()
    handler.setLevel(level)
    handler.addFilter(_in_a_run)
    logger.addHandler(handler)
