"""The models: every registered version and its lineage, each night's training decision, and
the selection published per series and horizon bucket.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from pipeline_lib.db.tables.columns import metadata, model_version, run_id, tz

MODEL_KINDS = ("full", "finetune", "baseline", "combination")
TRAINING_ACTIONS = ("full", "finetune", "reuse")

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
    Column("created_at", tz(), nullable=False, comment="when the model was registered (UTC)"),
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

training_decisions = Table(
    "training_decisions",
    metadata,
    run_id("pipeline_runs.run_id of the forecast run that decided", primary_key=True),
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
    model_version("model trained (or reused) by the run"),
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
    Column("created_at", tz(), nullable=False, comment="when the row was written (UTC)"),
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
    model_version(
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
    run_id(),
    Column("created_at", tz(), nullable=False, comment="when the row was written (UTC)"),
    Index(None, "series_id", "forecast_date"),  # latest_model_selections: a series' newest night
    comment="What each night published per series and horizon bucket, by which rule, on what "
    "evidence",
)
