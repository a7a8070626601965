"""The SQL tables BI tools read: one MetaData, portable across SQLite and PostgreSQL.

JSON payloads (hyper-parameters, metrics, run details) are stored as JSON text so the same
DDL works on both engines. ``sql/schema.sql`` is generated from this module
(``python -m pipeline_lib.db.ddl``); edit here, then regenerate.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# Deterministic constraint names, so the generated DDL is stable and readable.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

MODEL_KINDS = ("full", "finetune", "baseline", "combination")
TRAINING_ACTIONS = ("full", "finetune", "reuse")
RUN_STATUSES = ("running", "succeeded", "failed", "crashed")


def _tz() -> DateTime:
    return DateTime(timezone=True)


def _run_id(
    comment: str = "pipeline_runs.run_id that wrote it", primary_key: bool = False
) -> Column:
    return Column(
        "run_id",
        String(64),
        ForeignKey("pipeline_runs.run_id"),
        primary_key=primary_key,
        nullable=False,
        comment=comment,
    )


def _model_version(comment: str, primary_key: bool = False) -> Column:
    return Column(
        "model_version",
        String(64),
        ForeignKey("model_versions.version"),
        primary_key=primary_key,
        nullable=False,
        comment=comment,
    )


forecasts = Table(
    "forecasts",
    metadata,
    Column("series_id", String(64), primary_key=True, comment="series forecast"),
    Column("forecast_date", Date, primary_key=True, comment="as-of date: data up to this day"),
    Column("target_date", Date, primary_key=True, comment="the day being forecast"),
    Column("horizon", Integer, nullable=False, comment="steps ahead of forecast_date (1 = next)"),
    Column("yhat", Float, nullable=False, comment="point forecast (median quantile)"),
    Column("yhat_lower", Float, comment="lower quantile"),
    Column("yhat_upper", Float, comment="upper quantile"),
    Column(
        "model",
        String(64),
        nullable=False,
        server_default="lstm",
        comment="what produced the row: a model (lstm, naive, ets, ...) or a combination "
        "mean(a,b,...)",
    ),
    _model_version("model_versions.version used"),
    _run_id(),
    Column("created_at", _tz(), nullable=False, comment="when the row was written (UTC)"),
    # latest_forecasts and the accuracy views: one series' target dates, newest forecast first
    Index(None, "series_id", "target_date", "forecast_date"),
    Index(None, "forecast_date"),  # tonight's forecasts
    Index(None, "model_version"),  # model history
    comment="Forecasts: one row per series, forecast date and target date",
)

# A night's backtest is stored as windows (one model version's forecast of one series from one
# origin, with its actuals and metric terms), written once: a baseline's window from an origin
# is the same on every night whose backtest holds that origin, so a night writes only its new
# windows, and says which windows it scored (backtest_nights) and the MASE scale of each series
# (backtest_series). The view backtest_results (sql/views.sql) gives the rows of every night.
backtest_windows = Table(
    "backtest_windows",
    metadata,
    Column(
        "window_id",
        BigInteger,
        primary_key=True,
        autoincrement=False,
        comment="digest of the window's key and rows: a window whose rows change is a new one",
    ),
    _model_version("model_versions.version"),
    Column("series_id", String(64), nullable=False, comment="series forecast"),
    Column("forecast_date", Date, nullable=False, comment="window origin: data up to this day"),
    Column(
        "model",
        String(64),
        nullable=False,
        comment="a model (lstm, naive, ets, ...) or a combination mean(a,b,...)",
    ),
    _run_id("pipeline_runs.run_id that first wrote it"),
    Column("created_at", _tz(), nullable=False, comment="when the window was first written (UTC)"),
    Index(None, "model_version", "series_id"),
    comment="Backtest windows: a model version's forecast of a series from one origin",
)

backtest_forecasts = Table(
    "backtest_forecasts",
    metadata,
    Column(
        "window_id",
        BigInteger,
        ForeignKey("backtest_windows.window_id"),
        primary_key=True,
        autoincrement=False,
        comment="backtest_windows.window_id",
    ),
    Column("target_date", Date, primary_key=True, comment="the day forecast"),
    Column("horizon", Integer, nullable=False, comment="steps ahead of forecast_date"),
    Column("yhat", Float, nullable=False, comment="point forecast (median quantile)"),
    Column("yhat_lower", Float, comment="lower quantile"),
    Column("yhat_upper", Float, comment="upper quantile"),
    Column("actual", Float, nullable=False, comment="observed value on target_date"),
    Column("abs_error", Float, nullable=False, comment="|actual - yhat|; mean = MAE"),
    Column("squared_error", Float, nullable=False, comment="mean = MSE; RMSE = its root"),
    Column("smape", Float, nullable=False, comment="sMAPE term (0..200); mean = sMAPE"),
    Column("pinball_lower", Float, comment="pinball loss of yhat_lower at its quantile"),
    Column("pinball_median", Float, comment="pinball loss of yhat at the median quantile"),
    Column("pinball_upper", Float, comment="pinball loss of yhat_upper at its quantile"),
    Column(
        "covered",
        Boolean(create_constraint=False),
        nullable=False,
        comment="actual within [yhat_lower, yhat_upper]; mean = coverage",
    ),
    comment="The rows of each backtest window: forecast, actual and per-row metric terms",
)

backtest_series = Table(
    "backtest_series",
    metadata,
    Column("backtest_date", Date, primary_key=True, comment="run date (as-of) of the backtest"),
    Column("series_id", String(64), primary_key=True, comment="series scored"),
    Column(
        "mase_scale",
        Float,
        comment="the series' naive in-sample MAE up to the night's first origin: "
        "scaled_error = abs_error / mase_scale (NULL when not positive)",
    ),
    _run_id(),
    Column("created_at", _tz(), nullable=False, comment="when the row was written (UTC)"),
    comment="A night's backtest per series: its MASE scale and the run that scored it",
)

backtest_nights = Table(
    "backtest_nights",
    metadata,
    Column("backtest_date", Date, primary_key=True, comment="run date (as-of) of the backtest"),
    Column("series_id", String(64), primary_key=True, comment="series scored"),
    Column(
        "window_id",
        BigInteger,
        ForeignKey("backtest_windows.window_id"),
        primary_key=True,
        autoincrement=False,
        comment="backtest_windows.window_id scored that night",
    ),
    Index(None, "window_id"),  # the windows no night refers to any more (pruning)
    comment="The windows each night's backtest scored, per series",
)

# Not created by the migrations: the view of sql/views.sql, declared for the readers.
views = MetaData()
backtest_results = Table(
    "backtest_results",
    views,
    Column("backtest_date", Date, comment="run date (as-of) of the backtest"),
    Column("model_version", String(64), comment="model_versions.version"),
    Column("series_id", String(64), comment="series forecast"),
    Column("forecast_date", Date, comment="window origin: data up to this day"),
    Column("target_date", Date, comment="the day forecast"),
    Column("model", String(64), comment="a model (lstm, naive, ets, ...) or a combination"),
    Column("horizon", Integer),
    Column("yhat", Float),
    Column("yhat_lower", Float),
    Column("yhat_upper", Float),
    Column("actual", Float),
    Column("abs_error", Float),
    Column("squared_error", Float),
    Column("scaled_error", Float),
    Column("smape", Float),
    Column("pinball_lower", Float),
    Column("pinball_median", Float),
    Column("pinball_upper", Float),
    Column("covered", Boolean(create_constraint=False)),
    Column("run_id", String(64)),
    Column("created_at", _tz()),
    comment="Backtest forecasts with actuals and per-row metric terms, same shape as forecasts",
)

drift_metrics = Table(
    "drift_metrics",
    metadata,
    Column("forecast_date", Date, primary_key=True, comment="as-of date of the check"),
    Column("series_id", String(64), primary_key=True, comment="series checked"),
    Column("feature", String(64), primary_key=True, comment="feature (or prediction) checked"),
    Column("metric", String(32), primary_key=True, comment="psi, ks_statistic, ks_pvalue, ..."),
    Column("value", Float, comment="metric value"),
    Column("threshold", Float, comment="threshold applied, null when not a flag by itself"),
    Column("is_drift", Boolean(create_constraint=False), nullable=False, comment="breach flag"),
    _run_id(),
    Column("created_at", _tz(), nullable=False, comment="when the row was written (UTC)"),
    Index(None, "series_id", "forecast_date"),  # current_drift_alerts: a series' newest check
    comment="Drift metrics between a reference and a recent window, with breach flags",
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("version", String(64), primary_key=True, comment="model version id"),
    # No foreign key: a database newer than the model folder may lack a fine-tune's parent.
    Column("parent_version", String(64), comment="version fine-tuned from, null for full"),
    Column("kind", String(16), nullable=False, comment="full, finetune, baseline or combination"),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="champion, challenger (lost its contest), retired (replaced), baseline, or "
        "combination (a weighted mean of other versions' forecasts)",
    ),
    Column("created_at", _tz(), nullable=False, comment="when the model was registered (UTC)"),
    Column("train_start", Date, comment="first date of the training window"),
    Column("train_end", Date, comment="last date of the training window"),
    Column("data_fingerprint", String(128), comment="hash of the training data"),
    Column(
        "hyperparameters",
        Text,
        comment='hyper-parameters, JSON text; a combination\'s: {"members": {model: weight}, '
        '"versions": {model: model_version}}',
    ),
    Column("metrics", Text, comment="backtest metrics, JSON text"),
    Column("path", Text, comment="checkpoint location"),
    CheckConstraint("kind IN ('full', 'finetune', 'baseline', 'combination')", name="kind"),
    Index(None, "status"),
    comment="Registered model versions and their lineage",
)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_id", String(64), primary_key=True, comment="run id (e.g. the flow run id)"),
    Column("flow", String(64), nullable=False, comment="flow name"),
    Column("as_of", Date, nullable=False, comment="forecast date the run is for"),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="running, succeeded, failed, or crashed (its process died; found by a later run)",
    ),
    Column("started_at", _tz(), nullable=False, comment="start time (UTC)"),
    Column("finished_at", _tz(), comment="end time (UTC), null while running"),
    Column("message", Text, comment="outcome message, e.g. the error"),
    Column("details", Text, comment="run details, JSON text"),
    CheckConstraint("status IN ('running', 'succeeded', 'failed', 'crashed')", name="status"),
    Index(None, "as_of", "flow"),
    comment="One row per pipeline run, for audit and monitoring",
)

training_decisions = Table(
    "training_decisions",
    metadata,
    _run_id("pipeline_runs.run_id of the forecast run that decided", primary_key=True),
    Column("forecast_date", Date, nullable=False, comment="as-of date of the run"),
    Column("action", String(16), nullable=False, comment="full, finetune or reuse"),
    Column(
        "trigger",
        String(32),
        nullable=False,
        comment="what decided it: no_model, requested, settings_changed, holdout, no_new_data, "
        "cadence, drift, decay, drift+decay or routine (a fine-tune)",
    ),
    Column("reason", Text, nullable=False, comment="the decision in words"),
    Column("base_version", String(64), comment="the current model before the run, if any"),
    _model_version("model trained (or reused) by the run"),
    Column(
        "contested",
        Boolean(create_constraint=False),
        nullable=False,
        comment="the new model had to beat the champion on the backtest",
    ),
    Column(
        "drift_retrain",
        Boolean(create_constraint=False),
        nullable=False,
        comment="the retraining policy called for a full training (the cooldown, the cadence "
        "or another reason may have decided instead)",
    ),
    Column(
        "drifted_pairs",
        Integer,
        nullable=False,
        comment="watched (series, feature) pairs whose input-drift metrics agreed",
    ),
    Column(
        "decayed_series",
        Integer,
        nullable=False,
        comment="series whose forecast decay (all horizons) was flagged",
    ),
    Column(
        "flags", Text, comment="JSON list of the counted flags: kind, series_id, feature, metrics"
    ),
    Column("created_at", _tz(), nullable=False, comment="when the row was written (UTC)"),
    CheckConstraint("action IN ('full', 'finetune', 'reuse')", name="action"),
    Index(None, "forecast_date"),
    comment="The retraining decision of every forecast run, with the drift and decay behind it",
)

model_selections = Table(
    "model_selections",
    metadata,
    Column("forecast_date", Date, primary_key=True, comment="as-of date of the night's choice"),
    Column("series_id", String(64), primary_key=True, comment="series the choice is for"),
    Column("horizon_from", Integer, primary_key=True, comment="first horizon of the bucket"),
    Column("horizon_to", Integer, nullable=False, comment="last horizon of the bucket"),
    Column(
        "model",
        String(64),
        nullable=False,
        comment="the label published for those horizons (forecasts.model): a model or "
        "mean(a,b,...)",
    ),
    _model_version(
        "model_versions.version published: the single model's, or the combination's combo-..."
    ),
    Column(
        "rule",
        String(16),
        nullable=False,
        comment="the selection rule that chose it: dm_set, best, dm, margin or combination",
    ),
    Column("weights", Text, nullable=False, comment="JSON {model: weight}, weights sum to 1"),
    Column("member_versions", Text, nullable=False, comment="JSON {model: model_versions.version}"),
    Column(
        "evidence",
        Text,
        comment="JSON: the rule's inputs (each model's MASE on the bucket, p-values, windows "
        "compared, models left out)",
    ),
    _run_id(),
    Column("created_at", _tz(), nullable=False, comment="when the row was written (UTC)"),
    Index(None, "series_id", "forecast_date"),  # latest_model_selections: a series' newest night
    comment="What each night published per series and horizon bucket, by which rule, on what "
    "evidence",
)

actuals = Table(
    "actuals",
    metadata,
    Column("series_id", String(64), primary_key=True, comment="series observed"),
    Column("target_date", Date, primary_key=True, comment="the day observed"),
    Column("actual", Float, nullable=False, comment="observed value of the series' target"),
    _run_id("pipeline_runs.run_id that last wrote it"),
    Column("updated_at", _tz(), nullable=False, comment="when the row was last written (UTC)"),
    Index(None, "target_date"),
    comment="Actuals: the observed target per series and date, for forecast accuracy",
)

validation_results = Table(
    "validation_results",
    metadata,
    _run_id("pipeline_runs.run_id that validated", primary_key=True),
    Column("dataset", String(32), primary_key=True, comment="prices, weather or features"),
    Column("batch", String(128), primary_key=True, comment="batch name, e.g. prices-SP500"),
    Column("as_of", Date, nullable=False, comment="forecast date the batch was validated for"),
    Column(
        "success",
        Boolean(create_constraint=False),
        nullable=False,
        comment="false when a critical expectation failed (the batch was quarantined)",
    ),
    Column("row_count", Integer, nullable=False, comment="rows in the batch"),
    Column("evaluated", Integer, nullable=False, comment="expectations evaluated"),
    Column("successful", Integer, nullable=False, comment="expectations met"),
    Column("failed_critical", Integer, nullable=False, comment="critical expectations failed"),
    Column("failed_warning", Integer, nullable=False, comment="warning expectations failed"),
    Column(
        "failed_expectations",
        Text,
        comment="JSON list: check, columns, expectation_type, severity, unexpected_count, rows",
    ),
    Column("validated_at", _tz(), nullable=False, comment="when the result was written (UTC)"),
    Index(None, "as_of", "dataset"),
    comment="Validation results: one row per run and batch, failed batches included",
)

schema_state = Table(
    "schema_state",
    metadata,
    Column("key", String(64), primary_key=True, comment="what is recorded, e.g. views_sha256"),
    Column("value", Text, nullable=False, comment="its value"),
    Column("updated_at", _tz(), nullable=False, comment="when it was last set (UTC)"),
    comment="Schema bookkeeping for `forecast-pipeline db upgrade`: the BI views' checksum",
)
