#!/usr/bin/env bash
# A local S3 endpoint (moto) with the buckets the stack uses: `dvc-remote` (DVC) and
# `mlflow-artifacts` (MLflow). In memory: its content is gone when it stops. Foreground; Ctrl-C
# (or SIGTERM) stops it. Nothing here needs a GPU.
#   S3_HOST=127.0.0.1 S3_PORT=9000 infra/start-s3.sh
set -euo pipefail
source "$(dirname "$0")/_env.sh"
HOST="${S3_HOST:-127.0.0.1}"
PORT="${S3_PORT:-9000}"
CLIENT_HOST="$HOST"
[[ "$HOST" == "0.0.0.0" ]] && CLIENT_HOST=127.0.0.1
# moto accepts any key; these dummy ones are only used when none are set (never real ones)
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"

port_free "$HOST" "$PORT" "the S3 endpoint (S3_PORT=...)" || exit 1
echo "starting the S3 endpoint (moto) on http://$HOST:$PORT"
start_service moto_server -H "$HOST" -p "$PORT"
server=$SERVICE_PID
on_stop "$server"
python - "http://$CLIENT_HOST:$PORT" "$server" "$START_TIMEOUT" <<'PY' || exit 1
import os, sys, time
import boto3, botocore.exceptions

url, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
client = boto3.client("s3", endpoint_url=url)
deadline = time.monotonic() + timeout
while True:
    try:
        client.list_buckets()
        break
    except botocore.exceptions.EndpointConnectionError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"error: moto_server exited before answering {url} (its output is above)")
        if time.monotonic() > deadline:
            sys.exit(f"error: moto_server did not answer {url} within {timeout:.0f} s (START_TIMEOUT)")
        time.sleep(0.3)
for bucket in ("dvc-remote", "mlflow-artifacts"):
    client.create_bucket(Bucket=bucket)
print(f"S3 at {url}: buckets dvc-remote, mlflow-artifacts (in memory); server pid {pid}, its log on this terminal")
PY
wait "$server"
