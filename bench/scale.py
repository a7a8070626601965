"""A thousand series every night: what the nightly costs as the series and the history grow.

Issue 18's benchmark ("cost that follows the new data"). It runs the product's real nightly
pipeline, as an operator does, on ``--series`` synthetic daily price series of ``--years`` of
business days, and prints per run its wall time, the child's peak RSS and its largest stages:

- **cold**: a fresh data folder; every series' history delivered as one file drop (the
  product's ``file`` source kind, one drop folder per series, ``date, open, high, low, close,
  volume``), one weather location whose observed weather is a file drop too (``[weather_source]
  kind = "file"``), so nothing touches the network; the default settings except ``--epochs``
  (``training.max_epochs``, the full trainings' budget; a fine-tune keeps
  ``training.finetune_epochs``) when given. The nightly as of the history's last day.
- **incremental**: the next business day: one new row per series, dropped as a new file in each
  series' folder (and that day's weather), then the nightly as of that day.
- **no new data**: the nightly again as of the same day, with nothing new dropped.
- ``--next-nights K``: then K more nights, each the next business day with its one new row per
  series (``next night 1`` .. ``K``): the nights of a pipeline that has run for a while (the
  night after a cold one writes more of its backtest than later ones; every second night reads
  the backtest's base refits of the night before, its hold-out start unmoved).
- ``--backfill-days K``: after those three, the K business days after the cold run's as-of
  date are dropped (the incremental day is already in) and ``forecast-pipeline backfill
  --start <cold as-of + 1 day> --end <K-th business day>`` runs; its wall time and the cost per
  forecast date (the days of the range in the series' calendar: its K business days).
- ``--doubling``: the cold and incremental runs again, in a fresh folder, on the last half of the
  same history (``--years / 2``, same as-of dates), then each stage's growth ratio when the
  history doubles: seconds at ``--years`` over seconds at ``--years / 2``.

How. Each run is a subprocess of the console script, ``.venv/bin/forecast-pipeline nightly
--as-of <date> --config <tmp>/config.toml`` (``backfill --start .. --end .. --config ..``), with
SQLite in the data folder and Prefect's local ephemeral API, isolated in the temporary folder
(``PREFECT_HOME`` there; every ``PREFECT_*`` and ``PIPELINE_*`` variable of the caller's
environment dropped). ``--prefect-server``: every run goes to a Prefect server instead
(``prefect server start`` on 127.0.0.1, started by the bench before the first run and stopped
after the last, its home and SQLite database in the temporary folder, or the database
``--prefect-database`` names), with ``PREFECT_API_URL`` set: what a nightly pays where the team
runs Prefect's server, as ``deploy/docker-compose.yml`` does (the server's start is then in no
run's wall time, and a run has no ``api server start`` stage).

- wall seconds: ``time.perf_counter`` around the subprocess (Popen to its exit), so it includes
  the interpreter's imports and the start of the ephemeral API server, as a cron job pays them.
- peak RSS: ``os.wait4`` on the child's pid returns its ``rusage``; ``ru_maxrss`` (KiB on Linux)
  is the largest resident set of the child or any descendant it waited for (the ephemeral API
  server is one), not their sum.
- stages: the pipeline records no per-stage timing (only the model's ``train_seconds`` in its
  metrics, and the start and end of each flow in ``pipeline_runs``), and the ephemeral API's
  database may miss the last task-run events when the process exits. So the seconds come from
  Prefect's own log lines in the child's output, the most robust record there is:
  ``PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL=DEBUG`` makes each task run log ``Created
  task run '<run>' for task '<task>'`` (and ``Renamed task run``, ``Executing task``), and every
  task and flow run logs ``Finished in state ...`` when it ends (``HH:MM:SS.mmm``, local time);
  those DEBUG lines go to the console only (``PREFECT_LOGGING_HANDLERS_API_LEVEL=INFO``), so the
  API server gets the log it gets in production. A stage is a Prefect task
  (``ingest-file-drops``: every file-drop source in one task run; ``ingest-source``: one per
  live source; ``validate-batches``, ``commit-curated``, ``build-features``,
  ``train-or-fine-tune``, ``backtest-and-select``, ``forecast``, ``publish-results``, ...),
  timed from ``Executing task`` to ``Finished``; its seconds are the union of its runs'
  intervals (concurrent runs of one task count once; ``xN`` after a name says how
  many runs; a backfill's ``forecast-date`` encloses the stages of its date's forecast flow).
  Pseudo-stages: ``prefect task setup`` (``Created`` to ``Executing`` of the task runs, while no
  task run executes: the engine's calls to the API, such as the tag concurrency checks, before
  the task's code runs), ``imports`` (process start to ``Starting temporary server``: imports,
  settings; the CLI spawns the server's child as soon as its settings are read, so since
  2026-12-06 this ends before Prefect's server module and the flows are imported),
  ``api server start`` (from there to the top flow's first line: the child's start, and those
  imports in the run's process meanwhile), ``flow overhead``
  (the top flow's time outside every task run: Prefect's flow bookkeeping, the writer lease and
  slot) and ``shutdown`` (the top flow's end to the process's exit: the summary it prints, the
  server's stop). For a nightly the stages add up to the wall time.

The load average (``uptime``) is printed before each run and beside the table: the machine is
shared and the timings swing with it, the growth ratios less so. Then issue 18's goals (stated
at 100 series), each figure beside its goal, met or missed: incremental / cold (at most 1/8),
no new data / cold (1/20), a 20-day backfill's wall time (5 minutes) and a backfill's seconds a
date against the incremental night's (less than one).

    python bench/scale.py --series 100              # 100 series x 4 years (the default)
    python bench/scale.py --series 1000 --years 10 --epochs 3
    python bench/scale.py --series 100 --doubling --backfill-days 5 --json scale.json
    python bench/scale.py --series 5 --years 1 --epochs 1   # a smoke test, a few minutes
    python bench/scale.py --series 100 --prefect-server     # against a Prefect server
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from scipy.signal import lfilter

FIRST_DAY = dt.date(2012, 1, 2)  # a Monday: the first business day of the history
BUSINESS_DAYS_PER_YEAR = 261
LOCATION = "metro"
LARGEST = 4  # stages shown per run in the table


# ------------------------------------------------------------------------------------------
# synthetic data


@dataclass
class Market:
    """N series of business-day prices (rows of ``dates``), and a location's daily weather."""

    ids: list[str]
    dates: pd.DatetimeIndex
    open: np.ndarray  # (series, dates)
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    weather: pd.DataFrame  # date, temp_max, temp_min, precipitation, wind_speed (every day)


