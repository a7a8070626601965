-- Tables of the forecasting pipeline (postgresql).
-- Generated from pipeline_lib/db/tables/ by `python -m pipeline_lib.db.ddl`; do not edit.
-- The BI views are in sql/views.sql.

CREATE TABLE backtest_scores (
    backtest_date DATE NOT NULL,
    series_id VARCHAR(64) NOT NULL,
    model VARCHAR(64) NOT NULL,
    horizon INTEGER NOT NULL,
    backtest_mase FLOAT,
    scale_abs_error FLOAT,
    scale_scaled_error FLOAT,
    CONSTRAINT pk_backtest_scores PRIMARY KEY (backtest_date, series_id, model, horizon)
);
COMMENT ON TABLE backtest_scores IS 'A night''s backtest per series, model and horizon, as the next night''s decay check reads it (the same figures as backtest_results aggregated, written with them)';
COMMENT ON COLUMN backtest_scores.backtest_date IS 'run date (as-of) of the backtest';
COMMENT ON COLUMN backtest_scores.series_id IS 'series scored';
COMMENT ON COLUMN backtest_scores.model IS 'a model or a combination';
COMMENT ON COLUMN backtest_scores.horizon IS 'steps ahead';
COMMENT ON COLUMN backtest_scores.backtest_mase IS 'mean of the finite scaled_error of the night''s rows (NULL when none is)';
COMMENT ON COLUMN backtest_scores.scale_abs_error IS 'sum of abs_error over the rows whose scaled_error is finite and positive';
COMMENT ON COLUMN backtest_scores.scale_scaled_error IS 'sum of scaled_error over the same rows: the ratio is the series'' MASE scale';

CREATE TABLE model_versions (
    version VARCHAR(64) NOT NULL,
    parent_version VARCHAR(64),
    kind VARCHAR(16) NOT NULL,
    status VARCHAR(16) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    train_start DATE,
    train_end DATE,
    data_fingerprint VARCHAR(128),
    hyperparameters TEXT,
    metrics TEXT,
    path TEXT,
    CONSTRAINT pk_model_versions PRIMARY KEY (version),
    CONSTRAINT ck_model_versions_kind CHECK (kind IN ('full', 'finetune', 'baseline', 'combination'))
);
CREATE INDEX ix_model_versions_status ON model_versions (status);
COMMENT ON TABLE model_versions IS 'Registered model versions and their lineage';
COMMENT ON COLUMN model_versions.version IS 'model version id';
COMMENT ON COLUMN model_versions.parent_version IS 'version fine-tuned from, null for full';
COMMENT ON COLUMN model_versions.kind IS 'full, finetune, baseline or combination';
COMMENT ON COLUMN model_versions.status IS 'champion, challenger (lost its contest), retired (replaced), baseline, or combination (a weighted mean of other versions'' forecasts)';
COMMENT ON COLUMN model_versions.created_at IS 'when the model was registered (UTC)';
COMMENT ON COLUMN model_versions.train_start IS 'first date of the training window';
COMMENT ON COLUMN model_versions.train_end IS 'last date of the training window';
COMMENT ON COLUMN model_versions.data_fingerprint IS 'hash of the training data';
COMMENT ON COLUMN model_versions.hyperparameters IS 'hyper-parameters, JSON text; a combination''s: {"members": {model: weight}, "versions": {model: model_version}}';
COMMENT ON COLUMN model_versions.metrics IS 'backtest metrics, JSON text';
COMMENT ON COLUMN model_versions.path IS 'checkpoint location';

