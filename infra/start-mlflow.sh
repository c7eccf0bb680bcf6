#!/usr/bin/env bash
# The MLflow tracking server: runs and registry in SQLite (default) or PostgreSQL, artifacts in
# S3, proxied by the server (clients need no S3 credentials). Foreground.
#   MLFLOW_BACKEND_STORE_URI=postgresql://mlflow@db:5432/mlflow infra/start-mlflow.sh
# Clients: export MLFLOW_TRACKING_URI=http://$MLFLOW_HOST:$MLFLOW_PORT
set -euo pipefail
source "$(dirname "$0")/_env.sh"
: "${MLFLOW_BACKEND_STORE_URI:=sqlite:///$ROOT/mlflow.db}"
: "${MLFLOW_ARTIFACTS_DESTINATION:=s3://mlflow-artifacts/mlflow}"
: "${S3_ENDPOINT_URL:=http://127.0.0.1:9000}"
export MLFLOW_S3_ENDPOINT_URL="${MLFLOW_S3_ENDPOINT_URL:-$S3_ENDPOINT_URL}"

exec mlflow server \
  --host "${MLFLOW_HOST:-127.0.0.1}" --port "${MLFLOW_PORT:-5000}" --workers "${MLFLOW_WORKERS:-1}" \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION"
