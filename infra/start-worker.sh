#!/usr/bin/env bash
# One Prefect worker of the `gpu` process pool per GPU, each seeing only its GPU
# (CUDA_VISIBLE_DEVICES) and running one flow run at a time. Foreground; Ctrl-C stops them all.
#   GPUS="0 1 2 3" infra/start-worker.sh      # default: every GPU nvidia-smi lists; none: one CPU worker
# A cancelled flow run gets SIGTERM from its worker; pipelines/flows.py then kills the process
# group of the running stage (dvc, hrnet train, torchrun workers).
set -euo pipefail
source "$(dirname "$0")/_env.sh"
POOL="${PREFECT_WORK_POOL:-gpu}"
: "${PREFECT_API_URL:?set PREFECT_API_URL (infra/env)}"
if [[ -z "${GPUS:-}" ]]; then
  GPUS="$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | tr '\n' ' ')"
fi
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
if [[ -z "${GPUS// /}" ]]; then
  CUDA_VISIBLE_DEVICES="" prefect worker start --pool "$POOL" --name "$(hostname)-cpu" --limit 1 &
  pids+=($!)
else
  for gpu in $GPUS; do
    CUDA_VISIBLE_DEVICES="$gpu" prefect worker start --pool "$POOL" --name "$(hostname)-gpu$gpu" --limit 1 &
    pids+=($!)
  done
fi
wait