CREATE TABLE pipeline_runs (
    run_id VARCHAR(64) NOT NULL,
    flow VARCHAR(64) NOT NULL,
    as_of DATE NOT NULL,
    status VARCHAR(16) NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    finished_at TIMESTAMP WITH TIME ZONE,
    message TEXT,
    details TEXT,
    CONSTRAINT pk_pipeline_runs PRIMARY KEY (run_id),
    CONSTRAINT ck_pipeline_runs_status CHECK (status IN ('running', 'succeeded', 'failed', 'crashed'))
);
CREATE INDEX ix_pipeline_runs_as_of_flow ON pipeline_runs (as_of, flow);
COMMENT ON TABLE pipeline_runs IS 'One row per pipeline run, for audit and monitoring';
COMMENT ON COLUMN pipeline_runs.run_id IS 'run id (e.g. the flow run id)';
COMMENT ON COLUMN pipeline_runs.flow IS 'flow name';
COMMENT ON COLUMN pipeline_runs.as_of IS 'forecast date the run is for';
COMMENT ON COLUMN pipeline_runs.status IS 'running, succeeded, failed, or crashed (its process died; found by a later run)';
COMMENT ON COLUMN pipeline_runs.started_at IS 'start time (UTC)';
COMMENT ON COLUMN pipeline_runs.finished_at IS 'end time (UTC), null while running';
COMMENT ON COLUMN pipeline_runs.message IS 'outcome message, e.g. the error';
COMMENT ON COLUMN pipeline_runs.details IS 'run details, JSON text';

CREATE TABLE schema_state (
    key VARCHAR(64) NOT NULL,
    value TEXT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_schema_state PRIMARY KEY (key)
);
COMMENT ON TABLE schema_state IS 'Schema bookkeeping for `forecast-pipeline db upgrade`: the BI views'' checksum';
COMMENT ON COLUMN schema_state.key IS 'what is recorded, e.g. views_sha256';
COMMENT ON COLUMN schema_state.value IS 'its value';
COMMENT ON COLUMN schema_state.updated_at IS 'when it was last set (UTC)';

CREATE TABLE actuals (
    series_id VARCHAR(64) NOT NULL,
    target_date DATE NOT NULL,
    actual FLOAT NOT NULL,
    run_id VARCHAR(64) NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_actuals PRIMARY KEY (series_id, target_date),
    CONSTRAINT fk_actuals_run_id_pipeline_runs FOREIGN KEY(run_id) REFERENCES pipeline_runs (run_id)
);
CREATE INDEX ix_actuals_target_date ON actuals (target_date);
COMMENT ON TABLE actuals IS 'Actuals: the observed target per series and date, for forecast accuracy';
COMMENT ON COLUMN actuals.series_id IS 'series observed';
COMMENT ON COLUMN actuals.target_date IS 'the day observed';
COMMENT ON COLUMN actuals.actual IS 'observed value of the series'' target';
COMMENT ON COLUMN actuals.run_id IS 'pipeline_runs.run_id that last wrote it';
COMMENT ON COLUMN actuals.updated_at IS 'when the row was last written (UTC)';

CREATE TABLE backtest_series (
    backtest_date DATE NOT NULL,
    series_id VARCHAR(64) NOT NULL,
    mase_scale FLOAT,
    run_id VARCHAR(64) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_backtest_series PRIMARY KEY (backtest_date, series_id),
    CONSTRAINT fk_backtest_series_run_id_pipeline_runs FOREIGN KEY(run_id) REFERENCES pipeline_runs (run_id)
);
COMMENT ON TABLE backtest_series IS 'A night''s backtest per series: its MASE scale and the run that scored it';
COMMENT ON COLUMN backtest_series.backtest_date IS 'run date (as-of) of the backtest';
COMMENT ON COLUMN backtest_series.series_id IS 'series scored';
COMMENT ON COLUMN backtest_series.mase_scale IS 'the series'' naive in-sample MAE up to the night''s first origin: scaled_error = abs_error / mase_scale (NULL when not positive)';
COMMENT ON COLUMN backtest_series.run_id IS 'pipeline_runs.run_id that wrote it';
COMMENT ON COLUMN backtest_series.created_at IS 'when the row was written (UTC)';

