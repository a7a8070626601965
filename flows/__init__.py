"""Prefect flows: the nightly run, the backfill over a date range, and the CLI that starts them."""
