"""Bias + activation forward, and the activation derivative times the incoming gradient.

Every activation matches ``torch.nn.functional`` in value *and* in the
derivative autograd uses, branch conventions included (``relu'(0) = 0``,
``leaky_relu'(0) = negative_slope``, ``elu'(x <= 0) = alpha * exp(x)``,
softplus with ``beta = 1, threshold = 20``).  Codes are in ``codes.py``;
``alpha`` is ``negative_slope`` for leaky ReLU, ``alpha`` for ELU and ignored
otherwise.

float32 stays float32: every literal goes through ``typed(x, c)``, which
becomes a constant of ``x``'s float type at compile time (a bare ``0.5``
would promote the whole expression to float64).  NaN propagates through
every forward (no ``nnan``/``ninf`` fastmath).

The array kernels switch on ``act`` once, outside the element loops, and run
rows serially unless the array has at least ``PARALLEL_MIN_ELEMENTS``
elements: a thread launch costs microseconds, more than a whole tiny layer.

exp, expm1, log1p and (float32) erf are this module's own inline IR, not libm
calls, so every element loop vectorizes: 0.1-2.5 ns an element in float32 for
every activation, against 10-40 ns through libm (float64: 0.2-6 ns, except
exact GELU, which keeps libm's erf for full float64 accuracy: ~20-50 ns).
"""
import math

import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.extending import intrinsic, overload
from numba.np import numpy_support

from fastbp._jit import jit, jit_parallel, prange
from fastbp.kernels import fpenv, linked
from fastbp.kernels.codes import ELU, GELU, GELU_TANH, IDENTITY, LEAKY_RELU, RELU, SIGMOID, SILU, SOFTPLUS, TANH

OUTPUT_ONLY = (IDENTITY, RELU, SIGMOID, TANH)
"""Activations whose derivative backward takes from the output alone, bit for bit
(relu'(z) = relu'(relu(z)), sigmoid' = a(1 - a), tanh' = 1 - a²): a layer fused with one
keeps one workspace slot (``compiler``) and its forward epilogue runs in place over the
product (``runs_in_place``; NOTES section 62).  LeakyReLU joins them when its slope is
not negative (``keeps_output_only``)."""


def keeps_output_only(act, alpha):
    """Whether a layer fused with activation ``act`` (parameter ``alpha``) needs only its
    output in backward: an ``OUTPUT_ONLY`` activation, or LeakyReLU with a slope >= 0, whose
    derivative (1 where z > 0, else the slope) reads the same from a = leaky(z), since then
    a > 0 exactly where z > 0 (NaN and -0.0 included; NOTES section 63)."""
    return act in OUTPUT_ONLY or (act == LEAKY_RELU and alpha >= 0.0)

PARALLEL_MIN_ELEMENTS = 1 << 15
"""Elementwise kernels ``prange`` over rows only from this many elements (B * n) on."""

_SQRT1_2 = 0.7071067811865476        # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327   # 1 / sqrt(2 pi): the normal pdf's factor
_SQRT_2_PI = 0.7978845608028654      # sqrt(2 / pi): gelu_tanh's kBeta
_GELU_KAPPA = 0.044715
_SOFTPLUS_THRESHOLD = 20.0


def typed(x, c):
    """``c`` as a constant of ``x``'s float type (use inside jitted code only)."""
    raise NotImplementedError("typed() is only available inside Numba-compiled code")


@overload(typed, inline="always")
def _typed_overload(x, c):
    if isinstance(x, types.Float):
        cast = numpy_support.as_dtype(x).type

        def impl(x, c):
            return cast(c)
        return impl
    return None


_KW = {"error_model": "numpy"}   # no ZeroDivisionError checks: they block vectorization
# Per-element helpers are inlined in Numba's IR: a call left to LLVM's inliner may stay a call
# (it did here, even with forceinline), and a loop with a call in it does not vectorize.
_INLINE = {**_KW, "inline": "always"}


