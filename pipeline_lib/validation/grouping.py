"""Which batches of a data set can be validated in one Great Expectations run
(:mod:`pipeline_lib.validation.combined`): those whose rows, and whose histories' rows, all carry
the batch's own key (no other batch has it), with the same columns and dtypes, no repeated or
derived column name. Each :class:`Item` is one batch; :func:`groups` gathers the items of one
signature.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline_lib import schema
from pipeline_lib.validation.derived import DERIVED, has_derived
from pipeline_lib.validation.validate import KEYS


@dataclass(frozen=True)
class Item:
    """One batch to validate with others: its name (``prices-SP500``), its key (series id or
    location), its rows (unused by a freshness check) and its recent curated rows."""

    name: str
    key: str
    data: pd.DataFrame | None = None
    history: pd.DataFrame | None = None


def groups(items: Sequence[Item], signature: Callable[[Item], Hashable | None]) -> list[list[int]]:
    """Positions of the items that can be validated together, by signature (two or more);
    an item without a signature, or whose key another item has too, is left out."""
    counts = Counter(item.key for item in items)
    by_signature: dict[Hashable, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        found = signature(item) if counts[item.key] == 1 else None
        if found is not None:
            by_signature[found].append(i)
    return [members for members in by_signature.values() if len(members) > 1]


def batch_signature(item: Item, dataset: str) -> Hashable | None:
    """Columns and dtypes of an item's rows and history, or None when it must be validated
    alone: no rows, a repeated or derived column name, a row of another (or no) key."""
    key, df = KEYS[dataset], item.data
    if df is None or df.empty or key not in df.columns or df.columns.duplicated().any():
        return None
    if has_derived(dataset) and set(map(str, df.columns)) & set(DERIVED):
        return None
    past = history_signature(item, dataset)
    if past is None or not _only(df, key, item.key):
        return None
    return _signature(df), past


def history_signature(item: Item, dataset: str) -> Hashable | None:
    """Columns and dtypes of an item's history (``()`` for none), or None when a row of it
    belongs to another (or no) key."""
    key, past = KEYS[dataset], item.history
    if past is None or past.empty:
        return ()
    if key not in past.columns or schema.DATE not in past.columns:
        return None
    if past.columns.duplicated().any() or not _only(past, key, item.key):
        return None
    return _signature(past)


def _signature(df: pd.DataFrame) -> Hashable | None:
    try:
        found = (tuple(df.columns), tuple(df.dtypes))
        hash(found)
    except TypeError:  # an unhashable column name or dtype
        return None
    return found


def _only(df: pd.DataFrame, column: str, key: str) -> bool:
    """Whether every row of ``df`` has ``key`` in ``column`` (a null never has)."""
    values = df[column].to_numpy(dtype=object, na_value=None)
    return bool(np.all(values == key))
