"""``forecast-pipeline``: run the nightly flow, a backfill, or the demo on the bundled data."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any

# Quiet, patient defaults for Prefect's local ephemeral API (a user's own settings win).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="forecast-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    nightly = sub.add_parser("nightly", help="run the nightly pipeline for one forecast date")
    nightly.add_argument("--as-of", type=_date, default=None, help="forecast date (default today)")
    nightly.add_argument("--config", default=None, help="TOML settings file")
    nightly.add_argument("--retrain", action="store_true", help="force a full retraining")
    backfill = sub.add_parser("backfill", help="replay the nightly run over a date range")
    backfill.add_argument("--start", type=_date, required=True)
    backfill.add_argument("--end", type=_date, required=True)
    backfill.add_argument("--config", default=None, help="TOML settings file")
    tune = sub.add_parser("tune", help="hyper-parameter search on the backtest (Optuna)")
    tune.add_argument("--as-of", type=_date, default=None, help="backtest date (default today)")
    tune.add_argument("--trials", type=int, default=None, help="configurations to try")
    tune.add_argument("--config", default=None, help="TOML settings file")
    database = sub.add_parser("db", help="the SQL schema: upgrade, status, BI read-only role")
    db_sub = database.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="create or upgrade the tables and BI views")
    upgrade.add_argument("--config", default=None, help="TOML settings file")
    upgrade.add_argument(
        "--sql", action="store_true", help="print the SQL instead of running it (for review)"
    )
    upgrade.add_argument(
        "--replace-views", action="store_true", help="recreate the views even if unchanged"
    )
    current = db_sub.add_parser("current", help="the schema revision of the database")
    current.add_argument("--config", default=None, help="TOML settings file")
    grant = db_sub.add_parser(
        "grant-readonly", help="PostgreSQL: create the BI role that may only SELECT (sql/roles.sql)"
    )
    grant.add_argument("--role", default="forecast_bi", help="role name (default forecast_bi)")
    grant.add_argument("--config", default=None, help="TOML settings file")
    demo = sub.add_parser("demo", help="the nightly run on the bundled sample data")
    demo.add_argument("--config", default=None, help="TOML settings file (default: the sample)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pipeline_lib.config import load_settings

    settings = load_settings(args.config)  # fail fast on a bad config, before Prefect starts
    if args.command == "db":
        return database_command(args, settings)
    if args.command == "backfill":
        if args.start > args.end:
            sys.exit(f"--start {args.start} is after --end {args.end}")
        from flows.backfill import backfill

        summaries = backfill(start=args.start, end=args.end, config_file=args.config)
        print(f"backfill done: {len(summaries)} forecast dates, {args.start} to {args.end}")
        return 0

    if args.command == "tune":
        from flows.tune import tune

        study = tune(
            as_of=args.as_of or dt.date.today(), config_file=args.config, n_trials=args.trials
        )
        print(f"best of {study['n_trials']} trials as of {study['as_of']}: {study['best']}")
        print(f"configured: {study['configured']}")
        return 0

    from flows.nightly import nightly
    from pipeline_lib.config import SAMPLE_END

    as_of = SAMPLE_END if args.command == "demo" else args.as_of
    summary = nightly(as_of=as_of, config_file=args.config, retrain=getattr(args, "retrain", False))
    print_summary(settings, summary)
    return 0


def database_command(args: argparse.Namespace, settings: Any) -> int:
    """``forecast-pipeline db ...``: no Prefect needed."""
    from pipeline_lib import db
    from pipeline_lib.db import migrate, roles

    where = db.safe_url(settings.db_url)
    if args.db_command == "upgrade" and args.sql:
        sys.stdout.write(migrate.upgrade_sql(settings.db_url))
        return 0
    with db.engine_scope(settings.db_url) as engine:
        if args.db_command == "upgrade":
            result = migrate.upgrade(engine, replace_views=args.replace_views)
            if not result.changed:
                print(f"{where}: already at revision {result.to_revision}, views current")
                return 0
            if result.stamped:
                print(f"{where}: tables of a release before migrations: revision {result.stamped}")
            start = result.stamped or result.from_revision or "empty"
            views = "views recreated" if result.views_replaced else "views unchanged"
            print(f"{where}: upgraded {start} -> {result.to_revision}; {views}")
        elif args.db_command == "current":
            with engine.connect() as conn:
                have = migrate.current_revision(conn)
            state = "current" if migrate.is_current(engine) else "behind: run `db upgrade`"
            print(f"{where}: revision {have or 'none'} (head {migrate.head_revision()}), {state}")
        else:
            roles.grant_read_only(engine, args.role)
            print(f"{where}: role {args.role} may SELECT the tables and views, nothing else")
            print(f"add a login: CREATE ROLE <name> LOGIN PASSWORD '...' IN ROLE {args.role};")
    return 0


def print_summary(settings: Any, summary: dict[str, Any]) -> None:
    """A short table of the forecasts written, and where everything is."""
    from pipeline_lib import paths
    from pipeline_lib.report import forecast_table

    as_of = dt.date.fromisoformat(summary["as_of"])
    print()
    print(
        f"Tonight's model {summary['model_version']} "
        f"({summary['training']['action']}: {summary['training']['reason']})"
    )
    print(f"Champion {summary['champion']}: {summary['selection_reason']}")
    print(f"Forecasts as of {as_of}, each from the model that won its series' backtest:")
    print(forecast_table(settings.db_url, as_of).to_string())
    print()
    print(f"rows written: {summary['written']}; drift flags: {summary['drift_flags']}")
    from pipeline_lib.db import safe_url

    print(f"SQL database:     {safe_url(settings.db_url)}")
    for name, url in [
        ("raw payloads", paths.raw_dir(settings.data_dir)),
        ("curated Parquet", paths.curated_dir(settings.data_dir, "")),
        ("features Parquet", paths.features_dir(settings.data_dir)),
        ("model", f"{paths.models_dir(settings.data_dir)}/{summary['model_version']}"),
        ("reports", paths.reports_dir(settings.data_dir)),
        ("run report", summary["report"]),
    ]:
        print(f"{name + ':':<17} {url}")


if __name__ == "__main__":
    raise SystemExit(main())