# ------------------------------------------ vectorizable exp, expm1, log1p, erf
#
# libm's expf/tanh/erf are opaque calls that LLVM cannot vectorize: 10-40 ns an
# element, more than a tanh layer's GEMM.  These are emitted as plain LLVM IR
# (intrinsics: no call, nothing for Numba to inline or type) so element loops
# vectorize.  exp / expm1: Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, a
# Taylor polynomial in r, 2^k from exponent bits in two factors (so subnormal
# results round once).  Measured against float64/libm over the whole range:
# within ~1.5 ulp (float32) / ~2.2 ulp (float64) for exp, expm1, tanh, log1p,
# and NaN, +-inf, overflow and underflow come out right.  Float constants are
# rounded to the argument's type, so float32 stays float32.

_FLAGS = ("contract", "nsz")     # FASTMATH_SAFE: FMA contraction, no NaN/Inf assumptions


class _Emit:
    """Emit float IR for one float type with fastbp's safe fast-math flags."""

    def __init__(self, builder, fty):
        self.b, self.t = builder, fty
        self.width = 32 if isinstance(fty, ir.FloatType) else 64
        self.ity = ir.IntType(self.width)

    def c(self, v):
        return ir.Constant(self.t, float(np.float32(v)) if self.width == 32 else float(v))

    def add(self, a, b):
        return self.b.fadd(a, b, flags=_FLAGS)

    def sub(self, a, b):
        return self.b.fsub(a, b, flags=_FLAGS)

    def mul(self, a, b):
        return self.b.fmul(a, b, flags=_FLAGS)

    def div(self, a, b):
        return self.b.fdiv(a, b, flags=_FLAGS)

    def lt(self, a, b):
        return self.b.fcmp_ordered("<", a, b)      # false for NaN

    def gt(self, a, b):
        return self.b.fcmp_ordered(">", a, b)

    def select(self, cond, a, b):
        return self.b.select(cond, a, b)

    def abs(self, a):
        return self.b.call(self.b.module.declare_intrinsic("llvm.fabs", [self.t]), [a])

    def copysign(self, mag, sign):
        fnty = ir.FunctionType(self.t, [self.t, self.t])
        return self.b.call(self.b.module.declare_intrinsic("llvm.copysign", [self.t], fnty), [mag, sign])

    def horner(self, x, coeffs):
        """sum coeffs[i] x^(n - i), highest power first."""
        acc = self.c(coeffs[0])
        for a in coeffs[1:]:
            acc = self.add(self.mul(acc, x), self.c(a))
        return acc

    def pow2(self, kf):
        """2.0 ** kf for an integer-valued float kf in the normal exponent range.

        kf + 1.5 * 2^mant puts kf in the low mantissa bits; integer ops in the float's own
        width (float32 lanes stay 32-bit) and no fptosi, so a NaN kf just gives some float.
        """
        mant, bias = (23, 127) if self.width == 32 else (52, 1023)
        magic = self.c(1.5 * 2.0 ** mant)
        k = self.b.sub(self.b.bitcast(self.add(kf, magic), self.ity), self.b.bitcast(magic, self.ity))
        bits = self.b.shl(self.b.add(k, ir.Constant(self.ity, bias)), ir.Constant(self.ity, mant))
        return self.b.bitcast(bits, self.t)


# exp(89) / exp(710) overflow, exp(-104) / exp(-746) are below half the smallest subnormal.
# ln2 = _LN2_HI + _LN2_LO with few bits in _LN2_HI, so k * _LN2_HI is exact (fdlibm's split
# for float64).  _EXPM1_POLY: expm1(r) / r, Taylor to 1/8! (float32) / 1/13! (float64).
_EXP_RANGE = {32: (-104.0, 89.0), 64: (-746.0, 710.0)}
_LN2_HI = {32: 0.693359375, 64: 6.93147180369123816490e-01}
_LN2_LO = {32: -2.12194440e-4, 64: 1.90821492927058770002e-10}
_EXPM1_POLY = {32: [1.0 / math.factorial(k) for k in range(8, 0, -1)],
               64: [1.0 / math.factorial(k) for k in range(13, 0, -1)]}
