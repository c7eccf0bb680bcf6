#!/usr/bin/env bash
# One Prefect worker of the `gpu` process pool per GPU, each seeing only its GPU
# (CUDA_VISIBLE_DEVICES) and running one flow run at a time; on a machine without GPUs (or
# without nvidia-smi) one CPU worker. Waits (START_TIMEOUT s) for the Prefect server first.
# Foreground; Ctrl-C (or SIGTERM) stops them all.
#   GPUS="0 1 2 3" infra/start-worker.sh      # default: every GPU nvidia-smi lists; none: one CPU worker
# A cancelled flow run gets SIGTERM from its worker; pipelines/flows.py then kills the process
# group of the running stage (dvc, hrnet train, torchrun workers).
set -euo pipefail
source "$(dirname "$0")/_env.sh"
POOL="${PREFECT_WORK_POOL:-gpu}"
export PREFECT_API_URL="${PREFECT_API_URL:-http://127.0.0.1:${PREFECT_PORT:-4200}/api}"
if [[ -z "${GPUS:-}" ]]; then
  GPUS="$(gpu_indices)"
fi

# the server must answer before the workers start (they would retry, printing tracebacks)
deadline=$((SECONDS + START_TIMEOUT))
until python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
  "$PREFECT_API_URL/health" >/dev/null 2>&1; do
  if ((SECONDS >= deadline)); then
    echo "error: no Prefect server at $PREFECT_API_URL after ${START_TIMEOUT} s: start it with" \
      "infra/start-prefect.sh, or set PREFECT_API_URL (infra/env)" >&2
    exit 1
  fi
  sleep 1
done

pids=()
names=()
on_stop
if [[ -z "${GPUS// /}" ]]; then
  name="$(hostname)-cpu"
  start_service env CUDA_VISIBLE_DEVICES= prefect worker start --pool "$POOL" --name "$name" --limit 1
  pids+=("$SERVICE_PID")
  names+=("$name (CPU, no GPU found)")
else
  for gpu in $GPUS; do
    name="$(hostname)-gpu$gpu"
    start_service env CUDA_VISIBLE_DEVICES="$gpu" prefect worker start --pool "$POOL" --name "$name" --limit 1
    pids+=("$SERVICE_PID")
    names+=("$name (CUDA_VISIBLE_DEVICES=$gpu)")
  done
fi
on_stop "${pids[@]}"
echo "Prefect workers of pool '$POOL' at $PREFECT_API_URL, one flow run at a time each:"
for i in "${!pids[@]}"; do echo "  ${names[$i]}: pid ${pids[$i]}"; done
echo "their logs on this terminal; Ctrl-C stops them all"
# exit (stopping the others) as soon as one worker exits
status=0
wait -n || status=$?
echo "error: a worker exited with status $status; stopping the others" >&2
exit "$status"
