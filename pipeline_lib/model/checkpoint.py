"""Versioned checkpoints on any fsspec URL, in a safe format only (never pickle).

Layout: ``<models_url>/<version>/model.safetensors`` (weights) and ``<version>/metadata.json``
(everything needed to rebuild the model and audit it). Each file is written under a temporary
name and then moved into place; the metadata is written last, so a version is listed only once
its weights are complete. Loading uses ``safetensors.torch.load`` on bytes, never ``torch.load``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Container
from typing import Any

import safetensors.torch
from fsspec.core import url_to_fs
from fsspec.spec import AbstractFileSystem

from pipeline_lib.model.scaling import SeriesScalers
from pipeline_lib.model.trained import TrainedModel, build_module
from pipeline_lib.store.fs import atomic_write_bytes

WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1


def _root(models_url: str) -> tuple[AbstractFileSystem, str]:
    fs, path = url_to_fs(models_url)
    return fs, path.rstrip("/")


def metadata_record(trained: TrainedModel, weights_sha256: str) -> dict[str, Any]:
    """The JSON record saved next to the weights."""
    return {
        "format_version": FORMAT_VERSION,
        "version": trained.version,
        "kind": trained.kind,
        "parent_version": trained.parent_version,
        "train_start": trained.train_start.isoformat(),
        "train_end": trained.train_end.isoformat(),
        "horizon": trained.horizon,
        "quantiles": list(trained.quantiles),
        "series_ids": list(trained.series_ids),
        "feature_names": list(trained.feature_names),
        "calendar_features": list(trained.calendar_features),
        "hyperparameters": trained.hyperparameters,
        "training_config": trained.training_config,
        "scalers": trained.scalers.to_dict(),
        "metrics": trained.metrics,
        "data_fingerprint": trained.data_fingerprint,
        "weights_sha256": weights_sha256,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def save_model(models_url: str, trained: TrainedModel) -> str:
    """Write ``trained`` under its deterministic version and return the version string.

    Saving the same model twice rewrites the same folder (idempotent).
    """
    fs, root = _root(models_url)
    version = trained.version
    folder = f"{root}/{version}"
    fs.makedirs(folder, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in trained.module.state_dict().items()}
    weights = safetensors.torch.save(state, metadata={"version": version})
    atomic_write_bytes(fs.unstrip_protocol(f"{folder}/{WEIGHTS_FILE}"), weights)
    record = metadata_record(trained, hashlib.sha256(weights).hexdigest())
    atomic_write_bytes(
        fs.unstrip_protocol(f"{folder}/{METADATA_FILE}"), json.dumps(record, indent=2).encode()
    )
    return version


def read_metadata(models_url: str, version: str) -> dict[str, Any]:
    """The metadata record of one version."""
    fs, root = _root(models_url)
    return json.loads(fs.cat_file(f"{root}/{version}/{METADATA_FILE}"))


def load_model(models_url: str, version: str) -> TrainedModel:
    """Rebuild a saved model: weights from safetensors bytes (checked against their sha256)."""
    fs, root = _root(models_url)
    meta = read_metadata(models_url, version)
    weights = fs.cat_file(f"{root}/{version}/{WEIGHTS_FILE}")
    if hashlib.sha256(weights).hexdigest() != meta["weights_sha256"]:
        raise ValueError(f"weights of model {version} do not match their recorded sha256")
    module = build_module(meta["hyperparameters"])
    module.load_state_dict(safetensors.torch.load(weights), strict=True)
    module.eval()
    return TrainedModel(
        module=module,
        scalers=SeriesScalers.from_dict(meta["scalers"]),
        series_ids=list(meta["series_ids"]),
        feature_names=list(meta["feature_names"]),
        calendar_features=list(meta["calendar_features"]),
        hyperparameters=meta["hyperparameters"],
        horizon=int(meta["horizon"]),
        quantiles=list(meta["quantiles"]),
        train_start=dt.date.fromisoformat(meta["train_start"]),
        train_end=dt.date.fromisoformat(meta["train_end"]),
        kind=meta["kind"],
        parent_version=meta["parent_version"],
        metrics=meta["metrics"],
        data_fingerprint=meta["data_fingerprint"],
        training_config=meta.get("training_config", {}),
    )


def list_models(models_url: str) -> list[dict[str, Any]]:
    """Metadata records of every complete version, oldest ``train_end`` first."""
    fs, root = _root(models_url)
    if not fs.exists(root):
        return []
    records = [json.loads(fs.cat_file(p)) for p in fs.glob(f"{root}/*/{METADATA_FILE}")]
    return sorted(records, key=lambda r: (r["train_end"], r["created_at"], r["version"]))


def select_model(
    models_url: str, as_of: dt.date, allowed: Container[str] | None = None
) -> dict[str, Any] | None:
    """The newest model whose ``train_end <= as_of`` (optionally among ``allowed`` versions).

    Point-in-time correct: a backfill for an old date never picks a model trained on later data.
    """
    limit = as_of.isoformat()
    eligible = [
        r
        for r in list_models(models_url)
        if r["train_end"] <= limit and (allowed is None or r["version"] in allowed)
    ]
    return eligible[-1] if eligible else None
