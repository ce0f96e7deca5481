#!/usr/bin/env bash
# What a session lent a GPU checks, in one call, within about 8 minutes: the CUDA tests, the
# CUDA rows of both benchmarks, one paper cell (temporal_order, T = 100: 7 methods x 5 seeds) at
# 5,000 iterations with the projected paper, confirm and long profiles, and the same cell
# started by the sweep (rows written as runs end). Logs go to OUTDIR (default $OUT, else build/gpu).
#
#   bash benchmarks/gpu.sh [OUTDIR]
#
# On a bare machine with torch but without Dask, wheels in .whl/ (dask, distributed and their
# pure-Python needs) are installed to /tmp/site first.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${1:-${OUT:-build/gpu}}
mkdir -p "$OUTDIR"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
if [ -d .whl ] && ! $PY -c "import distributed" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
step() { echo; echo "== $1 ($(date +%T))"; }

step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUTDIR/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUTDIR/gpu.txt"

step "CUDA tests"
timeout 100 $PY -m pytest -q -p no:cacheprovider -k cuda tests/test_engine.py tests/test_per_example.py \
  tests/test_tasks.py 2>&1 | tail -5 | tee "$OUTDIR/cuda-tests.txt"

step "per-example statistics on the GPU (benchmarks/per_example.py)"
timeout 90 $PY -m benchmarks.per_example --repeats 5 2>&1 | tee "$OUTDIR/per-example.txt"

step "training cost per sequence on the GPU (benchmarks/training.py)"
timeout 120 $PY -m benchmarks.training --device cuda --iterations 400 2>&1 | tee "$OUTDIR/training-cuda.txt"

step "one paper cell at 5,000 iterations, and the projected profiles (benchmarks/gpu_cell.py)"
timeout ${PROJECTION_SECONDS:-200} $PY -m benchmarks.gpu_cell --iterations 5000 2>&1 | tee "$OUTDIR/cell-projection.txt"

step "one paper cell through the sweep: temporal_order T=100, every method and seed, one call"
start=$(date +%s)
timeout ${CELL_SECONDS:-60} $PY -m gradreg sweep --profile paper --cell temporal_order:100 --device cuda \
  --workers 1 --no-progress --results "$OUTDIR/cell.csv" 2>&1 | tail -3
echo "cell: $(( $(date +%s) - start )) s wall, $(( $(wc -l < "$OUTDIR/cell.csv") - 1 )) of 35 runs finished" \
  | tee "$OUTDIR/cell.txt"
