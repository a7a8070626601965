"""What a successful HTTP answer becomes: the response with its request record (secrets
redacted), the :class:`Payload` a source returns, and a JSON body decoded with a clear error."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from pipeline_lib.ingest.sources.base import ParseError, Source
from pipeline_lib.store.raw import Payload


@dataclass(frozen=True)
class HttpResponse:
    """A successful answer: the body bytes unchanged and what was asked (secrets redacted)."""

    url: str  # without the query string
    params: dict[str, Any]  # secrets replaced by ***
    status: int
    content: bytes = field(repr=False)
    content_type: str
    attempts: int
    fetched_at: dt.datetime

    def record(self) -> dict[str, Any]:
        """The JSON-able request record for a payload (no secrets)."""
        return {
            "url": self.url,
            "params": self.params,
            "status": self.status,
            "attempts": self.attempts,
        }

    def payload(self, source: Source, media_type: str, name: str, **request: Any) -> Payload:
        """This answer as ``source``'s payload: the bytes unchanged, the request recorded
        (no secrets) with ``request`` added (e.g. the dates asked)."""
        return Payload(
            source=source.name,
            dataset=source.dataset,
            key=source.key,
            request={**self.record(), **request},
            fetched_at=self.fetched_at,
            content=self.content,
            media_type=media_type,
            name=name,
        )


def json_body(payload: Payload) -> Any:
    """The payload's bytes decoded as JSON; :class:`ParseError` when they are not."""
    try:
        text = payload.content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        raise ParseError(f"{payload.describe()}: {problem}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at_end = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        cut = "; the body looks truncated" if at_end else ""
        problem = (
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(character {exc.pos} of {len(text)}){cut}"
        )
        raise ParseError(f"{payload.describe()}: {problem}") from None
