"""Import fastbp before any test module imports numba, so fastbp's Numba set-up
(NUMBA_SLP_VECTORIZE, set before numba's first import) applies to every test."""
import fastbp  # noqa: F401
