#!/usr/bin/env bash
# Multi-node training of one row: run this on every node with the same RDZV_ENDPOINT
# (HOST:PORT of a node all can reach) and RDZV_ID; `hrnet train` launches torchrun with one
# process per local GPU, in its own process group (killed as a whole if this script is stopped).
#   NNODES=2 RDZV_ENDPOINT=node0:29500 infra/torchrun-node.sh seg_cityscapes_w48_160k
# DVC has no multi-node runner: run the fetch/validate stages on each node (or share data/ over a
# network file system) and the evaluate/register stages once, after training (docs/PIPELINES.md).
set -euo pipefail
source "$(dirname "$0")/_env.sh"
ROW="${1:?usage: torchrun-node.sh ROW_ID}"
NPROC="${NPROC_PER_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l)}"
cd "$ROOT"
exec hrnet train --params benchmarks/params.yaml --row "$ROW" --out "runs/$ROW" \
  --nnodes "${NNODES:?set NNODES}" --nproc-per-node "$NPROC" \
  --rdzv-endpoint "${RDZV_ENDPOINT:?set RDZV_ENDPOINT=host:port}" --rdzv-id "${RDZV_ID:-$ROW}" \
  --experiment hrnet-zoo-benchmarks --resume
