"""Checkpoints: safetensors only (never pickle), identical forecasts after a reload in a fresh
process, the optimizer state kept for fine-tunes, and point-in-time model selection."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import pickle
import re
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline_lib.config import ModelConfig, TrainingConfig
from pipeline_lib.forecasting.model import checkpoint
from pipeline_lib.forecasting.model.checkpoint import (
    list_models,
    load_model,
    save_model,
    select_model,
)
from pipeline_lib.forecasting.model.finetune import fine_tune
from pipeline_lib.forecasting.model.forecast import predict
from pipeline_lib.forecasting.model.testing import random_walk_features
from pipeline_lib.forecasting.model.train import train_full
from pipeline_lib.forecasting.model.trained import TrainedModel

MODEL = ModelConfig(lookback=10, hidden_size=8, embedding_dim=2, dropout=0.0)
TRAIN = TrainingConfig(
    max_epochs=2, batch_size=64, train_window_days=365, finetune_epochs=2, finetune_window_days=60
)
DATA = {"n_series": 2, "n_days": 260, "weekly_signal": 0.02}
FREQ = {"S0": "B", "S1": "D"}
AS_OF = dt.date(2020, 10, 30)

# Run in a fresh interpreter: every way to unpickle fails, then load, forecast, save yhat.
FRESH = """
import datetime as dt, pickle, sys, numpy as np, torch
def refuse(*a, **k): raise AssertionError("the loader tried to unpickle")
torch.load = pickle.load = pickle.loads = refuse
pickle.Unpickler = refuse
torch.set_num_threads(int(sys.argv[4]))
from pipeline_lib.forecasting.model.checkpoint import load_model
from pipeline_lib.forecasting.model.forecast import predict
from pipeline_lib.forecasting.model.testing import random_walk_features
trained = load_model(sys.argv[1], sys.argv[2])
out = predict(trained, random_walk_features(**DATA), AS_OF, FREQ)
np.save(sys.argv[3], out[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(), allow_pickle=False)
"""


def assert_same_optimizer_state(a: dict, b: dict) -> None:
    """Same parameter groups and, per parameter, the same values with the same types."""
    assert a["param_groups"] == b["param_groups"]
    assert sorted(a["state"]) == sorted(b["state"])
    for index, entries in a["state"].items():
        other = b["state"][index]
        assert sorted(entries) == sorted(other), index
        for name, value in entries.items():
            assert type(value) is type(other[name]), (index, name)
            if torch.is_tensor(value):
                assert value.dtype == other[name].dtype and torch.equal(value, other[name])
            else:
                assert value == other[name]


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return random_walk_features(**DATA)


@pytest.fixture(scope="module")
def trained(features: pd.DataFrame) -> TrainedModel:
    return train_full(features, MODEL, TRAIN, 3, dt.date(2020, 9, 30))


def test_reload_in_a_fresh_process_gives_identical_forecasts(
    trained: TrainedModel, features: pd.DataFrame, tmp_path: Path
) -> None:
    version = save_model(str(tmp_path), trained)
    out = tmp_path / "yhat.npy"
    code = f"DATA = {DATA!r}; FREQ = {FREQ!r}; AS_OF = dt.date(2020, 10, 30)\n"
    script = FRESH.replace(
        "from pipeline_lib.forecasting.model.checkpoint",
        code + "from pipeline_lib.forecasting.model.checkpoint",
    )
    args = [str(tmp_path), version, str(out), str(torch.get_num_threads())]
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    expected = predict(trained, features, AS_OF, FREQ)[["yhat", "yhat_lower", "yhat_upper"]]
    assert np.array_equal(np.load(out, allow_pickle=False), expected.to_numpy())


def test_gru_with_attention_round_trips(features: pd.DataFrame, tmp_path: Path) -> None:
    model = MODEL.model_copy(update={"cell": "gru", "attention": True})
    trained = train_full(features, model, TRAIN, 3, dt.date(2020, 9, 30))
    loaded = load_model(str(tmp_path), save_model(str(tmp_path), trained))
    assert isinstance(loaded.module.encoder, torch.nn.GRU) and loaded.module.attend is not None
    cols = ["yhat", "yhat_lower", "yhat_upper"]
    expected = predict(trained, features, AS_OF, FREQ)[cols].to_numpy()
    assert np.array_equal(predict(loaded, features, AS_OF, FREQ)[cols].to_numpy(), expected)


def test_checkpoint_without_cell_settings_loads_as_an_lstm(
    trained: TrainedModel, features: pd.DataFrame, tmp_path: Path
) -> None:
    """Checkpoints written before ``cell`` and ``attention`` existed still load, unchanged."""
    version = save_model(str(tmp_path), trained)
    meta_path = tmp_path / version / "metadata.json"
    meta = json.loads(meta_path.read_text())
    for key in ("cell", "attention"):
        meta["hyperparameters"].pop(key)
    meta_path.write_text(json.dumps(meta))
    loaded = load_model(str(tmp_path), version)
    assert isinstance(loaded.module.encoder, torch.nn.LSTM) and loaded.module.attend is None
    cols = ["yhat", "yhat_lower", "yhat_upper"]
    expected = predict(trained, features, AS_OF, FREQ)[cols].to_numpy()
    assert np.array_equal(predict(loaded, features, AS_OF, FREQ)[cols].to_numpy(), expected)


def test_checkpoint_is_safetensors_and_json_only(trained: TrainedModel, tmp_path: Path) -> None:
    version = save_model(str(tmp_path), trained)
    assert version == f"{trained.train_end:%Y%m%d}-full-{version.split('-')[-1]}"
    files = sorted(p.name for p in (tmp_path / version).iterdir())
    # no temporary file left behind, no .pt / .pkl
    assert files == ["metadata.json", "model.safetensors", "optimizer.safetensors"]
    headers = {}
    for name in ("model.safetensors", "optimizer.safetensors"):
        raw = (tmp_path / version / name).read_bytes()
        (header_len,) = struct.unpack("<Q", raw[:8])
        headers[name] = json.loads(raw[8 : 8 + header_len])  # safetensors, not a pickle stream
    assert "encoder.weight_ih_l0" in headers["model.safetensors"]
    assert {"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq"} <= set(
        headers["optimizer.safetensors"]
    )
    meta = json.loads((tmp_path / version / "metadata.json").read_text())
    assert meta["format_version"] == 2
    assert meta["optimizer"]["param_groups"][0]["params"] == list(
        range(len(list(trained.module.parameters())))
    )
    assert meta["scalers"] == trained.scalers.to_dict()
    assert meta["data_fingerprint"] == trained.data_fingerprint and meta["parent_version"] is None
    source = inspect.getsource(checkpoint)
    assert not re.search(r"(?<!safetensors\.)torch\.load\(|import pickle|pickle\.load", source)


def test_load_never_unpickles(
    trained: TrainedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the loader tried to unpickle")

    version = save_model(str(tmp_path), trained)
    for target in (torch, pickle):
        monkeypatch.setattr(target, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    loaded = load_model(str(tmp_path), version)
    for k, v in trained.module.state_dict().items():
        assert torch.equal(v, loaded.module.state_dict()[k])
    assert_same_optimizer_state(trained.optimizer_state, loaded.optimizer_state)


def test_optimizer_state_round_trips(trained: TrainedModel, tmp_path: Path) -> None:
    state = trained.optimizer_state
    n_params = len(list(trained.module.parameters()))
    assert sorted(state["state"]) == list(range(n_params))  # every parameter was stepped
    loaded = load_model(str(tmp_path), save_model(str(tmp_path), trained)).optimizer_state
    assert_same_optimizer_state(state, loaded)
    assert loaded["param_groups"][0]["betas"] == (0.9, 0.999)  # a tuple again, as torch has it
    adam = torch.optim.Adam(load_model(str(tmp_path), trained.version).module.parameters())
    adam.load_state_dict(loaded)  # torch accepts it as an Adam state


def test_optimizer_state_with_float_steps_round_trips(
    trained: TrainedModel, tmp_path: Path
) -> None:
    """Adam's ``step`` is a float in some torch versions/settings: it comes back a float."""
    state = {
        "state": {
            i: {**entries, "step": float(entries["step"])}
            for i, entries in trained.optimizer_state["state"].items()
        },
        "param_groups": trained.optimizer_state["param_groups"],
    }
    model = dataclasses.replace(trained, optimizer_state=state)
    loaded = load_model(str(tmp_path), save_model(str(tmp_path), model)).optimizer_state
    assert_same_optimizer_state(state, loaded)
    assert all(type(e["step"]) is float for e in loaded["state"].values())


def test_checkpoint_without_optimizer_state_still_loads(
    trained: TrainedModel, features: pd.DataFrame, tmp_path: Path
) -> None:
    """A format-1 checkpoint (weights and metadata only) loads with ``optimizer_state=None``."""
    version = save_model(str(tmp_path), trained)
    (tmp_path / version / "optimizer.safetensors").unlink()
    meta_path = tmp_path / version / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["optimizer"]
    meta["format_version"] = 1
    meta_path.write_text(json.dumps(meta))
    loaded = load_model(str(tmp_path), version)
    assert loaded.optimizer_state is None and loaded.version == version
    cols = ["yhat", "yhat_lower", "yhat_upper"]
    expected = predict(trained, features, AS_OF, FREQ)[cols].to_numpy()
    assert np.array_equal(predict(loaded, features, AS_OF, FREQ)[cols].to_numpy(), expected)
    # saving a model without optimizer state writes no optimizer file
    folder = tmp_path / "again" / save_model(str(tmp_path / "again"), loaded)
    assert not (folder / "optimizer.safetensors").exists()
    assert json.loads((folder / "metadata.json").read_text())["optimizer"] is None


@pytest.mark.parametrize(
    ("file", "message"),
    [("optimizer.safetensors", "optimizer state .* sha256"), ("model.safetensors", "sha256")],
)
def test_load_refuses_tampered_files(
    trained: TrainedModel, tmp_path: Path, file: str, message: str
) -> None:
    version = save_model(str(tmp_path), trained)
    path = tmp_path / version / file
    path.write_bytes(path.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    with pytest.raises(ValueError, match=message):
        load_model(str(tmp_path), version)


def test_select_model_is_point_in_time(trained: TrainedModel, features: pd.DataFrame) -> None:
    url = f"memory://models-{uuid.uuid4().hex}"  # any fsspec URL works
    assert list_models(url) == [] and select_model(url, AS_OF) is None
    first = save_model(url, trained)
    child = fine_tune(trained, features, TRAIN, dt.date(2020, 11, 30))
    second = save_model(url, child)
    assert [r["version"] for r in list_models(url)] == [first, second]
    assert select_model(url, dt.date(2020, 9, 29)) is None  # no model trained by then
    assert select_model(url, dt.date(2020, 9, 30))["version"] == first
    assert select_model(url, dt.date(2020, 11, 29))["version"] == first  # child is later data
    assert select_model(url, dt.date(2021, 1, 1))["version"] == second
    assert select_model(url, dt.date(2021, 1, 1), allowed={first})["version"] == first
    reloaded = load_model(url, second)
    assert reloaded.parent_version == first and reloaded.scalers == trained.scalers
    assert reloaded.version == second
    assert_same_optimizer_state(child.optimizer_state, reloaded.optimizer_state)
    assert reloaded.metrics["lineage"] == child.metrics["lineage"]  # lineage survives a reload
