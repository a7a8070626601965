"""Which dropped files were taken, so that each new file is picked up once.

One JSON document per (data set, key): ``state/file_drops/dataset=<d>/key=<k>.json``, mapping
each file's URL to a :class:`FileStamp`. A file is recorded only after its rows are committed to
curated data (see :func:`pipeline_lib.ingest.curate.commit_batches`), so a run that dies earlier
offers the same files again; re-committing them is an idempotent upsert. A file whose rows run past
the date it was taken through (a backfill of an old date) stays open and is offered again later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from urllib.parse import quote

from pipeline_lib.store.fs import atomic_write_bytes, filesystem, join


@dataclass(frozen=True)
class FileStamp:
    """What identifies one version of a dropped file, and how far its rows were taken.

    ``modified``: the storage's modification time as text (None where it has none);
    ``max_date``: the newest date in the file (ISO); ``taken_through``: the as-of date of the
    run that committed it; ``raw_path``: where its bytes were landed.
    """

    size: int
    modified: str | None
    sha256: str
    max_date: str | None
    taken_through: str
    raw_path: str

    @property
    def done(self) -> bool:
        """Every row of the file was taken (none is dated after ``taken_through``)."""
        return self.max_date is None or self.max_date <= self.taken_through


def manifest_url(data_dir: str, dataset: str, key: str) -> str:
    return join(
        data_dir,
        "state",
        "file_drops",
        f"dataset={quote(dataset, safe='')}",
        f"key={quote(key, safe='')}.json",
    )


def read_manifest(data_dir: str, dataset: str, key: str) -> dict[str, FileStamp]:
    """The files taken so far for ``dataset``/``key`` ({} before the first)."""
    fs, path = filesystem(manifest_url(data_dir, dataset, key))
    if not fs.exists(path):
        return {}
    with fs.open(path, "rb") as f:
        entries = json.load(f)
    return {url: FileStamp(**entry) for url, entry in entries.items()}


def record_files(
    data_dir: str, dataset: str, key: str, files: Iterable[tuple[str, FileStamp]]
) -> None:
    """Add or replace entries (file URL, stamp) in the manifest, atomically."""
    entries = read_manifest(data_dir, dataset, key)
    entries.update(files)
    doc = {url: asdict(stamp) for url, stamp in sorted(entries.items())}
    data = json.dumps(doc, indent=2, sort_keys=True).encode("utf-8")
    atomic_write_bytes(manifest_url(data_dir, dataset, key), data)
