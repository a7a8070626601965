"""``forecast-pipeline``: run the nightly flow, a backfill, or the demo on the bundled data."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
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
    backfill.add_argument(
        "--retrain-every-days", type=int, default=None, help="full retraining cadence (chunk)"
    )
    backfill.add_argument("--series", nargs="+", default=None, help="only these series ids")
    backfill.add_argument("--dry-run", action="store_true", help="only plan, write nothing")
    backfill.add_argument("--parallel", type=int, default=2, help="chunks at the same time")
    backfill.add_argument("--task-runner", choices=["threads", "dask"], default="threads")
    backfill.add_argument("--dask-address", default=None, help="scheduler of a Dask cluster")
    backfill.add_argument(
        "--recompute", action="store_true", help="ignore the cached results of former runs"
    )
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
    deploy = sub.add_parser(
        "deploy", help="create the work pool and concurrency limit, deploy deploy/prefect.yaml"
    )
    deploy.add_argument("--config", default=None, help="TOML settings file")
    deploy.add_argument(
        "--name", action="append", default=None, help="only this deployment (repeatable)"
    )
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
        return backfill_command(args)
    if args.command == "deploy":
        return deploy_command(args, settings)

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


REPO = Path(__file__).resolve().parents[1]


def deploy_environment(settings: Any, root: Path = REPO) -> dict[str, str]:
    """The ``{{ $PIPELINE_... }}`` values of deploy/prefect.yaml, from the settings."""
    cfg = settings.orchestration
    return {
        "PIPELINE_REPO_DIR": str(root),
        "PIPELINE_ORCHESTRATION__WORK_POOL": cfg.work_pool,
        "PIPELINE_ORCHESTRATION__NIGHTLY_CRON": cfg.nightly_cron,
        "PIPELINE_ORCHESTRATION__RETRAIN_CRON": cfg.retrain_cron,
        "PIPELINE_ORCHESTRATION__TIMEZONE": cfg.timezone,
    }


def deploy_command(args: argparse.Namespace, settings: Any) -> int:
    """The work pool (process type) and the global concurrency limit when missing, then
    ``prefect deploy`` of deploy/prefect.yaml, on the API of PREFECT_API_URL."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from flows.slot import ensure_limit

    pool = settings.orchestration.work_pool
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            prefect = [sys.executable, "-m", "prefect"]
            subprocess.run([*prefect, "work-pool", "create", pool, "--type", "process"], check=True)
    problem = ensure_limit(settings.orchestration.concurrency_limit)
    if problem:
        print(f"warning: {problem}", file=sys.stderr)
    names = [f"--name={n}" for n in args.name] if args.name else ["--all"]
    command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy"]
    command += ["--prefect-file", str(REPO / "deploy" / "prefect.yaml"), *names]
    env = {**os.environ, **deploy_environment(settings)}
    return subprocess.run(command, cwd=REPO, env=env).returncode


def backfill_command(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from flows.backfill import backfill
    from pipeline_lib.backfill import BackfillOptions, plan_backfill
    from pipeline_lib.config import load_settings

    if args.start > args.end:
        sys.exit(f"--start {args.start} is after --end {args.end}")
    try:
        options = BackfillOptions(
            retrain_every_days=args.retrain_every_days,
            series=args.series,
            dry_run=args.dry_run,
            parallel_chunks=args.parallel,
            task_runner=args.task_runner,
            dask_address=args.dask_address,
            recompute=args.recompute,
        )
        plan_backfill(load_settings(args.config), args.start, args.end, options)
    except ValidationError as exc:
        sys.exit(f"bad backfill options: {exc}")
    except ValueError as exc:  # the range or the series, before Prefect starts
        sys.exit(str(exc))
    done = backfill(start=args.start, end=args.end, options=options, config_file=args.config)
    what = "planned" if done["dry_run"] else "done"
    print(f"backfill {what}: {done['dates']} forecast dates in {len(done['chunks'])} chunks")
    for first, last in done["chunks"]:
        print(f"  {first} .. {last}")
    if not done["dry_run"]:
        print(f"dates skipped (same data and settings as a former run): {done['cached']}")
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
