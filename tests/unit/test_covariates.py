"""Covariates as configuration: parsing, point-in-time values, leads, missing values, validation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.config import load_settings
from pipeline_lib.errors import ConfigError, CovariateMissing
from pipeline_lib.features.covariates import add_covariates, missing_covariates
from pipeline_lib.features.spec import FeatureSet, FutureCovariate
from pipeline_lib.features.stage import check_covariates, load_features, refresh_features
from pipeline_lib.ingest import curate, gate, landing
from pipeline_lib.ingest.batch import split_covariates
from pipeline_lib.ingest.sources.base import ParseError, utc_now
from pipeline_lib.ingest.sources.parse import parse_payload
from pipeline_lib.store.raw import CSV, Payload
from pipeline_lib.validation import validate_batch

AS_OF = dt.date(2019, 6, 30)
SAMPLE_CONFIG = "pipeline_lib/sample_data/electricity.toml"


def _series(covariates: list[dict], **extra: object) -> dict:
    return {"id": "DE", "frequency": "D", "covariates": covariates, **extra}


LOAD = {"name": "load_forecast", "role": "future", "known_ahead": 1}


def test_feature_set_is_the_union_of_the_series_declarations():
    settings = load_settings(
        series=[
            _series([LOAD, {"name": "load_actual", "role": "past"}]),
            {"id": "FR", "frequency": "D", "covariates": [LOAD]},
        ]
    )
    fs = settings.feature_set
    assert fs == FeatureSet(("load_actual",), (FutureCovariate("load_forecast", 1),))
    assert fs.lead_columns == ["load_forecast@1"]
    assert fs.columns[-3:] == ["load_actual", "load_forecast", "load_forecast@1"]
    assert FeatureSet.from_dict(fs.to_dict()) == fs
    assert FeatureSet.from_dict(None) == FeatureSet()


@pytest.mark.parametrize(
    ("series", "message"),
    [
        ([_series([{"name": "load", "role": "future"}])], "needs known_ahead >= 1"),
        ([_series([{"name": "load", "role": "past", "known_ahead": 2}])], "cannot have"),
        ([_series([{"name": "close", "role": "past"}])], "built-in column"),
        ([_series([LOAD, LOAD])], "unique per series"),
        (
            [
                _series([LOAD]),
                {"id": "FR", "covariates": [{**LOAD, "known_ahead": 2}]},
            ],
            "known_ahead 1) in one series and future (known_ahead 2) in series 'FR'",
        ),
    ],
)
def test_bad_covariate_declarations_are_named(series, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(series=series)


def _payload(text: str) -> Payload:
    return Payload(
        source="file",
        dataset=schema.PRICES,
        key="DE",
        request={"file": "de.csv"},
        fetched_at=utc_now(),
        content=text.encode(),
        media_type=CSV,
        name="de.csv",
    )


def test_declared_columns_are_kept_and_a_missing_one_is_named():
    text = "date,close,Load_Forecast,other\n2019-01-01,-5.5,100,1\n2019-01-02,40,,2\n"
    out = parse_payload(_payload(text), covariates={"load_forecast": "load"})
    assert list(out.columns) == [*schema.PRICE_COLUMNS, "load"]
    assert out["load"].tolist()[0] == 100.0 and np.isnan(out["load"].iloc[1])
    assert out.attrs["ignored_columns"] == ["other"]
    with pytest.raises(ParseError, match=r"declared covariates \['wind'\].*de.csv|de.csv.*wind"):
        parse_payload(_payload(text), covariates={"wind": "wind"})


def test_split_covariates_issues_values_ahead_and_keeps_prices_up_to_the_as_of_date():
    settings = load_settings(series=[_series([LOAD, {"name": "load_actual", "role": "past"}])])
    series = settings.series[0]
    data = pd.DataFrame(
        {
            schema.SERIES_ID: "DE",
            schema.DATE: pd.to_datetime(["2019-06-29", "2019-06-30", "2019-07-01", "2019-07-02"]),
            **{c: np.nan for c in ("open", "high", "low", "volume")},
            "close": [30.0, 31.0, 32.0, 33.0],
            "load_forecast": [1.0, 2.0, 3.0, 4.0],
            "load_actual": [10.0, 11.0, np.nan, np.nan],
        }
    )
    prices, cov = split_covariates(data, series, AS_OF, today=dt.date(2026, 1, 1))
    assert prices[schema.DATE].max() == pd.Timestamp(AS_OF)  # 07-01's price is later data
    load = cov[cov[schema.COVARIATE] == "load_forecast"]
    # the forecast for 07-01 was issued on 06-30: known tonight; 07-02's is not yet issued
    assert load[schema.DATE].max() == pd.Timestamp("2019-07-01")
    assert (load[schema.DATE] - load[schema.ISSUED] == pd.Timedelta(days=1)).all()
    actual = cov[cov[schema.COVARIATE] == "load_actual"]
    assert (actual[schema.DATE] == actual[schema.ISSUED]).all() and len(actual) == 2
    report = validate_batch(cov, schema.COVARIATES, AS_OF, "covariates-DE")
    assert report.success, report.summary()


def _values(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [("A", "load", pd.Timestamp(d), pd.Timestamp(i), v) for d, i, _, v in rows],
        columns=schema.COVARIATE_COLUMNS,
    )


def _feats(dates: list[str], series: str = "A") -> pd.DataFrame:
    return pd.DataFrame({schema.SERIES_ID: series, schema.DATE: pd.to_datetime(dates)})


def test_a_revision_issued_later_changes_nothing_dated_before_it():
    fs = FeatureSet.of(future=[("load", 2)])
    feats = _feats(["2019-01-01", "2019-01-02", "2019-01-03", "2019-01-04"])
    first = [
        (f"2019-01-0{d}", f"2019-01-0{max(d - 2, 1)}", "", float(d)) for d in range(1, 7)
    ]  # each day's value issued two days ahead
    before = add_covariates(feats, _values(first), fs, {"A": "D"})
    assert before.loc[0, "load@1"] == 2.0 and before.loc[0, "load@2"] == 3.0
    assert before.loc[3, "load"] == 4.0 and before.loc[3, "load@2"] == 6.0
    # a revised forecast for 01-05, issued on 01-04: rows dated before 01-04 are unchanged
    revised = _values([*first, ("2019-01-05", "2019-01-04", "", 50.0)])
    after = add_covariates(feats, revised, fs, {"A": "D"})
    pd.testing.assert_frame_equal(after.iloc[:3], before.iloc[:3])
    assert after.loc[3, "load@1"] == 50.0  # the row of 01-04 sees its own day's revision


def test_leads_follow_the_business_calendar_and_stop_at_known_ahead():
    fs = FeatureSet.of(future=[("load", 1)])
    feats = _feats(["2019-01-03", "2019-01-04"])  # Thursday, Friday
    values = _values([(d, "2019-01-01", "", 1.0) for d in ("2019-01-04", "2019-01-07")])
    out = add_covariates(feats, values, fs, {"A": "B"})
    assert out.loc[0, "load@1"] == 1.0  # Friday is one day after Thursday
    assert np.isnan(out.loc[1, "load@1"])  # Monday is three days after Friday: unknown


def test_missing_values_are_named_by_series_covariate_and_dates():
    feats = _feats(["2019-01-01", "2019-01-02", "2019-01-03"])
    feats["load"], feats["load@1"] = [1.0, 2.0, 3.0], [2.0, 3.0, np.nan]
    feats["actual"] = [5.0, np.nan, np.nan]
    declared = {"A": {"load": ("future", 1, "required"), "actual": ("past", 0, "mask")}}
    found = missing_covariates(feats, declared, {"A": "D"}, dt.date(2019, 1, 3))
    text = {m.covariate: m.describe() for m in found}
    assert "series A: future covariate 'load' not issued" in text["load"]
    assert "2019-01-04" in text["load"]
    assert "stopped arriving: no value for 2019-01-02, 2019-01-03" in text["actual"]


def _ingest(settings, as_of: dt.date) -> None:
    batches = [landing.ingest_source(settings, s, as_of) for s in landing.sources_for(settings)]
    gate.check_batches(settings.data_dir, batches, as_of, thresholds=settings.validation)
    curate.commit_batches(settings.data_dir, batches)


def test_the_electricity_sample_gives_point_in_time_leads(tmp_path):
    settings = load_settings(SAMPLE_CONFIG, data_dir=str(tmp_path))
    settings = settings.model_copy(update={"series": settings.series[:1]})  # DE
    _ingest(settings, AS_OF)
    refresh_features(settings, AS_OF)
    feats = load_features(settings, AS_OF)
    assert list(feats.columns) == settings.feature_set.columns
    last = feats.iloc[-1]
    assert last[schema.DATE] == pd.Timestamp(AS_OF)
    # the sample's rows of 06-30 and 07-01: 07-01's load forecast is known on 06-30
    assert last["load_forecast"] == 45231.0 and last["load_forecast@1"] == 56873.0
    assert last[schema.Y] == 15.13
    # negative prices are valid where declared (DE has them in 2019-2020)
    assert settings.series[0].negative_prices


def test_a_required_covariate_that_stopped_stops_the_run_and_a_masked_one_warns(tmp_path):
    settings = load_settings(
        series=[_series([{**LOAD, "missing": "required"}])], data_dir=str(tmp_path)
    )
    feats = _feats(["2019-01-01", "2019-01-02"], series="DE")
    feats["load_forecast"], feats["load_forecast@1"] = [1.0, 2.0], [2.0, np.nan]
    with pytest.raises(CovariateMissing, match="series DE: future covariate 'load_forecast'"):
        check_covariates(settings, feats, dt.date(2019, 1, 2))
    masked = load_settings(series=[_series([{**LOAD, "missing": "mask"}])], data_dir=str(tmp_path))
    warnings = check_covariates(masked, feats, dt.date(2019, 1, 2))
    assert warnings and "2019-01-03" in warnings[0] and "policy mask" in warnings[0]


def test_signed_prices_allow_negative_values_only_where_declared():
    batch = pd.DataFrame(
        {
            schema.SERIES_ID: "DE",
            schema.DATE: pd.date_range("2019-01-01", periods=30, freq="D"),
            "open": np.nan,
            "high": np.nan,
            "low": np.nan,
            "close": np.r_[40 + np.random.default_rng(0).normal(0, 8, 29).cumsum(), -5.0],
            "volume": np.nan,
        }
    )
    plain = validate_batch(batch, schema.PRICES, dt.date(2019, 1, 30), "prices-DE")
    assert not plain.success and "close_positive" in plain.summary()
    signed = validate_batch(batch, schema.PRICES, dt.date(2019, 1, 30), "prices-DE", signed=True)
    assert signed.success, signed.summary()


def test_a_covariate_issued_after_the_as_of_date_is_refused():
    values = _values([("2019-01-05", "2019-01-04", "", 1.0)])
    report = validate_batch(values, schema.COVARIATES, dt.date(2019, 1, 3), "covariates-A")
    assert not report.success and "issued_not_after_as_of" in report.summary()


def test_holidays_are_a_covariate_known_for_the_whole_horizon(tmp_path):
    settings = load_settings(SAMPLE_CONFIG, data_dir=str(tmp_path))
    settings = settings.model_copy(update={"series": settings.series[:1]})  # DE
    holiday = next(c for c in settings.series[0].covariates if c.name == "holiday")
    assert holiday.source == "holidays" and holiday.known_ahead == 14
    as_of = dt.date(2019, 12, 23)
    _ingest(settings, as_of)
    refresh_features(settings, as_of)
    last = load_features(settings, as_of).iloc[-1]
    assert last["holiday"] == 0.0 and last["holiday@1"] == 0.0  # 12-24 is no public holiday
    assert last["holiday@2"] == 1.0 and last["holiday@3"] == 1.0  # 25 and 26 December
    assert last["holiday@9"] == 1.0 and last["holiday@14"] == 0.0  # 1 January, 6 January


def test_a_holiday_calendar_the_package_lacks_is_named():
    bad = {"name": "holiday", "role": "future", "source": "holidays", "known_ahead": 5}
    with pytest.raises(ConfigError, match="unknown country code 'XX'"):
        load_settings(series=[_series([{**bad, "options": {"country": "XX"}}])])
    with pytest.raises(ConfigError, match="unknown subdivision 'ZZ' of DE"):
        load_settings(
            series=[_series([{**bad, "options": {"country": "DE", "subdivision": "ZZ"}}])]
        )


def _exogenous_settings(tmp_path, issued: bool, missing: str = "required"):
    drop = tmp_path / "drops"
    drop.mkdir(exist_ok=True)
    return load_settings(
        data_dir=str(tmp_path / "data"),
        start_date="2019-01-01",
        series=[
            _series(
                [
                    {
                        "name": "temp_fc",
                        "role": "future",
                        "known_ahead": 2,
                        "source": "exogenous",
                        "column": "temperature",
                        "options": {"dataset": "weather_fc", "key": "berlin"},
                        "missing": missing,
                    }
                ],
                source={"kind": "file", "options": {"path": str(tmp_path / "prices")}},
            )
        ],
        exogenous=[
            {
                "name": "weather_fc",
                "source": {"kind": "file", "options": {"path": str(drop)}},
                "key_column": "zone",
                "issued_column": "run" if issued else None,
            }
        ],
    )


def _drop_prices(tmp_path) -> None:
    (tmp_path / "prices").mkdir(exist_ok=True)
    days = pd.date_range("2019-01-01", "2019-01-10", freq="D")
    rows = "\n".join(f"{d.date()},{40 + i}" for i, d in enumerate(days))
    (tmp_path / "prices" / "de.csv").write_text("date,close\n" + rows + "\n")


def test_an_exogenous_data_set_with_issue_times_is_point_in_time(tmp_path):
    settings = _exogenous_settings(tmp_path, issued=True)
    _drop_prices(tmp_path)
    # forecasts of Berlin's temperature, from the runs of 01-04 and 01-05 (a revision of 01-06)
    (tmp_path / "drops" / "fc1.csv").write_text(
        "zone,date,run,temperature,other\n"
        "berlin,2019-01-05,2019-01-04,1.0,x\n"
        "berlin,2019-01-06,2019-01-04,2.0,x\n"
        "berlin,2019-01-06,2019-01-05,5.0,x\n"
        "berlin,2019-01-07,2019-01-05,3.0,x\n"
        "paris,2019-01-05,2019-01-04,9.0,x\n"
        "berlin,2019-01-12,2019-01-11,7.0,x\n"  # issued after the night: later data
    )
    as_of = dt.date(2019, 1, 5)
    _ingest(settings, as_of)
    values = curate.read_covariates(settings.data_dir, ["DE"], dt.date(2019, 12, 31))
    assert len(values) == 4 and (values["issued"] <= pd.Timestamp(as_of)).all()
    refresh_features(settings, as_of)
    feats = load_features(settings, as_of).set_index(schema.DATE)
    day4, day5 = feats.loc["2019-01-04"], feats.loc["2019-01-05"]
    assert day4["temp_fc@1"] == 1.0 and day4["temp_fc@2"] == 2.0  # as issued on 01-04
    assert day5["temp_fc"] == 1.0 and day5["temp_fc@1"] == 5.0  # the revision, from 01-05 on
    assert day5["temp_fc@2"] == 3.0


def test_an_exogenous_value_without_an_issue_time_is_issued_known_ahead_before(tmp_path):
    settings = _exogenous_settings(tmp_path, issued=False, missing="required")
    _drop_prices(tmp_path)
    (tmp_path / "drops" / "fc.csv").write_text(
        "zone,date,temperature\nberlin,2019-01-06,2.0\nberlin,2019-01-07,3.0\n"
        "berlin,2019-01-08,4.0\n"
    )
    as_of = dt.date(2019, 1, 5)
    _ingest(settings, as_of)
    values = curate.read_covariates(settings.data_dir, ["DE"], as_of)
    assert values["date"].max() == pd.Timestamp("2019-01-07")  # 01-08's is issued on 01-06
    refresh_features(settings, as_of)
    # tonight needs 01-06 and 01-07 (known_ahead 2): both there; the next night lacks 01-09
    _ingest(settings, dt.date(2019, 1, 7))
    with pytest.raises(CovariateMissing, match=r"'temp_fc' not issued .* 2019-01-09"):
        refresh_features(settings, dt.date(2019, 1, 7))


def test_an_exogenous_covariate_must_name_a_configured_data_set():
    with pytest.raises(ConfigError, match="no \\[\\[exogenous\\]\\] data set 'nope'"):
        load_settings(
            series=[
                _series(
                    [
                        {
                            "name": "x",
                            "role": "past",
                            "source": "exogenous",
                            "options": {"dataset": "nope"},
                        }
                    ]
                )
            ]
        )
