"""Vectorisable ``exp`` and ``log`` for Numba kernels: libm accuracy in inlinable, branch-free code.

Numba compiles ``np.exp``/``math.exp`` (and ``log``) inside ``@njit`` to a
scalar libm call, which stops LLVM from vectorising the loop around it, while
NumPy's ``np.exp`` is SIMD.  :func:`exp32`/:func:`exp64` and
:func:`log32`/:func:`log64` are straight-line float and integer code (min/max
and selects, no branches, no calls), so ``for i in range(n): out[i] =
vexp(x[i])`` compiles to a SIMD loop: 8 float32 or 4 float64 per ymm
instruction, 16 or 8 per zmm in a function that calls
:func:`prefer_wide_vectors`.  :func:`vexp`/:func:`vlog` pick the precision
from the argument's type; :func:`exp`/:func:`log` are the array kernels
(NumPy twins ``np.exp``/``np.log``); :func:`vmax` is the NaN-propagating
maximum that vectorises as a reduction (a softmax row max).

Scheme, ``e^x = 2^n e^r``:

1. clamp ``x`` to ``[X_MIN, X_MAX]``, a little wider than the range where
   ``e^x`` is finite and nonzero, so that overflow to inf and underflow to 0
   come from ordinary IEEE rounding at the end; the clamp passes NaN through;
2. ``t = x log2(e) + 1.5 * 2^23`` (``2^52`` for float64) rounds ``x log2(e)``
   to the nearest integer ``n``, which sits in the low mantissa bits of ``t``;
   ``n = t - 1.5 * 2^23``;
3. Cody & Waite: ``r = (x - n ln2_hi) - n ln2_lo``; ``ln2_hi`` has trailing
   zero bits (15 significant bits in float32, 32 in float64), so
   ``n ln2_hi`` is exact, and ``|r| <= ln2/2``;
4. ``e^r = 1 + s``, ``s = r + r^2 q(r)``, ``q`` minimax (Remez) for the
   relative error of ``e^r`` on ``[-ln2/2, ln2/2]``: degree 6 in total for
   float32 (fit error 3e-9), degree 11 for float64 (4e-18), Horner;
5. ``(1 + s) 2^n = fma(s, 2^n1, 2^n1) 2^n2`` with ``n1 = n >> 1``,
   ``n2 = n - n1`` (integers from the bits of ``t``); each ``2^k`` is built
   from its exponent bits, ``(k + bias) << mantissa_bits`` bit-cast to float,
   and is a normal number; the first product is exact scaling with one
   rounding, the second is exact unless the result is denormal, where it
   rounds once more, as the exact product would;
6. specials: ``exp(nan) = nan`` (the clamp keeps NaN and arithmetic
   propagates it), ``exp(+inf) = inf`` and ``exp(-inf) = 0`` (clamped, then
   overflow/underflow), ``exp(+-0) = 1`` exactly (``n = 0``, ``s = +-0``).

The log: ``x = m 2^k`` with ``m`` in ``[sqrt(1/2), sqrt(2))`` from the bits
(denormals scaled first), ``f = m - 1``, ``s = f / (2 + f)`` and fdlibm's
``log x = k ln2_hi + (f - (f^2/2 - (s (f^2/2 + R(s^2)) + k ln2_lo)))`` with
our own minimax ``R``; the special cases are selects at the end.

Accuracy (``tests/test_vmath.py``): at most 1 ulp from the correctly rounded
result, checked for every float32 in the range once offline, and on dense
sweeps, edge values and random inputs in the tests.

Fastmath of the caller.  ``exp32``/``exp64`` are ``inline="always"``: Numba
inlines them into the calling kernel, whose ``fastmath`` flags then apply to
their arithmetic.  The steps that must not be regrouped (clamp, rounding,
Cody-Waite reduction, scaling) are emitted by the small ``@intrinsic``
helpers below with a flag of their own, which Numba's fastmath pass leaves
alone; only the polynomial takes the caller's flags.  Results stay within the
tested bounds under any subset of ``{"reassoc", "contract", "nsz", "arcp",
"afn"}``; ``nnan``/``ninf`` (so also ``fastmath=True``) make NaN and inf
inputs undefined, as for every other NaN/inf check.

Use from another kernel; the argument's type picks exp32 or exp64::

    from .vmath import vexp

    @njit(cache=True, error_model="numpy")   # no exception branch for 1/0
    def sigmoid_forward(x):
        ...
            of[i] = one / (one + vexp(-xf[i]))
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

# ---------------------------------------------------------------------------
# LLVM building blocks.  Their float instructions carry the flag "contract"
# (a*b + c may become one FMA): an instruction that already has a flag is left
# alone by Numba's fastmath pass, so a caller's "reassoc" cannot regroup them.

_OWN_FLAGS = ("contract",)


def _is_float(ty):
    return isinstance(ty, types.Float) and ty.bitwidth in (32, 64)


@intrinsic
def _clamp(typingctx, x, lo, hi):
    """``min(max(x, lo), hi)`` that returns NaN for NaN (x86: one vmaxps, one vminps)."""
    if not (_is_float(x) and x == lo == hi):
        return None

    def codegen(context, builder, sig, args):
        x, lo, hi = args
        x = builder.select(builder.fcmp_ordered("<", x, lo, flags=_OWN_FLAGS), lo, x)
        return builder.select(builder.fcmp_ordered(">", x, hi, flags=_OWN_FLAGS), hi, x)

    return x(x, lo, hi), codegen


@intrinsic
def _mul_add(typingctx, a, b, c):
    """``a * b + c`` (one FMA where the CPU has it), never reassociated."""
    if not (_is_float(a) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        a, b, c = args
        return builder.fadd(builder.fmul(a, b, flags=_OWN_FLAGS), c, flags=_OWN_FLAGS)

    return a(a, b, c), codegen


@intrinsic
def _sub(typingctx, a, b):
    """``a - b``, never reassociated (``(t + c) - c`` must not fold to ``t``)."""
    if not (_is_float(a) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fsub(args[0], args[1], flags=_OWN_FLAGS)

    return a(a, b), codegen


@intrinsic
def _ldexp1p(typingctx, s, t, shift):
    """``(1 + s) * 2**n`` where ``t = shift + n`` holds the integer ``n`` in its low mantissa bits.

    ``n = bits(t) - bits(shift)``; with ``n1 = n >> 1`` and ``n2 = n - n1`` the
    result is ``fma(s, 2^n1, 2^n1) * 2^n2``, each ``2^k`` built from its exponent
    bits, ``(k + bias) << mantissa_bits``.  Both powers are normal numbers for
    ``|n| < 2 * max_exponent``, so the result overflows to inf, underflows to 0
    and rounds denormals as the exact product would.
    """
    if not (_is_float(s) and s == t == shift):
        return None

    def codegen(context, builder, sig, args):
        s, t, shift = args
        fty = s.type
        single = isinstance(fty, ir.FloatType)
        ity = ir.IntType(32 if single else 64)
        mantissa_bits, bias = (23, 127) if single else (52, 1023)
        n = builder.sub(builder.bitcast(t, ity), builder.bitcast(shift, ity))
        n1 = builder.ashr(n, ir.Constant(ity, 1))
        n2 = builder.sub(n, n1)

        def pow2(k):
            biased = builder.add(k, ir.Constant(ity, bias))
            return builder.bitcast(builder.shl(biased, ir.Constant(ity, mantissa_bits)), fty)

        p1 = pow2(n1)
        y = builder.fadd(builder.fmul(s, p1, flags=_OWN_FLAGS), p1, flags=_OWN_FLAGS)
        return builder.fmul(y, pow2(n2), flags=_OWN_FLAGS)

    return s(s, t, shift), codegen


@intrinsic
def _div(typingctx, a, b):
    """``a / b`` as one IEEE division: no zero-division check, whatever the caller's error_model."""
    if not (_is_float(a) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fdiv(args[0], args[1], flags=_OWN_FLAGS)

    return a(a, b), codegen


@intrinsic
def _split_sqrt2(typingctx, x):
    """``(m, k)`` with ``x = m * 2**k``, ``m`` in ``[sqrt(1/2), sqrt(2))``, for finite ``x > 0``.

    Denormal ``x`` is first scaled into the normal range (``2**25`` or ``2**54``).
    Adding ``bits(1) - bits(sqrt(1/2))`` to the bits carries into the exponent
    exactly when the mantissa is at least ``sqrt(2)/2``'s; the mantissa field
    plus ``bits(sqrt(1/2))`` is then ``m``.  ``k`` comes back as a float of x's
    type (it goes through int32, which AVX2 converts in SIMD).  Other inputs
    give some finite pair, which :func:`log32`/:func:`log64` replace.
    """
    if not _is_float(x):
        return None

    def codegen(context, builder, sig, args):
        (x,) = args
        fty = x.type
        single = isinstance(fty, ir.FloatType)
        if single:
            ity, mantissa_bits, bias, scale_log2 = ir.IntType(32), 23, 127, 25
            tiny, one_bits, sqrt_half_bits = np.finfo(np.float32).tiny, 0x3F800000, 0x3F3504F3
        else:
            ity, mantissa_bits, bias, scale_log2 = ir.IntType(64), 52, 1023, 54
            tiny, one_bits, sqrt_half_bits = np.finfo(np.float64).tiny, 0x3FF0000000000000, 0x3FE6A09E667F3BCD
        i32 = ir.IntType(32)
        denormal = builder.fcmp_ordered("<", x, ir.Constant(fty, float(tiny)), flags=_OWN_FLAGS)
        scaled = builder.fmul(x, ir.Constant(fty, float(2.0 ** scale_log2)), flags=_OWN_FLAGS)
        bits = builder.bitcast(builder.select(denormal, scaled, x), ity)
        bits = builder.add(bits, ir.Constant(ity, one_bits - sqrt_half_bits))
        k = builder.sub(builder.ashr(bits, ir.Constant(ity, mantissa_bits)), ir.Constant(ity, bias))
        if not single:
            k = builder.trunc(k, i32)
        k = builder.sub(k, builder.select(denormal, ir.Constant(i32, scale_log2), ir.Constant(i32, 0)))
        mantissa = builder.and_(bits, ir.Constant(ity, (1 << mantissa_bits) - 1))
        m = builder.bitcast(builder.add(mantissa, ir.Constant(ity, sqrt_half_bits)), fty)
        return context.make_tuple(builder, sig.return_type, [m, builder.sitofp(k, fty)])

    return types.UniTuple(x, 2)(x), codegen


@intrinsic
def vmax(typingctx, a, b):
    """``np.maximum(a, b)`` for two floats of one type: NaN if either is NaN, and ``-0 < +0``.

    It is ``llvm.maximum``, which LLVM vectorises also as a reduction
    (``m = vmax(m, x[k])``), where a compare-and-select max stays scalar
    unless ``nnan`` is allowed: the row maximum of a softmax needs this.
    """
    if not (_is_float(a) and a == b):
        return None

    def codegen(context, builder, sig, args):
        fty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.maximum", [fty], ir.FunctionType(fty, [fty, fty]))
        return builder.call(fn, args)

    return a(a, b), codegen


@intrinsic
def prefer_wide_vectors(typingctx):
    """Ask LLVM to vectorise the calling function with 512-bit vectors where the CPU has them.

    LLVM defaults to 256-bit vectors on AVX-512 CPUs (older ones lower their
    clock on 512-bit code).  For a compute-bound loop such as ``exp`` on a
    recent core, zmm registers are about 1.5x faster (``python -m bench.vmath``).
    Call it once at the top of an ``@njit`` kernel; it affects only that
    function (the LLVM function attribute ``prefer-vector-width``) and is a
    no-op on CPUs without AVX-512.
    """
    def codegen(context, builder, sig, args):
        attrs = builder.function.attributes
        # llvmlite only accepts attributes from a fixed list, so the string
        # attribute goes in through the underlying set; if that ever fails,
        # the function simply keeps LLVM's default width.
        try:
            set.add(attrs, '"prefer-vector-width"="512"')
        except TypeError:
            pass
        return context.get_dummy_value()

    return types.none(), codegen


# ---------------------------------------------------------------------------
# Constants.  Module-level NumPy scalars are frozen into the compiled code with
# their own dtype, so exp32 never sees a float64 constant.

_f32 = np.float32
_E32_X_MIN = _f32(-110.0)   # e^x < 2**-150 (rounds to 0) below -103.97
_E32_X_MAX = _f32(90.0)     # e^x > FLT_MAX (inf) above 88.72
_E32_LOG2E = _f32(1.44269504088896340736)
_E32_SHIFT = _f32(1.5 * 2**23)   # t = x log2(e) + SHIFT rounds to an integer: t = SHIFT + n
_E32_MINUS_LN2_HI = _f32(-0.693145751953125)           # 0x3f317200: 15 significant bits
_E32_MINUS_LN2_LO = _f32(-1.42860682030941723212e-06)  # -(ln2 - LN2_HI)
# q(r) ~ (e^r - 1 - r) / r^2, minimax for the relative error of e^r on |r| <= ln2/2
_E32_Q0 = _f32(0.4999999403953552)
_E32_Q1 = _f32(0.1666652113199234)
_E32_Q2 = _f32(0.04166838526725769)
_E32_Q3 = _f32(0.008368692360818386)
_E32_Q4 = _f32(0.0013814650010317564)

_f64 = np.float64
_E64_X_MIN = _f64(-760.0)   # e^x < 2**-1075 (rounds to 0) below -745.13
_E64_X_MAX = _f64(720.0)    # e^x > DBL_MAX (inf) above 709.78
_E64_LOG2E = _f64(1.4426950408889634)
_E64_SHIFT = _f64(1.5 * 2**52)
_E64_MINUS_LN2_HI = _f64(-6.93147180369123816490e-01)  # 0x3fe62e42fee00000: 32 significant bits
_E64_MINUS_LN2_LO = _f64(-1.90821492927058770002e-10)  # -(ln2 - LN2_HI)
_E64_Q0 = _f64(0.5000000000000011)
_E64_Q1 = _f64(0.16666666666666413)
_E64_Q2 = _f64(0.04166666666653054)
_E64_Q3 = _f64(0.008333333333494012)
_E64_Q4 = _f64(0.0013888888943516691)
_E64_Q5 = _f64(0.00019841269507280942)
_E64_Q6 = _f64(2.48014932293837e-05)
_E64_Q7 = _f64(2.75575859987684e-06)
_E64_Q8 = _f64(2.763019775837467e-07)
_E64_Q9 = _f64(2.5000098725858614e-08)


@njit(cache=True, inline="always", fastmath={"contract"})
def exp32(x):
    """``e**x`` computed in float32 only, <= 1 ulp; a float32 scalar -> float32."""
    x = np.float32(x)
    xc = _clamp(x, _E32_X_MIN, _E32_X_MAX)
    t = _mul_add(xc, _E32_LOG2E, _E32_SHIFT)   # SHIFT + n, n = rint(x log2 e)
    n = _sub(t, _E32_SHIFT)
    r = _mul_add(n, _E32_MINUS_LN2_HI, xc)     # exact
    r = _mul_add(n, _E32_MINUS_LN2_LO, r)      # |r| <= ln2 / 2
    q = _E32_Q4 * r + _E32_Q3
    q = q * r + _E32_Q2
    q = q * r + _E32_Q1
    q = q * r + _E32_Q0
    return _ldexp1p(r + (r * r) * q, t, _E32_SHIFT)


@njit(cache=True, inline="always", fastmath={"contract"})
def exp64(x):
    """``e**x`` in float64, <= 1 ulp; a float64 scalar -> float64."""
    x = np.float64(x)
    xc = _clamp(x, _E64_X_MIN, _E64_X_MAX)
    t = _mul_add(xc, _E64_LOG2E, _E64_SHIFT)
    n = _sub(t, _E64_SHIFT)
    r = _mul_add(n, _E64_MINUS_LN2_HI, xc)
    r = _mul_add(n, _E64_MINUS_LN2_LO, r)
    q = _E64_Q9 * r + _E64_Q8
    q = q * r + _E64_Q7
    q = q * r + _E64_Q6
    q = q * r + _E64_Q5
    q = q * r + _E64_Q4
    q = q * r + _E64_Q3
    q = q * r + _E64_Q2
    q = q * r + _E64_Q1
    q = q * r + _E64_Q0
    return _ldexp1p(r + (r * r) * q, t, _E64_SHIFT)


# log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f / (2 + f): minimax R(z) = z P(z)
# for the absolute error on z <= ((sqrt2 - 1) / (sqrt2 + 1))^2 (Remez): degree 3 in z
# for float32 (fit error 2e-9), 7 for float64 (3e-18).
_L32_P0 = _f32(0.6666677594184875)
_L32_P1 = _f32(0.3997754156589508)
_L32_P2 = _f32(0.29871729016304016)
_L32_LN2_HI = _f32(0.693145751953125)            # as for exp: k * LN2_HI is exact
_L32_LN2_LO = _f32(1.42860682030941723212e-06)
_L32_HALF = _f32(0.5)
_L32_ONE = _f32(1.0)
_L32_TWO = _f32(2.0)
_L32_ZERO = _f32(0.0)
_L32_INF = _f32(np.inf)
_L32_MINUS_INF = _f32(-np.inf)
_L32_NAN = _f32(np.nan)

_L64_P0 = _f64(0.6666666666666734)
_L64_P1 = _f64(0.39999999999414676)
_L64_P2 = _f64(0.28571428742388205)
_L64_P3 = _f64(0.22222198573132546)
_L64_P4 = _f64(0.18183564328532595)
_L64_P5 = _f64(0.15314050495786896)
_L64_P6 = _f64(0.1479595022294881)
_L64_LN2_HI = _f64(6.93147180369123816490e-01)
_L64_LN2_LO = _f64(1.90821492927058770002e-10)
_L64_HALF = _f64(0.5)
_L64_ONE = _f64(1.0)
_L64_TWO = _f64(2.0)
_L64_ZERO = _f64(0.0)
_L64_INF = _f64(np.inf)
_L64_MINUS_INF = _f64(-np.inf)
_L64_NAN = _f64(np.nan)


@njit(cache=True, inline="always", fastmath={"contract"})
def log32(x):
    """Natural log computed in float32 only; a float32 scalar -> float32.

    ``x = m 2^k`` with ``m`` in ``[sqrt(1/2), sqrt(2))``, ``f = m - 1``, then
    ``log x = k ln2_hi + (f - (f^2/2 - (s (f^2/2 + R) + k ln2_lo)))`` (fdlibm's
    arrangement, with its own minimax ``R``).  ``log(0) = -inf``,
    ``log(x < 0) = nan``, ``log(inf) = inf``, ``log(nan) = nan``, ``log(1) = 0``.
    """
    x = np.float32(x)
    m, k = _split_sqrt2(x)
    f = m - _L32_ONE                       # exact
    s = _div(f, _L32_TWO + f)
    z = s * s
    r = z * (_L32_P0 + z * (_L32_P1 + z * _L32_P2))
    hfsq = _L32_HALF * f * f
    small = _mul_add(s, hfsq + r, k * _L32_LN2_LO)
    y = _mul_add(k, _L32_LN2_HI, _sub(f, _sub(hfsq, small)))
    y = y if x < _L32_INF else x           # +inf and nan give themselves
    return y if x > _L32_ZERO else (_L32_MINUS_INF if x == _L32_ZERO else _L32_NAN)


@njit(cache=True, inline="always", fastmath={"contract"})
def log64(x):
    """Natural log in float64, the scheme of :func:`log32`; a float64 scalar -> float64."""
    x = np.float64(x)
    m, k = _split_sqrt2(x)
    f = m - _L64_ONE
    s = _div(f, _L64_TWO + f)
    z = s * s
    w = z * z
    # Estrin-like split as in fdlibm: odd and even powers of z
    r = z * (_L64_P0 + w * (_L64_P2 + w * (_L64_P4 + w * _L64_P6))) + w * (_L64_P1 + w * (_L64_P3 + w * _L64_P5))
    hfsq = _L64_HALF * f * f
    small = _mul_add(s, hfsq + r, k * _L64_LN2_LO)
    y = _mul_add(k, _L64_LN2_HI, _sub(f, _sub(hfsq, small)))
    y = y if x < _L64_INF else x
    return y if x > _L64_ZERO else (_L64_MINUS_INF if x == _L64_ZERO else _L64_NAN)


def vexp(x):
    """``e**x`` of a float32 or float64 scalar in its own precision (:func:`exp32`/:func:`exp64`).

    In ``@njit`` code the type of ``x`` selects the function at compile time
    and its body is inlined; from Python it dispatches on ``np.asarray(x).dtype``
    and returns a NumPy scalar of that dtype.
    """
    if np.asarray(x).dtype == np.float32:
        return np.float32(exp32(x))
    return np.float64(exp64(x))


@overload(vexp, inline="always")
def _vexp_overload(x):
    if x == types.float32:
        return lambda x: exp32(x)
    if x == types.float64:
        return lambda x: exp64(x)
    return None


def vlog(x):
    """Natural log of a float32 or float64 scalar in its own precision (:func:`log32`/:func:`log64`).

    Dispatches like :func:`vexp`.
    """
    if np.asarray(x).dtype == np.float32:
        return np.float32(log32(x))
    return np.float64(log64(x))


@overload(vlog, inline="always")
def _vlog_overload(x):
    if x == types.float32:
        return lambda x: log32(x)
    if x == types.float64:
        return lambda x: log64(x)
    return None


@njit(cache=True, fastmath={"contract"})
def _exp_flat(src, dst):
    """``dst[i] = e**src[i]`` over two C-contiguous 1-D arrays of one dtype."""
    prefer_wide_vectors()
    for i in range(src.shape[0]):
        dst[i] = vexp(src[i])


@njit(cache=True)
def exp(x):
    """Elementwise ``e**x``, NumPy twin ``np.exp``.

    x : any shape, float32 or float64, any strides -> same shape and dtype.
    F-ordered input gives F-ordered output, like ``np.exp``; other
    non-contiguous input is first copied to C order.
    """
    if x.flags.f_contiguous and not x.flags.c_contiguous:
        out_t = np.empty(x.T.shape, x.dtype)
        # the transpose of an F-ordered array is C-ordered: no copy here
        _exp_flat(np.ascontiguousarray(x.T).ravel(), out_t.ravel())
        return out_t.T
    out = np.empty(x.shape, x.dtype)
    _exp_flat(np.ascontiguousarray(x).ravel(), out.ravel())
    return out


@njit(cache=True, fastmath={"contract"})
def _log_flat(src, dst):
    """``dst[i] = log(src[i])`` over two C-contiguous 1-D arrays of one dtype."""
    prefer_wide_vectors()
    for i in range(src.shape[0]):
        dst[i] = vlog(src[i])


@njit(cache=True)
def log(x):
    """Elementwise natural log, NumPy twin ``np.log``; layouts as :func:`exp`.

    x : any shape, float32 or float64, any strides -> same shape and dtype.
    """
    if x.flags.f_contiguous and not x.flags.c_contiguous:
        out_t = np.empty(x.T.shape, x.dtype)
        _log_flat(np.ascontiguousarray(x.T).ravel(), out_t.ravel())
        return out_t.T
    out = np.empty(x.shape, x.dtype)
    _log_flat(np.ascontiguousarray(x).ravel(), out.ravel())
    return out
