"""Versioned checkpoints on any fsspec URL, in a safe format only (never pickle).

Layout: ``<models_url>/<version>/model.safetensors`` (weights), ``<version>/optimizer.safetensors``
(the Adam state a fine-tune continues from; absent in checkpoints from before format 2) and
``<version>/metadata.json`` (everything needed to rebuild the model and audit it, with the
sha256 of both tensor files). Each file is written under a temporary name and then moved into
place; the metadata is written last, so a version is listed only once its tensors are complete.
Loading uses ``safetensors.torch.load`` on bytes, never ``torch.load``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Container
from typing import Any

import safetensors.torch
import torch
from fsspec.core import url_to_fs
from fsspec.spec import AbstractFileSystem

from pipeline_lib.features.spec import FeatureSet
from pipeline_lib.forecasting.model.scaling import SeriesScalers
from pipeline_lib.forecasting.model.trained import TrainedModel, build_module
from pipeline_lib.store.fs import atomic_write_bytes

WEIGHTS_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 2  # 2: optional optimizer state (optimizer.safetensors + metadata "optimizer")
# The metadata's "feature_set" (FeatureSet.to_dict) is optional too: absent, the model has no
# covariates (saved before them). A loader that predates it refuses a model with future
# covariates (its weights do not fit the module it builds), so the format stays 2.


def _root(models_url: str) -> tuple[AbstractFileSystem, str]:
    fs, path = url_to_fs(models_url)
    return fs, path.rstrip("/")


def optimizer_to_safetensors(state: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Split a torch ``Optimizer.state_dict()`` into safetensors bytes and a JSON record.

    Each tensor of ``state["state"]`` is stored as ``state.<param_index>.<name>`` (Adam:
    ``step``, ``exp_avg``, ``exp_avg_sq``). Plain numbers (Adam's ``step`` is a float in some
    torch versions and settings) go to the record's ``scalars``, so every value comes back with
    its own type. ``param_groups`` (learning rate, betas, parameter indices...) are JSON.
    """
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, float | int | bool]] = {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"state.{int(index)}.{name}"] = value.detach().cpu().contiguous()
            elif isinstance(value, (bool, int, float)):
                scalars.setdefault(str(int(index)), {})[name] = value
            else:
                raise TypeError(f"optimizer state {name!r} is a {type(value).__name__}")
    data = safetensors.torch.save(tensors)
    record = {
        "file": OPTIMIZER_FILE,
        "sha256": hashlib.sha256(data).hexdigest(),
        "param_groups": [dict(group) for group in state["param_groups"]],
        "scalars": scalars,
    }
    return data, json.loads(json.dumps(record))  # fails here, not later, if not JSON-able


def optimizer_from_safetensors(data: bytes, record: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the ``state_dict()`` written by :func:`optimizer_to_safetensors` (no pickle).

    JSON lists in the parameter groups become tuples again (``betas``), except ``params``.
    """
    state: dict[int, dict[str, Any]] = {}
    for key, value in safetensors.torch.load(data).items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, entries in record.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in record["param_groups"]
    ]
    return {"state": dict(sorted(state.items())), "param_groups": groups}


def metadata_record(
    trained: TrainedModel, weights_sha256: str, optimizer: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON record saved next to the weights (``optimizer``: see
    :func:`optimizer_to_safetensors`, ``None`` when the model has no optimizer state)."""
    return {
        "format_version": FORMAT_VERSION,
        "version": trained.version,
        "kind": trained.kind,
        "parent_version": trained.parent_version,
        "train_start": trained.train_start.isoformat(),
        "train_end": trained.train_end.isoformat(),
        "fit_end": trained.fit_end.isoformat() if trained.fit_end else None,
        "horizon": trained.horizon,
        "quantiles": list(trained.quantiles),
        "series_ids": list(trained.series_ids),
        "feature_names": list(trained.feature_names),
        "calendar_features": list(trained.calendar_features),
        "feature_set": trained.feature_set.to_dict(),
        "hyperparameters": trained.hyperparameters,
        "training_config": trained.training_config,
        "scalers": trained.scalers.to_dict(),
        "metrics": trained.metrics,
        "data_fingerprint": trained.data_fingerprint,
        "weights_sha256": weights_sha256,
        "optimizer": optimizer,
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
    optimizer = None
    if trained.optimizer_state is not None:
        data, optimizer = optimizer_to_safetensors(trained.optimizer_state)
        atomic_write_bytes(fs.unstrip_protocol(f"{folder}/{OPTIMIZER_FILE}"), data)
    record = metadata_record(trained, hashlib.sha256(weights).hexdigest(), optimizer)
    atomic_write_bytes(
        fs.unstrip_protocol(f"{folder}/{METADATA_FILE}"), json.dumps(record, indent=2).encode()
    )
    return version


def read_metadata(models_url: str, version: str) -> dict[str, Any]:
    """The metadata record of one version."""
    fs, root = _root(models_url)
    return json.loads(fs.cat_file(f"{root}/{version}/{METADATA_FILE}"))


def _read_checked(fs: AbstractFileSystem, path: str, sha256: str, what: str) -> bytes:
    """The bytes at ``path``, refused unless their sha256 is the recorded one."""
    data = fs.cat_file(path)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{what} do not match their recorded sha256")
    return data


def load_model(models_url: str, version: str) -> TrainedModel:
    """Rebuild a saved model: weights, and the optimizer state where one was saved, from
    safetensors bytes checked against their sha256. Older checkpoints without an optimizer
    state load with ``optimizer_state=None``, those without a feature set with the empty one."""
    fs, root = _root(models_url)
    meta = read_metadata(models_url, version)
    folder = f"{root}/{version}"
    weights = _read_checked(
        fs, f"{folder}/{WEIGHTS_FILE}", meta["weights_sha256"], f"weights of model {version}"
    )
    optimizer_state = None
    if meta.get("optimizer"):
        record = meta["optimizer"]
        what = f"optimizer state of model {version}"
        data = _read_checked(fs, f"{folder}/{OPTIMIZER_FILE}", record["sha256"], what)
        optimizer_state = optimizer_from_safetensors(data, record)
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
        fit_end=dt.date.fromisoformat(meta["fit_end"]) if meta.get("fit_end") else None,
        optimizer_state=optimizer_state,
        feature_set=FeatureSet.from_dict(meta.get("feature_set")),
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
