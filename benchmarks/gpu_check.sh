#!/usr/bin/env bash
# The GPU check (issue 15): every task's paper-size model trained on a CUDA GPU with AMP, plain
# and with SLR attached (throughput, peak GPU memory, SLR's step overhead, SLR's update and the
# projection speed-up on the GPU), bench_core.py on the GPU, a 2-process DDP run of
# `python -m classification --table table7` under torchrun, and each task's entry point once
# through every stage. No data set is needed: synthetic batches at the paper's shapes and each
# task's generated smoke data. About 8-10 minutes on one modern GPU; writes docs/gpu_check.md.
#
#   bash benchmarks/gpu_check.sh                              # on a machine with a CUDA GPU
#   DEVICE=cpu bash benchmarks/gpu_check.sh                   # the first iterations on the CPU (AMP off)
#   DEVICE=cpu PROFILE=smoke ITERS=2 bash benchmarks/gpu_check.sh   # the same with the smoke models, ~1 minute
#
# Settings (environment): DEVICE (cuda | cuda:N | cpu; default cuda), ITERS (timed steps per
# variant and model; 200, or 2 with DEVICE=cpu), PROFILE (paper | smoke: the configs' model and
# input sizes; paper), BATCH (one batch size for every model; the configs', or 2 with DEVICE=cpu),
# CASES (comma-separated models; all), TIME_LIMIT (seconds; 540), ENTRY=0|1 (entry points; 1 on a
# GPU), DDP=0|1 (1), BENCH_CORE=0|1 (1), AMP=0|1 (1; always off on the CPU), REPORT (the report;
# docs/gpu_check.md), WORKDIR (scratch, kept; default a temporary folder, removed), PY (the Python;
# .venv/bin/python, built by `make install` when missing). Further arguments go to
# benchmarks/gpu_check.py (see its --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PY:-.venv/bin/python}
if [ ! -x "$PY" ]; then
  echo "gpu_check: $PY not found; running make install" >&2
  make install
fi

DEVICE=${DEVICE:-cuda}
shown=()   # the settings given, for the report's command line
for name in DEVICE ITERS PROFILE BATCH CASES TIME_LIMIT ENTRY DDP BENCH_CORE AMP REPORT WORKDIR; do
  if [ -n "${!name:-}" ]; then shown+=("$name=${!name}"); fi
done
if [ "$DEVICE" = cpu ]; then
  ITERS=${ITERS:-2}
  BATCH=${BATCH:-2}
fi

args=(--device "$DEVICE" --iters "${ITERS:-200}" --profile "${PROFILE:-paper}" --time-limit "${TIME_LIMIT:-540}"
      --report "${REPORT:-docs/gpu_check.md}")
[ -n "${BATCH:-}" ] && args+=(--batch "$BATCH")
[ -n "${CASES:-}" ] && args+=(--cases "$CASES")
[ -n "${WORKDIR:-}" ] && args+=(--workdir "$WORKDIR")
case "${ENTRY:-}" in 0) args+=(--no-entry) ;; 1) args+=(--entry) ;; esac
[ "${DDP:-1}" = 0 ] && args+=(--no-ddp)
[ "${BENCH_CORE:-1}" = 0 ] && args+=(--no-bench-core)
[ "${AMP:-1}" = 0 ] && args+=(--no-amp)

command="${shown[*]:+${shown[*]} }bash benchmarks/gpu_check.sh${*:+ $*}"
exec "$PY" benchmarks/gpu_check.py "${args[@]}" --command "$command" "$@"
