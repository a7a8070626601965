-- Run once by the postgres image, when its data volume is empty (docker-entrypoint-initdb.d):
-- the Prefect server keeps its own state in a database of its own, beside the pipeline's.
CREATE DATABASE prefect;
