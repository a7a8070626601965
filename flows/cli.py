"""``forecast-pipeline``: run the nightly flow, a backfill, or the demo on the bundled data."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from typing import Any

from flows.commands import backfill_command, database_command, deploy_command, serve_command
from flows.run_log import RunLog  # Prefect's defaults: set in flows/__init__.py


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (1-65535): {text!r}")
    return int(text)


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
    serve = sub.add_parser(
        "serve", help="the read API over the published forecasts (HTTP; reads only, no Prefect)"
    )
    serve.add_argument("--config", default=None, help="TOML settings file")
    serve.add_argument("--host", default=None, help="address to listen on (default [serve] host)")
    serve.add_argument("--port", type=_port, default=None, help="port (default [serve] port)")
    deploy = sub.add_parser(
        "deploy", help="create the work pool and concurrency limit, deploy deploy/prefect.yaml"
    )
    deploy.add_argument("--config", default=None, help="TOML settings file")
    deploy.add_argument(
        "--name", action="append", default=None, help="only this deployment (repeatable)"
    )
    demo = sub.add_parser("demo", help="the nightly run on the bundled sample data")
    demo.add_argument(
        "--case",
        choices=sorted(DEMO_CASES),
        default="electricity",
        help="electricity (default): six European day-ahead price zones with the day-ahead "
        "load, wind and solar forecasts and holidays as covariates, as of 2020-12-30; stocks: "
        "four stock and oil prices with Seattle's weather, as of 2015-12-31",
    )
    demo.add_argument(
        "--config", default=None, help="TOML settings file (default: the case's sample config)"
    )
    debug_help = "on failure, print every traceback on the console too (or PIPELINE_DEBUG=1)"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    for command in [*sub.choices.values(), *db_sub.choices.values()]:  # also after the command
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    return parser


# The demo's cases: (config file in pipeline_lib/sample_data or None for the defaults, as-of).
# The electricity case stops a day before the sample's end: its day-ahead forecasts for the
# next day are in the sample, as they would be published on the evening of the as-of date.
DEMO_CASES: dict[str, tuple[str | None, dt.date]] = {
    "electricity": ("electricity.toml", dt.date(2020, 12, 30)),
    "stocks": (None, dt.date(2015, 12, 31)),
}


def demo_config(args: argparse.Namespace) -> None:
    """The demo case's bundled config, unless ``--config`` names another file."""
    from importlib import resources

    name = DEMO_CASES[args.case][0]
    if args.config is None and name is not None:
        args.config = str(resources.files("pipeline_lib") / "sample_data" / name)


def main(argv: list[str] | None = None) -> int:
    """Run a command. A failure prints ``error: ...`` lines and ``details: <log file>`` on
    stderr, no traceback (unless ``--debug``): see :class:`RunLog`."""
    args = build_parser().parse_args(argv)
    from flows.processes import mark_owner

    mark_owner()  # the ephemeral API server this run may start is ours: ended if we are killed
    debug = args.debug or os.environ.get("PIPELINE_DEBUG", "") not in ("", "0")
    run_log = RunLog(args.command, debug)
    try:
        from pipeline_lib.config import load_settings

        if args.command == "demo":
            demo_config(args)
        settings = load_settings(args.config)  # fail fast on a bad config, before Prefect starts
        run_log.data_dir = settings.data_dir
        if args.command not in ("db", "serve"):  # `db` and `serve` run without Prefect
            # Prefect's console handler (it replaces the root handlers): before the run log
            # adjusts it; later set-ups of Prefect's logging only update levels.
            from prefect.logging.configuration import ensure_logging_setup

            ensure_logging_setup()
        if args.command != "serve":  # a server runs for months: no log kept in memory
            run_log.attach()
        return run_command(args, settings)
    except (Exception, KeyboardInterrupt) as exc:
        return run_log.fail(exc)
    finally:
        run_log.detach()


def run_command(args: argparse.Namespace, settings: Any) -> int:
    """The command of ``args`` with its loaded ``settings``; its exit code."""
    if args.command == "db":
        return database_command(args, settings)
    if args.command == "backfill":
        return backfill_command(args)
    if args.command == "deploy":
        return deploy_command(args, settings)
    if args.command == "serve":
        return serve_command(args, settings)

    if args.command == "tune":
        from flows.tune import tune

        study = tune(
            as_of=args.as_of or dt.date.today(), config_file=args.config, n_trials=args.trials
        )
        print(f"best of {study['n_trials']} trials as of {study['as_of']}: {study['best']}")
        print(f"configured: {study['configured']}")
        return 0

    from flows.processes import start_api_early

    api_ready = start_api_early()  # Prefect's local API starts while the flows are imported
    from flows.nightly import nightly

    api_ready()
    as_of = DEMO_CASES[args.case][1] if args.command == "demo" else args.as_of
    retrain = getattr(args, "retrain", False)
    summary = nightly(as_of=as_of, config_file=args.config or "", retrain=retrain)
    print_summary(settings, summary, args.config)
    return 0


def print_summary(settings: Any, summary: dict[str, Any], config: str | None = None) -> None:
    """A short table of the forecasts written, and where everything is."""
    from pipeline_lib import paths
    from pipeline_lib.publishing.report import forecast_table, selection_lines

    as_of = dt.date.fromisoformat(summary["as_of"])
    print()
    if "reused" in summary:  # a rerun with nothing new: the earlier run's forecasts stand
        print(summary["reused"]["reason"])
    print(
        f"Tonight's model {summary['model_version']} "
        f"({summary['training']['action']}: {summary['training']['reason']})"
    )
    print(f"Champion {summary['champion']}: {summary['selection_reason']}")
    print(f"Forecasts as of {as_of}, per series and horizon from what its backtest chose:")
    print(forecast_table(settings.db_url, as_of).to_string())
    why = selection_lines(settings.db_url, as_of)
    if why:
        print("Why, per series and horizon bucket (the rule and the backtest's best models):")
        for line in why:
            print(f"  {line}")
    print()
    print(f"rows written: {summary['written']}; drift flags: {summary['drift_flags']}")
    for note in summary.get("ingest_notes", []):
        print(f"ingest note: {note}")
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
    if summary.get("plot"):
        from pipeline_lib.api.links import report_link

        print(f"{'forecast plot:':<17} {summary['plot']}")
        print(
            f"{'read API:':<17} forecast-pipeline serve{' --config ' + config if config else ''}"
            f", then open {settings.serve.public_base}/series "
            f"or {report_link(settings, summary['plot'])}"
        )


def console() -> int:
    """The console script ``forecast-pipeline`` (and ``python -m flows.cli``): :func:`main`,
    then what is still alive is left to the operating system.

    When the interpreter exits it runs a last full garbage collection over every object still
    alive (torch, pandas, Great Expectations, Prefect's pydantic models and the night's data):
    1.5-2 s of every run at 100 series, after its work was done and its output printed
    (py-spy: ``gc_collect_main`` during finalisation). :func:`gc.freeze` moves those objects
    out of the collector's reach first; the atexit handlers (Prefect's API server stop, the
    log flush) and the modules' teardown run as before. Not in :func:`main`, which tests call
    in their own long-lived process."""
    import gc

    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    raise SystemExit(console())