def make_market(n_series: int, n_dates: int, seed: int = 18) -> Market:
    """Seeded geometric random walks, vectorised over series and dates.

    Each series: a drift and a volatility of its own, slow volatility regimes (an AR(1) of the
    log volatility), normal shocks clipped at 6 std devs (so the validation's absurd-change
    check never fires on honest data), and for every third series a weekday pattern in its
    returns (what seasonal naive and the calendar features can catch). Open, high and low
    around the close, a volume that rises with the size of the move. The weather: a seasonal
    temperature with persistent anomalies, rain on about 40% of days, wind.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(FIRST_DAY, periods=n_dates)
    n, t = n_series, n_dates
    sigma = rng.uniform(0.008, 0.03, n)[:, None]
    mu = rng.normal(0.0002, 0.0003, n)[:, None]
    regime = lfilter([1.0], [1.0, -0.98], rng.normal(0.0, 0.04, (n, t)), axis=1)
    vol = sigma * np.exp(np.clip(regime, -0.7, 0.9))
    shocks = np.clip(rng.standard_normal((n, t)), -6.0, 6.0)
    pattern = rng.normal(0.0, 0.4, (n, 5))
    pattern -= pattern.mean(axis=1, keepdims=True)
    pattern[np.arange(n) % 3 != 0] = 0.0  # a weekday pattern in every third series
    weekly = pattern[:, dates.weekday] * sigma
    returns = mu + vol * shocks + weekly
    p0 = np.exp(rng.uniform(np.log(5.0), np.log(500.0), n))[:, None]
    close = p0 * np.exp(np.cumsum(returns, axis=1))
    before = np.concatenate([p0, close[:, :-1]], axis=1)
    open_ = before * np.exp(rng.normal(0.0, 0.25, (n, t)) * vol)
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = top * np.exp(np.abs(rng.normal(0.0, 0.5, (n, t))) * vol)
    low = bottom * np.exp(-np.abs(rng.normal(0.0, 0.5, (n, t))) * vol)
    base = np.exp(rng.uniform(np.log(1e4), np.log(1e7), n))[:, None]
    volume = np.round(base * np.exp(rng.normal(0.0, 0.3, (n, t))) * (1 + np.abs(returns) / sigma))
    days = pd.date_range(dates[0], dates[-1] + pd.Timedelta(days=7), freq="D")
    doy = days.dayofyear.to_numpy()
    anomaly = lfilter([1.0], [1.0, -0.8], rng.normal(0.0, 1.8, len(days)))
    mean = 11.0 + 9.0 * np.sin(2 * np.pi * (doy - 110) / 365.25) + anomaly
    spread = rng.uniform(3.0, 9.0, len(days))
    rain = rng.random(len(days)) < 0.4
    weather = pd.DataFrame(
        {
            "date": days,
            "temp_max": np.round(mean + spread / 2, 1),
            "temp_min": np.round(mean - spread / 2, 1),
            "precipitation": np.round(np.where(rain, rng.exponential(4.0, len(days)), 0.0), 1),
            "wind_speed": np.round(rng.gamma(4.0, 1.0, len(days)), 1),
        }
    )
    ids = [f"S{i:04d}" for i in range(n)]
    return Market(ids, dates, open_, high, low, close, volume.astype(np.int64), weather)


def write_price_drops(market: Market, rows: slice, folder: Path, name: str) -> None:
    """One CSV per series, ``folder/<id>/<name>.csv``, holding the rows ``rows`` of the market.

    Formatted once for all series (one Arrow CSV write, prices rounded to 4 decimals), then
    cut into files: every series has the same number of rows, in the same order.
    """
    dates = market.dates[rows]
    n, t = len(market.ids), len(dates)
    table = pa.table(
        {
            "date": pa.array(np.tile(dates.to_numpy().astype("datetime64[D]"), n)),
            **{
                col: np.round(getattr(market, col)[:, rows], 4).ravel()
                for col in ("open", "high", "low", "close")
            },
            "volume": market.volume[:, rows].ravel(),
        }
    )
    buffer = io.BytesIO()
    pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False))
    lines = buffer.getvalue().decode().splitlines(keepends=True)
    header = "date,open,high,low,close,volume\n"
    for i, sid in enumerate(market.ids):
        target = folder / sid
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{name}.csv").write_text(header + "".join(lines[i * t : (i + 1) * t]))


def write_weather_drop(market: Market, first: dt.date, last: dt.date, folder: Path) -> None:
    """The weather of ``first..last`` (every calendar day) as one file in ``folder``."""
    w = market.weather
    days = w[(w["date"] >= pd.Timestamp(first)) & (w["date"] <= pd.Timestamp(last))].copy()
    days["date"] = days["date"].dt.strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    days.to_csv(folder / f"weather-{first}_{last}.csv", index=False, lineterminator="\n")


def write_config(
    path: Path, data: Path, drops: Path, ids: list[str], start: dt.date, epochs: int | None
) -> None:
    """The run's TOML: the file drops, one weather location, the default settings."""
    lines = [
        f'data_dir = "{data.as_posix()}"',
        f'start_date = "{start.isoformat()}"',
        "",
        "[weather_source]",
        'kind = "file"',
        f'options = {{ path = "{(drops / "weather").as_posix()}" }}',
        "",
    ]
    if epochs is not None:
        lines += ["[training]", f"max_epochs = {epochs}", ""]
    for sid in ids:
        drop = (drops / "prices" / sid).as_posix()
        lines += [
            "[[series]]",
            f'id = "{sid}"',
            f'source = {{ kind = "file", options = {{ path = "{drop}" }} }}',
            f'weather = {{ name = "{LOCATION}", latitude = 47.61, longitude = -122.33, '
            'timezone = "America/Los_Angeles" }',
            "",
        ]
    path.write_text("\n".join(lines))


