"""Settings from a TOML file, PIPELINE_* variables and defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_lib.config import load_settings
from pipeline_lib.errors import ConfigError, PipelineError


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
    with pytest.raises(ConfigError, match=f"config file {dup}: series ids must be unique"):
        load_settings(dup)
    with pytest.raises(ConfigError, match="PIPELINE_DATABASE_URL"):
        load_settings(data_dir="s3://bucket/data")
    with pytest.raises(ConfigError, match="model.quantiles: quantiles must be an odd count"):
        load_settings(model={"quantiles": [0.9, 0.5, 0.1]})
    with pytest.raises(ConfigError, match="base_refit_rows must be 0 .every row. or more than"):
        load_settings(model={"base_refit_rows": 100})
    with pytest.raises(ConfigError, match="horizn: unknown setting"):
        load_settings(horizn=3)  # a typo is an error, not silently ignored


def test_config_errors_name_the_file_and_each_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One line per problem: where the value came from, the setting, what is wrong, the value;
    a ValueError (and a PipelineError, which the CLI prints without a traceback)."""
    cfg = tmp_path / "my.toml"
    cfg.write_text(
        "horizn = 3\n[training]\nmax_epochs = -1\nmax_epoch = 2\n"
        '[[series]]\nid = "bad id"\n'
        'weather = { name = "x", latitude = 100, longitude = 0, tz = "UTC" }\n'
        '[[series]]\nid = "B"\nsource = { kind = "file", options = { path = "/x", any = 1 } }\n'
    )
    monkeypatch.setenv("PIPELINE_TRAINING__PATIENCE", "0")
    monkeypatch.setenv("PIPELINE_DRIFT__PSI_BIN", "3")  # a typo in a variable's name
    monkeypatch.setenv("PIPELINE_DEBUG", "1")  # not a setting: PIPELINE_* names are not all ours
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, PipelineError)
    where = f"config file {cfg}"
    assert sorted(caught.value.user_lines()) == sorted(
        [
            f"{where}: horizn: unknown setting",
            f"{where}: training.max_epoch: unknown setting",  # nested keys are checked too
            f"{where}: series[0].weather.tz: unknown setting",
            f"{where}: training.max_epochs: Input should be greater than or equal to 1 (got -1)",
            f"{where}: series[0].id: String should match pattern '^[A-Za-z0-9_\\-]+$' "
            "(got 'bad id')",
            f"{where}: series[0].weather.latitude: Input should be less than or equal to 90 "
            "(got 100)",
            "environment variable PIPELINE_TRAINING__PATIENCE: training.patience: Input should be "
            "greater than or equal to 1 (got '0')",
            "environment variable PIPELINE_DRIFT__PSI_BIN: drift.psi_bin: unknown setting",
        ]
    )
    assert str(caught.value) == "\n".join(caught.value.user_lines())


def test_config_errors_without_a_file_and_of_toml_syntax(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_DATABASE_URL", "postgresql://u:hunter2@db/x")
    monkeypatch.setenv("PIPELINE_DATA_DIR", "s3://bucket/data")
    monkeypatch.setenv("PIPELINE_HORIZON", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.user_lines() == [
        "environment variable PIPELINE_HORIZON: horizon: Input should be greater than or equal "
        "to 1 (got '0')"
    ]
    monkeypatch.delenv("PIPELINE_HORIZON")
    monkeypatch.setenv("PIPELINE_TRAINING", "{not json")
    with pytest.raises(ConfigError, match=r"^PIPELINE_\* environment: error parsing .*training"):
        load_settings()
    monkeypatch.delenv("PIPELINE_TRAINING")
    monkeypatch.setenv("PIPELINE_CREDENTIALS", "[1]")  # a secret's value is never shown
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "credentials" in str(caught.value) and "hunter2" not in str(caught.value)

    bad = tmp_path / "syntax.toml"
    bad.write_text("horizon = 3\n[training\nmax_epochs = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(bad)
    assert str(caught.value) == (
        f"config file {bad}: line 2, column 10: invalid TOML: "
        "Expected ']' at the end of a table declaration"
    )
