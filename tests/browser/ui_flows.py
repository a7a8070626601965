"""Small flows whose pages the browser tests look at, run in a child process against the test's
Prefect server: ``python -m tests.browser.ui_flows <image URL>`` runs ``artifacts`` then
``refused`` and prints their flow run ids as JSON (PREFECT_API_URL set).

``toy`` only gives a deployment its parameter form (no worker runs it); ``artifacts`` leaves
markdown artifacts with images (one from ``arg``'s HTTP server, one inline ``data:`` URL) and
links, and a link artifact; ``refused`` returns a Failed state with a message, as a flow that
refuses its parameters does.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct
import sys
import zlib
from typing import Annotated, Literal

from prefect import flow
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.states import Failed, State
from pydantic import Field

REFUSAL = "end 2024-01-01 is before start 2024-01-05"


def png(width: int, height: int, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A ``width`` x ``height`` PNG of one colour (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width  # filter byte 0, then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


INLINE_PNG = "data:image/png;base64," + base64.b64encode(png(3, 2, (30, 30, 200))).decode()


@flow(name="toy")
def toy(
    start: dt.date,
    end: dt.date,
    parallel_chunks: Annotated[
        int, Field(ge=1, le=64, description="How many chunks run at the same time.")
    ] = 2,
    task_runner: Literal["threads", "dask"] = "threads",
    series: list[str] | None = None,
    note: str | None = None,
    dry_run: bool = False,
) -> None:
    """A flow with the flat, constrained parameters of a backfill form. (The form shows the
    description below; Prefect's schema drops the one given to Field.)

    Args:
        parallel_chunks: Chunks run at the same time (1-64).
    """


@flow(name="ui-artifacts")
def artifacts(image_url: str) -> None:
    """Markdown artifacts with a served image, an inline image and links; a link artifact."""
    create_markdown_artifact(
        key="plot-served",
        markdown=f"# Served plot\n\n![plot]({image_url})\n\n[the plot]({image_url})\n",
        description="an image from a local HTTP server",
    )
    create_markdown_artifact(
        key="plot-inline",
        markdown=f"# Inline plot\n\n![inline]({INLINE_PNG})\n",
        description="an inline data: image",
    )
    create_link_artifact(
        key="plot-link", link=image_url, link_text="plot.png", description="a link artifact"
    )


@flow(name="refused")
def refused() -> State:
    """Ends Failed with a message, without raising."""
    return Failed(message=REFUSAL)


def main(image_url: str) -> dict[str, str]:
    """Run ``artifacts`` and ``refused``; their flow run ids by flow."""
    made = artifacts(image_url, return_state=True)
    failed = refused(return_state=True)
    return {
        "artifacts": str(made.state_details.flow_run_id),
        "refused": str(failed.state_details.flow_run_id),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
