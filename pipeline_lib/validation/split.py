"""Split one Great Expectations result over several batches into each batch's own result.

The batches' rows were validated together (COMPLETE format: every offending row, named by the
batch key and the date). Per batch and expectation: a map expectation's offending rows are the
ones with the batch's key; its counts and its SUMMARY result (the first ``MAX_ROWS`` offending
rows) are rebuilt with GX's own formatter, from the batch's rows and missing values, as GX
counts them (``ignore_row_if``, ``mostly``); the row count is the batch's; a check of columns
and dtypes has the same result for every batch (they share them). ``item_result`` gives a
batch's GX result (JSON) as a run of its own would: its results, statistics and fingerprint.
GX is imported on first use.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline_lib.validation.report import MAX_ROWS
from pipeline_lib.validation.results import jsonable

ROW_COUNT = "expect_table_row_count_to_be_between"
NOT_NULL = "expect_column_values_to_not_be_null"
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
COMPOUND = "expect_compound_columns_to_be_unique"
# Expectation types the split knows: map expectations (their offending rows name their key),
# the row count (per batch), and checks whose result depends on columns and dtypes only (the
# same for every batch of a group). Type checks are map checks on object columns only.
SPLITS = {
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_type_list",
    "expect_table_columns_to_match_set",
    NOT_NULL,
    PAIR,
    COMPOUND,
    ROW_COUNT,
}


def splits(suite: Any) -> bool:
    """Whether every expectation of ``suite`` is of a type the split knows."""
    return all(e.expectation_type in SPLITS for e in suite.expectations)


class Split:
    """Splits GX results over ``data`` by item: row ``r`` belongs to item ``owners[r]``, whose
    key is ``keys[owners[r]]``; GX names offending rows by ``index`` (key first, then date)."""

    def __init__(
        self, data: pd.DataFrame, owners: np.ndarray, keys: list[str], index: list[str]
    ) -> None:
        from great_expectations.expectations.expectation_configuration import (
            parse_result_format,
        )

        self.data, self.owners, self.index = data, owners, index
        # key -> item, looked up with whatever GX put in an index entry (None if absent)
        self.at: dict[Hashable, int] = {k: i for i, k in enumerate(keys)}
        self.sizes = np.bincount(owners, minlength=len(keys)).astype("int64")
        ranked = np.argsort(owners, kind="stable")
        bounds = np.searchsorted(owners[ranked], np.arange(len(keys) + 1))
        self.rows = [ranked[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.small: bool | None = None  # whether all rows are small enough for a fingerprint
        self.format = parse_result_format(
            {
                "result_format": "SUMMARY",  # as for a batch validated alone (validate._run)
                "partial_unexpected_count": MAX_ROWS,
                "unexpected_index_column_names": index,
            }
        )

    def size(self, i: int) -> int:
        """Item ``i``'s rows."""
        return int(self.sizes[i])

    def fingerprint(self, i: int) -> str | None:
        """GX's fingerprint of item ``i``'s rows, as GX marks a batch of its own (None for a
        batch too large to hash)."""
        from great_expectations.execution_engine.pandas_execution_engine import (
            HASH_THRESHOLD,
            hash_pandas_dataframe,
        )

        if self.small is None:  # the items' rows are no larger than all of them together
            self.small = bool(self.data.memory_usage().sum() < HASH_THRESHOLD)
        rows = self.rows[i]
        together = len(rows) > 0 and rows[-1] - rows[0] + 1 == len(rows)  # a slice is cheaper
        frame = self.data.iloc[rows[0] : rows[-1] + 1] if together else self.data.iloc[rows]
        frame = frame.reset_index(drop=True)  # the index it has when validated alone
        if not self.small and frame.memory_usage().sum() >= HASH_THRESHOLD:
            return None
        return hash_pandas_dataframe(frame)

    def shares(
        self, r: Any, expectation: Any
    ) -> list[tuple[bool, dict[str, Any], dict[str, Any] | None]] | None:
        """Per item: success, result (GX's values) and result (JSON; None where it is GX's
        own, the same for every item) of one expectation; None if a row names no item."""
        res = r.result or {}
        if "unexpected_index_list" in res:  # a map expectation: its offending rows by item
            return self._map_shares(res, expectation)
        if expectation.expectation_type == ROW_COUNT:
            counts = [{"observed_value": int(size)} for size in self.sizes]
            return [(within(c["observed_value"], expectation), c, c) for c in counts]
        return [(bool(r.success), res, None)] * len(self.sizes)  # on columns and dtypes only

    def _map_shares(
        self, res: dict[str, Any], expectation: Any
    ) -> list[tuple[bool, dict[str, Any], dict[str, Any] | None]] | None:
        from great_expectations.util import convert_to_json_serializable

        index = res["unexpected_index_list"]
        values = offending_values(res.get("unexpected_list"), index, expectation)
        if values is False:
            return None
        where: list[list[int]] = [[] for _ in self.sizes]  # offending rows' positions, by item
        for p, entry in enumerate(index):
            i = self.at.get(entry.get(self.index[0])) if isinstance(entry, dict) else None
            if i is None:
                return None
            where[i].append(p)
        skipped = skipped_rows(self.data, expectation)
        if skipped is not None:
            missing = np.bincount(self.owners, weights=skipped, minlength=len(self.sizes))
        out = []
        clean: dict[tuple[int, int | None], dict[str, Any]] = {}  # by rows and non-missing
        for i, mine in enumerate(where):
            total = int(self.sizes[i])
            nonnull = None if skipped is None else total - int(missing[i])
            success = map_success(expectation, total, nonnull, len(mine))
            if mine:
                first = mine[:MAX_ROWS]
                raw = self._summary(success, total, nonnull, len(mine), values, index, first)
                out.append((success, raw, convert_to_json_serializable(raw)))  # as to_json_dict
            else:  # plain numbers and names, the same for every item of its size: made once
                if (total, nonnull) not in clean:
                    clean[total, nonnull] = self._summary(
                        success, total, nonnull, 0, values, index, []
                    )
                raw = clean[total, nonnull]
                out.append((success, raw, raw))
        return out

    def _summary(
        self,
        success: bool,
        total: int,
        nonnull: int | None,
        count: int,
        values: list[Any] | None,
        index: list[Any],
        first: list[int],
    ) -> dict[str, Any]:
        """GX's SUMMARY result of a map expectation on one item (its first offending rows)."""
        from great_expectations.expectations.expectation import _format_map_output

        return _format_map_output(
            self.format,
            success,
            element_count=total,
            nonnull_count=nonnull,
            unexpected_count=count,
            unexpected_list=None if values is None else [values[j] for j in first],
            unexpected_index_list=[index[j] for j in first],
            unexpected_index_column_names=self.index,
        )["result"]


