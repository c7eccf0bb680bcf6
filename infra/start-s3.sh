#!/usr/bin/env bash
# A local S3 endpoint (moto) with the buckets the stack uses: `dvc-remote` (DVC) and
# `mlflow-artifacts` (MLflow). In memory: its content is gone when it stops. Foreground; Ctrl-C stops it.
#   S3_HOST=127.0.0.1 S3_PORT=9000 infra/start-s3.sh
set -euo pipefail
source "$(dirname "$0")/_env.sh"
HOST="${S3_HOST:-127.0.0.1}"
PORT="${S3_PORT:-9000}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"

moto_server -H "$HOST" -p "$PORT" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT INT TERM
python - "$HOST" "$PORT" <<'PY'
import sys, time, boto3, botocore
url = f"http://{sys.argv[1]}:{sys.argv[2]}"
client = boto3.client("s3", endpoint_url=url)
for _ in range(100):
    try:
        client.list_buckets()
        break
    except botocore.exceptions.EndpointConnectionError:
        time.sleep(0.2)
for bucket in ("dvc-remote", "mlflow-artifacts"):
    client.create_bucket(Bucket=bucket)
print(f"S3 at {url}: buckets dvc-remote, mlflow-artifacts")
PY
wait "$server"