# ------------------------------------------------------------------------------------------
# running the product and reading its log


@dataclass
class RunResult:
    label: str
    series: int
    years: float
    command: list[str]
    wall_s: float
    peak_rss_gib: float
    returncode: int
    load_before: str
    stages: dict[str, float]  # seconds each stage took (wall clock, see the docstring)
    counts: dict[str, int]  # task runs per stage
    busy: dict[str, float]  # summed seconds of each stage's runs (concurrent runs add up)
    training: str = ""
    error: str = ""  # a failed command's ``error:`` lines
    dates: int = 0  # a backfill's forecast dates
    summary: list[str] = field(default_factory=list)  # the lines the command printed last
    log: str = ""
    # the main process's resident set, sampled every RSS_EVERY s (see RssSampler): the largest
    # sample within each stage's runs (GiB), and the stage running when its peak was reached
    stage_rss_gib: dict[str, float] = field(default_factory=dict)
    peak_stage: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


LINE = re.compile(
    r"^(?P<time>\d\d:\d\d:\d\d\.\d{3}) \| (?P<level>\w+)\s*\| "
    r"(?:Task run '(?P<task>[^']*)'|Flow run '(?P<flow>[^']*)'|(?P<logger>[\w.]+)) - (?P<msg>.*)$"
)
CREATED = re.compile(r"^Created task run '(?P<run>[^']*)' for task '(?P<task>[^']*)'")
RENAMED = re.compile(r"^Renamed task run '(?P<old>[^']*)' to '(?P<new>[^']*)'")
EXECUTING = re.compile(r"^Executing task '")
BEGIN = re.compile(r"^Beginning (?:sub)?flow run '(?P<run>[^']*)' for flow '(?P<flow>[^']*)'")
FINISHED = re.compile(r"^Finished in state (?P<state>\w+)")
SERVER = re.compile(r"^Starting temporary server")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


RSS_EVERY = 1.0  # seconds between two samples of the child's resident set


