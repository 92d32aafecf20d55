#!/usr/bin/env bash
# Multicore scaling of the benchmark table: fastbp and its peers at 1..N threads, one machine, one run.
# Usage: bash benchmarks/scaling.sh [OUTDIR] [THREADS...]   (e.g. bash benchmarks/scaling.sh out 1 2 4 8 16)
# Writes OUTDIR/machine.txt (CPU, topology, versions, fastbp info), warmup.txt (cold compile of
# every float32 kernel, then fresh processes' first W1 step from the warm cache), table_tN.txt per
# thread count (table.py: each framework's worker pinned to the first N CPUs, jax on the CPU) and
# gemm.txt (the layer products against OpenBLAS at the smallest and largest thread counts).
set -uo pipefail
out=${1:-scaling-out}; shift || true
threads=${*:-1 2 4 8 16}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" JAX_PLATFORMS=cpu
{
  lscpu | grep -E "^(Model name|CPU\(s\)|Thread|Core|Socket|NUMA node|L1d|L2|L3)"
  lscpu | grep -o -E "avx512f|avx512_bf16|amx_tile|avx2" | sort -u | tr '\n' ' '; echo
  python3 - <<'PY'
import importlib, os, platform
print("python", platform.python_version(), *(f"{m} {importlib.import_module(m).__version__}"
      for m in ("numba", "numpy", "torch", "jax")))
for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
    print(k, os.environ.get(k, "unset"))
PY
  python3 -m fastbp info
} 2>&1 | tee "$out/machine.txt"
start=$(date +%s)
{
  python3 -m fastbp warmup --dtype float32 2>&1 | tail -2
  echo "cold compile + warm-up: $(( $(date +%s) - start )) s"
  python3 benchmarks/cold_start.py --runs 2
} 2>&1 | tee "$out/warmup.txt"
first=${threads%% *}
last=${threads##* }
for t in $threads; do
  python3 benchmarks/table.py --threads "$t" --rounds 3 --seconds 0.2 --bounds 2>&1 | tee "$out/table_t$t.txt"
done
python3 benchmarks/gemm_table.py --threads "$first" "$last" --reps 10 --only W 2>&1 | tee "$out/gemm.txt"
