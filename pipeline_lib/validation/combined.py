"""Validate many batches of one data set in one Great Expectations run, each with its own report.

A night brings one small batch per series or location. Validated one by one, each batch pays
GX's fixed cost (the suite's metric graph, the result's serialisation: about 0.3 s) whatever its
size; here the batches' rows are validated together and GX's result is split back per batch by
the key column (:mod:`split`). Each batch gets the report ``validate_batch`` (or
``check_freshness``) gives it alone, ``gx_result`` included. The derived columns, revisions and
newest rows are computed in one pass over the batches and their histories too; they are computed
per key, so each batch gets the values it gets alone. The run itself is returned as a ``Run``
(GX's result over all the batches), one Data Docs page for them all.

Batches are combined only where the split is exact: every row of a batch (and of its history)
carries the batch's key, no other batch has that key, the batches share their columns and dtypes
(and their histories theirs), no column name is repeated or derived, and the suite holds only
expectation types the split knows. Any other batch is validated alone, as is every batch of a
group whose GX run raised an error (the error then names its own batch).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from pipeline_lib.config import ValidationConfig
from pipeline_lib.validation.derived import add_derived, has_derived, newest_rows
from pipeline_lib.validation.grouping import Item, batch_signature, groups, history_signature
from pipeline_lib.validation.report import ExpectationFailure, ValidationReport
from pipeline_lib.validation.results import check_of, failure_from, jsonable, raised
from pipeline_lib.validation.revisions import (
    find_revisions,
    has_revisions,
    revision_check,
    revision_note,
)
from pipeline_lib.validation.split import Split, item_result, splits
from pipeline_lib.validation.validate import (
    KEYS,
    check_freshness,
    index_columns,
    no_data,
    report_of,
    run_gx,
    runnable,
    validate_batch,
)

RUN_ROWS = 100  # offending rows per check kept in a run's result (its Data Docs page)


@dataclass(frozen=True)
class Run:
    """One GX run over several batches, for the Data Docs: its name (``prices-SP500-and-99-more``),
    the batches' names and GX's result (JSON; each check's first ``RUN_ROWS`` offending rows,
    with their key and date)."""

    dataset: str
    name: str
    batches: list[str]
    gx_result: dict[str, Any]


@dataclass
class Validated:
    """One report per item, in order, and the GX runs that validated several of them."""

    reports: list[ValidationReport]
    runs: list[Run]


@dataclass
class _Share:
    """One item's share of a combined GX run: what ``_run`` makes of a run of its own."""

    rows: int  # the item's rows in the validated frame
    failed: list[ExpectationFailure]  # in suite order
    evaluated: int
    skipped: list[str]
    gx_result: dict[str, Any]


def validate_batches(
    items: Sequence[Item],
    dataset: str,
    as_of: dt.date,
    thresholds: ValidationConfig | None = None,
    **options: Any,
) -> Validated:
    """The report ``validate_batch`` gives each item (its rows, history and name), in order,
    from one GX run per group of items that can be validated together."""
    if not items:  # nothing to validate: no GX (its import alone costs seconds)
        return Validated([], [])
    from pipeline_lib.validation.suites import suite_for

    suite = suite_for(dataset, as_of, thresholds, **options)
    reports: dict[int, ValidationReport] = {}
    runs: list[Run] = []
    if splits(suite):
        for members in groups(items, lambda item: batch_signature(item, dataset)):
            group = [items[i] for i in members]
            got = _validate_group(group, dataset, as_of, suite, thresholds, options)
            if got is not None:
                reports.update(zip(members, got[0], strict=True))
                runs.append(got[1])
    for i, item in enumerate(items):
        if i not in reports:
            data = item.data if item.data is not None else pd.DataFrame()
            reports[i] = validate_batch(
                data, dataset, as_of, item.name, item.history, thresholds, **options
            )
    return Validated([reports[i] for i in range(len(items))], runs)


def check_freshness_all(
    items: Sequence[Item],
    dataset: str,
    as_of: dt.date,
    thresholds: ValidationConfig | None = None,
) -> Validated:
    """The report ``check_freshness`` gives each item (its history and name), in order, from
    one GX run over every item's newest curated row."""
    from pipeline_lib.validation.suites import freshness_suite

    suite = freshness_suite(dataset, thresholds)
    reports: dict[int, ValidationReport] = {}
    runs: list[Run] = []
    for members in groups(items, lambda item: history_signature(item, dataset)):
        group = [items[i] for i in members]
        newest = newest_rows(_concat([it.history for it in group]), dataset, as_of)
        at = {item.key: i for i, item in enumerate(group)}
        owners = newest[KEYS[dataset]].map(at).to_numpy(dtype="float64", na_value=np.nan)
        if np.isnan(owners).any():
            continue  # a newest row of no item's key: validated alone
        split = _run_split(newest, suite, dataset, group, owners.astype("int64"))
        if split is None:
            continue
        shares, run = split
        for i, item, share in zip(members, group, shares, strict=True):
            pre = [] if share.rows else [no_data(dataset, as_of)]
            reports[i] = _report(dataset, item.name, as_of, 0, pre, share, [])
        runs.append(run)
    for i, item in enumerate(items):
        if i not in reports:
            reports[i] = check_freshness(item.history, dataset, as_of, item.name, thresholds)
    return Validated([reports[i] for i in range(len(items))], runs)