class RssSampler(threading.Thread):
    """Samples ``/proc/<pid>/status`` of the pipeline's process every ``RSS_EVERY`` seconds:
    ``VmRSS`` (its resident set now) and ``VmHWM`` (the largest it has been), with the seconds
    since the start. The high-water mark tells, within one interval, when the peak that
    ``ru_maxrss`` reports was reached, even if it lasted less than an interval. Linux only: on
    another system (no ``/proc``) it records nothing."""

    def __init__(self, pid: int, t0: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.t0 = pid, t0
        self.samples: list[tuple[float, float, float]] = []  # (seconds, rss GiB, hwm GiB)
        self.done = threading.Event()

    def run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while not self.done.wait(RSS_EVERY):
            try:
                fields = dict(
                    line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
                )
                rss = int(fields["VmRSS"].split()[0]) / 1024**2  # kB
                hwm = int(fields["VmHWM"].split()[0]) / 1024**2
            except (OSError, KeyError, ValueError):  # exited (a zombie has no VmRSS)
                continue
            self.samples.append((time.perf_counter() - self.t0, rss, hwm))


def rss_by_stage(
    samples: list[tuple[float, float, float]], spans: dict[str, list[tuple[float, float]]]
) -> tuple[dict[str, float], str]:
    """Per stage, the largest resident set sampled within its runs (GiB); and the stage that
    was running when the high-water mark last rose (where the run's peak was reached), or
    ``between stages``."""
    peaks: dict[str, float] = {}
    for name, runs in spans.items():
        inside = [rss for t, rss, _ in samples if any(a <= t <= b for a, b in runs)]
        if inside:
            peaks[name] = max(inside)
    where = ""
    if samples:
        top = max(hwm for _, _, hwm in samples)
        at = next(t for t, _, hwm in samples if hwm >= top)  # the first sample that saw it
        # the peak came between the previous sample and this one
        before = max((t for t, _, _ in samples if t < at), default=0.0)
        hits = [
            name for name, runs in spans.items() if any(a <= at and b >= before for a, b in runs)
        ]
        where = ", ".join(sorted(hits)) or "between stages"
    return peaks, where


def clean_environment() -> dict[str, str]:
    """The caller's environment without its Prefect and pipeline settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PIPELINE_"))}


def child_environment(prefect_home: Path, api_url: str | None = None) -> dict[str, str]:
    """The caller's environment without its Prefect and pipeline settings, Prefect's home in
    the temporary folder, the Prefect server's ``api_url`` when there is one (else the run
    starts Prefect's ephemeral API), and the task runs' start lines logged (see the
    docstring)."""
    env = clean_environment()
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL="DEBUG",
        PREFECT_LOGGING_HANDLERS_API_LEVEL="INFO",  # the API gets the lines it gets in production
        PREFECT_LOGGING_COLORS="false",
        PREFECT_LOGGING_MARKUP="false",
        COLUMNS="250",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_cli(
    label: str,
    args: list[str],
    work: Path,
    series: int,
    years: float,
    api_url: str | None = None,
) -> RunResult:
    """One console-script command as a subprocess (against the Prefect server at ``api_url``
    when given): wall time, peak RSS, stages from its log."""
    cli = Path(sys.executable).with_name("forecast-pipeline")
    command = [str(cli), *args]
    log_path = work / "logs" / f"{label.replace(' ', '-')}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    load = uptime()
    print(f"  {label}: {' '.join(args[:-2])}  (load {load})", flush=True)
    with open(log_path, "wb") as out:
        started_clock = dt.datetime.now()
        t0 = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=work,
            env=child_environment(work / "prefect-home", api_url),
            start_new_session=True,  # its own process group: stop() ends it with its API server
        )  # fmt: skip
        sampler = RssSampler(child.pid, t0)
        sampler.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:  # interrupted, or SIGTERM (see main): no orphaned pipeline run
            stop(child)
            raise
        finally:
            sampler.done.set()
        wall = time.perf_counter() - t0
    sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    text = ANSI.sub("", log_path.read_text(errors="replace"))
    spans: dict[str, list[tuple[float, float]]] = {}
    stages, counts, busy = stage_seconds(text, started_clock, wall, spans)
    stage_rss, peak_stage = rss_by_stage(sampler.samples, spans)
    tail = [line for line in text.splitlines() if not LINE.match(line)][-40:]
    result = RunResult(
        label=label,
        series=series,
        years=years,
        command=command,
        wall_s=wall,
        peak_rss_gib=usage.ru_maxrss / 1024**2,  # KiB on Linux
        returncode=child.returncode,
        load_before=load,
        stages=stages,
        counts=counts,
        busy=busy,
        training=_training(text),
        summary=tail,
        log=str(log_path),
        stage_rss_gib=stage_rss,
        peak_stage=peak_stage,
    )
    if child.returncode != 0:
        errors = [line for line in text.splitlines() if line.startswith("error:")]
        result.error = " ".join(errors) or (tail[-1] if tail else "")
        print("\n".join(text.splitlines()[-30:]), file=sys.stderr)
        print(
            f"    FAILED: forecast-pipeline exited {child.returncode} after {wall:.1f} s "
            f"(log: {log_path}): {result.error}",
            flush=True,
        )
        return result
    print(
        f"    {wall:.1f} s, peak RSS {result.peak_rss_gib:.2f} GiB; {largest(result)}", flush=True
    )
    if stage_rss:
        print(f"    peak reached in: {peak_stage}; {largest_rss(result)}", flush=True)
    return result


@contextmanager
def prefect_server(
    home: Path, database: str | None = None, timeout: float = 120.0
) -> Iterator[str]:
    """``prefect server start`` on 127.0.0.1 (a free port; no UI, no analytics), its home and
    SQLite database in ``home`` unless ``database`` (a SQLAlchemy URL) names another; yields
    its API URL once ``/health`` answers, and stops it (its process group) on exit."""
    home.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = clean_environment()
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=database or f"sqlite+aiosqlite:///{home}/prefect.db",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
    )
    url = f"http://127.0.0.1:{port}/api"
    log_path = home / "server.log"
    t = time.perf_counter()
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=home, start_new_session=True,
        )  # fmt: skip
        try:
            while True:
                if child.poll() is not None:
                    raise RuntimeError(
                        f"prefect server exited with {child.returncode} (log: {log_path})"
                    )
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - t > timeout:
                    raise TimeoutError(
                        f"no Prefect server on {url} after {timeout:g} s ({log_path})"
                    )
                time.sleep(0.25)
            print(
                f"Prefect server on {url}, answering after {time.perf_counter() - t:.1f} s "
                "(in no run's wall time)",
                flush=True,
            )
            yield url
        finally:
            stop(child)


def largest_rss(result: RunResult, k: int = LARGEST) -> str:
    """The stages with the largest resident set sampled while they ran."""
    top = sorted(result.stage_rss_gib.items(), key=lambda kv: -kv[1])[:k]
    return "RSS GiB sampled in " + ", ".join(f"{name} {gib:.2f}" for name, gib in top)


def stop(child: subprocess.Popen) -> None:
    """End a run and its process group (its ephemeral API server): SIGINT first (the console
    script stops its server), then SIGKILL to whatever of the group is left after 30 s."""
    try:
        os.killpg(child.pid, signal.SIGINT)
        child.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if child.poll() is None:
        child.wait()


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _training(text: str) -> str:
    """The training action the nightly printed (full, finetune, reuse), if any; ``reused run``
    when it answered from an earlier run (nothing new since)."""
    if re.search(r"^nothing new since run ", text, re.MULTILINE):
        return "reused run"
    found = re.search(r"^Tonight's model \S+ \((\w+)", text, re.MULTILINE)
    return found.group(1) if found else ""


def stage_seconds(
    text: str,
    started: dt.datetime,
    wall: float,
    spans_out: dict[str, list[tuple[float, float]]] | None = None,
) -> tuple[dict[str, float], dict[str, int], dict[str, float]]:
    """Seconds per stage from Prefect's log lines (see the module docstring): each task's runs
    from ``Executing task`` to ``Finished in state``; ``prefect task setup``: from ``Created
    task run`` to ``Executing task`` (the engine's API calls before the task's code runs);
    ``imports`` and ``api server start`` before the first flow run; ``flow overhead`` and
    ``shutdown`` after. ``spans_out``, when given, receives each task's runs (seconds since
    the start) and the ``imports`` and ``shutdown`` spans."""
    day = started.date()
    previous = started

    def seconds(hms: str) -> float:
        nonlocal day, previous
        when = dt.datetime.combine(day, dt.time.fromisoformat(hms))
        if when < previous - dt.timedelta(hours=12):  # past midnight
            day += dt.timedelta(days=1)
            when += dt.timedelta(days=1)
        previous = max(previous, when)
        return (when - started).total_seconds()

    task_of: dict[str, str] = {}  # task run name -> task name
    created: dict[str, float] = {}
    executing: dict[str, float] = {}
    intervals: dict[str, list[tuple[float, float]]] = {}
    setup: list[tuple[float, float]] = []
    flows: dict[str, tuple[str, float]] = {}  # flow run name -> (flow, begin)
    flow_spans: dict[str, list[tuple[float, float]]] = {}
    server_start: float | None = None
    for raw in text.splitlines():
        m = LINE.match(raw.strip())
        if not m:
            continue
        at, msg = seconds(m["time"]), m["msg"]
        if b := BEGIN.match(msg):  # a subflow's first line may come under its parent task run
            flows[b["run"]] = (b["flow"], at)
        elif m["task"] is not None:
            run = m["task"]
            if c := CREATED.match(msg):
                task_of[run], created[run] = c["task"], at
            elif r := RENAMED.match(msg):
                if r["old"] in task_of:
                    task_of[r["new"]] = task_of.pop(r["old"])
                    created[r["new"]] = created.pop(r["old"])
            elif EXECUTING.match(msg) and run in created:
                executing[run] = at
                setup.append((created[run], at))
            elif FINISHED.match(msg) and run in created:
                begin = executing.pop(run, None)
                created_at = created.pop(run)
                start = created_at if begin is None else begin
                intervals.setdefault(task_of[run], []).append((start, at))
        elif m["flow"] is not None:
            run = m["flow"]
            if FINISHED.match(msg) and run in flows:
                name, begin = flows.pop(run)
                flow_spans.setdefault(name, []).append((begin, at))
        elif server_start is None and SERVER.match(msg):
            server_start = at
    stages = {name: _union(spans) for name, spans in intervals.items()}
    counts = {name: len(spans) for name, spans in intervals.items()}
    busy = {name: sum(b - a for a, b in spans) for name, spans in intervals.items()}
    executed = [span for spans in intervals.values() for span in spans]
    if setup:  # while no task run executes (a backfill's dates queue behind each other)
        stages["prefect task setup"] = _union(setup + executed) - _union(executed)
        counts["prefect task setup"] = len(setup)
        busy["prefect task setup"] = sum(b - a for a, b in setup)
    top = flow_spans.get("nightly", []) + flow_spans.get("backfill", [])
    if top:
        first, last = min(a for a, _ in top), max(b for _, b in top)
        if server_start is not None and server_start <= first:
            stages["imports"] = server_start
            stages["api server start"] = first - server_start
        else:
            stages["startup"] = first
        stages["shutdown"] = max(wall - last, 0.0)
        stages["flow overhead"] = max((last - first) - _union(executed + setup), 0.0)
        if spans_out is not None:
            spans_out["imports"] = [(0.0, server_start if server_start is not None else first)]
            spans_out["shutdown"] = [(last, wall)]
    if spans_out is not None:
        spans_out.update(intervals)
    for name, spans in flow_spans.items():
        busy[f"flow {name}"] = sum(b - a for a, b in spans)
        counts[f"flow {name}"] = len(spans)
    return stages, counts, busy


def _union(spans: list[tuple[float, float]]) -> float:
    """The length of the union of intervals."""
    total, end = 0.0, -np.inf
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def largest(result: RunResult, k: int = LARGEST) -> str:
    top = sorted(result.stages.items(), key=lambda kv: -kv[1])[:k]
    return ", ".join(
        f"{name}{' x' + str(result.counts[name]) if result.counts.get(name, 1) > 1 else ''} "
        f"{sec:.1f}"
        for name, sec in top
    )


def uptime() -> str:
    try:
        out = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout
        found = re.search(r"load averages?:\s*(.*)$", out.strip())
        if found:
            return found.group(1)
    except (OSError, subprocess.SubprocessError):
        pass
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# ------------------------------------------------------------------------------------------
# the scenario


def business_days_after(day: dt.date, k: int) -> list[dt.date]:
    return [d.date() for d in pd.bdate_range(day + dt.timedelta(days=1), periods=k)]


def scenario(
    market: Market,
    first_row: int,
    history_rows: int,
    years: float,
    work: Path,
    epochs: int | None,
    backfill_days: int,
    runs: tuple[str, ...] = ("cold", "incremental", "no new data"),
    next_nights: int = 0,
    api_url: str | None = None,
) -> list[RunResult]:
    """The runs of one history length, in ``work``: drops, config, then each command (against
    the Prefect server at ``api_url`` when given)."""
    drops, data = work / "drops", work / "data"
    cfg = work / "config.toml"
    rows = slice(first_row, history_rows)
    dates = market.dates
    cold = dates[history_rows - 1].date()
    start = dates[first_row].date()
    n = len(market.ids)
    t = time.perf_counter()
    write_price_drops(market, rows, drops / "prices", f"history-{start}_{cold}")
    write_weather_drop(market, start, cold, drops / "weather")
    write_config(cfg, data, drops, market.ids, start, epochs)
    print(
        f"{n} series x {history_rows - first_row} business days ({start} .. {cold}) written as "
        f"file drops in {time.perf_counter() - t:.1f} s: {work}",
        flush=True,
    )
    base = ["--config", str(cfg)]
    results = [run_cli("cold", ["nightly", "--as-of", str(cold), *base], work, n, years, api_url)]
    nxt = dates[history_rows].date()
    if "incremental" in runs and results[-1].ok:
        write_price_drops(market, slice(history_rows, history_rows + 1), drops / "prices", str(nxt))
        write_weather_drop(market, cold + dt.timedelta(days=1), nxt, drops / "weather")
        args = ["nightly", "--as-of", str(nxt), *base]
        results.append(run_cli("incremental", args, work, n, years, api_url))
    if "no new data" in runs and results[-1].ok:
        args = ["nightly", "--as-of", str(nxt), *base]
        results.append(run_cli("no new data", args, work, n, years, api_url))
    for k in range(1, next_nights + 1):
        if not results[-1].ok:
            break
        row = history_rows + k
        day, before = dates[row].date(), dates[row - 1].date()
        write_price_drops(market, slice(row, row + 1), drops / "prices", str(day))
        write_weather_drop(market, before + dt.timedelta(days=1), day, drops / "weather")
        args = ["nightly", "--as-of", str(day), *base]
        results.append(run_cli(f"next night {k}", args, work, n, years, api_url))
    if backfill_days > 0 and results[-1].ok:
        results.append(backfill_run(market, history_rows, work, years, backfill_days, api_url))
    if not results[-1].ok:
        print(f"    the later runs of this history ({years:g} years) are skipped", flush=True)
    return results


def backfill_run(
    market: Market,
    history_rows: int,
    work: Path,
    years: float,
    backfill_days: int,
    api_url: str | None = None,
) -> RunResult:
    """Drop the business days after the incremental one up to the ``backfill_days``-th after
    the cold as-of, then backfill from the cold as-of + 1 day to that day."""
    drops, cfg, dates = work / "drops", work / "config.toml", market.dates
    cold, nxt = dates[history_rows - 1].date(), dates[history_rows].date()
    days = business_days_after(cold, backfill_days)
    if len(days) > 1:  # the first one (the incremental day) is in already
        more = slice(history_rows + 1, history_rows + len(days))
        write_price_drops(market, more, drops / "prices", f"{days[1]}_{days[-1]}")
        write_weather_drop(market, nxt + dt.timedelta(days=1), days[-1], drops / "weather")
    first = cold + dt.timedelta(days=1)
    args = ["backfill", "--start", str(first), "--end", str(days[-1]), "--config", str(cfg)]
    result = run_cli(f"backfill {backfill_days}d", args, work, len(market.ids), years, api_url)
    result.dates = result.counts.get("forecast-date", 0)  # the dates the backfill planned
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--series", type=int, default=100, help="price series (default 100)")
    p.add_argument("--years", type=float, default=4.0, help="history in years (default 4)")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training.max_epochs of full trainings (fine-tunes keep training.finetune_epochs)",
    )
    p.add_argument(
        "--backfill-days",
        type=int,
        default=0,
        help="also backfill this many business days after the cold as-of (0: skip)",
    )
    p.add_argument(
        "--next-nights",
        type=int,
        default=0,
        help="after the night with no new data, this many more nights of one new day each",
    )
    p.add_argument(
        "--doubling",
        action="store_true",
        help="also run cold + incremental at --years / 2 and print the growth ratios",
    )
    p.add_argument(
        "--prefect-server",
        action="store_true",
        help="run against a Prefect server the bench starts (default: Prefect's ephemeral API)",
    )
    p.add_argument(
        "--prefect-database",
        default=None,
        help="with --prefect-server: its database URL (default SQLite in the temporary folder)",
    )
    p.add_argument("--json", default=None, help="write the figures to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    p.add_argument("--seed", type=int, default=18)
    args = p.parse_args(argv)
    if args.series < 1 or args.years <= 0 or args.backfill_days < 0 or args.next_nights < 0:
        p.error("--series and --years must be positive, --backfill-days and --next-nights >= 0")
    if args.backfill_days and args.next_nights:
        p.error("--backfill-days and --next-nights drop the same days: give one of them")
    if args.prefect_database and not args.prefect_server:
        p.error("--prefect-database is the database of --prefect-server: give both")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)  # `timeout` and schedulers send it
    history = max(int(round(args.years * BUSINESS_DAYS_PER_YEAR)), 2)
    half = history // 2
    t = time.perf_counter()
    extra = max(args.backfill_days, 1 + args.next_nights)  # the days after the cold as-of
    market = make_market(args.series, history + extra, args.seed)
    print(
        f"generated {args.series} series x {len(market.dates)} business days in "
        f"{time.perf_counter() - t:.1f} s; load {uptime()}",
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        with ExitStack() as stack:
            api_url = None
            if args.prefect_server:
                server_home = tmp / "prefect-server"
                api_url = stack.enter_context(prefect_server(server_home, args.prefect_database))
            results = scenario(
                market, 0, history, args.years, tmp / "full", args.epochs, args.backfill_days,
                next_nights=args.next_nights, api_url=api_url,
            )  # fmt: skip
            halves: list[RunResult] = []
            if args.doubling:
                # the last half of the same history: the same as-of dates, half the rows
                halves = scenario(
                    market, history - half, history, args.years / 2, tmp / "half", args.epochs,
                    0, runs=("cold", "incremental"), api_url=api_url,
                )  # fmt: skip
    finally:
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print_table([*results, *halves])
    backfill = [r for r in results if r.label.startswith("backfill")]
    for r in (r for r in backfill if r.ok):
        dates = r.dates
        per_date = r.busy.get("flow forecast", 0.0) / max(r.counts.get("forecast-date", 1), 1)
        print(
            f"backfill of {args.backfill_days} business days ({dates} forecast dates): "
            f"{r.wall_s:.1f} s wall, {r.wall_s / max(dates, 1):.1f} s "
            f"per date; a date's forecast flow {per_date:.1f} s on average"
        )
    goals = goal_figures(results)
    print_goals(goals)
    ratios = growth(results, halves) if halves else {}
    if ratios:
        print_growth(ratios, args.years)
    print(f"load average now: {uptime()}")
    if args.json:
        payload = {
            "settings": {k: v for k, v in vars(args).items() if k != "json"},
            "history_rows": history,
            "runs": [asdict(r) for r in results],
            "half_runs": [asdict(r) for r in halves],
            "growth": ratios,
            "goals": goals,
            "load_after": uptime(),
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str))
        print(f"figures written to {args.json}")
    failed = [r for r in [*results, *halves] if not r.ok]
    for r in failed:
        print(f"failed: {r.label} at {r.years:g} years, exit {r.returncode}: {r.error} ({r.log})")
    return 1 if failed else 0


def print_table(results: list[RunResult]) -> None:
    print("| series | years | run | wall s | peak RSS GiB | largest stages (s) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        run = f"{r.label} ({r.training})" if r.training else r.label
        stages = largest(r)
        if not r.ok:
            run = f"{r.label} FAILED (exit {r.returncode})"
            stages = r.error[:160].replace("|", "/")
        print(
            f"| {r.series} | {r.years:g} | {run} | {r.wall_s:.1f} | {r.peak_rss_gib:.2f} | "
            f"{stages} |"
        )
    loads = "; ".join(f"{r.label} @{r.years:g}y: {r.load_before}" for r in results)
    print(f"\nload average before each run (uptime): {loads}")
    sampled = [r for r in results if r.stage_rss_gib]
    if sampled:
        print(f"\nwhere the memory went (resident set sampled every {RSS_EVERY:g} s):")
        for r in sampled:
            print(f"  {r.label} @{r.years:g}y: peak reached in {r.peak_stage}; {largest_rss(r)}")


# issue 18's goals at 100 series: figure -> (its limit, how the issue says it); a figure at
# most its limit meets it
GOALS = {
    "incremental / cold": (1 / 8, "at most 1/8"),
    "no new data / cold": (1 / 20, "at most 1/20"),
    "backfill of 20 business days, s": (300.0, "within 5 minutes"),
    "backfill s a date / incremental s": (1.0, "less than a nightly"),
}


def goal_figures(results: list[RunResult]) -> dict[str, float]:
    """Issue 18's figures of these runs (those whose runs succeeded): the incremental and the
    no-new-data nights against the cold one, a 20-day backfill's wall time, and a backfill's
    seconds a date against the incremental night's."""
    by = {r.label: r for r in results if r.ok}
    cold, incremental = by.get("cold"), by.get("incremental")
    out: dict[str, float] = {}
    if cold is not None and incremental is not None:
        out["incremental / cold"] = incremental.wall_s / cold.wall_s
    if cold is not None and "no new data" in by:
        out["no new data / cold"] = by["no new data"].wall_s / cold.wall_s
    for r in by.values():
        if r.label.startswith("backfill") and r.dates:
            if r.label == "backfill 20d":
                out["backfill of 20 business days, s"] = r.wall_s
            if incremental is not None:
                out["backfill s a date / incremental s"] = r.wall_s / r.dates / incremental.wall_s
    return out


