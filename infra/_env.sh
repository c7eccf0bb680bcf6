# Sourced by the start-*.sh scripts: the project root, its venv, infra/env when present, and the
# helpers they share (GPU discovery that works without GPUs or nvidia-smi, bounded health
# checks, stopping the services they started). Needs bash; nothing here needs a GPU.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${HRNET_VENV:-$ROOT/.venv}/bin"
if [[ -f "$ROOT/infra/env" ]]; then
  _caller_env="$(export -p)"
  set -a; source "$ROOT/infra/env"; set +a
  eval "$_caller_env"  # what the caller set (MLFLOW_PORT=5001 infra/start-mlflow.sh) wins over the file
  unset _caller_env
fi
export PATH="$BIN:$PATH"
export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
# seconds a script waits for the service it started to answer its health check
START_TIMEOUT="${START_TIMEOUT:-120}"

# "0 1 2 ..." for the GPUs nvidia-smi lists; empty (and success) without GPUs or nvidia-smi.
gpu_indices() {
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  { nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null || true; } | tr -d ' ' | tr '\n' ' '
}

# The number of GPUs (0 without GPUs or nvidia-smi).
gpu_count() {
  local n=0 _gpu
  for _gpu in $(gpu_indices); do n=$((n + 1)); done
  echo "$n"
}

# port_free HOST PORT NAME: fail, before starting NAME, when something already listens on
# HOST:PORT (its health check would answer for a server that never started).
port_free() {
  local host="$1" port="$2" name="$3"
  [[ "$host" == "0.0.0.0" ]] && host=127.0.0.1
  if python -c 'import socket, sys
with socket.socket() as s:
    s.settimeout(1)
    sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)' "$host" "$port"; then
    echo "error: $host:$port is taken (something already listens there): stop it, or start $name on another port" >&2
    return 1
  fi
}

# wait_http URL PID NAME: wait until URL answers 2xx, at most START_TIMEOUT seconds; fail early
# if process PID exits. Uses the venv's Python (no curl needed).
wait_http() {
  local url="$1" pid="$2" name="$3" deadline=$((SECONDS + START_TIMEOUT))
  until python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$url" \
    >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: $name exited before answering $url (its output is above)" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "error: $name did not answer $url within ${START_TIMEOUT} s (START_TIMEOUT)" >&2
      return 1
    fi
    sleep 1
  done
}

# start_service CMD...: run CMD in the background in a process group of its own (the service and
# everything it spawns: uvicorn, job consumers, flow runs), which stop_all stops as a whole.
# Its pid (= the group id) is in $SERVICE_PID.
start_service() {
  set -m
  "$@" &
  SERVICE_PID=$!
  set +m
}

# stop_all PID...: SIGTERM to the process group of each service, then SIGKILL to what is left of
# it after 15 s.
stop_all() {
  local pid deadline=$((SECONDS + 15))
  for pid in "$@"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    while kill -0 -- "-$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# on_stop PID...: stop those services when this script exits, gets Ctrl-C or SIGTERM.
on_stop() {
  _STOP_PIDS=("$@")
  trap 'trap - EXIT INT TERM; stop_all "${_STOP_PIDS[@]}"' EXIT
  trap 'trap - EXIT INT TERM; echo "stopping pid ${_STOP_PIDS[*]}" >&2; stop_all "${_STOP_PIDS[@]}"; exit 130' INT
  trap 'trap - EXIT INT TERM; echo "stopping pid ${_STOP_PIDS[*]}" >&2; stop_all "${_STOP_PIDS[@]}"; exit 143' TERM
}
