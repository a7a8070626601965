-- Views for BI tools. Portable SQL: runs on SQLite (>= 3.25) and PostgreSQL.
-- `forecast-pipeline db upgrade` (and each run, unless database_auto_upgrade is off) drops and
-- recreates them when this file changes; they are never edited in place. Statements end with
-- ';' at the end of a line; a view is created after the views it reads.

-- The most recent forecast for each series and target date: the row whose forecast_date is
-- the latest among all forecasts made for that target date.
DROP VIEW IF EXISTS latest_forecasts;
CREATE VIEW latest_forecasts AS
SELECT
    series_id,
    forecast_date,
    target_date,
    horizon,
    yhat,
    yhat_lower,
    yhat_upper,
    model,
    model_version,
    run_id,
    created_at
FROM (
    SELECT
        f.*,
        ROW_NUMBER() OVER (
            PARTITION BY f.series_id, f.target_date
            ORDER BY f.forecast_date DESC
        ) AS rn
    FROM forecasts AS f
) AS ranked
WHERE rn = 1;

-- Every night's backtest, one row per series, model version, origin and target date, with the
-- actual and the per-row metric terms (the table of revisions up to 0007). Windows are stored
-- once (backtest_windows, backtest_forecasts); a night names the windows it scored
-- (backtest_nights) and each series' MASE scale (backtest_series), the only term that depends
-- on the night: scaled_error = abs_error / mase_scale.
DROP VIEW IF EXISTS backtest_results;
CREATE VIEW backtest_results AS
SELECT
    n.backtest_date,
    w.model_version,
    n.series_id,
    w.forecast_date,
    f.target_date,
    w.model,
    f.horizon,
    f.yhat,
    f.yhat_lower,
    f.yhat_upper,
    f.actual,
    f.abs_error,
    f.squared_error,
    CASE WHEN s.mase_scale > 0 THEN f.abs_error / s.mase_scale END AS scaled_error,
    f.smape,
    f.pinball_lower,
    f.pinball_median,
    f.pinball_upper,
    f.covered,
    s.run_id,
    s.created_at
FROM backtest_nights AS n
JOIN backtest_series AS s
    ON s.backtest_date = n.backtest_date AND s.series_id = n.series_id
JOIN backtest_windows AS w
    ON w.window_id = n.window_id
JOIN backtest_forecasts AS f
    ON f.window_id = n.window_id;

-- Backtest accuracy per night, model version and series, over every horizon: the averages of
-- the per-row metric terms of backtest_results (MAE, MSE, MASE, sMAPE, pinball, coverage).
-- RMSE is the square root of mse (SQLite has no portable SQRT).
DROP VIEW IF EXISTS backtest_accuracy;
CREATE VIEW backtest_accuracy AS
SELECT
    backtest_date,
    model,
    model_version,
    series_id,
    COUNT(*) AS n,
    AVG(abs_error) AS mae,
    AVG(squared_error) AS mse,
    AVG(scaled_error) AS mase,
    AVG(smape) AS smape,
    AVG(pinball_lower) AS pinball_lower,
    AVG(pinball_median) AS pinball_median,
    AVG(pinball_upper) AS pinball_upper,
    AVG(CAST(CASE WHEN covered THEN 1 ELSE 0 END AS DOUBLE PRECISION)) AS coverage
FROM backtest_results
GROUP BY backtest_date, model, model_version, series_id;

-- Every forecast whose target date has an actual, with its errors: error = actual - yhat
-- (positive: the forecast was too low), absolute error, and percentage errors relative to the
-- actual (null when the actual is 0); covered: the actual fell inside the interval.
DROP VIEW IF EXISTS forecast_accuracy;
DROP VIEW IF EXISTS forecast_errors;
CREATE VIEW forecast_errors AS
SELECT
    f.series_id,
    f.forecast_date,
    f.target_date,
    f.horizon,
    f.model,
    f.model_version,
    f.yhat,
    f.yhat_lower,
    f.yhat_upper,
    a.actual,
    a.actual - f.yhat AS error,
    ABS(a.actual - f.yhat) AS abs_error,
    100.0 * (a.actual - f.yhat) / NULLIF(a.actual, 0) AS pct_error,
    100.0 * ABS(a.actual - f.yhat) / NULLIF(ABS(a.actual), 0) AS abs_pct_error,
    CASE
        WHEN f.yhat_lower IS NULL OR f.yhat_upper IS NULL THEN NULL
        WHEN a.actual BETWEEN f.yhat_lower AND f.yhat_upper THEN 1
        ELSE 0
    END AS covered
FROM forecasts AS f
JOIN actuals AS a
    ON a.series_id = f.series_id AND a.target_date = f.target_date;

