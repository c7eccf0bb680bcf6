#!/usr/bin/env bash
# The Prefect server (UI and API on http://$PREFECT_HOST:$PREFECT_PORT), then, once it answers,
# the `gpu` process work pool and the `gpu` global concurrency limit: one slot per GPU, or one
# CPU slot on a machine without GPUs (or without nvidia-smi). GPUS=N sets the number of slots.
# Foreground; Ctrl-C (or SIGTERM) stops the server.
#   PREFECT_HOST=127.0.0.1 PREFECT_PORT=4200 infra/start-prefect.sh
set -euo pipefail
source "$(dirname "$0")/_env.sh"
HOST="${PREFECT_HOST:-127.0.0.1}"
PORT="${PREFECT_PORT:-4200}"
POOL="${PREFECT_WORK_POOL:-gpu}"
CLIENT_HOST="$HOST"
[[ "$HOST" == "0.0.0.0" ]] && CLIENT_HOST=127.0.0.1
if [[ -n "${GPUS:-}" ]]; then
  # a count (GPUS=8), or the GPU indices start-worker.sh takes (GPUS="0 1 2 3")
  if [[ "$GPUS" =~ ^[0-9]+$ ]]; then SLOTS="$GPUS"; else SLOTS="$(wc -w <<<"$GPUS" | tr -d ' ')"; fi
else
  SLOTS="$(gpu_count)"
fi
if [[ "$SLOTS" -gt 0 ]]; then
  KIND="GPU slot(s), one per GPU"
else
  SLOTS=1
  KIND="CPU slot (no GPU found: nvidia-smi missing or lists none)"
fi
export PREFECT_API_URL="http://$CLIENT_HOST:$PORT/api"

port_free "$HOST" "$PORT" "the Prefect server (PREFECT_PORT=...)" || exit 1
echo "starting the Prefect server on http://$HOST:$PORT (database in ${PREFECT_HOME:-$HOME/.prefect})"
start_service prefect server start --host "$HOST" --port "$PORT"
server=$SERVICE_PID
on_stop "$server"
wait_http "$PREFECT_API_URL/health" "$server" "prefect server" || exit 1
prefect work-pool inspect "$POOL" >/dev/null 2>&1 || prefect work-pool create "$POOL" --type process >/dev/null
if prefect gcl inspect gpu >/dev/null 2>&1; then
  prefect gcl update gpu --limit "$SLOTS" >/dev/null
else
  prefect gcl create gpu --limit "$SLOTS" >/dev/null
fi
echo "Prefect at http://$CLIENT_HOST:$PORT (API $PREFECT_API_URL): work pool '$POOL' (process)," \
  "concurrency limit 'gpu' = $SLOTS $KIND; server pid $server, its log on this terminal." \
  "Workers: PREFECT_API_URL=$PREFECT_API_URL infra/start-worker.sh"
wait "$server"
