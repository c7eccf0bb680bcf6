# Sourced by the start-*.sh scripts: the project root, its venv and infra/env when present.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${HRNET_VENV:-$ROOT/.venv}/bin"
if [[ -f "$ROOT/infra/env" ]]; then
  set -a; source "$ROOT/infra/env"; set +a
fi
export PATH="$BIN:$PATH"
export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
