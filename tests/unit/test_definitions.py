"""Every flow, the CLI and every deployment definition load."""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path

import pytest
import yaml
from prefect import Flow

from flows.backfill import backfill, date_range
from flows.cli import build_parser
from flows.nightly import nightly

ROOT = Path(__file__).resolve().parents[2]


def test_flows_have_typed_documented_parameters() -> None:
    assert isinstance(nightly, Flow) and isinstance(backfill, Flow)
    props = nightly.parameters.properties
    assert set(props) == {"as_of", "config_file", "retrain"}
    assert {"format": "date", "type": "string"} in props["as_of"]["anyOf"]
    assert all(p.get("description") for p in props.values())
    assert backfill.parameters.required == ["start", "end"]


def test_deployments_point_at_flows() -> None:
    spec = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text())
    names = {d["name"] for d in spec["deployments"]}
    assert {"nightly", "backfill"} <= names
    for deployment in spec["deployments"]:
        path, func = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, func), Flow)
    nightly_spec = next(d for d in spec["deployments"] if d["name"] == "nightly")
    assert nightly_spec["schedules"][0]["cron"] and nightly_spec["schedules"][0]["timezone"]


def test_cli_parses_its_commands() -> None:
    parser = build_parser()
    args = parser.parse_args(["nightly", "--as-of", "2015-06-30", "--config", "x.toml"])
    assert args.as_of == dt.date(2015, 6, 30) and args.config == "x.toml"
    args = parser.parse_args(["backfill", "--start", "2015-01-01", "--end", "2015-01-05"])
    assert (args.start, args.end) == (dt.date(2015, 1, 1), dt.date(2015, 1, 5))
    assert parser.parse_args(["demo"]).command == "demo"
    with pytest.raises(SystemExit):
        parser.parse_args(["nightly", "--as-of", "30/06/2015"])


def test_backfill_range() -> None:
    assert date_range(dt.date(2015, 1, 30), dt.date(2015, 2, 1)) == [
        dt.date(2015, 1, 30),
        dt.date(2015, 1, 31),
        dt.date(2015, 2, 1),
    ]
    with pytest.raises(ValueError, match="after its end"):
        date_range(dt.date(2015, 2, 2), dt.date(2015, 2, 1))


def test_library_never_imports_prefect() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "pipeline_lib").rglob("*.py")
        if "import prefect" in p.read_text() or "from prefect" in p.read_text()
    ]
    assert offenders == []
