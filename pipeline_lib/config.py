"""Settings: one typed object, read from a TOML file and from ``PIPELINE_*`` environment variables.

Precedence (highest first): explicit arguments, environment variables, the TOML file, defaults.
Nested values take ``__`` in the environment, e.g. ``PIPELINE_TRAINING__MAX_EPOCHS=5``.
Nothing here touches the disk or the network until a caller asks for it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

if TYPE_CHECKING:
    from pipeline_lib.features.spec import FeatureSet

SAMPLE_START = dt.date(2012, 1, 1)
SAMPLE_END = dt.date(2015, 12, 31)


class Location(BaseModel):
    """A weather location a series is joined with; days are taken in its time zone."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: str = Field(default="auto", description="IANA name, or auto (from the coordinates)")


class SourceSpec(BaseModel):
    """Where a data set comes from: a source kind and its options.

    kind ``sample``: the bundled sample data (options: ``symbol``).
    kind ``file``: a CSV or Parquet file, or a folder of them, on any fsspec URL
    (options: ``path``; optional ``columns``, a mapping from the file's names to ours).
    kind ``open_meteo``: Open-Meteo's historical archive and forecast APIs (weather).
    kind ``stooq``: Stooq's daily CSV endpoint (prices; options: ``symbol``).
    kind ``yahoo_chart``: Yahoo Finance's JSON chart API (prices; options: ``symbol``).
    Each source's options are documented in the README and in its module.
    """

    kind: Literal["sample", "file", "open_meteo", "stooq", "yahoo_chart"] = "sample"
    options: dict[str, Any] = Field(default_factory=dict)