CREATE TABLE backtest_windows (
    window_id BIGINT NOT NULL,
    model_version VARCHAR(64) NOT NULL,
    series_id VARCHAR(64) NOT NULL,
    forecast_date DATE NOT NULL,
    model VARCHAR(64) NOT NULL,
    run_id VARCHAR(64) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_backtest_windows PRIMARY KEY (window_id),
    CONSTRAINT fk_backtest_windows_model_version_model_versions FOREIGN KEY(model_version) REFERENCES model_versions (version),
    CONSTRAINT fk_backtest_windows_run_id_pipeline_runs FOREIGN KEY(run_id) REFERENCES pipeline_runs (run_id)
);
CREATE INDEX ix_backtest_windows_model_version_series_id ON backtest_windows (model_version, series_id);
COMMENT ON TABLE backtest_windows IS 'Backtest windows: a model version''s forecast of a series from one origin';
COMMENT ON COLUMN backtest_windows.window_id IS 'digest of the window''s key and rows: a window whose rows change is a new one';
COMMENT ON COLUMN backtest_windows.model_version IS 'model_versions.version';
COMMENT ON COLUMN backtest_windows.series_id IS 'series forecast';
COMMENT ON COLUMN backtest_windows.forecast_date IS 'window origin: data up to this day';
COMMENT ON COLUMN backtest_windows.model IS 'a model (lstm, naive, ets, ...) or a combination mean(a,b,...)';
COMMENT ON COLUMN backtest_windows.run_id IS 'pipeline_runs.run_id that first wrote it';
COMMENT ON COLUMN backtest_windows.created_at IS 'when the window was first written (UTC)';

CREATE TABLE drift_metrics (
    forecast_date DATE NOT NULL,
    series_id VARCHAR(64) NOT NULL,
    feature VARCHAR(64) NOT NULL,
    metric VARCHAR(32) NOT NULL,
    value FLOAT,
    threshold FLOAT,
    is_drift BOOLEAN NOT NULL,
    run_id VARCHAR(64) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_drift_metrics PRIMARY KEY (forecast_date, series_id, feature, metric),
    CONSTRAINT fk_drift_metrics_run_id_pipeline_runs FOREIGN KEY(run_id) REFERENCES pipeline_runs (run_id)
);
CREATE INDEX ix_drift_metrics_series_id_forecast_date ON drift_metrics (series_id, forecast_date);
COMMENT ON TABLE drift_metrics IS 'Drift metrics between a reference and a recent window, with breach flags';
COMMENT ON COLUMN drift_metrics.forecast_date IS 'as-of date of the check';
COMMENT ON COLUMN drift_metrics.series_id IS 'series checked';
COMMENT ON COLUMN drift_metrics.feature IS 'feature (or prediction) checked';
COMMENT ON COLUMN drift_metrics.metric IS 'psi, ks_statistic, ks_pvalue, ...';
COMMENT ON COLUMN drift_metrics.value IS 'metric value';
COMMENT ON COLUMN drift_metrics.threshold IS 'threshold applied, null when not a flag by itself';
COMMENT ON COLUMN drift_metrics.is_drift IS 'breach flag';
COMMENT ON COLUMN drift_metrics.run_id IS 'pipeline_runs.run_id that wrote it';
COMMENT ON COLUMN drift_metrics.created_at IS 'when the row was written (UTC)';

