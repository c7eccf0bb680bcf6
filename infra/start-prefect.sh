#!/usr/bin/env bash
# The Prefect server (UI and API on http://$PREFECT_HOST:$PREFECT_PORT), then, once it answers,
# the `gpu` process work pool and the `gpu` global concurrency limit (one slot per GPU; GPUS
# defaults to the count nvidia-smi reports, or 1). Foreground; Ctrl-C stops the server.
set -euo pipefail
source "$(dirname "$0")/_env.sh"
HOST="${PREFECT_HOST:-127.0.0.1}"
PORT="${PREFECT_PORT:-4200}"
POOL="${PREFECT_WORK_POOL:-gpu}"
GPUS="${GPUS:-$(nvidia-smi -L 2>/dev/null | wc -l)}"
[[ "$GPUS" -gt 0 ]] || GPUS=1
export PREFECT_API_URL="http://$HOST:$PORT/api"

prefect server start --host "$HOST" --port "$PORT" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT INT TERM
until curl -fsS "$PREFECT_API_URL/health" >/dev/null 2>&1; do
  kill -0 "$server" 2>/dev/null || { echo "prefect server exited" >&2; exit 1; }
  sleep 1
done
prefect work-pool inspect "$POOL" >/dev/null 2>&1 || prefect work-pool create "$POOL" --type process
prefect gcl inspect gpu >/dev/null 2>&1 && prefect gcl update gpu --limit "$GPUS" \
  || prefect gcl create gpu --limit "$GPUS"
echo "Prefect at http://$HOST:$PORT: work pool '$POOL', concurrency limit 'gpu' = $GPUS slot(s)"
wait "$server"