def _validate_group(
    items: list[Item],
    dataset: str,
    as_of: dt.date,
    suite: Any,
    thresholds: ValidationConfig | None,
    options: dict[str, Any],
) -> tuple[list[ValidationReport], Run] | None:
    """The items' reports and the GX run over their rows; None when GX raised an error."""
    frames = [it.data for it in items if it.data is not None]
    rows = pd.concat(frames, ignore_index=True)
    past = _concat([it.history for it in items])
    if has_derived(dataset):
        data = add_derived(rows, dataset, as_of, past, bool(options.get("signed", False)))
    else:
        data = rows.copy()
    owners = np.repeat(np.arange(len(items)), [len(f) for f in frames])
    split = _run_split(data, suite, dataset, items, owners)
    if split is None:
        return None
    shares, run = split
    posts, notes = _revisions(items, rows, past, dataset, as_of, thresholds)
    reports = []
    for item, share, post, note in zip(items, shares, posts, notes, strict=True):
        report = _report(dataset, item.name, as_of, share.rows, [], share, post)
        report.notes = note
        reports.append(report)
    return reports, run


def _revisions(
    items: list[Item],
    rows: pd.DataFrame,
    past: pd.DataFrame | None,
    dataset: str,
    as_of: dt.date,
    thresholds: ValidationConfig | None,
) -> tuple[list[list[ExpectationFailure]], list[list[str]]]:
    """Each item's ``revisions`` entry and note (see :mod:`revisions`), found in one pass."""
    posts: list[list[ExpectationFailure]] = [[] for _ in items]
    notes: list[list[str]] = [[] for _ in items]
    if not has_revisions(dataset):
        return posts, notes
    found = find_revisions(rows, past, dataset, as_of)
    if found.empty:
        return posts, notes
    key = KEYS[dataset]
    for i, item in enumerate(items):
        mine = found[found[key] == item.key]
        revised = revision_check(mine, item.history, dataset, as_of, thresholds)
        if revised is not None:
            posts[i].append(revised)
            refused = revised.severity == "critical"
            notes[i].append(revision_note(item.name, mine, dataset, refused))
    return posts, notes


def _report(
    dataset: str,
    name: str,
    as_of: dt.date,
    row_count: int,
    pre: list[ExpectationFailure],
    share: _Share,
    post: list[ExpectationFailure],
) -> ValidationReport:
    evaluated = share.evaluated + len(pre) + len(post)
    failed = pre + share.failed + post
    return report_of(
        dataset, name, as_of, row_count, evaluated, failed, share.skipped, share.gx_result
    )


def _run_split(
    data: pd.DataFrame, suite: Any, dataset: str, items: list[Item], owners: np.ndarray
) -> tuple[list[_Share], Run] | None:
    """Validate ``data`` (row ``r`` belongs to ``items[owners[r]]``) in one GX run and split
    the result per item; None when GX raised an error or an offending row names no item."""
    present = set(map(str, data.columns))
    run_suite, skipped, order = runnable(suite, present)
    keys = index_columns(dataset, present)
    every = {
        "result_format": "COMPLETE",  # every offending row, to split them by key
        "partial_unexpected_count": RUN_ROWS,
        "unexpected_index_column_names": keys,
    }
    result = run_gx(data, run_suite, every)
    if not keys or any(raised(r.exception_info) for r in result.results):
        return None
    expectations = {check_of(e): e for e in run_suite.expectations}
    split = Split(data, owners, [item.key for item in items], keys)
    by_result = []
    for r in result.results:
        shares = split.shares(r, expectations[check_of(r.expectation_config)])
        if shares is None:
            return None
        by_result.append(shares)
        r.result = _first_rows(r.result or {})  # from here on: the run's Data Docs page
    whole = result.to_json_dict()
    whole.get("meta", {}).get("batch_markers", {}).pop("ge_load_time", None)  # determinism
    checked: list[list[_Checked]] = [[] for _ in items]
    for r, r_json, shares in zip(result.results, whole["results"], by_result, strict=True):
        config = r.expectation_config
        for mine, (success, raw, js) in zip(checked, shares, strict=True):
            js = r_json.get("result") if js is None else js  # None: the same for every item
            as_json = {**r_json, "success": success, "result": js}
            mine.append(_Checked(order[check_of(config)], config, success, raw, as_json))
    out = []
    for i, mine in enumerate(checked):
        ranked = sorted(mine, key=lambda c: c.order)  # the suite's order, as validate._run
        failed = [failure_from(c.config, c.result, {}) for c in ranked if not c.success]
        gx = item_result(whole, [c.json for c in mine], split.fingerprint(i))
        out.append(_Share(split.size(i), failed, len(mine), list(skipped), gx))
    name = f"{items[0].name}-and-{len(items) - 1}-more"
    return out, Run(dataset, name, [item.name for item in items], jsonable(whole))


def _first_rows(res: dict[str, Any]) -> dict[str, Any]:
    """A COMPLETE map result cut to its first ``RUN_ROWS`` offending rows: their values and
    their key and date, which the Data Docs page shows (GX renders the key of each row only
    from ``unexpected_index_list``)."""
    out = {k: v for k, v in res.items() if k not in ("unexpected_list", "unexpected_index_query")}
    if "unexpected_index_list" in out:
        out["unexpected_index_list"] = out["unexpected_index_list"][:RUN_ROWS]
    return out


class _Checked(NamedTuple):
    """One expectation's verdict on one item."""

    order: int  # the expectation's position in the suite
    config: Any  # GX's ExpectationConfiguration
    success: bool
    result: dict[str, Any]  # GX's result values, for the report
    json: dict[str, Any]  # GX's result as JSON, for ``gx_result``


def _concat(frames: Sequence[pd.DataFrame | None]) -> pd.DataFrame | None:
    """The non-empty frames one after the other, or None when there are none."""
    found = [f for f in frames if f is not None and not f.empty]
    return pd.concat(found, ignore_index=True) if found else None
