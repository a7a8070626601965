"""Run artifacts: markdown of forecasts, validation, drift and backtest; the forecast plot."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from pipeline_lib.forecasting.backtest import BacktestPlan
from pipeline_lib.forecasting.champion import Evaluation
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.registry import Selection
from pipeline_lib.forecasting.retrain import TrainingDecision
from pipeline_lib.forecasting.selection import Choice
from pipeline_lib.monitoring.policy import DriftVerdict, Flag
from pipeline_lib.publishing import artifacts, plot
from pipeline_lib.validation.report import ExpectationFailure, ValidationReport

AS_OF = dt.date(2020, 12, 31)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _row(text: str, first_cell: str) -> str:
    """The markdown table line whose first cell is ``first_cell``."""
    return next(line for line in text.splitlines() if line.startswith(f"| {first_cell} |"))


@pytest.fixture
def forecasts() -> pd.DataFrame:
    """Two series, horizons 1..3 from 2020-12-31 (business days)."""
    targets = pd.to_datetime(["2021-01-01", "2021-01-04", "2021-01-05"])
    rows = []
    for sid, level, model, version in (
        ("A", 100.0, "naive", "baseline-naive"),
        ("B", 2000.0, "lstm", "v1"),
    ):
        for h, target in enumerate(targets, start=1):
            rows.append(
                {
                    "series_id": sid,
                    "forecast_date": pd.Timestamp(AS_OF),
                    "target_date": target,
                    "horizon": h,
                    "yhat": level + h,
                    "yhat_lower": level + h - 5 * h,
                    "yhat_upper": level + h + 5 * h,
                    "model": model,
                    "model_version": version,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def features() -> pd.DataFrame:
    """Random walks S0 and S1 through 2020-12-31 (and a few days past it)."""
    return random_walk_features(n_series=2, n_days=280, start=dt.date(2020, 1, 1))


@pytest.fixture
def features_forecasts(forecasts: pd.DataFrame) -> pd.DataFrame:
    """The forecasts above, for the series of ``features``."""
    return forecasts.replace({"series_id": {"A": "S0", "B": "S1"}})


def test_markdown_table_escapes_pipes_and_newlines() -> None:
    table = artifacts.markdown_table(["a", "b|c"], [["x|y", "two\nlines"]])
    assert table.splitlines() == ["| a | b\\|c |", "|---|---|", "| x\\|y | two lines |"]


def test_forecasts_markdown_has_a_row_per_series(forecasts: pd.DataFrame) -> None:
    before = forecasts.copy()
    url = "http://127.0.0.1:8000/reports/plots/x.png"
    text = artifacts.forecasts_markdown(forecasts, plot_url=url)
    # the horizons asked for that exist (1) and the last one (3); 2 is left out
    header = text.splitlines()[2]
    assert "h=1 (2021-01-01)" in header and "h=3 (2021-01-05)" in header and "h=2" not in header
    assert _row(text, "A") == (
        "| A | naive | baseline-naive | 101.00 [96.00, 106.00] | 103.00 [88.00, 118.00] |"
    )
    assert _row(text, "B") == (
        "| B | lstm | v1 | 2,001.00 [1,996.00, 2,006.00] | 2,003.00 [1,988.00, 2,018.00] |"
    )
    assert "as of 2020-12-31" in text and f"forecasts (PNG)]({url})" in text
    pd.testing.assert_frame_equal(forecasts, before)


def test_forecasts_markdown_without_forecasts() -> None:
    assert artifacts.forecasts_markdown(pd.DataFrame()) == "No forecasts were published."


def _failure(check: str, severity: str) -> ExpectationFailure:
    return ExpectationFailure(
        check=check,
        expectation_type="expect_column_values_to_be_between",
        columns=["close"],
        severity=severity,
        risk="ranges",
        expected="close > 0",
        unexpected_count=1,
        rows=[{"series_id": "SP500", "date": "2015-07-01", "close": -3.5}],
    )


@pytest.fixture
def reports() -> list[ValidationReport]:
    ok = ValidationReport("weather", "weather-seattle", "2015-07-02", 2, True, 12, 11)
    ok.warnings.append(_failure("freshness", "warning"))
    bad = ValidationReport("prices", "prices-SP500", "2015-07-02", 2, False, 20, 18)
    bad.failures.append(_failure("close_positive", "critical"))
    bad.warnings.append(_failure("close_jump", "warning"))
    bad.source = "file drop: 2015-07-02.csv"
    return [ok, bad]


def test_validation_markdown_names_the_failures(reports: list[ValidationReport]) -> None:
    quarantine = {"prices/prices-SP500": "data/quarantine/prices/prices-SP500-x"}
    text = artifacts.validation_markdown(reports, quarantine)
    assert "2 batch(es), 1 failed" in text
    assert _row(text, "weather/weather-seattle") == (
        "| weather/weather-seattle | - | 2 | passed | 11/12 | - | freshness |"
    )
    assert _row(text, "prices/prices-SP500") == (
        "| prices/prices-SP500 | file drop: 2015-07-02.csv | 2 | **FAILED** | 18/20 "
        "| close_positive | close_jump |"
    )
    # the failures in full: columns, rule, offending rows, and where the batch went
    assert "critical close_positive (close)" in text and "close=-3.5" in text
    assert "prices/prices-SP500 quarantined in data/quarantine/prices/prices-SP500-x" in text


def test_validation_markdown_lists_revisions(reports: list[ValidationReport]) -> None:
    prices = reports[1]
    prices.warnings.append(
        ExpectationFailure(
            check="revisions",
            expectation_type="curated_values_unchanged",
            columns=["close"],
            severity="warning",
            risk="revisions",
            unexpected_count=1,
            rows=[{"series_id": "SP500", "date": "2015-06-03", "close": "10.8 -> 11.34"}],
            details="1 of 250 curated rows revised (0.4%): applied",
        )
    )
    prices.notes.append("prices-SP500: 1 row revised: 2015-06-03 close 10.8 -> 11.34")
    text = artifacts.validation_markdown(reports)
    assert _row(text, "prices/prices-SP500").endswith("| close_positive | close_jump, revisions |")
    assert "Notes:\n- prices-SP500: 1 row revised: 2015-06-03 close 10.8 -> 11.34" in text
    assert "warning  revisions (close)" in text and "close=10.8 -> 11.34" in text


def test_validation_markdown_without_batches() -> None:
    assert artifacts.validation_markdown([]) == "No batches were validated."


def _drift(flags: dict[tuple[str, str], bool]) -> pd.DataFrame:
    rows = []
    for (sid, feature), flag in flags.items():
        rows += [
            (sid, feature, "psi", 0.35 if flag else 0.05, 0.2, flag),
            (sid, feature, "ks_statistic", 0.4, np.nan, False),
            (sid, feature, "ks_pvalue", 0.2, 0.01, False),
        ]
    columns = ["series_id", "feature", "metric", "value", "threshold", "is_drift"]
    return pd.DataFrame(rows, columns=columns).assign(forecast_date=AS_OF)


@pytest.fixture
def evaluation() -> Evaluation:
    """A night where the LSTM v2 was promoted over v1 and won series A by the margin."""
    origins = {s: np.array(["2020-12-16", "2020-12-18"], dtype="datetime64[ns]") for s in "AB"}
    plan = BacktestPlan(AS_OF, 3, origins)
    scores = {
        ("v2", "lstm"): {"A": (0.80, 1.1, 0.9), "B": (1.30, 2.2, 0.7)},
        ("baseline-naive", "naive"): {"A": (1.00, 1.4, 0.8), "B": (1.00, 1.9, 0.6)},
    }
    summary = pd.DataFrame(
        [
            {"model": m, "model_version": v, "series_id": s, "horizon": h, "mase": mase}
            | {"smape": smape, "coverage": cov}
            for (v, m), by_series in scores.items()
            for s, (mase, smape, cov) in by_series.items()
            for h in ("1", "ALL")
        ]
    )
    selection = Selection(
        as_of=AS_OF.isoformat(),
        champion="v2",
        previous_champion="v1",
        challenger="v2",
        promoted=True,
        reason="challenger MASE 1.0500 < champion 1.2000 on 2 series",
        mase={"v1": 1.2, "v2": 1.05},
        published={"A": {"1-3": "lstm"}, "B": {"1-1": "naive", "2-3": "mean(lstm,naive)"}},
        series_mase={"A": {"lstm": 0.8, "naive": 1.0}, "B": {"lstm": 1.3, "naive": 1.0}},
        choices={
            "A": [_choice("A", 1, 3, {"lstm": 1.0}, {"lstm": 0.8, "naive": 1.0}, 0.01)],
            "B": [
                _choice("B", 1, 1, {"naive": 1.0}, {"naive": 0.9, "lstm": 1.4}, 0.02),
                _choice("B", 2, 3, {"lstm": 0.5, "naive": 0.5}, {"lstm": 1.1, "naive": 1.2}, 0.6),
            ],
        },
    )
    notes = ["v0 was trained on the hold-out"]
    return Evaluation(plan, pd.DataFrame(), summary, selection, None, notes)


def _choice(
    sid: str, first: int, last: int, weights: dict, mase: dict, p: float
) -> dict[str, object]:
    best = min(mase, key=mase.get)
    evidence = {
        "mase": mase,
        "p_worse_than_best": {m: 1.0 if m == best else p for m in mase},
        "best": best,
        "windows": 4,
    }
    return Choice(sid, first, last, "dm_set", weights, evidence).to_dict()


def test_backtest_markdown_shows_the_contest_and_the_model_in_use(evaluation: Evaluation) -> None:
    text = artifacts.backtest_markdown(evaluation)
    assert "4 windows (origins) from 2020-12-16, horizons 1..3" in text
    for line in (
        "| champion | v2 |",
        "| previous champion | v1 |",
        "| promoted | yes |",
        "| reason | challenger MASE 1.0500 < champion 1.2000 on 2 series |",
        "| MASE of v1 | 1.2000 |",
    ):
        assert line in text
    header = next(line for line in text.splitlines() if line.startswith("| series |"))
    assert header.endswith("| MASE lstm | MASE naive |")
    # what each horizon bucket published, then every model's all-horizon MASE
    assert _row(text, "A") == "| A | 1-3: lstm | 0.800 | 1.000 |"
    assert _row(text, "B") == "| B | 1-1: naive; 2-3: mean(lstm,naive) | 1.300 | 1.000 |"
    # per bucket: the rule, the weights and the evidence (the others' MASE and p-values)
    choices = [line for line in text.splitlines() if line.startswith("| B | ")]
    assert choices[1:] == [
        "| B | 1-1 | naive | dm_set | naive 1.00 | 4 | naive 0.900 | lstm 1.400 (p 0.02) |",
        "| B | 2-3 | mean(lstm,naive) | dm_set | lstm 0.50, naive 0.50 | 4 | lstm 1.100, "
        "naive 1.200 | - |",
    ]
    assert "- v0 was trained on the hold-out" in text


def test_plot_is_a_deterministic_png(
    features: pd.DataFrame, features_forecasts: pd.DataFrame
) -> None:
    before = features.copy()
    png = plot.plot_forecasts(features, features_forecasts, AS_OF, recent_days=60)
    assert png.startswith(PNG_SIGNATURE)
    assert plot.plot_forecasts(features, features_forecasts, AS_OF, recent_days=60) == png
    assert b"Matplotlib" not in png  # no version string in the file
    pd.testing.assert_frame_equal(features, before)
    # rows after the forecast date are not drawn; a longer history is
    visible = features[features["date"] <= pd.Timestamp(AS_OF)]
    assert plot.plot_forecasts(visible, features_forecasts, AS_OF, recent_days=60) == png
    assert plot.plot_forecasts(features, features_forecasts, AS_OF, recent_days=120) != png


def test_plot_needs_a_forecast(features: pd.DataFrame, forecasts: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no forecasts"):
        plot.plot_forecasts(features, forecasts.iloc[:0], AS_OF)


def test_save_plot_writes_a_readable_png_under_the_data_dir(
    tmp_path: Path, features: pd.DataFrame, features_forecasts: pd.DataFrame
) -> None:
    png = plot.plot_forecasts(features, features_forecasts, AS_OF)
    data_dir = tmp_path / "data"
    url = plot.save_plot(str(data_dir), "run-1", AS_OF, png)
    path = Path(url)
    assert path == data_dir / "reports" / "plots" / "2020-12-31" / "forecast-run-1.png"
    assert path.read_bytes() == png
    image = imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100  # pixels: it decodes
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_plot_markdown_shows_the_image_in_the_page() -> None:
    url = "http://127.0.0.1:8000/reports/plots/2020-12-31/forecast-r1.png"
    text = plot.plot_markdown(url, AS_OF, "all 3 series")
    assert text.startswith(f"![forecast plot as of 2020-12-31]({url})\n")
    assert text.endswith(f"Forecast plot as of 2020-12-31: all 3 series. [Open the PNG]({url})")


def test_save_plot_on_an_fsspec_url() -> None:
    url = plot.save_plot("memory://artifacts-test", "r2", AS_OF, PNG_SIGNATURE + b"x")
    assert url == "memory://artifacts-test/reports/plots/2020-12-31/forecast-r2.png"
    with fsspec.open(url, "rb") as f:
        assert f.read() == PNG_SIGNATURE + b"x"


def _night_forecasts(n_series: int) -> pd.DataFrame:
    """Forecasts of series S0..S<n-1> at horizons 1..3 from AS_OF."""
    targets = pd.to_datetime(["2021-01-01", "2021-01-04", "2021-01-05"])
    return pd.DataFrame(
        [
            {"series_id": f"S{i}", "forecast_date": pd.Timestamp(AS_OF), "target_date": t}
            | {"horizon": h, "yhat": 100.0 + i, "yhat_lower": 95.0 + i, "yhat_upper": 105.0 + i}
            | {"model": "naive", "model_version": "baseline-naive"}
            for i in range(n_series)
            for h, t in enumerate(targets, start=1)
        ]
    )


def _flagged_decision() -> TrainingDecision:
    """S7's decay and S3's input drift on y counted by the retraining policy."""
    verdict = DriftVerdict(
        retrain=True,
        reason="1 series decayed",
        trigger="decay",
        drifted=[Flag("input_drift", "S3", "y", {"psi": 0.4})],
        decayed=[Flag("decay", "S7", "forecast_error", {"mase_ratio": 1.6})],
    )
    return TrainingDecision("full", "decay", drift=verdict)


def test_select_plot_bounds_the_panels_and_puts_the_flagged_series_first() -> None:
    forecasts = _night_forecasts(20)
    drift = _drift({("S5", "y"): True, ("S5", "log_return"): True, ("S9", "y"): True})
    drift = pd.concat([drift, _drift({("S5", "volume_log"): True})], ignore_index=True)
    chosen = plot.select_plot(forecasts, drift, _flagged_decision(), max_panels=4)
    assert chosen.shown == ["S7", "S3", "S5", "S9"]
    assert chosen.reasons["S7"] == "decay counted"
    assert chosen.reasons["S3"] == "input drift counted: y"
    assert chosen.reasons["S5"] == "3 drift flags" and chosen.reasons["S9"] == "1 drift flags"
    assert chosen.left_out == sorted(f"S{i}" for i in range(20) if i not in (3, 5, 7, 9))
    assert chosen.reasons["S0"] == plot.NO_FLAG
    assert chosen.caption().startswith("4 of 20 series")
    # no flags at all: the first series by id; a cap above the count draws every series
    plain = plot.select_plot(forecasts, max_panels=3)
    assert plain.shown == ["S0", "S1", "S10"] and len(plain.left_out) == 17
    everything = plot.select_plot(forecasts, drift, max_panels=50)
    assert len(everything.shown) == 20 and everything.left_out == []
    assert everything.caption() == "all 20 series"
    with pytest.raises(ValueError, match="max_panels"):
        plot.select_plot(forecasts, max_panels=0)


def test_forecasts_markdown_says_what_the_plot_draws_and_leaves_out() -> None:
    forecasts = _night_forecasts(6)
    drift = _drift({("S4", "y"): True})
    chosen = plot.select_plot(forecasts, drift, _flagged_decision(), max_panels=2)
    assert chosen.shown == ["S3", "S4"]  # S7 has no forecast tonight
    text = artifacts.forecasts_markdown(forecasts, plot_url="p.png", plotted=chosen)
    assert (
        "The plot draws 2 of 6 series (at most 2: the ones the night flagged first, then by id): "
        "S3 (input drift counted: y); S4 (1 drift flags)."
    ) in text
    assert "Not plotted (4, flagged first): S0, S1, S2, S5." in text
    assert "series=[...]" in text
    # the table still has a row per series; without a plot nothing is said about one
    assert all(_row(text, f"S{i}") for i in range(6))
    assert "plot draws" not in artifacts.forecasts_markdown(forecasts, plotted=chosen)


def test_the_plot_draws_the_chosen_series_only_and_its_size_is_bounded(
    tmp_path: Path, features: pd.DataFrame, features_forecasts: pd.DataFrame
) -> None:
    def draw(series: list[str] | None) -> bytes:
        return plot.plot_forecasts(features, features_forecasts, AS_OF, series=series)

    one = features_forecasts[features_forecasts["series_id"] == "S1"]
    assert draw(["S1"]) == plot.plot_forecasts(features, one, AS_OF)
    assert draw(["S0", "S1"]) == draw(None) != draw(["S1", "S0"])  # in the order asked for
    with pytest.raises(ValueError, match=r"no forecasts to plot for series \['S9'\]"):
        draw(["S9"])
    # 40 series, 4 panels: two rows of 280 pixels, whatever the series count
    many = random_walk_features(n_series=40, n_days=280, start=dt.date(2020, 1, 1))
    forecasts = _night_forecasts(40)
    chosen = plot.select_plot(forecasts, max_panels=4)
    png = plot.plot_forecasts(many, forecasts, AS_OF, series=chosen.shown)
    path = tmp_path / "plot.png"
    path.write_bytes(png)
    assert imread(path).shape[:2] == (2 * 280, 2 * 640)