def print_goals(goals: dict[str, float]) -> None:
    """Each figure beside its goal (issue 18, stated at 100 series), met or missed."""
    if not goals:
        return
    print("\nissue 18's goals (stated at 100 series):")
    for name, value in goals.items():
        limit, said = GOALS[name]
        verdict = "met" if value <= limit else "missed"
        shown = f"{value:.1f}" if name.endswith(", s") else f"{value:.3f}"
        print(f"  {name}: {shown} (goal {said}: {verdict})")


def growth(
    full: list[RunResult], half: list[RunResult]
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per run (cold, incremental) and stage: seconds at both lengths and their ratio."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for h in half:
        f = next((r for r in full if r.label == h.label), None)
        if f is None or not (f.ok and h.ok):
            continue
        rows: dict[str, dict[str, float | None]] = {"wall": {"half": h.wall_s, "full": f.wall_s}}
        for name in sorted(set(f.stages) | set(h.stages)):
            rows[name] = {"half": h.stages.get(name, 0.0), "full": f.stages.get(name, 0.0)}
        for row in rows.values():
            row["ratio"] = row["full"] / row["half"] if row["half"] > 0 else None
        out[h.label] = rows
    return out


def print_growth(ratios: dict[str, dict[str, dict[str, float | None]]], years: float) -> None:
    labels = list(ratios)
    print(f"\ngrowth when the history doubles: seconds at {years / 2:g} and {years:g} years, ratio")
    header = "| stage | " + " | ".join(
        f"{lab} {years / 2:g}y | {lab} {years:g}y | ratio" for lab in labels
    )
    print(header + " |")
    print("|---" * (1 + 3 * len(labels)) + "|")
    shown = {  # the stages of at least 0.05 s somewhere
        n for r in ratios.values() for n, row in r.items() if max(row["half"], row["full"]) >= 0.05
    }
    names = sorted(
        shown,
        key=lambda n: (n != "wall", -max(r.get(n, {}).get("full", 0.0) for r in ratios.values())),
    )
    for name in names:
        cells = []
        for lab in labels:
            row = ratios[lab].get(name)
            if row is None:
                cells += ["", "", ""]
                continue
            ratio = "" if row["half"] < 0.05 or row["ratio"] is None else f"{row['ratio']:.2f}"
            cells += [f"{row['half']:.2f}", f"{row['full']:.2f}", ratio]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
