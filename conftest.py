"""Import fastbp before any test module imports numba, so fastbp's Numba set-up
(NUMBA_SLP_VECTORIZE, set before numba's first import) applies to every test.

torch first, where it is installed (the optional cross-checks and benchmark cases): fastbp's
first compiled call starts Numba's OpenMP pool, which loads the system's libgomp, and a torch
imported after that binds to that one instead of its own and trains ~7x slower (NOTES
section 30)."""
import importlib.util

if importlib.util.find_spec("torch") is not None:
    import torch  # noqa: F401

import fastbp  # noqa: F401, E402
