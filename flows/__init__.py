"""Prefect flows: the nightly run, the backfill over a date range, and the CLI that starts them.

Importing any flow also sends ``pipeline_lib``'s log records (its warnings: a quality warning,
an ignored column, a stale covariate) to the Prefect run they happen in, so they show in the
run's logs in the UI and not only in the worker's terminal (see :mod:`flows.logs`).
"""

import os

# Quiet, patient defaults for Prefect's local ephemeral API (a user's own settings win). Set
# here, before anything imports Prefect: Prefect reads its settings once, on import, so a
# default set later (in flows.cli, as before) never applied and a loaded machine's demo failed
# after Prefect's own 20 s ("Timed out while attempting to connect to ephemeral Prefect API
# server").
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from flows.logs import send_library_logs_to_runs  # noqa: E402 - after the defaults above

send_library_logs_to_runs()