# (atanh(s) / s - 1) / s^2 = sum_k s^(2k-2) / (2k + 1) for s <= 1/3: to 1/17 / 1/35.
_ATANH_POLY = {32: [1.0 / (2 * k + 1) for k in range(8, 0, -1)],
               64: [1.0 / (2 * k + 1) for k in range(17, 0, -1)]}


def _emit_exp_parts(e, x):
    """(r, q, s1, s2): x = k ln2 + r, q = expm1(r), s1 * s2 = 2^k; NaN stays in r and q."""
    lo, hi = _EXP_RANGE[e.width]
    xc = e.select(e.lt(x, e.c(lo)), e.c(lo), x)
    xc = e.select(e.gt(xc, e.c(hi)), e.c(hi), xc)
    magic = e.c(1.5 * 2.0 ** (23 if e.width == 32 else 52))
    kf = e.sub(e.add(e.mul(xc, e.c(1.4426950408889634)), magic), magic)      # round(x / ln2)
    r = e.sub(e.sub(xc, e.mul(kf, e.c(_LN2_HI[e.width]))), e.mul(kf, e.c(_LN2_LO[e.width])))
    q = e.mul(r, e.horner(r, _EXPM1_POLY[e.width]))
    k1 = e.sub(e.add(e.mul(kf, e.c(0.5)), magic), magic)
    return r, q, e.pow2(k1), e.pow2(e.sub(kf, k1))


def _emit_exp(e, x):
    _, q, s1, s2 = _emit_exp_parts(e, x)
    return e.mul(e.mul(e.add(e.c(1.0), q), s1), s2)


def _emit_expm1(e, x):
    """2^k expm1(r) + (2^k - 1), no cancellation near 0; above 40, exp(x) - 1 (no early overflow)."""
    _, q, s1, s2 = _emit_exp_parts(e, x)
    one = e.c(1.0)
    s = e.mul(s1, s2)
    near = e.add(e.mul(s, q), e.sub(s, one))
    far = e.sub(e.mul(e.mul(e.add(one, q), s1), s2), one)
    return e.select(e.gt(x, e.c(40.0)), far, near)


def _emit_log1p_unit(e, z):
    """log(1 + z) for 0 <= z <= 1: 2 atanh(s), s = z / (2 + z) <= 1/3."""
    s = e.div(z, e.add(e.c(2.0), z))
    w = e.mul(s, s)
    series = e.mul(w, e.horner(w, _ATANH_POLY[e.width]))
    return e.mul(e.c(2.0), e.add(s, e.mul(s, series)))


# exp(z^2) erfc(z) on [1, 4] as a polynomial in t = (z - 2.5) / 1.5, highest power first: a
# degree-11 Chebyshev least-squares fit at 200 Chebyshev nodes (erfc from math.erfc, exp(z^2)
# in 50-digit decimal), converted to powers of t and rounded to float32.  With it float32 erf
# has an absolute error below 0.2 ulp(1) on [1, 4]; erf(z) rounds to 1 in float32 above 4.
_ERFC_SCALED_F32 = (
    -3.69287226931192e-05, 9.640451753512025e-05, -0.00014394859317690134, 0.0003678686625789851,
    -0.0010171177564188838, 0.002425885060802102, -0.0055673327296972275, 0.012484035454690456,
    -0.027005724608898163, 0.05611095950007439, -0.11152100563049316, 0.21080635488033295,
)
# erf(z) / z = (2 / sqrt(pi)) sum (-z^2)^n / (n! (2n + 1)), used below z = 1: n <= 11.
_ERF_TAYLOR_F32 = [2.0 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1))
                   for n in range(11, -1, -1)]