CREATE TABLE forecasts (
    series_id VARCHAR(64) NOT NULL,
    forecast_date DATE NOT NULL,
    target_date DATE NOT NULL,
    horizon INTEGER NOT NULL,
    yhat FLOAT NOT NULL,
    yhat_lower FLOAT,
    yhat_upper FLOAT,
    model VARCHAR(64) DEFAULT 'lstm' NOT NULL,
    model_version VARCHAR(64) NOT NULL,
    run_id VARCHAR(64) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_forecasts PRIMARY KEY (series_id, forecast_date, target_date),
    CONSTRAINT fk_forecasts_model_version_model_versions FOREIGN KEY(model_version) REFERENCES model_versions (version),
    CONSTRAINT fk_forecasts_run_id_pipeline_runs FOREIGN KEY(run_id) REFERENCES pipeline_runs (run_id)
);
CREATE INDEX ix_forecasts_forecast_date ON forecasts (forecast_date);
CREATE INDEX ix_forecasts_model_version ON forecasts (model_version);
CREATE INDEX ix_forecasts_series_id_target_date_forecast_date ON forecasts (series_id, target_date, forecast_date);
COMMENT ON TABLE forecasts IS 'Forecasts: one row per series, forecast date and target date';
COMMENT ON COLUMN forecasts.series_id IS 'series forecast';
COMMENT ON COLUMN forecasts.forecast_date IS 'as-of date: data up to this day';
COMMENT ON COLUMN forecasts.target_date IS 'the day being forecast';
COMMENT ON COLUMN forecasts.horizon IS 'steps ahead of forecast_date (1 = next)';
COMMENT ON COLUMN forecasts.yhat IS 'point forecast (median quantile)';
COMMENT ON COLUMN forecasts.yhat_lower IS 'lower quantile';
COMMENT ON COLUMN forecasts.yhat_upper IS 'upper quantile';
COMMENT ON COLUMN forecasts.model IS 'what produced the row: a model (lstm, naive, ets, ...) or a combination mean(a,b,...)';
COMMENT ON COLUMN forecasts.model_version IS 'model_versions.version used';
COMMENT ON COLUMN forecasts.run_id IS 'pipeline_runs.run_id that wrote it';
COMMENT ON COLUMN forecasts.created_at IS 'when the row was written (UTC)';

CREATE TABLE model_selections (
    forecast_date DATE NOT NULL,
    series_id VARCHAR(64) NOT NULL,
    horizon_from INTEGER NOT NULL,
    horizon_to INTEGER NOT NULL,
    model VARCHAR(64) NOT NULL,
    model_version VARCHAR(64) NOT NULL,
    rule VARCHAR(16) NOT NULL,
    weights TEXT NOT NULL,
    member_versions TEXT NOT NULL,
    evidence TEXT,
    run_id VARCHAR(64) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_model_selections PRIMARY KEY (forecast_date, series_id, horizon_from),
    CONSTRAINT fk_model_selections_model_version_model_versions FOREIGN KEY(model_version) REFERENCES model_versions (version),
    CONSTRAINT fk_model_selections_run_id_pipeline_runs FOREIGN KEY(run_id) REFERENCES pipeline_runs (run_id)
);
CREATE INDEX ix_model_selections_series_id_forecast_date ON model_selections (series_id, forecast_date);
COMMENT ON TABLE model_selections IS 'What each night published per series and horizon bucket, by which rule, on what evidence';
COMMENT ON COLUMN model_selections.forecast_date IS 'as-of date of the night''s choice';
COMMENT ON COLUMN model_selections.series_id IS 'series the choice is for';
COMMENT ON COLUMN model_selections.horizon_from IS 'first horizon of the bucket';
COMMENT ON COLUMN model_selections.horizon_to IS 'last horizon of the bucket';
COMMENT ON COLUMN model_selections.model IS 'the label published for those horizons (forecasts.model): a model or mean(a,b,...)';
COMMENT ON COLUMN model_selections.model_version IS 'model_versions.version published: the single model''s, or the combination''s combo-...';
COMMENT ON COLUMN model_selections.rule IS 'the selection rule that chose it: dm_set, best, dm, margin or combination';
COMMENT ON COLUMN model_selections.weights IS 'JSON {model: weight}, weights sum to 1';
COMMENT ON COLUMN model_selections.member_versions IS 'JSON {model: model_versions.version}';
COMMENT ON COLUMN model_selections.evidence IS 'JSON: the rule''s inputs (each model''s MASE on the bucket, p-values, windows compared, models left out)';
COMMENT ON COLUMN model_selections.run_id IS 'pipeline_runs.run_id that wrote it';
COMMENT ON COLUMN model_selections.created_at IS 'when the row was written (UTC)';

