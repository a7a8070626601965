"""Secrets out of what the HTTP sources log, raise and record: query parameters that hold
secrets (``apikey``, ``token``, ``key``...) and URL passwords are replaced by ``***`` in URLs,
parameters and httpx's own request log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

SECRET_PARAMS = frozenset(
    {"apikey", "api_key", "key", "token", "access_token", "auth", "password", "secret", "sig"}
)
REDACTED = "***"


def is_secret_param(name: str) -> bool:
    return name.lower().replace("-", "_") in SECRET_PARAMS


def redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with the values of secret parameters replaced by ``***``."""
    return {k: (REDACTED if is_secret_param(k) else v) for k, v in params.items()}


def redact_url(url: str | httpx.URL) -> str:
    """``url`` with the values of secret query parameters (and any password) replaced."""
    parsed = httpx.URL(str(url))
    pairs = [(k, REDACTED if is_secret_param(k) else v) for k, v in parsed.params.multi_items()]
    safe = parsed.copy_with(params=pairs) if pairs else parsed
    if safe.password:
        safe = safe.copy_with(username=safe.username, password=REDACTED)
    return str(safe).replace("%2A%2A%2A", REDACTED)


def without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class _RedactUrls(logging.Filter):
    """Redacts secret query parameters from URLs in records (httpx logs every request URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


_REDACT_FILTER = _RedactUrls()


def redact_httpx_logs() -> None:
    """Keep secrets out of httpx's INFO line ``HTTP Request: GET <url> ...`` (idempotent)."""
    logger = logging.getLogger("httpx")
    if _REDACT_FILTER not in logger.filters:
        logger.addFilter(_REDACT_FILTER)