def _emit_erf32(e, x):
    z = e.abs(x)
    small = e.mul(z, e.horner(e.mul(z, z), _ERF_TAYLOR_F32))
    zc = e.select(e.gt(z, e.c(4.0)), e.c(4.0), z)                    # keeps NaN
    t = e.mul(e.sub(zc, e.c(2.5)), e.c(1.0 / 1.5))
    large = e.sub(e.c(1.0), e.mul(_emit_exp(e, e.sub(e.c(0.0), e.mul(zc, zc))),
                                  e.horner(t, _ERFC_SCALED_F32)))
    return e.copysign(e.select(e.lt(z, e.c(1.0)), small, large), x)


def _float_intrinsic(emit, name, doc, only=None):
    """A Numba intrinsic computing ``emit`` inline for float32 / float64 arguments."""
    def typer(typingctx, x):
        if isinstance(x, types.Float) and (only is None or x.bitwidth in only):
            def codegen(context, builder, signature, args):
                return emit(_Emit(builder, context.get_value_type(x)), args[0])
            return x(x), codegen
        return None
    typer.__name__ = typer.__qualname__ = name
    typer.__doc__ = doc
    return intrinsic(typer)


fast_exp = _float_intrinsic(_emit_exp, "fast_exp", "exp(x), inline and vectorizable.")
fast_expm1 = _float_intrinsic(_emit_expm1, "fast_expm1", "exp(x) - 1, accurate near 0, vectorizable.")
fast_log1p_unit = _float_intrinsic(_emit_log1p_unit, "fast_log1p_unit",
                                   "log(1 + z) for 0 <= z <= 1 (NaN -> NaN), vectorizable.")
_erf32 = _float_intrinsic(_emit_erf32, "_erf32", "float32 erf, vectorizable.", only=(32,))


def _erf(x):
    """erf(x): vectorizable for float32, libm's for float64 (exact GELU stays exact there)."""
    raise NotImplementedError


@overload(_erf, inline="always")
def _erf_overload(x):
    if x == types.float32:
        return lambda x: _erf32(x)
    if x == types.float64:
        return lambda x: math.erf(x)
    return None


# ---------------------------------------------------------------- scalar forms

@jit(**_INLINE)
def _relu(x):
    return typed(x, 0.0) if x <= typed(x, 0.0) else x     # noqa: FURB136 (max(0, NaN) is 0, not NaN)


@jit(**_INLINE)
def _leaky_relu(x, slope):
    return x if x > typed(x, 0.0) else x * slope


@jit(**_INLINE)
def _elu(x, alpha):
    return alpha * fast_expm1(x) if x <= typed(x, 0.0) else x


@jit(**_INLINE)
def _gelu(x):
    return x * typed(x, 0.5) * (typed(x, 1.0) + _erf(x * typed(x, _SQRT1_2)))


@jit(**_INLINE)
def _gelu_tanh(x):
    inner = typed(x, _SQRT_2_PI) * (x + typed(x, _GELU_KAPPA) * x * x * x)
    return typed(x, 0.5) * x * (typed(x, 1.0) + _tanh(inner))


@jit(**_INLINE)
def _sigmoid(x):
    """Stable logistic: one ``exp(-|x|)`` that never overflows, then a select."""
    e = fast_exp(-abs(x))
    r = typed(x, 1.0) / (typed(x, 1.0) + e)
    return r if x >= typed(x, 0.0) else e * r


@jit(**_INLINE)
def _tanh(x):
    """tanh |x| = -u / (u + 2) with u = expm1(-2|x|): no cancellation near 0, no overflow."""
    u = fast_expm1(typed(x, -2.0) * abs(x))
    return math.copysign(-u / (u + typed(x, 2.0)), x)


@jit(**_INLINE)
def _softplus(x):
    """log1p(exp(x)) = max(x, 0) + log1p(exp(-|x|)); the identity above the threshold, as torch."""
    y = max(x, typed(x, 0.0)) + fast_log1p_unit(fast_exp(-abs(x)))
    return x if x > typed(x, _SOFTPLUS_THRESHOLD) else y


