"""Task arguments that Prefect passes on without walking them.

Before a task run is created Prefect walks its arguments for futures and states (to draw the
run's upstream edges), and again before it runs (to resolve them): every list, dict,
dataclass and pydantic model, element by element. A night's validation reports hold every
batch's checks with their offending rows: at 300 series the two walks took 1.2 s each, before
``publish-validation-artifact`` was created and again before it ran (the bench's log,
2026-12-06); the backtest's evaluation (every model's scores and the selection) 0.2 s each, for
each of the three tasks given it.
Prefect's own answer is :class:`prefect.utilities.annotations.quote`: the value is handed to the
task unwrapped and not walked; the one thing lost is the edge from the task that made it in the
run's graph. :func:`opaque` is that, typed as the value it wraps.
"""

from __future__ import annotations

from typing import TypeVar, cast

from prefect.utilities.annotations import quote

T = TypeVar("T")


def opaque(value: T) -> T:
    """``value`` as a task argument Prefect does not walk (:class:`quote`)."""
    return cast(T, quote(value))
