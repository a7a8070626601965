"""Every flow, the CLI and every deployment definition load."""

from __future__ import annotations

import datetime as dt
import importlib
import re
from pathlib import Path

import pytest
import yaml
from prefect import Flow

from flows.backfill import backfill
from flows.cli import build_parser
from flows.nightly import nightly
from pipeline_lib.running.backfill import BackfillOptions

ROOT = Path(__file__).resolve().parents[2]


def test_flows_have_typed_documented_parameters() -> None:
    assert isinstance(nightly, Flow) and isinstance(backfill, Flow)
    props = nightly.parameters.properties
    assert set(props) == {"as_of", "config_file", "retrain"}
    assert {"format": "date", "type": "string"} in props["as_of"]["anyOf"]  # None: today
    assert props["config_file"] == {**props["config_file"], "type": "string", "default": ""}
    assert all(p.get("description") for p in props.values())
    assert backfill.parameters.required == ["start", "end"]
    # the UI renders the options flat, as fields of the Run form: every one typed, with a
    # description, a default (never None) and its bounds, the same as BackfillOptions'
    params = backfill.parameters.properties
    options = {k: v for k, v in params.items() if k not in ("start", "end", "config_file")}
    assert set(options) == set(BackfillOptions.model_fields)
    assert all(p.get("description") and p.get("default") is not None for p in options.values())
    defaults = {k: f.default for k, f in BackfillOptions.model_fields.items()}
    assert {k: p["default"] for k, p in options.items()} == defaults
    assert options["task_runner"]["enum"] == ["threads", "dask"]
    assert (options["parallel_chunks"]["minimum"], options["parallel_chunks"]["maximum"]) == (1, 64)
    # no parameter of the form may be None (the UI shows 'Property is type "None"' for it)
    assert not [k for k, p in params.items() if "anyOf" in p or p.get("default", 0) is None]


def test_deployments_point_at_flows() -> None:
    spec = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in spec["deployments"]}
    assert set(by_name) == {"nightly", "retrain", "backfill"}
    for deployment in spec["deployments"]:
        path, func = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, func)
        assert isinstance(flow, Flow)
        assert set(deployment.get("parameters", {})) <= set(flow.parameters.properties)
    assert "schedules" not in by_name["backfill"]  # started from the UI
    assert by_name["retrain"]["parameters"] == {"retrain": True}
    for name in ("nightly", "retrain"):
        (schedule,) = by_name[name]["schedules"]
        assert schedule["cron"] and schedule["timezone"]


def test_deployment_placeholders_are_settings() -> None:
    """Every {{ $PIPELINE_... }} of prefect.yaml is a setting (forecast-pipeline deploy sets
    them from the settings), so the schedule and pool are configured in one place."""
    from flows.commands import deploy_environment
    from pipeline_lib.config import Settings

    text = (ROOT / "deploy" / "prefect.yaml").read_text()
    used = set(re.findall(r"\{\{ \$(PIPELINE_[A-Z_]+) \}\}", text))
    env = deploy_environment(Settings(), ROOT)
    assert used == set(env)
    assert env["PIPELINE_ORCHESTRATION__NIGHTLY_CRON"] == "30 6 * * 2-6"
    assert env["PIPELINE_ORCHESTRATION__TIMEZONE"] == "Europe/London"
    assert env["PIPELINE_REPO_DIR"] == str(ROOT)


def test_cli_parses_its_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(["nightly", "--as-of", "2015-06-30", "--config", "x.toml"])
    assert args.as_of == dt.date(2015, 6, 30) and args.config == "x.toml"
    args = parser.parse_args(["backfill", "--start", "2015-01-01", "--end", "2015-01-05"])
    assert (args.start, args.end) == (dt.date(2015, 1, 1), dt.date(2015, 1, 5))
    args = parser.parse_args(
        ["backfill", "--start", "2015-01-01", "--end", "2015-01-05", "--series", "A", "B"]
        + ["--dry-run", "--retrain-every-days", "7", "--task-runner", "dask"]
    )
    assert args.series == ["A", "B"] and args.dry_run and args.retrain_every_days == 7
    assert parser.parse_args(["demo"]).command == "demo"
    with pytest.raises(SystemExit):
        parser.parse_args(["nightly", "--as-of", "30/06/2015"])


def test_the_console_script_returns_mains_code_and_leaves_the_heap_to_the_system() -> None:
    """``forecast-pipeline`` is :func:`flows.cli.console`: main's exit code, with every object
    still alive frozen, out of the interpreter's last full collection (in a child process: a
    frozen test process would keep its garbage)."""
    import subprocess
    import sys
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "forecast-pipeline"]
    assert script.value == "flows.cli:console"
    probe = (
        "import gc, flows.cli as cli\n"
        "cli.main = lambda: 3\n"
        "before = gc.get_freeze_count()\n"
        "code = cli.console()\n"
        "print(code, before, gc.get_freeze_count() > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "0", "True"]


def test_library_never_imports_prefect() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "pipeline_lib").rglob("*.py")
        if "import prefect" in p.read_text() or "from prefect" in p.read_text()
    ]
    assert offenders == []


def test_no_task_carries_tags() -> None:
    """A tagged task asks the API for its tags' concurrency slots before it runs: on the local
    API's SQLite file a write that fails while another is under way, retried seconds later
    (tasks/__init__.py)."""
    from prefect import Task

    tagged, seen = [], 0
    for module in sorted((ROOT / "tasks").glob("*.py")) + sorted((ROOT / "flows").glob("*.py")):
        loaded = importlib.import_module(f"{module.parent.name}.{module.stem}")
        for name, value in vars(loaded).items():
            seen += isinstance(value, Task)
            if isinstance(value, Task) and value.tags:
                tagged.append(f"{module.parent.name}.{module.stem}.{name}: {sorted(value.tags)}")
    assert seen >= 15 and tagged == []
