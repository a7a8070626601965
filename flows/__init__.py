"""Prefect flows: the nightly run, the backfill over a date range, and the CLI that starts them.

Importing any flow also sends ``pipeline_lib``'s log records (its warnings: a quality warning,
an ignored column, a stale covariate) to the Prefect run they happen in, so they show in the
run's logs in the UI and not only in the worker's terminal (see :mod:`flows.logs`).
"""

from flows.logs import send_library_logs_to_runs

send_library_logs_to_runs()