class CovariateConfig(BaseModel):
    """A named input of a series beyond its price (see pipeline_lib.features.spec).

    ``role`` past: observed up to the forecast date (actual load). ``role`` future: known for
    target dates up to ``known_ahead`` days after the forecast date (day-ahead load, wind and
    solar forecasts, known the day before delivery: ``known_ahead = 1``).
    ``source`` series: a column of the series' own price file (``column``, default ``name``);
    a row dated d holds the value for d, issued ``known_ahead`` days before d (a past
    covariate's value is issued on its own date). ``source`` holidays: 1.0 on the public
    holidays of ``options.country`` (ISO code; ``options.subdivision`` optional, e.g. a German
    state) from the ``holidays`` package, else 0.0; a future covariate, known as far ahead as
    ``known_ahead`` says (the horizon, typically). ``source`` exogenous: a column (``column``,
    default ``name``) of the ``[[exogenous]]`` data set ``options.dataset``, the rows whose key
    is ``options.key`` (default the series id); its values carry their issue time when the data
    set has one. ``source`` weather: ``column`` (one of ``schema.WEATHER_VALUES``) of the weather
    at the series' ``weather`` location: past, the observed weather of day d, issued on d;
    future (``known_ahead`` 1 to 7), Open-Meteo's forecast of d issued on d - h for h up to
    ``known_ahead`` (options: see pipeline_lib.sources.open_meteo_runs).
    ``missing``: what a value that tonight's forecast needs but that has not arrived does.
    ``required`` (the default) stops the run with an error naming the series, the covariate
    and the dates; ``mask`` records a warning and the model sees the value as unknown (an
    availability mask, never a made-up value).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="feature name, e.g. load_forecast")
    role: Literal["past", "future"]
    source: Literal["series", "holidays", "exogenous", "weather"] = Field(
        default="series",
        description="series: a column of the series' own price file; holidays: public holidays; "
        "exogenous: a column of an [[exogenous]] data set; weather: a weather variable of the "
        "series' location (past: observed; future: forecasts as issued)",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="holidays: country (ISO code), subdivision (optional); exogenous: dataset "
        "(its name), key (the data set's key for this series, default the series id); weather "
        "(future): models, previous_runs_url, forecast_url, credential, since",
    )
    column: str | None = Field(default=None, description="the file's column; default: name")
    known_ahead: int = Field(
        default=0, ge=0, le=366, description="future: days ahead of the forecast date known"
    )
    missing: Literal["required", "mask"] = "required"

    @model_validator(mode="after")
    def _role_reach(self) -> CovariateConfig:
        from pipeline_lib.schema import FEATURE_COLUMNS, PRICE_COLUMNS

        if self.role == "future" and self.known_ahead < 1:
            raise ValueError(f"future covariate {self.name!r} needs known_ahead >= 1")
        if self.role == "past" and self.known_ahead != 0:
            raise ValueError(f"past covariate {self.name!r} cannot have known_ahead")
        if self.name in {*FEATURE_COLUMNS, *PRICE_COLUMNS, "issued"}:
            raise ValueError(f"covariate name {self.name!r} is a built-in column")
        if self.source == "holidays":
            from pipeline_lib.features.holidays import check_calendar

            if self.role != "future":
                raise ValueError(f"holidays covariate {self.name!r} must have role future")
            unknown = sorted(set(self.options) - {"country", "subdivision"})
            if unknown or "country" not in self.options:
                raise ValueError(
                    f"holidays covariate {self.name!r} takes options country (required) and "
                    f"subdivision, got {sorted(self.options)}"
                )
            check_calendar(str(self.options["country"]), self.options.get("subdivision"))
        elif self.source == "exogenous":
            unknown = sorted(set(self.options) - {"dataset", "key"})
            if unknown or "dataset" not in self.options:
                raise ValueError(
                    f"exogenous covariate {self.name!r} takes options dataset (required) and "
                    f"key, got {sorted(self.options)}"
                )
        elif self.source == "weather":
            self._check_weather()
        elif self.options:
            raise ValueError(f"covariate {self.name!r} (source series) takes no options")
        return self

    def _check_weather(self) -> None:
        from pipeline_lib.schema import WEATHER_VALUES
        from pipeline_lib.sources.open_meteo_runs import MAX_LEAD_DAYS, check_options

        if self.file_column not in WEATHER_VALUES:
            raise ValueError(
                f"weather covariate {self.name!r} needs column = one of "
                f"{', '.join(WEATHER_VALUES)}, got {self.file_column!r}"
            )
        if self.role == "past" and self.options:
            raise ValueError(f"past weather covariate {self.name!r} takes no options")
        if self.role == "future" and self.known_ahead > MAX_LEAD_DAYS:
            raise ValueError(
                f"future weather covariate {self.name!r}: forecasts as issued reach "
                f"{MAX_LEAD_DAYS} days ahead (Open-Meteo previous runs), got known_ahead "
                f"{self.known_ahead}"
            )
        try:
            check_options(self.options)
        except ValueError as exc:
            raise ValueError(f"weather covariate {self.name!r}: {exc}") from None

    @property
    def file_column(self) -> str:
        return self.column or self.name


class ExogenousConfig(BaseModel):
    """A data set of covariates apart from the prices: rows keyed by ``key_column`` and
    ``date``, one column per variable, e.g. weather forecasts per zone or a gas price.

    ``issued_column`` names the column of the time each value was issued (a forecast's run):
    a row issued after a run's date is later data, and a value issued twice for one day is
    kept twice, each visible from its issue time on (a revised forecast never changes what an
    earlier night saw). Without it, a value for day d counts as issued ``known_ahead`` days
    before d (the declaring covariate's). Covariates pick their column and key from it
    (``source = "exogenous"``). File drops (kind ``file``) only, for now.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$", description="the data set's name")
    source: SourceSpec
    key_column: str = Field(default="key", description="the column of the key (a zone, a hub)")
    issued_column: str | None = Field(default=None, description="the column of the issue time")

    @field_validator("source")
    @classmethod
    def _file_only(cls, v: SourceSpec) -> SourceSpec:
        if v.kind != "file":
            raise ValueError(
                f"an exogenous data set is read from file drops (kind 'file'), got {v.kind!r}"
            )
        return v


class SeriesConfig(BaseModel):
    """One price series to forecast."""

    id: str = Field(pattern=r"^[A-Za-z0-9_\-]+$", description="series id, used in paths and SQL")
    source: SourceSpec = Field(default_factory=SourceSpec)
    weather: Location | None = Field(default=None, description="weather location joined in")
    frequency: Literal["B", "D"] = Field(
        default="B", description="B: business days (markets), D: every calendar day"
    )
    calendar: str | None = Field(
        default=None,
        description="frequency B only: an exchange calendar of exchange_calendars (XNYS, XLON, "
        "XETR, ...) whose sessions are the series' dates, so its holidays are never forecast; "
        "none: pandas business days (weekdays)",
    )
    covariates: list[CovariateConfig] = Field(
        default_factory=list, description="named inputs beyond the price, each with a role"
    )
    negative_prices: bool = Field(
        default=False,
        description="prices may be zero or negative (electricity): validation then checks "
        "changes, not ratios, and the models work on levels, not logs",
    )

    @field_validator("covariates")
    @classmethod
    def _unique_covariates(cls, v: list[CovariateConfig]) -> list[CovariateConfig]:
        names = [c.name for c in v]
        if len(set(names)) != len(names):
            raise ValueError(f"covariate names must be unique per series, got {names}")
        return v

    @model_validator(mode="after")
    def _calendar_business(self) -> SeriesConfig:
        if self.calendar is not None:
            from pipeline_lib.features.calendar import check_exchange

            if self.frequency != "B":
                raise ValueError(
                    f"series {self.id!r}: calendar {self.calendar!r} needs frequency 'B', "
                    f"got {self.frequency!r}"
                )
            check_exchange(self.calendar)
        return self

    @model_validator(mode="after")
    def _weather_location(self) -> SeriesConfig:
        lacking = [c.name for c in self.covariates if c.source == "weather"]
        if lacking and self.weather is None:
            raise ValueError(
                f"series {self.id!r}: weather covariate(s) {lacking} read the weather of the "
                "series' location, but it has none (set weather = { name, latitude, "
                "longitude, timezone })"
            )
        return self

    @property
    def dates_frequency(self) -> str:
        """What :func:`pipeline_lib.features.calendar.future_dates` takes for this series: the
        exchange calendar code when one is set, else the frequency."""
        return self.calendar or self.frequency


class ModelConfig(BaseModel):
    """Hyper-parameters of the recurrent model (see pipeline_lib.model.lstm for each)."""

    lookback: int = Field(default=60, ge=2)
    hidden_size: int = Field(default=32, ge=1)
    num_layers: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    embedding_dim: int = Field(default=4, ge=1)
    cell: Literal["lstm", "gru"] = Field(default="lstm", description="recurrent cell")
    attention: bool = Field(default=False, description="attention over the encoder outputs")
    base: Literal["none", "linear"] = Field(
        default="linear",
        description="'linear': the network corrects a per-series, per-horizon ridge regression "
        "on the origin's inputs and the known-future ones, fitted in closed form on the "
        "training windows (a hybrid, see pipeline_lib.model.base); 'none': the network alone",
    )
    quantiles: list[float] = Field(
        default_factory=lambda: [0.1, 0.5, 0.9],
        description="levels the LSTM forecasts: an odd count (3, 5, ...) of increasing values "
        "in (0, 1); the middle one is the point forecast, the first and last the published "
        "interval (yhat_lower, yhat_upper)",
    )

    @field_validator("quantiles")
    @classmethod
    def _quantiles_ordered(cls, v: list[float]) -> list[float]:
        increasing = all(a < b for a, b in zip(v, v[1:], strict=False))
        if len(v) < 3 or len(v) % 2 == 0 or not increasing or not (0 < v[0] and v[-1] < 1):
            raise ValueError(
                "quantiles must be an odd count (3, 5, ...) of increasing values in (0, 1), "
                "e.g. [0.1, 0.5, 0.9] or [0.05, 0.25, 0.5, 0.75, 0.95]"
            )
        return v

    @model_validator(mode="after")
    def _base_lags(self) -> ModelConfig:
        if self.base == "linear" and self.lookback < 7:
            raise ValueError("model.base = 'linear' reads the lag 7: lookback must be at least 7")
        return self

    @property
    def band(self) -> list[float]:
        """The published levels: (yhat_lower, yhat, yhat_upper), the outer and middle
        quantiles; what every baseline forecasts and what the metrics score."""
        q = self.quantiles
        return [q[0], q[len(q) // 2], q[-1]]


class TrainingConfig(BaseModel):
    """How models are trained, fine-tuned and when they are fully retrained."""

    seed: int = 42
    max_epochs: int = Field(default=30, ge=1)
    patience: int = Field(default=5, ge=1)
    batch_size: int = Field(default=128, ge=1)
    learning_rate: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float = Field(default=1.0, gt=0)
    val_fraction: float = Field(default=0.15, gt=0, lt=0.5)
    train_window_days: int = Field(
        default=1095, ge=30, description="history used by a full training"
    )
    finetune_epochs: int = Field(default=5, ge=1)
    finetune_window_days: int = Field(default=180, ge=10)
    finetune_lr_factor: float = Field(default=0.2, gt=0, le=1)
    finetune_replay_fraction: float = Field(
        default=0.5,
        ge=0,
        le=5,
        description="older windows replayed in a fine-tune, as a share of the recent windows",
    )
    finetune_scalers: Literal["frozen", "refit"] = Field(
        default="frozen", description="keep the parent's scalers, or refit them on the new data"
    )
    retrain_every_days: int = Field(default=28, ge=1, description="full retraining cadence")
    num_threads: int = Field(default=2, ge=1)


BaselineName = Literal["naive", "seasonal_naive", "linear", "ets", "arima"]


def _all_baselines() -> list[BaselineName]:
    return ["naive", "seasonal_naive", "linear", "ets", "arima"]


# the selection rules (pipeline_lib.selection reads its RULES from here)
RuleName = Literal[
    "dm_set", "best", "dm", "margin", "combination", "dm_combination", "dm_mean", "margin_dm_set"
]
STATISTICAL_MIN_ROWS = 60  # the fewest rows a statistical baseline is fitted on


class BacktestConfig(BaseModel):
    """The nightly rolling-origin backtest that ranks the models.

    Its origins are the last ``last_n`` forecast dates, ``step`` rows apart, whose ``horizon``
    targets are all observed by the run date. Models are trained only on targets dated on or
    before the first origin, so every model is scored out of sample on the same windows.
    """

    # 40 origins 2 rows apart: about four months of evidence. 20 consecutive origins (a month
    # of heavily overlapping windows) picked models that then lost to naive out of sample
    # (bench/accuracy.py, figures in the README).
    last_n: int = Field(default=40, ge=1, description="forecast dates (origins) per series")
    step: int = Field(default=2, ge=1, description="rows between consecutive origins")
    mase_season: int = Field(default=1, ge=1, description="MASE scale: 1 = naive, 5 = weekly")
    baselines: list[BaselineName] = Field(
        default_factory=_all_baselines,
        description="baselines scored, and published where the selection picks them; ets and "
        "arima are statsforecast's AutoETS and AutoARIMA",
    )
    # bench/statistical_window.py, electricity 2019-2020: 1000 rows were as accurate as every
    # row (MASE h=1 ETS 0.870 vs 0.877, ARIMA 0.817 vs 0.839) for 0.69x and 0.88x the CPU
    statistical_fit_rows: int = Field(
        default=1000,
        ge=0,
        description="rows ets and arima are fitted on: the newest before their fit point (0: "
        "every row since the series' first, a cost that grows with the history); at least 60",
    )
    # bench/statistical_window.py, electricity 2019-2020 (histories of 1,097-1,797 rows): every
    # row MASE h=1 0.601, h=1-14 1.293; 1456 rows 0.602 / 1.298; 728 0.635 / 1.332; LEAR's
    # mean of 56, 84, 1092 and 1456 rows 0.697 / 1.486. More rows help; 1820 bounds the cost
    # on long histories and keeps every row of the bundled ones
    linear_fit_rows: list[int] = Field(
        default_factory=lambda: [1820],
        min_length=1,
        description="the linear model's calibration windows in rows, newest first: each fits "
        "its ridges on that many rows before the origin (0: every row since the series' "
        "first); several are averaged (LEAR's ensemble of windows); each 0 or at least 60",
    )
    keep_days: int = Field(
        default=31,
        ge=0,
        description="days of nightly backtests kept in backtest_results before the night's "
        "date (each night writes every origin, horizon and model; 0: keep all)",
    )
    series_per_chunk: int = Field(
        default=200,
        ge=1,
        description="series whose baselines are run and every model scored at once: the "
        "backtest holds one chunk's forecasts and their scoring, not every series' (memory)",
    )
    reference: BaselineName = Field(
        default="naive",
        description="the model the dm and margin selection rules fall back to",
    )
    min_improvement: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="margin rule: relative MASE gain over the reference a model needs",
    )

    @field_validator("statistical_fit_rows")
    @classmethod
    def _enough_rows(cls, rows: int) -> int:
        if 0 < rows < STATISTICAL_MIN_ROWS:
            raise ValueError(f"must be 0 (every row) or at least {STATISTICAL_MIN_ROWS}")
        return rows

    @field_validator("linear_fit_rows")
    @classmethod
    def _enough_linear_rows(cls, windows: list[int]) -> list[int]:
        short = [w for w in windows if w < 0 or 0 < w < STATISTICAL_MIN_ROWS]
        if short:
            raise ValueError(f"{short}: each must be 0 (every row) or at least 60")
        return sorted(set(windows))

    @model_validator(mode="after")
    def _reference_scored(self) -> BacktestConfig:
        if self.reference not in self.baselines:
            raise ValueError(f"backtest.reference {self.reference!r} must be in baselines")
        return self


class SelectionConfig(BaseModel):
    """What is published per series and horizon bucket (see pipeline_lib.selection).

    Chosen by the walk-forward figures of bench/accuracy.py on the bundled stocks and on the
    six electricity zones with their covariates (README, Benchmarks): per bucket, the
    reference (naive) unless a model's backtest MASE beats it by ``backtest.min_improvement``
    (10%); then the models a Diebold-Mariano test at ``alpha`` 0.05 cannot tell from the best
    one, combined (``margin_dm_set``). Over the four scopes measured (two data sets, h=1 and
    h=1-14) it was on average 1.0% better than the best single model in hindsight (margin
    alone: 0.5% worse), 4.3% better at h=1 on electricity, no worse than the best statistical
    baseline on 15 of 20 series and scopes (margin: 14), and at most 2.0% behind the best single
    model (margin: 1.0%, over h=1-14 on the stocks, where naive is best).
    """

    rule: RuleName = Field(
        default="margin_dm_set", description="how the backtest evidence picks what is published"
    )
    bucket_ends: list[int] = Field(
        default_factory=lambda: [1, 5],
        description="last horizon of each bucket but the last: [1, 5] gives h=1, 2-5, 6-H",
    )
    alpha: float = Field(
        default=0.05, gt=0, lt=1, description="level of the one-sided Diebold-Mariano test"
    )
    max_members: int = Field(default=3, ge=1, description="most models in a published combination")


class TuningConfig(BaseModel):
    """Hyper-parameter search (Optuna TPE) on the backtest; see pipeline_lib.tuning."""

    n_trials: int = Field(default=20, ge=1)
    seed: int = 0
    use_best: bool = Field(
        default=True, description="train with the best configuration found, once there is one"
    )
    lookback: list[int] = Field(default_factory=lambda: [30, 60, 90])
    hidden_size: list[int] = Field(default_factory=lambda: [16, 32, 64])
    num_layers: list[int] = Field(default_factory=lambda: [1, 2])
    dropout: tuple[float, float] = (0.0, 0.3)
    learning_rate: tuple[float, float] = (1e-3, 1e-2)
    batch_size: list[int] = Field(default_factory=lambda: [64, 128, 256])


class DriftTableOptions(TypedDict):
    """The keyword arguments of ``pipeline_lib.drift.drift_table`` a DriftConfig gives."""

    psi_bins: int
    psi_threshold: float
    ks_pvalue_threshold: float
    wasserstein_threshold: float
    mean_shift_threshold: float
    std_ratio_threshold: float


class DriftConfig(BaseModel):
    """Drift thresholds: input drift (pipeline_lib.drift), prediction drift and performance
    decay (pipeline_lib.decay). Every metric row carries its threshold and flag.

    At ~63 recent business days against ~3 years of reference, the input-drift defaults flag
    1-4% of stationary, serially independent series (returns) and flag a 1-std mean shift
    every time; persistent features and volatility clustering are flagged far more often
    (their windows hold fewer independent values). ``python bench/drift_false_alarms.py``
    prints the rates.
    """

    # ~63 business days against 5 bins: on stationary data PSI > 0.2 about 2% of the time
    # (10 bins and 30 days flagged most stable features; see pipeline_lib.drift).
    recent_days: int = Field(default=90, ge=5, description="size of the recent window, in days")
    psi_bins: int = Field(default=5, ge=2)
    psi_threshold: float = 0.2
    ks_pvalue_threshold: float = 0.01
    wasserstein_threshold: float = Field(
        default=0.4,
        gt=0,
        description="wasserstein_std: Wasserstein distance over the reference std; a pure mean "
        "shift of d std gives d",
    )
    mean_shift_threshold: float = Field(
        default=0.5,
        gt=0,
        description="|mean_recent - mean_ref| / std_ref above this is drift",
    )
    std_ratio_threshold: float = Field(
        default=1.5,
        gt=1,
        description="std_recent / std_ref outside [1/t, t] is drift",
    )
    prediction_shift_threshold: float = Field(
        default=3.0,
        gt=0,
        description="prediction drift: tonight's forecast (mean over horizons) more than this "
        "many std of the reference nights' forecasts from their mean (one night is one value)",
    )
    # A calibrated naive forecast of a random walk (bench/drift_false_alarms.py): with 90 days
    # coverage_gap flags ~19% of the nights (all horizons), with 180 days ~6%; mase_ratio ~17-21%
    # either way (~13% against a 150-origin backtest): nearby nights' errors overlap. The
    # retraining policy counts a flag once (RetrainPolicyConfig).
    decay_window_days: int = Field(
        default=180, ge=1, description="performance decay: target dates in the last N days"
    )
    # at 30 the binomial noise of an 80% coverage (0.073) is below the 0.10 threshold
    min_realised: int = Field(
        default=30,
        ge=1,
        description="performance decay: fewer realised forecasts in a series (or horizon) "
        "and no rows for it",
    )
    mase_ratio_threshold: float = Field(
        default=1.2, gt=0, description="live MASE / backtest MASE above this is decay"
    )
    coverage_gap_threshold: float = Field(
        default=0.10,
        gt=0,
        le=1,
        description="|live interval coverage - nominal level| above this is decay",
    )

    def table_options(self) -> DriftTableOptions:
        """The keyword arguments of ``pipeline_lib.drift.drift_table`` these settings give."""
        return {
            "psi_bins": self.psi_bins,
            "psi_threshold": self.psi_threshold,
            "ks_pvalue_threshold": self.ks_pvalue_threshold,
            "wasserstein_threshold": self.wasserstein_threshold,
            "mean_shift_threshold": self.mean_shift_threshold,
            "std_ratio_threshold": self.std_ratio_threshold,
        }


DecayMetric = Literal["mase_ratio", "coverage_gap"]


def _all_decay_metrics() -> list[DecayMetric]:
    return ["mase_ratio", "coverage_gap"]


class RetrainPolicyConfig(BaseModel):
    """When drift and decay flags bring the full retraining forward (pipeline_lib.policy).

    Before training, the nightly checks input drift (the current model's training window
    against the recent window) and the decay of the forecasts published before. A watched
    (series, feature) counts as drifted when at least ``min_agreeing_metrics`` of its five
    flagged metrics (psi, ks_pvalue, wasserstein_std, mean_shift, std_ratio) agree; a series
    counts as decayed when its all-horizons ``forecast_error`` row flags one of
    ``decay_metrics``. The run trains in full when the drifted pairs reach
    ``input_drift_count`` or the decayed series reach ``decay_count``, unless the last full
    training is younger than ``cooldown_days``; otherwise it fine-tunes. The new model still
    has to beat the champion on the backtest.

    Only the log return is watched by default: on the bundled data (2015, one night a week)
    the price level ``y`` drifts on every night (a trending price is never stationary) and the
    weather on 83-96% of them (the season against three years), while the log return's
    metrics agreed only on WTI's 2015 collapse. ``python bench/drift_false_alarms.py`` prints
    the policy's false alarms and detection.
    """

    enabled: bool = Field(
        default=True,
        description="drift and decay flags can bring a full retraining forward; off: only the "
        "cadence and the other reasons (no model, settings changed, --retrain) train in full",
    )
    watch_features: list[str] = Field(
        default_factory=lambda: ["log_return"],
        description="input-drift features whose flags count (y, or a past feature)",
    )
    min_agreeing_metrics: int = Field(
        default=3,
        ge=1,
        le=5,
        description="flagged metrics (of psi, ks_pvalue, wasserstein_std, mean_shift, "
        "std_ratio) that make a (series, feature) drifted",
    )
    input_drift_count: int = Field(
        default=1, ge=0, description="drifted (series, feature) pairs that trigger; 0: never"
    )
    decay_metrics: list[DecayMetric] = Field(
        default_factory=_all_decay_metrics,
        description="decay flags (all horizons of a series) that count",
    )
    decay_count: int = Field(default=2, ge=0, description="decayed series that trigger; 0: never")
    cooldown_days: int = Field(
        default=7,
        ge=0,
        description="no drift-triggered full training within this many days of the last one",
    )

    @field_validator("watch_features")
    @classmethod
    def _known_features(cls, v: list[str]) -> list[str]:
        from pipeline_lib.schema import PAST_FEATURES, Y

        unknown = sorted(set(v) - {Y, *PAST_FEATURES})
        if unknown:
            raise ValueError(f"unknown features {unknown}; known: {[Y, *PAST_FEATURES]}")
        return v


class HttpConfig(BaseModel):
    """How live HTTP sources behave: timeouts, retries with back-off, politeness."""

    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, description="tries per request, the first included")
    backoff_initial_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    rate_limit_per_s: float = Field(default=2.0, gt=0, description="requests per second per host")
    user_agent: str = "forecast-pipeline/0.1 (+https://github.com/forecast-pipeline)"
    max_response_bytes: int = Field(default=50_000_000, ge=1)


class IngestConfig(BaseModel):
    """Incremental ingest: how far back a nightly run looks again for late revisions."""

    revision_lookback_days: int = Field(
        default=3, ge=0, description="days before the watermark fetched again (late revisions)"
    )
    max_file_bytes: int = Field(default=200_000_000, ge=1, description="larger files are refused")


class ValidationConfig(BaseModel):
    """Thresholds of the warning-level checks, of the absurd changes and of the revisions (the
    other critical checks have no knobs)."""

    max_staleness_days: int = Field(default=5, ge=0, description="newest date vs forecast date")
    max_gap_days: int = Field(default=5, ge=1, description="longest allowed hole between rows")
    jump_zscore: float = Field(default=8.0, gt=0, description="day-over-day change, in std devs")
    absurd_jump_robust_z: float = Field(
        default=50.0,
        gt=0,
        description="critical: a change (log change of close, change of temp_mean) of more "
        "robust std devs (1.4826 * MAD) of the series' own changes is refused",
    )
    absurd_jump_factor: float = Field(
        default=100.0,
        gt=1,
        description="critical: a close more than this many times the previous one, or less "
        "than 1/this of it, is refused (prices only)",
    )
    max_revision_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="critical: a batch revising (changing already curated values of) more than "
        "this share of the key's curated rows in the history the gate reads (the last 400 days "
        "before the forecast date, reaching back to the batch's first date) is refused; smaller "
        "revisions are applied and recorded",
    )
    revision_rows_always_allowed: int = Field(
        default=5,
        ge=0,
        description="revisions of at most this many rows per key are never refused, whatever the "
        "share (a short history's correction of a few days)",
    )


class OrchestrationConfig(BaseModel):
    """How the deployments run: schedules (``forecast-pipeline deploy`` puts them in
    deploy/prefect.yaml) and the global concurrency limit every writing run holds."""

    nightly_cron: str = Field(default="30 6 * * 2-6", description="nightly run (cron)")
    retrain_cron: str = Field(default="0 4 * * 0", description="periodic full retraining (cron)")
    timezone: str = Field(default="Europe/London", description="IANA zone of both schedules")
    work_pool: str = Field(default="forecast-pool", description="Prefect work pool of the runs")
    concurrency_limit: str = Field(
        default="forecast-pipeline",
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefect global concurrency limit (1 slot) held by nightly, retrain and "
        "backfill runs, so two runs never write the same partitions or rows at once",
    )
    wait_hours: float = Field(
        default=12, gt=0, description="how long a run waits for that slot before failing"
    )
    slot_check_seconds: float = Field(
        default=10,
        gt=0,
        description="how often a waiting run looks whether the slot's holder is still alive; "
        "a slot whose holder died is freed after two looks",
    )

    @field_validator("nightly_cron", "retrain_cron")
    @classmethod
    def _five_fields(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError(f"a cron needs 5 fields (minute hour day month weekday), got {v!r}")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


class ParallelConfig(BaseModel):
    """Where a night's per-series work runs: every baseline's backtest and tonight's baseline
    forecasts (the linear model's fits, statsforecast's AutoETS and AutoARIMA). ``local``: in
    the forecast stage's own process (the default). ``dask``: on Dask, ``series_per_task``
    series per Prefect task run, through prefect-dask's task runner: on the cluster at
    ``dask_address`` (its workers must reach the data folder), else on a local cluster of
    ``workers`` processes started for the stage (``pip install 'forecast-pipeline[dask]'``).
    The global LSTM trains once, in the stage's process. The results are the same either way:
    a series' baselines read that series only."""

    runner: Literal["local", "dask"] = Field(
        default="local", description="local: in the stage's process; dask: on a Dask cluster"
    )
    workers: int = Field(default=2, ge=1, le=256, description="processes of a local cluster")
    dask_address: str | None = Field(
        default=None, description="scheduler of an existing cluster (tcp://host:8786)"
    )
    series_per_task: int = Field(default=50, ge=1, description="series per task run")


class ServeConfig(BaseModel):
    """``forecast-pipeline serve``, the read API over the published forecasts
    (:mod:`pipeline_lib.api`): where it listens, which database URL it reads with, and the URLs
    browsers use to reach it and the reports folder (:func:`pipeline_lib.api.links.report_link`
    maps a report file to its URL under ``reports_url``)."""

    host: str = Field(default="127.0.0.1", min_length=1, description="address to listen on")
    port: int = Field(default=8000, ge=1, le=65535, description="port to listen on")
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL the API reads with, e.g. a login of the read-only BI role; "
        "default the pipeline's own database (database_url). A secret, like database_url",
    )
    public_url: str | None = Field(
        default=None,
        description="the URL browsers reach this server at (behind a proxy, or when host is "
        "0.0.0.0); default http://{host}:{port}",
    )
    reports_url: str | None = Field(
        default=None,
        description="the URL the reports folder is reachable at from a browser, e.g. an "
        "object-storage bucket's https URL; default {public_url}/reports (served by the API)",
    )

    @field_validator("public_url", "reports_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        from urllib.parse import urlsplit

        if v is None:
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("must be an http:// or https:// URL without a query")
        return v.rstrip("/")

    @property
    def public_base(self) -> str:
        """``public_url``, or ``http://{host}:{port}`` (an IPv6 host in brackets)."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def reports_base(self) -> str:
        """``reports_url``, or ``{public_url}/reports``."""
        return self.reports_url or f"{self.public_base}/reports"


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


SEATTLE = Location(name="seattle", latitude=47.6062, longitude=-122.3321)


def default_series() -> list[SeriesConfig]:
    """The bundled sample: four real daily price series, joined with Seattle's weather, on the
    New York Stock Exchange's sessions. WTI (NYMEX spot) too: its sample has a price on every
    XNYS session of 2012-2015 and on two more days (2012-10-29/30, when Hurricane Sandy closed
    the NYSE), while exchange_calendars' NYMEX calendar (CMES, CME Globex) trades on most US
    holidays, which the sample skips."""
    return [
        SeriesConfig(
            id=symbol,
            source=SourceSpec(kind="sample", options={"symbol": symbol}),
            weather=SEATTLE,
            calendar="XNYS",
        )
        for symbol in ("SP500", "NASDAQ", "MSFT", "WTI")
    ]


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
