"""A small, polite HTTP client for the live sources (httpx + tenacity).

- Timeouts: ``HttpConfig.connect_timeout_s`` and ``read_timeout_s``.
- Retries, ``HttpConfig.max_attempts`` tries in all, with exponential back-off and jitter
  (``backoff_initial_s`` doubling, capped at ``backoff_max_s``) on HTTP 5xx, 429 (its
  ``Retry-After`` is honoured, capped at ``backoff_max_s``), timeouts, connection errors and
  empty bodies. Other 4xx answers fail at once: asking again would not help.
- A per-host rate limit (``rate_limit_per_s``), shared by every client in the process and safe
  across threads; the ``User-Agent`` header; a response size cap (``max_response_bytes``):
  the body is streamed and the download stops as soon as it passes the cap.
- Errors are :class:`SourceError` naming what was asked (``context``), the URL with secrets
  redacted, what happened and after how many attempts. Query parameters that hold secrets
  (``apikey``, ``token``, ``key``...) are never logged, raised, or recorded in payloads.

The rate limit and the reading of ``Retry-After`` are in :mod:`.throttle`; a successful answer,
its payload and its JSON body in :mod:`.responses`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from pipeline_lib.config import HttpConfig
from pipeline_lib.ingest.sources.base import SourceError, utc_now
from pipeline_lib.ingest.sources.redaction import (
    REDACTED,
    is_secret_param,
    redact_httpx_logs,
    redact_params,
    redact_url,
    without_query,
)
from pipeline_lib.ingest.sources.responses import HttpResponse
from pipeline_lib.ingest.sources.throttle import SHARED_RATE_LIMITER, RateLimiter, retry_after

log = logging.getLogger(__name__)

_SNIPPET = 300


class HttpStatusError(SourceError):
    """The server answered with a final (not retried) error status; ``body`` is its start."""

    def __init__(self, message: str, status: int, body: bytes) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class _Transient(Exception):
    """A failure worth another try: 5xx, 429 or an empty body."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


class _TooLarge(Exception):
    pass


class HttpClient:
    """GET with timeouts, retries, rate limit, size cap and redacted errors.

    ``transport`` replaces httpx's network transport (tests: ``httpx.MockTransport``);
    ``sleep`` is what waits between attempts (tests: ``list.append`` records the waits);
    ``rate_limiter`` defaults to one shared by the whole process.
    """

    def __init__(
        self,
        config: HttpConfig | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config or HttpConfig()
        redact_httpx_logs()
        self._transport = transport
        self._sleep = sleep
        self._limiter = rate_limiter or SHARED_RATE_LIMITER
        self._backoff = wait_exponential_jitter(
            initial=self.config.backoff_initial_s,
            max=self.config.backoff_max_s,
            jitter=self.config.backoff_initial_s,
        )

    def _client(self) -> httpx.Client:
        cfg = self.config
        timeout = httpx.Timeout(
            connect=cfg.connect_timeout_s,
            read=cfg.read_timeout_s,
            write=cfg.read_timeout_s,
            pool=cfg.connect_timeout_s,
        )
        return httpx.Client(
            timeout=timeout,
            headers={"User-Agent": cfg.user_agent},
            transport=self._transport,
            follow_redirects=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, self.config.backoff_max_s)
        return float(self._backoff(state))

    def _read_capped(self, response: httpx.Response, limit: int) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _TooLarge(f"it declares {int(declared):,} bytes")
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise _TooLarge(f"more than {limit:,} bytes arrived; download stopped")
            chunks.append(chunk)
        return b"".join(chunks)

    def _once(self, client: httpx.Client, url: str, params: Mapping[str, Any]) -> HttpResponse:
        host = httpx.URL(url).netloc.decode("ascii")
        self._limiter.wait(host, 1.0 / self.config.rate_limit_per_s)
        with client.stream("GET", url, params=params) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                after = retry_after(response.headers.get("retry-after"))
                raise _Transient(f"HTTP {status} {response.reason_phrase}".strip(), after)
            if status >= 400:
                body = _read_head(response, _SNIPPET)
                raise HttpStatusError(f"HTTP {status} {response.reason_phrase}", status, body)
            content = self._read_capped(response, self.config.max_response_bytes)
            content_type = response.headers.get("content-type", "")
        if not content.strip():
            raise _Transient(f"HTTP {status} with an empty body")
        return HttpResponse(
            url=without_query(str(response.url)),
            params=redact_params(params),
            status=status,
            content=content,
            content_type=content_type,
            attempts=0,
            fetched_at=utc_now(),
        )

    def get(
        self, url: str, params: Mapping[str, Any] | None = None, *, context: str
    ) -> HttpResponse:
        """GET ``url`` with ``params``; ``context`` says what was asked, for messages
        (e.g. ``"stooq prices for series 'SP500', 2024-01-01 to 2024-01-31"``)."""
        params = dict(params or {})
        secrets = [str(v) for k, v in params.items() if is_secret_param(k) and v]
        safe_url = redact_url(httpx.URL(url, params=params))
        attempts = 0

        def scrub(text: str) -> str:
            for secret in secrets:
                text = text.replace(secret, REDACTED)
            return text

        def attempt(client: httpx.Client) -> HttpResponse:
            nonlocal attempts
            attempts += 1
            return self._once(client, url, params)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.upcoming_sleep
            log.warning(
                "%s: attempt %d of %d failed (%s); retrying in %.1f s",
                context,
                state.attempt_number,
                self.config.max_attempts,
                scrub(_describe(exc, self.config)),
                wait,
            )

        retrying = Retrying(
            stop=stop_after_attempt(self.config.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type((_Transient, httpx.TransportError)),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            with self._client() as client:
                response = retrying(attempt, client)
        except HttpStatusError as exc:
            snippet = exc.body[:_SNIPPET].decode("utf-8", "replace").strip()
            detail = f": {snippet}" if snippet else ""
            message = f"{context}: GET {safe_url} answered {exc} (not retried){detail}"
            body = exc.body
            for secret in secrets:
                body = body.replace(secret.encode(), REDACTED.encode())
            raise HttpStatusError(scrub(message), exc.status, body) from None
        except _TooLarge as exc:
            limit = self.config.max_response_bytes
            raise SourceError(
                scrub(
                    f"{context}: GET {safe_url}: the response is larger than "
                    f"http.max_response_bytes ({limit:,} bytes): {exc}"
                )
            ) from None
        except (_Transient, httpx.TransportError) as exc:
            tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
            raise SourceError(
                scrub(f"{context}: GET {safe_url} failed {tries}: {_describe(exc, self.config)}")
            ) from None
        except httpx.HTTPError as exc:  # e.g. too many redirects, invalid URL
            raise SourceError(
                scrub(f"{context}: GET {safe_url} failed: {type(exc).__name__}: {exc}")
            ) from None
        return dataclasses.replace(response, attempts=attempts)


def _read_head(response: httpx.Response, size: int) -> bytes:
    """The first ``size`` bytes of the body (for error messages)."""
    head = b""
    for chunk in response.iter_bytes():
        head += chunk
        if len(head) >= size:
            break
    return head[:size]


def _describe(exc: BaseException | None, config: HttpConfig) -> str:
    if isinstance(exc, _Transient):
        return exc.problem
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {config.connect_timeout_s:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out (read timeout {config.read_timeout_s:g} s)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the connection broke off: {exc}"
    if isinstance(exc, httpx.TransportError):
        return f"connection failed: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"