@jit(**_INLINE)
def _relu_grad(x):
    return typed(x, 0.0) if x <= typed(x, 0.0) else typed(x, 1.0)


@jit(**_INLINE)
def _leaky_relu_grad(x, slope):
    return typed(x, 1.0) if x > typed(x, 0.0) else slope


@jit(**_INLINE)
def _elu_grad(x, alpha):
    return alpha * fast_exp(x) if x <= typed(x, 0.0) else typed(x, 1.0)


@jit(**_INLINE)
def _gelu_grad(x):
    cdf = typed(x, 0.5) * (typed(x, 1.0) + _erf(x * typed(x, _SQRT1_2)))
    pdf = fast_exp(typed(x, -0.5) * x * x) * typed(x, _INV_SQRT_2PI)
    return cdf + x * pdf


@jit(**_INLINE)
def _gelu_tanh_grad(x):
    x_sq = x * x
    inner = typed(x, _SQRT_2_PI) * (x + typed(x, _GELU_KAPPA) * x_sq * x)
    t = _tanh(inner)
    left = typed(x, 0.5) * x
    right = typed(x, 1.0) + t
    dinner = typed(x, _SQRT_2_PI) * (typed(x, 1.0) + typed(x, 3.0 * _GELU_KAPPA) * x_sq)
    return typed(x, 0.5) * right + left * (typed(x, 1.0) - t * t) * dinner


@jit(**_INLINE)
def _silu_grad(x):
    s = _sigmoid(x)
    return s * (typed(x, 1.0) + x * (typed(x, 1.0) - s))


@jit(**_INLINE)
def _softplus_grad(x):
    return typed(x, 1.0) if x > typed(x, _SOFTPLUS_THRESHOLD) else _sigmoid(x)


@jit(**_KW)
def act_scalar(x, act, alpha):
    """The activation ``act`` (a code) at ``x``; ``alpha`` has ``x``'s type."""
    if act == RELU:
        return _relu(x)
    if act == LEAKY_RELU:
        return _leaky_relu(x, alpha)
    if act == ELU:
        return _elu(x, alpha)
    if act == GELU:
        return _gelu(x)
    if act == GELU_TANH:
        return _gelu_tanh(x)
    if act == SILU:
        return x * _sigmoid(x)
    if act == SIGMOID:
        return _sigmoid(x)
    if act == TANH:
        return _tanh(x)
    if act == SOFTPLUS:
        return _softplus(x)
    return x


@jit(**_KW)
def act_grad_scalar(x, act, alpha):
    """The derivative autograd uses for ``act`` at ``x`` (torch's branch conventions)."""
    if act == RELU:
        return _relu_grad(x)
    if act == LEAKY_RELU:
        return _leaky_relu_grad(x, alpha)
    if act == ELU:
        return _elu_grad(x, alpha)
    if act == GELU:
        return _gelu_grad(x)
    if act == GELU_TANH:
        return _gelu_tanh_grad(x)
    if act == SILU:
        return _silu_grad(x)
    if act == SIGMOID:
        s = _sigmoid(x)
        return (typed(x, 1.0) - s) * s
    if act == TANH:
        t = _tanh(x)
        return typed(x, 1.0) - t * t
    if act == SOFTPLUS:
        return _softplus_grad(x)
    return typed(x, 1.0)


# ----------------------------------------------------------------- row blocks