def offending_values(
    values: list[Any] | None, index: list[Any], expectation: Any
) -> list[Any] | Literal[False] | None:
    """The values of every offending row (``unexpected_list``, one per entry of ``index``).

    GX keeps at most 200 values (``great_expectations.constants.MAX_RESULT_RECORDS``) even in
    a COMPLETE result, but every row's index entry, which holds the checked columns' values too:
    the rest are read from there. False when they cannot be (the caller validates the batches
    alone)."""
    if values is None or len(values) >= len(index):
        return values
    kind = expectation.expectation_type
    rebuilt: list[Any]
    try:
        if kind == PAIR:
            a, b = expectation.column_A, expectation.column_B
            rebuilt = [(e[a], e[b]) for e in index]
        elif kind == COMPOUND:
            columns = list(expectation.column_list)
            rebuilt = [{c: e[c] for c in columns} for e in index]
        else:
            rebuilt = [e[expectation.column] for e in index]
    except (KeyError, TypeError, AttributeError):
        return False
    same = all(_equal(x, y) for x, y in zip(rebuilt, values, strict=False))
    return rebuilt if same else False


def _equal(x: Any, y: Any) -> bool:
    """Equal values, NaN equal to NaN (an offending value may be missing)."""
    if isinstance(x, tuple | list) and isinstance(y, tuple | list):
        return len(x) == len(y) and all(_equal(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    if np.ndim(x) or np.ndim(y):
        return False
    return bool(x == y) or bool(pd.isna(x) and pd.isna(y))


def skipped_rows(data: pd.DataFrame, expectation: Any) -> np.ndarray | None:
    """The rows GX leaves out of a map expectation's non-missing count (by its
    ``ignore_row_if``), or None where it counts none (``not_null``)."""
    kind = expectation.expectation_type
    if kind == NOT_NULL:
        return None
    if kind == PAIR:
        a = data[expectation.column_A].isna().to_numpy()
        b = data[expectation.column_B].isna().to_numpy()
        rules = {"both_values_are_missing": a & b, "either_value_is_missing": a | b}
        return rules.get(expectation.ignore_row_if, np.zeros(len(data), dtype=bool))
    if kind == COMPOUND:
        nulls = data[list(expectation.column_list)].isna().to_numpy()
        rules = {
            "all_values_are_missing": nulls.all(axis=1),
            "any_value_is_missing": nulls.any(axis=1),
        }
        return rules.get(expectation.ignore_row_if, np.zeros(len(data), dtype=bool))
    return data[expectation.column].isna().to_numpy()


def map_success(expectation: Any, total: int, nonnull: int | None, unexpected: int) -> bool:
    """A map expectation's verdict on one item, as GX decides it."""
    mostly = getattr(expectation, "mostly", None)
    mostly = 1.0 if mostly is None else float(mostly)
    if nonnull is None:  # not_null: every row counts
        return total == 0 or (total - unexpected) / total >= mostly
    if total == 0 or nonnull == 0:
        return True  # vacuously
    return (nonnull - unexpected) / nonnull >= mostly


def within(value: int, expectation: Any) -> bool:
    """A row count within the expectation's bounds."""
    low, high = expectation.min_value, expectation.max_value
    if low is not None and not (value > low if expectation.strict_min else value >= low):
        return False
    return high is None or (value < high if expectation.strict_max else value <= high)


def item_result(
    whole: dict[str, Any], results: list[dict[str, Any]], fingerprint: str | None
) -> dict[str, Any]:
    """One item's GX result (JSON): the combined result's with the item's results, statistics
    and data fingerprint (``Split.fingerprint``)."""
    successful = sum(bool(r["success"]) for r in results)
    evaluated = len(results)
    meta = dict(whole.get("meta") or {})
    markers = dict(meta.get("batch_markers") or {})
    markers.pop("pandas_data_fingerprint", None)
    if fingerprint is not None:
        markers["pandas_data_fingerprint"] = fingerprint
    meta["batch_markers"] = markers
    statistics = {
        "evaluated_expectations": evaluated,
        "successful_expectations": successful,
        "unsuccessful_expectations": evaluated - successful,
        "success_percent": successful / evaluated * 100 if evaluated else None,
    }
    item = {**whole, "success": successful == evaluated, "results": results}
    item.update(statistics=statistics, meta=meta)
    return jsonable(item)
