-- Views for BI tools. Portable SQL: runs on SQLite (>= 3.25) and PostgreSQL.
-- Applied by pipeline_lib.db.create_schema after the tables exist; safe to run again.
-- Statements end with ';' at the end of a line.

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