@jit(**_INLINE)
def _act_block(Z, act, alpha, A, r0, r1, c0, c1):
    """A[r0:r1, c0:c1] = act(Z[r0:r1, c0:c1]); one loop per activation so the switch is not per element.

    Unsigned indices: with a signed run-time ``c0`` Numba's negative-index wraparound
    code kept the loops scalar, 8x slower (NOTES section 25)."""
    i0, i1, j0, j1 = np.uint64(r0), np.uint64(r1), np.uint64(c0), np.uint64(c1)
    if act == RELU:
        for i in range(i0, i1):
            for j in range(j0, j1):
                A[i, j] = _relu(Z[i, j])
    elif act == LEAKY_RELU:
        for i in range(i0, i1):
            for j in range(j0, j1):
                A[i, j] = _leaky_relu(Z[i, j], alpha)
    elif act == ELU:
        for i in range(i0, i1):
            for j in range(j0, j1):
                A[i, j] = _elu(Z[i, j], alpha)
    elif act == GELU:
        for i in range(i0, i1):
            for j in range(j0, j1):
                A[i, j] = _gelu(Z[i, j])
    elif act == GELU_TANH:
        for i in range(i0, i1):
            for j in range(j0, j1):
                A[i, j] = _gelu_tanh(Z[i, j])
    elif act == SILU:
        for i in range(i0, i1):
            for j in range(j0, j1):
                z = Z[i, j]
                A[i, j] = z * _sigmoid(z)
    elif act == SIGMOID:
        for i in range(i0, i1):
            for j in range(j0, j1):
                A[i, j] = _sigmoid(Z[i, j])
    elif act == TANH:
        for i in range(i0, i1):
            for j in range(j0, j1):
                A[i, j] = _tanh(Z[i, j])
    elif act == SOFTPLUS:
        for i in range(i0, i1):
            for j in range(j0, j1):
                A[i, j] = _softplus(Z[i, j])
    else:
        for i in range(i0, i1):
            for j in range(j0, j1):
                A[i, j] = Z[i, j]


@jit(**_INLINE)
def runs_in_place(Z, act, A):
    """Whether ``bias_act_block`` works on ``Z`` alone: ``A`` is ``Z`` and ``act`` is in
    ``OUTPUT_ONLY`` or LeakyReLU (the compiler gives A its own slot where backward needs z).
    The GEMM then runs the epilogue per register tile (NOTES section 62)."""
    return (act in OUTPUT_ONLY or act == LEAKY_RELU) and A.ctypes.data == Z.ctypes.data


@jit(**_INLINE)
def _bias_act_block_in_place(Z, bias, act, alpha, r0, r1, c0, c1):
    """Z = act(Z + bias) on the block [r0:r1, c0:c1] for ``runs_in_place``'s activations:
    the arithmetic of ``bias_act_block``'s two passes, so the same bits.  ``_act_block`` is
    inlined with ``Z`` as its output, so LLVM sees one array: called as a function with
    ``A`` aliasing ``Z``, its loop fails the run-time overlap check and runs scalar (and the
    identity copies Z onto itself).  Own loops here for sigmoid and tanh ran 6x slower
    than this in ``bias_act_forward`` (not vectorized; NOTES section 62)."""
    i0, i1, j0, j1 = np.uint64(r0), np.uint64(r1), np.uint64(c0), np.uint64(c1)
    if act == RELU and bias.shape[0] != 0:       # one pass
        for i in range(i0, i1):
            for j in range(j0, j1):
                Z[i, j] = _relu(Z[i, j] + bias[j])
        return
    if act == LEAKY_RELU and bias.shape[0] != 0:
        for i in range(i0, i1):
            for j in range(j0, j1):
                Z[i, j] = _leaky_relu(Z[i, j] + bias[j], alpha)
        return
    if bias.shape[0] != 0:
        for i in range(i0, i1):
            for j in range(j0, j1):
                Z[i, j] += bias[j]
    if act != IDENTITY:
        _act_block(Z, act, alpha, Z, r0, r1, c0, c1)


@jit(**_KW)
def bias_act_block(Z, bias, act, alpha, A, r0, r1, c0, c1):
    """Z += bias, then A = act(Z), on the block [r0:r1, c0:c1]: ``bias_act_forward``'s
    arithmetic on part of the output, which the GEMM calls as the forward product's
    epilogue while the block is still in cache (``gemm.matmul_nt_bias_act``)."""
    if runs_in_place(Z, act, A):
        _bias_act_block_in_place(Z, bias, act, alpha, r0, r1, c0, c1)
        return
    if bias.shape[0] != 0:
        for i in range(np.uint64(r0), np.uint64(r1)):
            for j in range(np.uint64(c0), np.uint64(c1)):
                Z[i, j] += bias[j]
    _act_block(Z, act, alpha, A, r0, r1, c0, c1)


