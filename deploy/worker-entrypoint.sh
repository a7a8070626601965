#!/usr/bin/env bash
# The worker container's command (deploy/docker-compose.yml): make the database and the Prefect
# server ready for the pipeline, register the deployments, then poll the work pool. Every step
# is idempotent, so a restarted container or a second replica repeats it harmlessly.
# Needs PREFECT_API_URL and the PIPELINE_* settings (PIPELINE_REPO_DIR is set by the image).
# Extra arguments go to `prefect worker start`.
set -euo pipefail

cd "${PIPELINE_REPO_DIR:?PIPELINE_REPO_DIR must name the repository folder}"

# 1. The SQL schema: created or upgraded here, since the runs of this set-up do not upgrade it
#    themselves (PIPELINE_DATABASE_AUTO_UPGRADE=false).
forecast-pipeline db upgrade

# 2. The process work pool and the global concurrency limit `forecast-pipeline` (one slot) when
#    missing, then `prefect deploy --prefect-file deploy/prefect.yaml --all` with the schedules
#    and the pool name from the settings (PIPELINE_ORCHESTRATION__*).
forecast-pipeline deploy

# 3. Poll the pool. Flow runs are subprocesses of this worker and inherit its environment, so
#    secrets such as PIPELINE_DATABASE_URL never have to be stored in Prefect.
pool="$(python -c 'from pipeline_lib.config import load_settings as s; print(s().orchestration.work_pool)')"
exec prefect worker start --pool "$pool" --type process --with-healthcheck "$@"
