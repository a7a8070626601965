"""Storage: atomic writes on any fsspec URL, raw landing, Hive-partitioned Parquet data sets.

Date convention: in every DataFrame the ``date`` column is pandas ``datetime64[ns]``, naive,
at midnight (a calendar day, no time zone). On disk it is a Parquet ``date32``.
"""

from pipeline_lib.store.fs import atomic_write_bytes, filesystem, join
from pipeline_lib.store.parquet import read_dataset, upsert_partitions, watermarks, with_year
from pipeline_lib.store.raw import land_raw

__all__ = [
    "atomic_write_bytes",
    "filesystem",
    "join",
    "land_raw",
    "read_dataset",
    "upsert_partitions",
    "watermarks",
    "with_year",
]
