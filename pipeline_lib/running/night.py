"""One forecast run's context: what every stage of the night reads and none of them changes.

The forecast flow builds it once, after reading the features and looking at the models folder,
and hands it to each stage instead of its parts (settings, date, run, features, models, the
lineage a backfill's chunk starts from).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from pipeline_lib.config import Settings
from pipeline_lib.forecasting.situation import Situation


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity (it holds a DataFrame)
class Night:
    """A forecast run's fixed inputs.

    Attributes:
        settings: Tonight's settings (a backfill's series only; the tuned model settings).
        as_of: The forecast date: only data dated on or before it is used.
        run_id: The forecast run (its row in ``pipeline_runs``, its artifacts).
        features: The stored features of every series (the stages cut them at ``as_of``).
        models: The models folder as tonight finds it: the models that count, the champion,
            the series long enough to train on, the hold-out start.
        lineage_start: A backfill chunk's first date: only models chosen from it on count
            (``models`` was read with it); None for a nightly.
    """

    settings: Settings
    as_of: dt.date
    run_id: str
    features: pd.DataFrame
    models: Situation
    lineage_start: dt.date | None = None
