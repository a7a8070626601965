"""The settings object and how it is loaded: :class:`Settings`, the one typed object a run
needs (every section of :mod:`pipeline_lib.config` as a field), and :func:`load_settings`, which
reads it from a TOML file, ``PIPELINE_*`` environment variables and arguments, with the helpers
that read the TOML and turn every problem into one line naming where the value came from.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pipeline_lib.config.modelling import (
    BacktestConfig,
    ModelConfig,
    SelectionConfig,
    TrainingConfig,
    TuningConfig,
)
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


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config_file`` (TOML), the environment and ``overrides``, in that order.

    ``PIPELINE_CONFIG`` names the file when ``config_file`` is not given. Invalid settings
    raise :class:`pipeline_lib.errors.ConfigError` (a ValueError) with one line per problem,
    each naming where the value came from (the config file, a ``PIPELINE_*`` variable) and the
    setting, e.g. ``config file my.toml: training.max_epochs: Input should be greater than or
    equal to 1 (got -1)``; a TOML syntax error names the file and the line. A key that no
    setting has is an error at every level (a typo is never silently ignored).
    """
    import os

    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from pipeline_lib.errors import ConfigError, ConfigFileNotFound

    path = config_file or os.environ.get("PIPELINE_CONFIG")
    if path is not None and not Path(path).is_file():
        raise ConfigFileNotFound(f"config file not found: {path}")
    origin = _Origin(path, overrides, os.environ)
    unknown = [(f"config file {path}", loc) for loc in _unknown_keys(Settings, _read_toml(path))]
    unknown += [(origin(loc), loc) for loc in _unknown_keys(Settings, origin.env)]
    problems = [f"{where}: {_dotted(loc)}: unknown setting" for where, loc in unknown]

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    cause: Exception | None = None
    try:
        loaded = _FromFile(**overrides)
        settings = Settings.model_validate(loaded.model_dump())
    except ValidationError as exc:
        cause = exc
        problems += [_problem(error, origin) for error in exc.errors()]
    except SettingsError as exc:  # e.g. a PIPELINE_* variable that should hold JSON does not
        cause = exc
        detail = f" ({exc.__cause__})" if exc.__cause__ else ""
        problems.append(f"PIPELINE_* environment: {exc}{detail}")
    if problems:
        raise ConfigError(problems) from cause
    return settings


class _Origin:
    """Where the value at a location came from, for messages: an argument, the ``PIPELINE_*``
    variable that set it (they win over the file), else the config file."""

    def __init__(self, path: str | Path | None, overrides: dict[str, Any], environ: Any) -> None:
        self.path, self.overrides = path, overrides
        prefix = "PIPELINE_"
        self.names = {k.upper(): k for k in environ if k.upper().startswith(prefix)}
        self.env: dict[str, Any] = {}  # the nested PIPELINE_A__B=... variables, as a tree
        for upper, name in self.names.items():
            parts = upper.removeprefix(prefix).lower().split("__")
            if len(parts) < 2 or parts[0] not in Settings.model_fields:
                continue  # a top-level value, or not a setting (PIPELINE_CONFIG, PIPELINE_DEBUG)
            node = self.env
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    break
                node = child
            else:
                node[parts[-1]] = environ[name]

    def __call__(self, loc: tuple[Any, ...]) -> str:
        if loc and loc[0] in self.overrides:
            return "load_settings() argument"
        for n in range(len(loc), 0, -1):
            wanted = "PIPELINE_" + "__".join(str(p) for p in loc[:n]).upper()
            if wanted in self.names:
                return f"environment variable {self.names[wanted]}"
        return f"config file {self.path}" if self.path is not None else "PIPELINE_* environment"


def _read_toml(path: str | Path | None) -> dict[str, Any]:
    """The config file's table ({} without a file); a ConfigError naming the file and the line
    when it is not valid TOML or cannot be read."""
    import re
    import tomllib

    from pipeline_lib.errors import ConfigError

    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        text = str(exc)
        if m := re.fullmatch(r"(.*) \(at (line \d+, column \d+|end of document)\)", text):
            raise ConfigError(f"config file {path}: {m[2]}: invalid TOML: {m[1]}") from exc
        raise ConfigError(f"config file {path}: invalid TOML: {text}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc.strerror})") from exc


def _held_model(annotation: Any) -> tuple[type[BaseModel], bool] | None:
    """The settings model a field holds and whether it holds a list of them, or None (a plain
    value, or a free mapping such as a source's ``options``)."""
    import types
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple) and args:
        inner = _held_model(args[0])
        return (inner[0], True) if inner is not None and not inner[1] else None
    if origin in (typing.Union, types.UnionType):
        held = [m for a in args if a is not type(None) and (m := _held_model(a)) is not None]
        return held[0] if len(held) == 1 else None
    return None


def _unknown_keys(
    model: type[BaseModel], data: Any, loc: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Locations of keys in ``data`` that ``model`` has no field for. The nested models ignore
    unknown keys, so a typo such as ``[training] max_epoch = 5`` would be dropped without a
    word; a model that forbids them (Settings itself) is left to pydantic's own error."""
    if not isinstance(data, dict):
        return []
    found: list[tuple[Any, ...]] = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            if model.model_config.get("extra") in (None, "ignore"):
                found.append((*loc, key))
            continue
        held = _held_model(field.annotation)
        if held is None:
            continue
        sub, many = held
        if not many:
            found += _unknown_keys(sub, value, (*loc, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                found += _unknown_keys(sub, item, (*loc, key, i))
    return found


def _dotted(loc: tuple[Any, ...]) -> str:
    """``("series", 0, "id")`` as ``series[0].id``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out else ''}{part}"
    return out


def _problem(error: Any, origin: _Origin) -> str:
    """One pydantic error as one line: where from, which setting, what is wrong, the value
    (never the value of a secret: the database URL may hold a password)."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    message = "unknown setting" if kind == "extra_forbidden" else error.get("msg", "")
    message = message.removeprefix("Value error, ")
    value, shown = error.get("input"), ""
    secret = bool(loc) and loc[0] in ("database_url", "credentials")
    if kind not in ("missing", "extra_forbidden") and not secret:
        if not isinstance(value, dict | list):
            text = repr(value)
            shown = f" (got {text if len(text) <= 80 else text[:77] + '...'})"
    setting = _dotted(loc)
    return f"{origin(loc)}: {setting + ': ' if setting else ''}{message}{shown}"
