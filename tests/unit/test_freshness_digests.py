"""The freshness check's kept reports are found by digest: the digests of every item of a night,
computed in one pass, are each item's own digest (so reports kept by either match)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline_lib import schema
from pipeline_lib.validation import reuse
from pipeline_lib.validation.derived import newest_rows
from pipeline_lib.validation.grouping import Item
from pipeline_lib.validation.reuse import _question, freshness_digest, freshness_digests

AS_OF = dt.date(2024, 3, 8)


def prices(series: str, days: int, end: str = "2024-03-07") -> pd.DataFrame:
    dates = pd.bdate_range(end=end, periods=days)
    return pd.DataFrame({schema.SERIES_ID: series, schema.DATE: dates, "close": np.arange(days)})


def test_each_items_digest_comes_out_of_the_one_pass() -> None:
    late = prices("B", 5, end="2024-03-01")  # a stale series
    after = prices("C", 12, end="2024-03-12")  # rows after the as-of date are not read
    with_gap = prices("D", 6)
    with_gap.loc[2, schema.SERIES_ID] = None  # a row without its key
    categories = prices("E", 4).astype({schema.SERIES_ID: "category"})
    as_text = prices("F", 3).assign(date=lambda d: d[schema.DATE].dt.strftime("%Y-%m-%d"))
    both = pd.concat([prices("G", 3), prices("H", 2, end="2024-03-05")])  # two keys, one item
    items = [
        Item("prices-A", "A", history=prices("A", 30)),
        Item("prices-B", "B", history=late),
        Item("prices-C", "C", history=after),
        Item("prices-D", "D", history=with_gap),
        Item("prices-E", "E", history=categories),
        Item("prices-F", "F", history=as_text),
        Item("prices-G", "G", history=both),
        Item("prices-N", "N", history=None),
        Item("prices-M", "M", history=prices("M", 0)),
        Item("prices-Z", "Z", history=prices("Z", 3).drop(columns=schema.DATE)),
    ]
    question = _question(schema.PRICES, AS_OF, None)
    batched = freshness_digests(items, schema.PRICES, question, AS_OF)
    alone = [freshness_digest(item, schema.PRICES, question, AS_OF) for item in items]
    assert batched == alone
    assert len(set(batched)) == len(items)  # every item's own digest (names differ)

    weather = [
        Item(
            f"weather-{loc}", loc, history=prices(loc, 8).rename(columns={"series_id": "location"})
        )
        for loc in ("paris", "oslo")
    ]
    question = _question(schema.WEATHER, AS_OF, None)
    assert freshness_digests(weather, schema.WEATHER, question, AS_OF) == [
        freshness_digest(item, schema.WEATHER, question, AS_OF) for item in weather
    ]


def test_a_thousand_items_take_one_pass_not_a_thousand(monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest rows of 300 items are found by one call, not 300 (counted, not timed)."""
    items = [Item(f"prices-S{i}", f"S{i}", history=prices(f"S{i}", 40)) for i in range(300)]
    question = _question(schema.PRICES, AS_OF, None)
    calls: list[int] = []

    def counted(frame: pd.DataFrame, dataset: str, as_of: dt.date) -> pd.DataFrame:
        calls.append(len(frame))
        return newest_rows(frame, dataset, as_of)

    monkeypatch.setattr(reuse, "newest_rows", counted)
    batched = freshness_digests(items, schema.PRICES, question, AS_OF)
    assert calls == [300 * 40]  # one pass over every item's rows
    alone = [freshness_digest(item, schema.PRICES, question, AS_OF) for item in items]
    assert len(calls) == 1 + 300
    assert batched == alone
