#!/usr/bin/env bash
# Multicore scaling of the benchmark table: fastbp and its peers at 1..N threads, one machine, one run.
# Usage: bash benchmarks/scaling.sh [OUTDIR] [THREADS...]   (e.g. bash benchmarks/scaling.sh out 1 2 4 8 16)
set -uo pipefail
out=${1:-scaling-out}; shift || true
threads=${*:-1 2 4 8 16}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 - <<'PY' | tee "$out/machine.txt"
import os, platform, numba, numpy
print(platform.processor() or platform.machine(), os.cpu_count(), "CPUs; python", platform.python_version(),
      "numba", numba.__version__, "numpy", numpy.__version__)
for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    print(k, os.environ.get(k, "unset"))
PY
start=$(date +%s)
python3 -m fastbp warmup --dtype float32 2>&1 | tail -2 | tee "$out/warmup.txt"
echo "cold compile + warm-up: $(( $(date +%s) - start )) s" | tee -a "$out/warmup.txt"
for t in $threads; do
  python3 benchmarks/table.py --threads "$t" --rounds 3 --seconds 0.2 2>&1 | tee "$out/table_t$t.txt"
done
