#!/usr/bin/env bash
# The MLflow tracking server: runs and registry in SQLite (default) or PostgreSQL, artifacts in
# S3, proxied by the server (clients need no S3 credentials). Foreground; Ctrl-C (or SIGTERM)
# stops it. Nothing here needs a GPU.
#   MLFLOW_BACKEND_STORE_URI=postgresql://mlflow@db:5432/mlflow infra/start-mlflow.sh
#   MLFLOW_ARTIFACTS_DESTINATION=$PWD/mlartifacts infra/start-mlflow.sh   # artifacts on local disk, no S3
# Clients: export MLFLOW_TRACKING_URI=http://$MLFLOW_HOST:$MLFLOW_PORT
set -euo pipefail
source "$(dirname "$0")/_env.sh"
HOST="${MLFLOW_HOST:-127.0.0.1}"
PORT="${MLFLOW_PORT:-5000}"
CLIENT_HOST="$HOST"
[[ "$HOST" == "0.0.0.0" ]] && CLIENT_HOST=127.0.0.1
: "${MLFLOW_BACKEND_STORE_URI:=sqlite:///$ROOT/mlflow.db}"
: "${MLFLOW_ARTIFACTS_DESTINATION:=s3://mlflow-artifacts/mlflow}"
: "${S3_ENDPOINT_URL:=http://127.0.0.1:9000}"
export MLFLOW_S3_ENDPOINT_URL="${MLFLOW_S3_ENDPOINT_URL:-$S3_ENDPOINT_URL}"

# artifacts in S3 behind an endpoint that does not answer: every artifact upload would fail
if [[ "$MLFLOW_ARTIFACTS_DESTINATION" == s3://* && -n "$MLFLOW_S3_ENDPOINT_URL" ]] &&
  ! python -c 'import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=3)
except urllib.error.HTTPError:
    pass' "$MLFLOW_S3_ENDPOINT_URL" >/dev/null 2>&1; then
  echo "warning: the S3 endpoint $MLFLOW_S3_ENDPOINT_URL of $MLFLOW_ARTIFACTS_DESTINATION does not answer:" \
    "artifact uploads (models, plots) will fail until it does. Start it with infra/start-s3.sh, or" \
    "keep artifacts on disk: MLFLOW_ARTIFACTS_DESTINATION=$ROOT/mlartifacts infra/start-mlflow.sh" >&2
fi

# the URI without its password, if one was put there (use ~/.pgpass instead): the one of
# user:password@ (an '@' in it included) and a ?password= parameter
backend_shown="$(python - "$MLFLOW_BACKEND_STORE_URI" <<'PY'
import re, sys
uri = sys.argv[1]
uri = re.sub(r"(://[^:/@?]*):[^?]*@", r"\1:***@", uri)  # to the last @ before any ?
print(re.sub(r"([?&]password=)[^&]*", r"\1***", uri, flags=re.IGNORECASE))
PY
)"
port_free "$HOST" "$PORT" "mlflow server (MLFLOW_PORT=...)" || exit 1
echo "starting the MLflow server on http://$HOST:$PORT (backend $backend_shown," \
  "artifacts $MLFLOW_ARTIFACTS_DESTINATION)"
start_service mlflow server \
  --host "$HOST" --port "$PORT" --workers "${MLFLOW_WORKERS:-1}" \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION"
server=$SERVICE_PID
on_stop "$server"
wait_http "http://$CLIENT_HOST:$PORT/health" "$server" "mlflow server" || exit 1
echo "MLflow at http://$CLIENT_HOST:$PORT (runs view:" \
  "http://$CLIENT_HOST:$PORT/#/experiments?workflowType=machine_learning); server pid $server," \
  "its log on this terminal. Clients: export MLFLOW_TRACKING_URI=http://$CLIENT_HOST:$PORT"
wait "$server"
