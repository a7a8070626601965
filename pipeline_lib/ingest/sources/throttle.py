"""When a live source may be asked again: a per-host rate limit shared across threads, and the
wait a server asks for in its ``Retry-After`` header. :class:`~.http.HttpClient` uses both."""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
import time
from collections.abc import Callable

from pipeline_lib.ingest.sources.base import utc_now


class RateLimiter:
    """At most one request per ``interval`` seconds per host, across threads.

    Each caller reserves the next free slot under a lock, then sleeps outside it.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, host: str, interval: float) -> float:
        """Block until ``host`` may be asked again; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + interval
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
        return max(delay, 0.0)


SHARED_RATE_LIMITER = RateLimiter()


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - utc_now()).total_seconds(), 0.0)
