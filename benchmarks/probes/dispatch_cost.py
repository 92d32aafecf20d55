"""Numba's dispatch cost per array argument: a jitted function of 22, 12 and 1 arrays, and
of one array and three scalars (timeit minima, µs a call; NOTES section 43).  Then the ways
to hand over the 20 arrays at once: a tuple of them, and a StructRef holding them (NOTES
section 70: Numba types a StructRef in Python, ~0.5 µs, so neither is cheaper than the
arrays one by one).

    python benchmarks/probes/dispatch_cost.py
"""
import timeit

import numpy as np
from numba import njit, types
from numba.experimental import structref


@structref.register
class ArraysType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(t)) for name, t in fields)


class Arrays(structref.StructRefProxy):
    """20 arrays in one object (a StructRef: fields read in compiled code like attributes)."""


FIELDS = [f"a{i}" for i in range(20)]
structref.define_proxy(Arrays, ArraysType, FIELDS)


@njit
def f22(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21):
    return a0[0]


@njit
def f12(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11):
    return a0[0]


@njit
def f1(a0):
    return a0[0]


@njit
def f_scalars(a0, i, f, b):
    return a0[0]


@njit
def f_struct(s, a20, a21):
    return s.a0[0]


@njit
def f_tuple(t, a20, a21):
    return t[0][0]


@njit
def f_struct_alone(s):
    return s.a0[0]


def main():
    a = [np.zeros(10, np.float32) for _ in range(22)]
    calls = {"22 arrays": lambda: f22(*a), "12 arrays": lambda: f12(*a[:12]), "1 array": lambda: f1(a[0]),
             "1 array, 3 scalars": lambda: f_scalars(a[0], 1, 1.0, True)}
    bundle, arrays = Arrays(*a[:20]), tuple(a[:20])
    calls.update({"StructRef of 20 + 2": lambda: f_struct(bundle, a[20], a[21]),
                  "tuple of 20 + 2": lambda: f_tuple(arrays, a[20], a[21]),
                  "StructRef alone": lambda: f_struct_alone(bundle)})
    for name, call in calls.items():
        call()
        best = min(timeit.repeat(call, number=50000, repeat=5)) / 50000 * 1e6
        print(f"{name:20s} {best:.3f} µs")


if __name__ == "__main__":
    main()