CREATE TABLE training_decisions (
    run_id VARCHAR(64) NOT NULL,
    forecast_date DATE NOT NULL,
    action VARCHAR(16) NOT NULL,
    trigger VARCHAR(32) NOT NULL,
    reason TEXT NOT NULL,
    base_version VARCHAR(64),
    model_version VARCHAR(64) NOT NULL,
    contested BOOLEAN NOT NULL,
    drift_retrain BOOLEAN NOT NULL,
    drifted_pairs INTEGER NOT NULL,
    decayed_series INTEGER NOT NULL,
    flags TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_training_decisions PRIMARY KEY (run_id),
    CONSTRAINT ck_training_decisions_action CHECK (action IN ('full', 'finetune', 'reuse')),
    CONSTRAINT fk_training_decisions_run_id_pipeline_runs FOREIGN KEY(run_id) REFERENCES pipeline_runs (run_id),
    CONSTRAINT fk_training_decisions_model_version_model_versions FOREIGN KEY(model_version) REFERENCES model_versions (version)
);
CREATE INDEX ix_training_decisions_forecast_date ON training_decisions (forecast_date);
COMMENT ON TABLE training_decisions IS 'The retraining decision of every forecast run, with the drift and decay behind it';
COMMENT ON COLUMN training_decisions.run_id IS 'pipeline_runs.run_id of the forecast run that decided';
COMMENT ON COLUMN training_decisions.forecast_date IS 'as-of date of the run';
COMMENT ON COLUMN training_decisions.action IS 'full, finetune or reuse';
COMMENT ON COLUMN training_decisions.trigger IS 'what decided it: no_model, requested, settings_changed, holdout, no_new_data, cadence, drift, decay, drift+decay or routine (a fine-tune)';
COMMENT ON COLUMN training_decisions.reason IS 'the decision in words';
COMMENT ON COLUMN training_decisions.base_version IS 'the current model before the run, if any';
COMMENT ON COLUMN training_decisions.model_version IS 'model trained (or reused) by the run';
COMMENT ON COLUMN training_decisions.contested IS 'the new model had to beat the champion on the backtest';
COMMENT ON COLUMN training_decisions.drift_retrain IS 'the retraining policy called for a full training (the cooldown, the cadence or another reason may have decided instead)';
COMMENT ON COLUMN training_decisions.drifted_pairs IS 'watched (series, feature) pairs whose input-drift metrics agreed';
COMMENT ON COLUMN training_decisions.decayed_series IS 'series whose forecast decay (all horizons) was flagged';
COMMENT ON COLUMN training_decisions.flags IS 'JSON list of the counted flags: kind, series_id, feature, metrics';
COMMENT ON COLUMN training_decisions.created_at IS 'when the row was written (UTC)';

CREATE TABLE validation_results (
    run_id VARCHAR(64) NOT NULL,
    dataset VARCHAR(32) NOT NULL,
    batch VARCHAR(128) NOT NULL,
    as_of DATE NOT NULL,
    success BOOLEAN NOT NULL,
    row_count INTEGER NOT NULL,
    evaluated INTEGER NOT NULL,
    successful INTEGER NOT NULL,
    failed_critical INTEGER NOT NULL,
    failed_warning INTEGER NOT NULL,
    failed_expectations TEXT,
    validated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_validation_results PRIMARY KEY (run_id, dataset, batch),
    CONSTRAINT fk_validation_results_run_id_pipeline_runs FOREIGN KEY(run_id) REFERENCES pipeline_runs (run_id)
);
CREATE INDEX ix_validation_results_as_of_dataset ON validation_results (as_of, dataset);
COMMENT ON TABLE validation_results IS 'Validation results: one row per run and batch, failed batches included';
COMMENT ON COLUMN validation_results.run_id IS 'pipeline_runs.run_id that validated';
COMMENT ON COLUMN validation_results.dataset IS 'prices, weather or features';
COMMENT ON COLUMN validation_results.batch IS 'batch name, e.g. prices-SP500';
COMMENT ON COLUMN validation_results.as_of IS 'forecast date the batch was validated for';
COMMENT ON COLUMN validation_results.success IS 'false when a critical expectation failed (the batch was quarantined)';
COMMENT ON COLUMN validation_results.row_count IS 'rows in the batch';
COMMENT ON COLUMN validation_results.evaluated IS 'expectations evaluated';
COMMENT ON COLUMN validation_results.successful IS 'expectations met';
COMMENT ON COLUMN validation_results.failed_critical IS 'critical expectations failed';
COMMENT ON COLUMN validation_results.failed_warning IS 'warning expectations failed';
COMMENT ON COLUMN validation_results.failed_expectations IS 'JSON list: check, columns, expectation_type, severity, unexpected_count, rows';
COMMENT ON COLUMN validation_results.validated_at IS 'when the result was written (UTC)';

