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
