"""W1's first training step (``cold_start.py``'s child): the functions Numba compiled more than
once (inclusive seconds per signature) and the slowest compiles (NOTES section 38).  Run with
an empty cache:

    FASTBP_CACHE_DIR=$(mktemp -d) PYTHONPATH=. python benchmarks/probes/compile_signatures.py
"""
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # benchmarks/
import compile_profile  # noqa: E402  (the numba:compile listener; configures Numba first)
from cold_start import CHILD  # noqa: E402

exec(CHILD)
print()
records = compile_profile._records   # (function, signature, inclusive s, nesting depth)
print("compiled more than once (inclusive s per signature):")
for name, n in collections.Counter(r[0] for r in records).most_common():
    if n > 1:
        print(f"  {n} {name} {[round(r[2], 1) for r in records if r[0] == name]}")
print("slowest (inclusive s, nesting depth):")
for name, _sig, seconds, depth in sorted(records, key=lambda r: -r[2])[:12]:
    print(f"  {seconds:6.1f} d{depth} {name}")