CREATE TABLE backtest_forecasts (
    window_id BIGINT NOT NULL,
    target_date DATE NOT NULL,
    horizon INTEGER NOT NULL,
    yhat FLOAT NOT NULL,
    yhat_lower FLOAT,
    yhat_upper FLOAT,
    actual FLOAT NOT NULL,
    abs_error FLOAT NOT NULL,
    squared_error FLOAT NOT NULL,
    smape FLOAT NOT NULL,
    pinball_lower FLOAT,
    pinball_median FLOAT,
    pinball_upper FLOAT,
    covered BOOLEAN NOT NULL,
    CONSTRAINT pk_backtest_forecasts PRIMARY KEY (window_id, target_date),
    CONSTRAINT fk_backtest_forecasts_window_id_backtest_windows FOREIGN KEY(window_id) REFERENCES backtest_windows (window_id)
);
COMMENT ON TABLE backtest_forecasts IS 'The rows of each backtest window: forecast, actual and per-row metric terms';
COMMENT ON COLUMN backtest_forecasts.window_id IS 'backtest_windows.window_id';
COMMENT ON COLUMN backtest_forecasts.target_date IS 'the day forecast';
COMMENT ON COLUMN backtest_forecasts.horizon IS 'steps ahead of forecast_date';
COMMENT ON COLUMN backtest_forecasts.yhat IS 'point forecast (median quantile)';
COMMENT ON COLUMN backtest_forecasts.yhat_lower IS 'lower quantile';
COMMENT ON COLUMN backtest_forecasts.yhat_upper IS 'upper quantile';
COMMENT ON COLUMN backtest_forecasts.actual IS 'observed value on target_date';
COMMENT ON COLUMN backtest_forecasts.abs_error IS '|actual - yhat|; mean = MAE';
COMMENT ON COLUMN backtest_forecasts.squared_error IS 'mean = MSE; RMSE = its root';
COMMENT ON COLUMN backtest_forecasts.smape IS 'sMAPE term (0..200); mean = sMAPE';
COMMENT ON COLUMN backtest_forecasts.pinball_lower IS 'pinball loss of yhat_lower at its quantile';
COMMENT ON COLUMN backtest_forecasts.pinball_median IS 'pinball loss of yhat at the median quantile';
COMMENT ON COLUMN backtest_forecasts.pinball_upper IS 'pinball loss of yhat_upper at its quantile';
COMMENT ON COLUMN backtest_forecasts.covered IS 'actual within [yhat_lower, yhat_upper]; mean = coverage';

CREATE TABLE backtest_nights (
    backtest_date DATE NOT NULL,
    series_id VARCHAR(64) NOT NULL,
    window_id BIGINT NOT NULL,
    CONSTRAINT pk_backtest_nights PRIMARY KEY (backtest_date, series_id, window_id),
    CONSTRAINT fk_backtest_nights_window_id_backtest_windows FOREIGN KEY(window_id) REFERENCES backtest_windows (window_id)
);
CREATE INDEX ix_backtest_nights_window_id ON backtest_nights (window_id);
COMMENT ON TABLE backtest_nights IS 'The windows each night''s backtest scored, per series';
COMMENT ON COLUMN backtest_nights.backtest_date IS 'run date (as-of) of the backtest';
COMMENT ON COLUMN backtest_nights.series_id IS 'series scored';
COMMENT ON COLUMN backtest_nights.window_id IS 'backtest_windows.window_id scored that night';
