#!/usr/bin/env bash
# Multi-node training of one row: run this on every node with the same RDZV_ENDPOINT
# (HOST:PORT of a node all can reach) and RDZV_ID; `hrnet train` launches torchrun with one
# process per local GPU (one CPU process on a node without GPUs or nvidia-smi; NPROC_PER_NODE
# overrides), in its own process group (killed as a whole if this script is stopped).
#   NNODES=2 RDZV_ENDPOINT=node0:29500 infra/torchrun-node.sh seg_cityscapes_w48_160k
# DVC has no multi-node runner: run the fetch/validate stages on each node (or share data/ over a
# network file system) and the evaluate/register stages once, after training (docs/PIPELINES.md).
set -euo pipefail
source "$(dirname "$0")/_env.sh"
ROW="${1:?usage: torchrun-node.sh ROW_ID}"
NNODES="${NNODES:?set NNODES (the number of nodes)}"
RDZV_ENDPOINT="${RDZV_ENDPOINT:?set RDZV_ENDPOINT=host:port}"
if [[ -n "${NPROC_PER_NODE:-}" ]]; then
  NPROC="$NPROC_PER_NODE"
  KIND="NPROC_PER_NODE"
else
  NPROC="$(gpu_count)"
  KIND="one per GPU"
  if [[ "$NPROC" -eq 0 ]]; then
    NPROC=1
    KIND="one CPU process: no GPU found (nvidia-smi missing or lists none)"
  fi
fi
cd "$ROOT"
echo "training row $ROW on node $(hostname): $NPROC process(es) ($KIND), $NNODES node(s)," \
  "rendezvous $RDZV_ENDPOINT id ${RDZV_ID:-$ROW}, outputs in runs/$ROW; pid $$"
exec hrnet train --params benchmarks/params.yaml --row "$ROW" --out "runs/$ROW" \
  --nnodes "$NNODES" --nproc-per-node "$NPROC" \
  --rdzv-endpoint "$RDZV_ENDPOINT" --rdzv-id "${RDZV_ID:-$ROW}" \
  --experiment hrnet-zoo-benchmarks --resume