-- Forecast accuracy by series, model and horizon, over every forecast with an actual:
-- MAE, MAPE (%), bias (mean error), MSE (RMSE = its root) and interval coverage.
CREATE VIEW forecast_accuracy AS
SELECT
    series_id,
    model,
    horizon,
    COUNT(*) AS n,
    MIN(target_date) AS first_target_date,
    MAX(target_date) AS last_target_date,
    AVG(abs_error) AS mae,
    AVG(abs_pct_error) AS mape,
    AVG(error) AS bias,
    AVG(error * error) AS mse,
    AVG(CAST(covered AS DOUBLE PRECISION)) AS coverage
FROM forecast_errors
GROUP BY series_id, model, horizon;

-- Drift flags raised by each series' most recent drift check: one row per thresholded metric
-- that breached (descriptive rows such as ks_statistic or mae carry a flag but no threshold).
DROP VIEW IF EXISTS current_drift_alerts;
CREATE VIEW current_drift_alerts AS
SELECT
    d.series_id,
    d.forecast_date,
    d.feature,
    d.metric,
    d.value,
    d.threshold,
    d.run_id,
    d.created_at
FROM drift_metrics AS d
JOIN (
    SELECT series_id, MAX(forecast_date) AS forecast_date
    FROM drift_metrics
    GROUP BY series_id
) AS newest
    ON newest.series_id = d.series_id AND newest.forecast_date = d.forecast_date
WHERE d.is_drift AND d.threshold IS NOT NULL;

-- Every model version with its lineage, the forecasts published from it, and its most recent
-- backtest (MAE, MASE, interval coverage over that night's backtest rows).
DROP VIEW IF EXISTS model_history;
CREATE VIEW model_history AS
SELECT
    m.version,
    m.kind,
    m.status,
    m.parent_version,
    m.created_at,
    m.train_start,
    m.train_end,
    m.data_fingerprint,
    p.first_forecast_date,
    p.last_forecast_date,
    p.series_published,
    p.forecast_rows,
    b.backtest_date AS last_backtest_date,
    b.backtest_mae,
    b.backtest_mase,
    b.backtest_coverage
FROM model_versions AS m
LEFT JOIN (
    SELECT
        model_version,
        MIN(forecast_date) AS first_forecast_date,
        MAX(forecast_date) AS last_forecast_date,
        COUNT(DISTINCT series_id) AS series_published,
        COUNT(*) AS forecast_rows
    FROM forecasts
    GROUP BY model_version
) AS p
    ON p.model_version = m.version
LEFT JOIN (
    SELECT
        r.model_version,
        r.backtest_date,
        AVG(r.abs_error) AS backtest_mae,
        AVG(r.scaled_error) AS backtest_mase,
        AVG(CAST(CASE WHEN r.covered THEN 1 ELSE 0 END AS DOUBLE PRECISION)) AS backtest_coverage
    FROM backtest_results AS r
    JOIN (
        -- the windows each night named, without their rows
        SELECT w.model_version, MAX(n.backtest_date) AS backtest_date
        FROM backtest_nights AS n
        JOIN backtest_windows AS w
            ON w.window_id = n.window_id
        GROUP BY w.model_version
    ) AS newest
        ON newest.model_version = r.model_version AND newest.backtest_date = r.backtest_date
    GROUP BY r.model_version, r.backtest_date
) AS b
    ON b.model_version = m.version;

-- What each series publishes now, per horizon bucket: the model_selections rows of the
-- series' newest night (all of that night's buckets, and only those: a bucket an older night
-- had is not carried over when the buckets change). weights and evidence are JSON text.
DROP VIEW IF EXISTS latest_model_selections;
CREATE VIEW latest_model_selections AS
SELECT
    s.series_id,
    s.forecast_date,
    s.horizon_from,
    s.horizon_to,
    s.model,
    s.model_version,
    s.rule,
    s.weights,
    s.member_versions,
    s.evidence,
    s.run_id,
    s.created_at
FROM model_selections AS s
JOIN (
    SELECT series_id, MAX(forecast_date) AS forecast_date
    FROM model_selections
    GROUP BY series_id
) AS newest
    ON newest.series_id = s.series_id AND newest.forecast_date = s.forecast_date;

-- Every forecast with the choice behind it: the model_selections row of its series and
-- night whose bucket holds its horizon (the rule, the bucket, the weights of a combination and
-- the evidence). Forecasts written without a selection (before model_selections existed) have
-- nulls there.
DROP VIEW IF EXISTS forecast_choices;
CREATE VIEW forecast_choices AS
SELECT
    f.series_id,
    f.forecast_date,
    f.target_date,
    f.horizon,
    f.yhat,
    f.yhat_lower,
    f.yhat_upper,
    f.model,
    f.model_version,
    s.rule,
    s.horizon_from,
    s.horizon_to,
    s.weights,
    s.evidence
FROM forecasts AS f
LEFT JOIN model_selections AS s
    ON s.series_id = f.series_id
    AND s.forecast_date = f.forecast_date
    AND f.horizon BETWEEN s.horizon_from AND s.horizon_to;
