"""Where each kind of data lives under the data folder (any fsspec URL)."""

from __future__ import annotations

from pipeline_lib.store.fs import join as _join


def raw_dir(data_dir: str) -> str:
    return _join(data_dir, "raw")


def curated_dir(data_dir: str, dataset: str) -> str:
    return _join(data_dir, "curated", dataset)


def features_dir(data_dir: str) -> str:
    return _join(data_dir, "features")


def models_dir(data_dir: str) -> str:
    return _join(data_dir, "models")


def quarantine_dir(data_dir: str) -> str:
    return _join(data_dir, "quarantine")


def reports_dir(data_dir: str, *parts: str) -> str:
    return _join(data_dir, "reports", *parts)
