"""Settings from a TOML file, PIPELINE_* variables and defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline_lib.config import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PIPELINE_CONFIG", "PIPELINE_DATA_DIR", "PIPELINE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_bundled_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert [x.id for x in s.series] == ["SP500", "NASDAQ", "MSFT", "WTI"]
    assert all(x.source.kind == "sample" for x in s.series)
    assert s.data_dir == str(tmp_path / "data")
    assert s.db_url == f"sqlite:///{tmp_path}/data/pipeline.db"
    assert s.horizon == 14 and s.model.quantiles == [0.1, 0.5, 0.9]


def test_toml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'horizon = 7\ndata_dir = "/srv/a"\n[training]\nmax_epochs = 9\npatience = 2\n'
        '[[series]]\nid = "GAS"\nfrequency = "D"\n'
        'source = { kind = "file", options = { path = "s3://bucket/gas/" } }\n'
        'weather = { name = "berlin", latitude = 52.52, longitude = 13.41 }\n'
    )
    monkeypatch.setenv("PIPELINE_DATA_DIR", "/srv/b")
    monkeypatch.setenv("PIPELINE_DATABASE_URL", "postgresql+psycopg://u@db/forecasts")
    monkeypatch.setenv("PIPELINE_TRAINING__MAX_EPOCHS", "3")
    s = load_settings(cfg)
    assert s.horizon == 7  # from the file
    assert s.data_dir == "/srv/b"  # the environment wins over the file
    assert (s.training.max_epochs, s.training.patience) == (3, 2)
    assert s.db_url == "postgresql+psycopg://u@db/forecasts"
    (series,) = s.series
    assert series.source.options == {"path": "s3://bucket/gas/"} and series.frequency == "D"
    assert [loc.name for loc in s.locations] == ["berlin"]
    monkeypatch.setenv("PIPELINE_CONFIG", str(cfg))
    assert load_settings().horizon == 7  # PIPELINE_CONFIG names the file


def test_bad_configs_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_settings(tmp_path / "nope.toml")
    dup = tmp_path / "dup.toml"
    dup.write_text('[[series]]\nid = "A"\n[[series]]\nid = "A"\n')
    with pytest.raises(ValidationError, match="unique"):
        load_settings(dup)
    with pytest.raises(ValidationError, match="PIPELINE_DATABASE_URL"):
        load_settings(data_dir="s3://bucket/data")
    with pytest.raises(ValidationError, match="quantiles"):
        load_settings(model={"quantiles": [0.9, 0.5, 0.1]})
    with pytest.raises(ValidationError):
        load_settings(horizn=3)  # a typo is an error, not silently ignored
