"""``forecast-pipeline``: run the nightly flow, a backfill, or the demo on the bundled data."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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

    from flows.processes import start_api_early
    from pipeline_lib.config import load_settings
    from pipeline_lib.running.backfill import BackfillOptions, BackfillParameterError, plan_backfill

    parameters = {
        "retrain_every_days": args.retrain_every_days or 0,
        "series": args.series or [],
        "dry_run": args.dry_run,
        "parallel_chunks": args.parallel,
        "task_runner": args.task_runner,
        "dask_address": args.dask_address or "",
        "recompute": args.recompute,
    }
    try:  # the range, the options and the series, before Prefect starts
        options = BackfillOptions(**parameters)
        plan_backfill(load_settings(args.config), args.start, args.end, options)
    except ValidationError as exc:
        sys.exit(f"bad backfill options: {exc}")
    except BackfillParameterError as exc:
        flag = {"start": "--start", "end": "--end", "series": "--series"}[exc.parameter]
        sys.exit(f"{flag} {exc.problem}")
    except ValueError as exc:
        sys.exit(str(exc))
    api_ready = start_api_early()  # Prefect's local API starts while the flows are imported
    from flows.backfill import backfill

    api_ready()
    done = backfill(start=args.start, end=args.end, config_file=args.config or "", **parameters)
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


def serve_command(args: argparse.Namespace, settings: Any) -> int:
    """``forecast-pipeline serve``: uvicorn on :func:`pipeline_lib.api.app.create_app`, on
    ``--host``/``--port`` (default ``[serve]``), until SIGINT or SIGTERM."""
    import gc
    import socket

    import uvicorn

    from pipeline_lib import paths
    from pipeline_lib.api.app import create_app
    from pipeline_lib.errors import PipelineError

    given = {"host": args.host, "port": args.port}
    update = {k: v for k, v in given.items() if v is not None}
    settings = settings.model_copy(update={"serve": settings.serve.model_copy(update=update)})
    host, port = settings.serve.host, settings.serve.port
    app = create_app(settings)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # bound here, so that a port in use is an error line, not uvicorn's exit; IPPROTO_TCP
    # given, else asyncio leaves Nagle on for its connections (40 ms per keep-alive answer)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PipelineError(
            f"serve: cannot listen on {host}:{port} ({exc.strerror or exc}); choose another "
            "--port or [serve] port (PIPELINE_SERVE__PORT), or stop what uses it"
        ) from exc
    print(f"read API on {settings.serve.public_base} (OpenAPI docs at /docs)", flush=True)
    print(f"  database: {app.state.reader.where}", flush=True)
    print(f"  reports:  {paths.reports_dir(settings.data_dir)}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info"))
    gc.collect()
    gc.freeze()  # the imports' objects: a full collection no longer walks them (~100 ms)
    with sock:
        server.run(sockets=[sock])
    if not server.started:
        raise PipelineError("serve: the read API did not start (its log lines above say why)")
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