@jit(**_KW)
def _act_backward_rows(G, Z, A, act, alpha, out, r0, r1):
    """out[r0:r1] = G * act'(Z); sigmoid and tanh use A = act(Z), as autograd does.

    Computed in place in ``out`` (G copied there first unless ``out`` is G): an
    ``out = G * f(Z)`` loop with ``out`` aliasing G fails LLVM's runtime overlap
    check and runs scalar, 3-5x slower than ``out = out * f(Z)`` (NOTES section 21).
    """
    n = Z.shape[1]
    if out.ctypes.data != G.ctypes.data:
        for i in range(r0, r1):
            for j in range(n):
                out[i, j] = G[i, j]
    if act == RELU:
        for i in range(r0, r1):
            for j in range(n):
                out[i, j] = out[i, j] * _relu_grad(Z[i, j])
    elif act == LEAKY_RELU:
        for i in range(r0, r1):
            for j in range(n):
                out[i, j] = out[i, j] * _leaky_relu_grad(Z[i, j], alpha)
    elif act == ELU:
        for i in range(r0, r1):
            for j in range(n):
                out[i, j] = out[i, j] * _elu_grad(Z[i, j], alpha)
    elif act == GELU:
        for i in range(r0, r1):
            for j in range(n):
                out[i, j] = out[i, j] * _gelu_grad(Z[i, j])
    elif act == GELU_TANH:
        for i in range(r0, r1):
            for j in range(n):
                out[i, j] = out[i, j] * _gelu_tanh_grad(Z[i, j])
    elif act == SILU:
        for i in range(r0, r1):
            for j in range(n):
                out[i, j] = out[i, j] * _silu_grad(Z[i, j])
    elif act == SIGMOID:
        one = A.dtype.type(1.0)
        for i in range(r0, r1):
            for j in range(n):
                a = A[i, j]
                out[i, j] = out[i, j] * (one - a) * a
    elif act == TANH:
        one = A.dtype.type(1.0)
        for i in range(r0, r1):
            for j in range(n):
                a = A[i, j]
                out[i, j] = out[i, j] * (one - a * a)
    elif act == SOFTPLUS:
        for i in range(r0, r1):
            for j in range(n):
                out[i, j] = out[i, j] * _softplus_grad(Z[i, j])


# ---------------------------------------------------------------- linked leaves
# The array kernels below reach the row loops through callbacks compiled once per dtype and
# called by symbol (``linked.c_function``): linked into every entry point, the activations'
# branches were re-optimized in each (~7 s of a cold W1 step with the optimizer's, NOTES 59).
# The GEMM's epilogue calls ``bias_act_block`` directly (per tile: no call through C there).

def _bias_act_leaf(z, rows, n, bias, n_bias, act, alpha, a, r0, r1):
    bias_act_block(carray(z, (rows, n)), carray(bias, n_bias), act, alpha, carray(a, (rows, n)), r0, r1,
                   np.int64(0), n)


def _act_backward_leaf(g, rows, n, z, a, act, alpha, out, r0, r1):
    _act_backward_rows(carray(g, (rows, n)), carray(z, (rows, n)), carray(a, (rows, n)), act, alpha,
                       carray(out, (rows, n)), r0, r1)


def _link_leaves(dtype):
    i, p = types.int64, types.CPointer(dtype)
    name = str(dtype)
    return (linked.c_function("bias_act_rows_" + name, (p, i, i, p, i, i, dtype, p, i, i), _bias_act_leaf),
            linked.c_function("act_backward_rows_" + name, (p, i, i, p, p, i, dtype, p, i, i), _act_backward_leaf))


