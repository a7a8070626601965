"""A validation with each expectation's configuration and domain object kept for the call and
the metric ids made by ``memo.plain_json`` (``validation.memo``) gives exactly the results GX
gives without them, and leaves GX's own methods and converter in place."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Iterator

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
import pytest
from great_expectations.core import id_dict
from great_expectations.core.id_dict import IDDict
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.util import convert_to_json_serializable

from pipeline_lib import schema
from pipeline_lib.features import build_features
from pipeline_lib.validation import memo, validate, validate_batch
from pipeline_lib.validation.combined import validate_batches
from pipeline_lib.validation.grouping import Item

AS_OF = dt.date(2013, 5, 31)


def _prices(series_id: str) -> pd.DataFrame:
    """Two weeks with a negative close, a missing close, a swapped high and low, a doubled day."""
    dates = pd.bdate_range("2013-05-20", AS_OF)
    close = 95.0 + np.arange(len(dates), dtype="float64")
    df = pd.DataFrame(
        {"series_id": series_id, "date": dates, "close": close, "high": close + 1, "low": close}
    ).reindex(columns=schema.PRICE_COLUMNS)
    df.loc[2, "close"] = -1.0
    df.loc[3, "close"] = None
    df.loc[4, ["high", "low"]] = [1.0, 5.0]
    return pd.concat([df, df.iloc[[5]]], ignore_index=True)


def _weather() -> pd.DataFrame:
    dates = pd.date_range("2013-05-20", AS_OF)
    return pd.DataFrame(
        {
            "location": "seattle",
            "date": dates,
            "temp_max": 20.0,
            "temp_min": np.where(np.arange(len(dates)) == 3, 25.0, 10.0),  # min above max once
            "temp_mean": 15.0,
            "precipitation": -1.0,  # out of range every day
            "wind_speed": 3.0,
        }
    )[schema.WEATHER_COLUMNS]


def _reports() -> list[tuple[object, ...]]:
    prices = pd.concat([_prices("A"), _prices("B")], ignore_index=True)
    weather = _weather()
    features = build_features(
        prices.dropna(subset=["close"]), weather, {"A": "seattle", "B": "seattle"}, AS_OF
    )
    alone = [
        validate_batch(_prices("A"), schema.PRICES, AS_OF, "prices-A"),
        validate_batch(weather, schema.WEATHER, AS_OF, "weather"),
        validate_batch(features, schema.FEATURES, AS_OF, "features"),
    ]
    items = [Item(f"prices-{k}", k, _prices(k), None) for k in ("A", "B")]
    together = validate_batches(items, schema.PRICES, AS_OF)
    reports = [*alone, *together.reports]
    runs = [run.gx_result for run in together.runs]  # the one GX run over both
    return [(r.batch_name, r.success, r.failures, r.skipped, r.gx_result) for r in reports] + runs


def test_results_are_those_gx_gives_without_the_kept_configurations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept = _reports()
    lock = threading.Lock()

    @contextlib.contextmanager
    def plain() -> Iterator[None]:
        with lock:
            yield

    monkeypatch.setattr(validate, "one_validation", plain)
    assert _reports() == kept
    assert len(kept) == 6 and [r[1] for r in kept[:5]] == [False] * 5  # each one fails


def test_plain_json_converts_as_gx_does() -> None:
    class Kind(str, __import__("enum").Enum):
        COLUMN = "column"

    values = [
        None, "close", "", 0, -3, 2**70, True, False, 0.1, 1e300, float("inf"), float("nan"),
        [1, "a", None, [2.5, float("nan")]], (1, (2, 3)), {3, 1}, {"b": 1, 2: [None]},
        {"column": "close", "mostly": 0.95, "result_format": {"result_format": "SUMMARY"}},
        IDDict({"batch_id": "x", "column": "close"}), np.int64(4), np.float32(0.1),
        np.bool_(True), np.array([1.5, 2.0]), pd.Timestamp("2020-01-02"), dt.date(2020, 1, 2),
        Kind.COLUMN, {"value_set": [np.int64(1), dt.date(2020, 1, 2)], "k": (None, "x")},
    ]  # fmt: skip
    for value in values:
        assert json.dumps(memo.plain_json(value), sort_keys=True) == json.dumps(
            convert_to_json_serializable(value), sort_keys=True
        ), value


def test_gx_gets_its_property_back_and_other_threads_never_see_the_kept_ones() -> None:
    built = Expectation.configuration
    made = ExpectationConfiguration.to_domain_obj
    converter = id_dict.convert_to_json_serializable
    assert converter is convert_to_json_serializable
    expectation = gxe.ExpectColumnValuesToNotBeNull(column="close")
    elsewhere: list[bool] = []
    with pytest.raises(RuntimeError, match="failed"), memo.one_validation():
        assert expectation.configuration is expectation.configuration  # kept for the call
        config = expectation.configuration
        assert config.to_domain_obj() is config.to_domain_obj()
        assert id_dict.convert_to_json_serializable is memo.plain_json
        worker = threading.Thread(target=lambda: elsewhere.append(_kept(expectation)))
        worker.start()
        worker.join()
        raise RuntimeError("a failed validation")
    assert Expectation.configuration is built
    assert ExpectationConfiguration.to_domain_obj is made
    assert id_dict.convert_to_json_serializable is converter
    assert elsewhere == [False] and not _kept(expectation)


def _kept(expectation: Expectation) -> bool:
    """Whether reading the configuration twice, or making its expectation twice, gives the same
    object (GX builds a new one)."""
    config = expectation.configuration
    return config is expectation.configuration or config.to_domain_obj() is config.to_domain_obj()
