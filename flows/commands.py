"""The commands of ``forecast-pipeline`` beside the nightly run (``flows/cli.py``): ``deploy``
the Prefect deployments, ``backfill`` a date range on the local API, ``db`` the database's
schema and roles, ``serve`` the read API. Each takes the parsed arguments (and the loaded
settings) and returns an exit code.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