_LEAVES = {dtype: _link_leaves(dtype) for dtype in (types.float32, types.float64)}


def _bias_act_rows(Z, bias, act, alpha, A, r0, r1):
    """``bias_act_block`` on rows [r0, r1), all columns, through its callback (jitted code only)."""
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_bias_act_rows, inline="always")
def _bias_act_rows_overload(Z, bias, act, alpha, A, r0, r1):
    if not linked.same_dtype(Z, bias, A):
        return None
    call = _LEAVES[Z.dtype][0]
    linked.bind(call)
    t = Z.dtype

    def impl(Z, bias, act, alpha, A, r0, r1):
        call(linked.data_address(Z), Z.shape[0], Z.shape[1], linked.data_address(bias), bias.size, act,
             t(alpha), linked.data_address(A), r0, r1)
    return impl


def _act_backward_rows_linked(G, Z, A, act, alpha, out, r0, r1):
    """``_act_backward_rows`` through its callback (jitted code only)."""
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_act_backward_rows_linked, inline="always")
def _act_backward_rows_linked_overload(G, Z, A, act, alpha, out, r0, r1):
    if not linked.same_dtype(G, Z, A, out):
        return None
    call = _LEAVES[G.dtype][1]
    linked.bind(call)
    t = G.dtype

    def impl(G, Z, A, act, alpha, out, r0, r1):
        call(linked.data_address(G), G.shape[0], G.shape[1], linked.data_address(Z), linked.data_address(A), act,
             t(alpha), linked.data_address(out), r0, r1)
    return impl


# -------------------------------------------------------------- array kernels

@jit_parallel(**_KW)
def bias_act_forward(Z, bias, act, alpha, A):
    """Z += bias (in place, kept for backward), then A = act(Z).

    ``bias`` is (n,) or (0,) for no bias.  ``A`` may be ``Z`` itself (in-place
    activation; the pre-activation is then lost).  Arrays C-contiguous, of one dtype.
    """
    B = Z.shape[0]
    if B * Z.shape[1] >= PARALLEL_MIN_ELEMENTS:
        bits = fpenv.current()
        for p in prange(B):
            old = fpenv.adopt(bits)
            i = np.int64(p)   # prange indices are uint64: one row-function signature, not two
            _bias_act_rows(Z, bias, act, alpha, A, i, i + 1)
            fpenv.leave(old)
    else:
        _bias_act_rows(Z, bias, act, alpha, A, np.int64(0), B)


@jit(**_KW)
def relu_backward_bias_grad(G, Z, db):
    """G *= relu'(Z) in place, and db = the column sums of the result (a dense layer's bias
    gradient), in one serial pass over G.

    The same arithmetic, in the same order, as ``act_backward`` then
    ``reductions.column_sums``, so the same bits.  Serial on purpose: rows split over
    two cores and then summed by one cost about twice the two passes timed alone, as
    the other core's half of G moves over (W1's and W2's layers; NOTES section 43)."""
    n = G.shape[1]
    for j in range(n):
        db[j] = 0
    for i in range(G.shape[0]):
        for j in range(n):
            g = G[i, j] * _relu_grad(Z[i, j])
            G[i, j] = g
            db[j] += g


@jit_parallel(**_KW)
def act_backward(G, Z, A, act, alpha, out):
    """out = G * act'(Z), given A = act(Z).  ``out`` may be ``G``.  Arrays C-contiguous, of one dtype."""
    B = Z.shape[0]
    if B * Z.shape[1] >= PARALLEL_MIN_ELEMENTS:
        bits = fpenv.current()
        for p in prange(B):
            old = fpenv.adopt(bits)
            i = np.int64(p)
            _act_backward_rows_linked(G, Z, A, act, alpha, out, i, i + 1)
            fpenv.leave(old)
    else:
        _act_backward_rows_linked(G, Z, A, act, alpha, out, np.int64(0), B)
