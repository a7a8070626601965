"""A run killed at any point of ingest, then rerun, reaches the same curated state.

Each case kills a real subprocess with ``os._exit`` (no cleanup, no flush) at one point of the
ingest stage, reruns the stage, and compares every curated row with an uninterrupted run: no
duplicate, no lost day, nothing the killed run received is lost from raw/.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline_lib.ingest.curate import read_curated
from pipeline_lib.store.manifest import read_manifest
from tests.integration.ingest_crash import KILLED, run_ingest

RUNNER = Path(__file__).with_name("ingest_crash.py")
REPO = Path(__file__).resolve().parents[2]
FIRST, SECOND = dt.date(2014, 12, 15), dt.date(2015, 1, 31)  # the second crosses a year


def _config(tmp: Path, data: Path, drop: Path) -> Path:
    cfg = tmp / f"{data.name}.toml"
    cfg.write_text(
        f"""
data_dir = "{data}"
start_date = "2014-11-01"

[[series]]
id = "SP500"
source = {{ kind = "sample" }}
weather = {{ name = "seattle", latitude = 47.6, longitude = -122.3 }}

[[series]]
id = "GAS"
source = {{ kind = "file", options = {{ path = "{drop}" }} }}
"""
    )
    return cfg


def _drop_files(drop: Path, upto: dt.date) -> None:
    """A file drop: one CSV per month of business days, up to ``upto``."""
    drop.mkdir(exist_ok=True)
    days = pd.bdate_range("2014-11-01", upto)
    price = pd.Series(2 + (pd.RangeIndex(len(days)) % 7) / 100, index=days)
    for month, group in price.groupby(days.to_period("M")):
        rows = "".join(f"{d:%Y-%m-%d},{p:.2f}\n" for d, p in group.items())
        (drop / f"gas_{month}.csv").write_text("date,close\n" + rows)


def _state(data: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for dataset, keys in (("prices", ["SP500", "GAS"]), ("weather", ["seattle"])):
        df = read_curated(str(data), dataset, keys)
        out[dataset] = df.sort_values(list(df.columns[:2])).reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    tmp = tmp_path_factory.mktemp("reference")
    drop = tmp / "drop"
    _drop_files(drop, FIRST)
    cfg = _config(tmp, tmp / "data", drop)
    run_ingest(str(cfg), FIRST)
    _drop_files(drop, SECOND)
    run_ingest(str(cfg), SECOND)
    state = _state(tmp / "data")
    for df in state.values():
        assert not df.duplicated(list(df.columns[:2])).any()
    assert state["prices"]["date"].max() == pd.Timestamp("2015-01-30")  # the last Friday
    return state


@pytest.mark.parametrize(
    ("point", "n"),
    [
        ("land", 1),  # between fetch and land: the first payload fetched, nothing landed
        ("land", 3),  # some sources landed, others not
        ("parse", 2),  # between land and curate
        ("validate", 1),  # all landed and parsed, nothing committed
        # mid-commit, each time with the partition's temp file written but not renamed:
        ("partition", 1),  # the first partition (SP500, 2014)
        ("partition", 2),  # SP500's 2014 partition replaced, its 2015 one not
        ("partition", 5),  # prices committed, weather not
        ("manifest", 1),  # rows committed, the dropped files not yet recorded as taken
    ],
)
def test_killed_then_rerun_reaches_the_same_curated_state(
    tmp_path: Path, reference: dict[str, pd.DataFrame], point: str, n: int
) -> None:
    drop = tmp_path / "drop"
    _drop_files(drop, FIRST)
    data = tmp_path / "data"
    cfg = _config(tmp_path, data, drop)
    run_ingest(str(cfg), FIRST)
    _drop_files(drop, SECOND)
    before = _state(data)
    raw_before = sorted(p.name for p in (data / "raw").rglob("*") if p.is_file())

    killed = subprocess.run(
        [sys.executable, str(RUNNER), str(cfg), SECOND.isoformat(), point, str(n)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == KILLED, killed.stderr[-2000:]
    if point in ("land", "parse", "validate"):  # nothing was committed
        for name, df in _state(data).items():
            pd.testing.assert_frame_equal(df, before[name])
    if point == "partition":  # the half-written file is there, hidden from readers
        assert list(data.joinpath("curated").rglob(".*.tmp"))
    raw_killed = sorted(p.name for p in (data / "raw").rglob("*") if p.is_file())
    assert set(raw_before) <= set(raw_killed)  # raw is append-only

    run_ingest(str(cfg), SECOND)
    after = _state(data)
    for name, df in after.items():
        pd.testing.assert_frame_equal(df, reference[name], obj=f"{name} after {point}#{n}")
    raw_after = {p.name for p in (data / "raw").rglob("*") if p.is_file()}
    assert set(raw_killed) <= raw_after
    taken = read_manifest(str(data), "prices", "GAS")
    assert len(taken) == 3 and all(stamp.done for stamp in taken.values())
    # a third run finds nothing new: no file is taken twice, no date fetched again
    run_ingest(str(cfg), SECOND)
    for name, df in _state(data).items():
        pd.testing.assert_frame_equal(df, reference[name])
