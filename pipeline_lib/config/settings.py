"""The settings object: :class:`Settings`, the one typed object a run needs (every section of
:mod:`pipeline_lib.config` as a field), with what it derives from them (series ids, frequencies,
weather locations) and its sources in order (arguments, ``PIPELINE_*`` variables, the TOML
file). :mod:`pipeline_lib.config.loading` builds it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pipeline_lib.config.contest import BacktestConfig, SelectionConfig, TuningConfig
from pipeline_lib.config.modelling import ModelConfig, TrainingConfig
from pipeline_lib.config.monitoring import DriftConfig, RetrainPolicyConfig
from pipeline_lib.config.running import (
    HttpConfig,
    IngestConfig,
    OrchestrationConfig,
    ParallelConfig,
    ServeConfig,
    ValidationConfig,
)
from pipeline_lib.config.series import (
    SAMPLE_START,
    ExogenousConfig,
    Location,
    SeriesConfig,
    SourceSpec,
    default_series,
)

if TYPE_CHECKING:
    from pipeline_lib.features.spec import FeatureSet


class Settings(BaseSettings):
    """Everything a run needs. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="PIPELINE_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: str = Field(default="data", description="data folder, any fsspec URL")
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL; default a SQLite file in the data folder. A secret: it "
        "may hold a password, so it is masked wherever the settings are shown",
    )
    database_auto_upgrade: bool = Field(
        default=True,
        description="upgrade the SQL schema at the start of a run; off: fail if it is behind "
        "and let a deploy step run `forecast-pipeline db upgrade`",
    )
    actuals_restate_days: int = Field(
        default=31, ge=0, description="days before the newest stored actual rewritten nightly"
    )
    horizon: int = Field(default=14, ge=1, le=366)
    start_date: dt.date = Field(default=SAMPLE_START, description="first date ever ingested")
    weather_source: SourceSpec = Field(default_factory=SourceSpec)
    series: list[SeriesConfig] = Field(default_factory=lambda: default_series())
    exogenous: list[ExogenousConfig] = Field(
        default_factory=list, description="covariate data sets apart from the prices"
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    retrain_policy: RetrainPolicyConfig = Field(default_factory=RetrainPolicyConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    parallel: ParallelConfig = Field(default_factory=ParallelConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    lineage: str = Field(
        default="",
        pattern=r"^[a-z0-9-]*$",
        description="model-selection namespace; empty for the configured series. A backfill "
        "over a subset of the series sets it, so its champions never replace the nightly's",
    )
    credentials: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="secrets by name, e.g. PIPELINE_CREDENTIALS__OPEN_METEO_API_KEY; never logged",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute_local_dir(cls, v: str) -> str:
        if "://" in v:
            return v.rstrip("/")
        return str(Path(v).expanduser().resolve())

    @model_validator(mode="after")
    def _check(self) -> Settings:
        ids = [s.id for s in self.series]
        if len(set(ids)) != len(ids):
            raise ValueError(f"series ids must be unique, got {ids}")
        if not self.series:
            raise ValueError("the config lists no series to forecast")
        self.feature_set  # noqa: B018 - raises when two series declare a covariate differently
        names = {e.name for e in self.exogenous}
        for s in self.series:
            for c in s.covariates:
                if c.source == "exogenous" and c.options["dataset"] not in names:
                    raise ValueError(
                        f"series {s.id!r} covariate {c.name!r}: no [[exogenous]] data set "
                        f"{c.options['dataset']!r} (configured: {sorted(names)})"
                    )
        forecasts: dict[str, dict[str, Any]] = {}  # one source per location: one set of options
        for s in self.series:
            for c in s.covariates:
                if c.source == "weather" and c.role == "future" and s.weather is not None:
                    if forecasts.setdefault(s.weather.name, c.options) != c.options:
                        raise ValueError(
                            f"series {s.id!r} covariate {c.name!r}: the weather forecasts of "
                            f"location {s.weather.name!r} are fetched once for all its future "
                            f"weather covariates, whose options must match: {c.options} vs "
                            f"{forecasts[s.weather.name]}"
                        )
        if (
            self.database_url is None
            and "://" in self.data_dir
            and not self.data_dir.startswith("file://")
        ):
            raise ValueError(
                "data_dir is remote; set PIPELINE_DATABASE_URL (the default SQLite file "
                "must live on a local disk)"
            )
        return self

    @property
    def db_url(self) -> str:
        if self.database_url is not None and self.database_url.get_secret_value():
            # postgresql://... gets the installed driver, for every engine and lock taken on it
            from pipeline_lib.db.engine import driver_url

            return driver_url(self.database_url.get_secret_value())
        local = self.data_dir.removeprefix("file://")
        return f"sqlite:///{local}/pipeline.db"

    @property
    def feature_set(self) -> FeatureSet:
        """The inputs of a global model over every configured series: the union of their
        covariates (a series without one sees it as unknown). A name must mean the same
        (role and reach) in every series that declares it."""
        from pipeline_lib.features.spec import FeatureSet

        seen: dict[str, tuple[str, int]] = {}
        for s in self.series:
            for c in s.covariates:
                if seen.setdefault(c.name, (c.role, c.known_ahead)) != (c.role, c.known_ahead):
                    role, reach = seen[c.name]
                    raise ValueError(
                        f"covariate {c.name!r} is {role} (known_ahead {reach}) in one series and "
                        f"{c.role} (known_ahead {c.known_ahead}) in series {s.id!r}"
                    )
        return FeatureSet.of(
            past=[n for n, (role, _) in seen.items() if role == "past"],
            future=[(n, k) for n, (role, k) in seen.items() if role == "future"],
        )

    @property
    def series_ids(self) -> list[str]:
        return [s.id for s in self.series]

    @property
    def frequencies(self) -> dict[str, str]:
        """Series id -> the frequency its dates follow: ``"B"``, ``"D"`` or an exchange calendar
        code (see :mod:`pipeline_lib.features.calendar`)."""
        return {s.id: s.dates_frequency for s in self.series}

    @property
    def locations(self) -> list[Location]:
        seen: dict[str, Location] = {}
        for s in self.series:
            if s.weather is not None:
                seen.setdefault(s.weather.name, s.weather)
        return list(seen.values())

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))
