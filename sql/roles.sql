-- Read-only role for BI tools (PostgreSQL only).
--
-- What it does: creates the group role named by the psql variable bi_role (NOLOGIN, only if it
-- does not exist yet) and lets it read, and only read, the pipeline's schema `public`:
--   * CONNECT on the current database and USAGE on schema public;
--   * SELECT on every table and view in public, now and (through default privileges) on the
--     tables and views created later by the user running this script, e.g. the views that
--     sql/views.sql drops and recreates on every schema upgrade;
--   * explicitly no INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER on those tables,
--     even if they were granted by hand before, and no CREATE on schema public (no DDL).
-- Safe to run again: re-running re-applies the same grants and revokes.
--
-- Run it as the user that owns the tables and runs the migrations (create_schema): GRANT on a
-- table only works for its owner, and ALTER DEFAULT PRIVILEGES only covers objects that the
-- user running it creates later. Creating the role needs CREATEROLE (or a superuser).
--
--   psql -v ON_ERROR_STOP=1 --single-transaction -v bi_role=forecast_bi -f sql/roles.sql <db>
--
-- or from Python: pipeline_lib.db.roles.grant_read_only(engine, role="forecast_bi").
--
-- Then a DBA gives each BI tool its own login in the group, e.g.:
--
--   CREATE ROLE looker LOGIN PASSWORD '...' IN ROLE forecast_bi;
--   -- optional, a second guard: every transaction of this login is read-only
--   ALTER ROLE looker SET default_transaction_read_only = on;
--
-- Not covered: temporary tables (PUBLIC holds TEMPORARY on each database by default; some BI
-- tools need them) and other schemas, which the role can read only if granted elsewhere.
--
-- Format: each statement ends with ';' at the end of a line and comments are whole '--' lines,
-- so that pipeline_lib.db.engine.split_sql can split this file. Inside the DO bodies every ';'
-- is therefore followed by more text on the same line. Lines starting with '\' are psql
-- commands; pipeline_lib.db.roles skips them. psql does not expand variables inside
-- dollar-quoted DO bodies: the role name reaches them through the setting
-- forecast_pipeline.bi_role, reset at the end.

\set ON_ERROR_STOP on
-- Without -v bi_role=... psql says so, then fails on the next statement (exit status 3).
\if :{?bi_role}
\else
\echo 'sql/roles.sql: set the role name, e.g. psql -v bi_role=forecast_bi -f sql/roles.sql'
\endif

SELECT set_config('forecast_pipeline.bi_role', :'bi_role', false);

-- Refuse the user running this script and superusers: the REVOKEs below would take the
-- pipeline's own write access away, and a superuser bypasses every privilege check.
DO $$ DECLARE bi_role text := current_setting('forecast_pipeline.bi_role'); BEGIN
    IF bi_role IN (current_user, session_user) OR EXISTS (
        SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = bi_role AND rolsuper
    ) THEN
        RAISE EXCEPTION 'refusing to make role % read-only: it runs this script or is a superuser',
            bi_role; END IF; END
$$;

-- Create the group role unless it exists (an existing role is kept as it is).
DO $$ DECLARE bi_role text := current_setting('forecast_pipeline.bi_role'); BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = bi_role) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', bi_role); END IF; END
$$;

-- Logins of the group may connect to this database (explicit: PUBLIC may have lost CONNECT).
DO $$ BEGIN
    EXECUTE format(
        'GRANT CONNECT ON DATABASE %I TO %I',
        current_database(),
        current_setting('forecast_pipeline.bi_role')
    ); END
$$;

GRANT USAGE ON SCHEMA public TO :"bi_role";

-- Tables and views alike (ALL TABLES covers views and materialized views).
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"bi_role";

-- Tables and views that this user creates later (views are dropped and recreated on upgrades).
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO :"bi_role";

-- Read-only: take back any write privilege granted earlier, now and by default.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
    ON ALL TABLES IN SCHEMA public FROM :"bi_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLES FROM :"bi_role";

-- No DDL in public: PostgreSQL < 15 lets PUBLIC (every role) create objects there.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM :"bi_role";

RESET forecast_pipeline.bi_role;
