"""Settings: one typed object, read from a TOML file and from ``PIPELINE_*`` environment variables.

Precedence (highest first): explicit arguments, environment variables, the TOML file, defaults.
Nested values take ``__`` in the environment, e.g. ``PIPELINE_TRAINING__MAX_EPOCHS=5``.
Nothing here touches the disk or the network until a caller asks for it.

A module per responsibility, every public name importable from here:

- :mod:`~pipeline_lib.config.series`: what one series is and where its data comes from
  (sources, weather locations, covariates, exogenous data sets, the bundled sample).
- :mod:`~pipeline_lib.config.modelling`: the model and its training.
- :mod:`~pipeline_lib.config.contest`: the backtest and its baselines, the selection of what
  is published, the hyper-parameter search.
- :mod:`~pipeline_lib.config.monitoring`: drift and decay thresholds, the retraining policy.
- :mod:`~pipeline_lib.config.running`: HTTP sources, ingest, validation, orchestration,
  parallel execution and the read API.
- :mod:`~pipeline_lib.config.settings`: :class:`Settings` (all of the above).
- :mod:`~pipeline_lib.config.loading`: :func:`load_settings` (the TOML file, the environment,
  one-line error messages).
"""

from pipeline_lib.config.contest import (
    STATISTICAL_MIN_ROWS,
    STATISTICAL_REFIT_ROWS,
    STATISTICAL_SEARCH_EVERY,
    BacktestConfig,
    BaselineName,
    RuleName,
    SelectionConfig,
    TuningConfig,
)
from pipeline_lib.config.loading import load_settings
from pipeline_lib.config.modelling import ModelConfig, TrainingConfig
from pipeline_lib.config.monitoring import (
    DecayMetric,
    DriftConfig,
    DriftTableOptions,
    RetrainPolicyConfig,
)
from pipeline_lib.config.running import (
    HttpConfig,
    IngestConfig,
    OrchestrationConfig,
    ParallelConfig,
    ServeConfig,
    ValidationConfig,
)
from pipeline_lib.config.series import (
    SAMPLE_END,
    SAMPLE_START,
    SEATTLE,
    CovariateConfig,
    ExogenousConfig,
    Location,
    SeriesConfig,
    SourceSpec,
    default_series,
)
from pipeline_lib.config.settings import Settings

__all__ = [
    "SAMPLE_END",
    "SAMPLE_START",
    "SEATTLE",
    "STATISTICAL_MIN_ROWS",
    "STATISTICAL_REFIT_ROWS",
    "STATISTICAL_SEARCH_EVERY",
    "BacktestConfig",
    "BaselineName",
    "CovariateConfig",
    "DecayMetric",
    "DriftConfig",
    "DriftTableOptions",
    "ExogenousConfig",
    "HttpConfig",
    "IngestConfig",
    "Location",
    "ModelConfig",
    "OrchestrationConfig",
    "ParallelConfig",
    "RetrainPolicyConfig",
    "RuleName",
    "SelectionConfig",
    "SeriesConfig",
    "ServeConfig",
    "Settings",
    "SourceSpec",
    "TrainingConfig",
    "TuningConfig",
    "ValidationConfig",
    "default_series",
    "load_settings",
]
