"""The one tolerance table. docs/precision.md ("Tolerances") says where each figure comes from.

float64, one op (crosscheck/verdict/ops.py): no fixed figure. A backend's op, its autodiff and the framework's own op
must stay within LOW["float64"].factor times the float64 reference's own deviation from its twin in extended precision
(np.longdouble, 64 bits of significand on x86), plus a floor of LOW["float64"].floor_ulps ulps at the quantity's
scale: the math library's ulps on exp, sin, cos and erf, scaled by the op's condition, are what the twin measures.
Where longdouble is no wider than float64 (Arm macOS, Windows), the twin is the reference on its inputs nudged by an
ulp (WIDE below). float64 problems (FLOAT64 below): fixed tolerances, elementwise |actual - expected| <= atol + rtol
|expected|, being replaced rule by rule (issue 40).
float32, bfloat16, float16: no fixed figure. A backend's deviation from the float64
reference must stay within LOW[dtype].factor times the NumPy reference's own deviation
in that dtype, measured in the same test on the same values, plus a floor of
LOW[dtype].floor_ulps ulps of the dtype at the quantity's scale (for when the NumPy
result happens to be nearly exact).
"""

from dataclasses import dataclass

from crosscheck.common import dtypes


@dataclass(frozen=True)
class Tol:
    rtol: float
    atol: float


FLOAT64 = {
    # One forward pass or one gradient: a handful of roundings, summation order differs between BLAS libraries.
    "forward": Tol(rtol=1e-13, atol=1e-15),
    "gradient": Tol(rtol=1e-11, atol=1e-14),
    # Trajectories: round-off of every step carries into the next; measured ~1e-14 after 180,000 XOR epochs.
    "trajectory": Tol(rtol=1e-10, atol=1e-12),
    # Reference against central differences (eps 1e-6): truncation O(eps^2) plus round-off O(1e-16 / eps).
    "finite_difference": Tol(rtol=1e-6, atol=1e-8),
}

@dataclass(frozen=True)
class Low:
    factor: float  # times the NumPy reference's own deviation in the dtype
    floor_ulps: float  # plus this many ulps of the dtype (crosscheck.common.dtypes.eps) at the quantity's scale


LOW = {
    # One float64 op against its extended-precision twin: the same rule as float32's (ops.py, wide_twin).
    "float64": Low(factor=4.0, floor_ulps=8),
    "float32": Low(factor=4.0, floor_ulps=8),
    # The 16-bit floats, op by op (tests/test_ops.py); docs/precision.md ("Low precision") has the measured figures.
    "bfloat16": Low(factor=4.0, floor_ulps=2),
    "float16": Low(factor=4.0, floor_ulps=2),
}


# A hand-worked low-precision probe (crosscheck/verdict/probes.py: check_low_precision_rule) holds a backend to the
# rule's exact values within this many ulps of the dtype: XLA divides by a broadcast value (a softmax by its row sum)
# through the reciprocal, rounded, so 26% of float16 and float32 quotients land an ulp off (docs/precision.md, "Low
# precision"); a broken rule is off by far more (a stalled 16-bit sum by a factor of ten).
PROBE_ULPS = 1
# The float32 rule probe: a float32 sum of n terms lies within n ulps of its exact value, whatever the order.
SUM_ULPS_PER_TERM = 1.0
# Where a low-precision run first parts (checks.first_steps): a leaf after one or two steps, within this many of the
# dtype's ulps of the reference's (of 1, below 1). Only locates a failure already found; it decides no verdict.
FIRST_STEP_ULPS = 16


def wider():
    """np.longdouble where it carries more significand than float64 (x86's 80-bit extended, aarch64 Linux's quad),
    else None: the twin is then the reference on inputs nudged by an ulp (crosscheck/verdict/ops.py)."""
    import numpy as np

    return np.longdouble if np.finfo(np.longdouble).eps < np.finfo(np.float64).eps else None


def probe(dtype):
    """The tolerance of a hand-worked low-precision probe in dtype: PROBE_ULPS ulps, relative."""
    return Tol(rtol=PROBE_ULPS * dtypes.eps(dtype), atol=0.0)


def float64(kind):
    return FLOAT64[kind]


def low_bound(dtype, ref_deviation, scale):
    """Largest deviation from the float64 reference allowed of a backend computing in dtype (a name in LOW), whose
    NumPy reference in dtype deviates by ref_deviation."""
    rule = LOW[dtype]
    return rule.factor * ref_deviation + rule.floor_ulps * dtypes.eps(dtype) * max(scale, 1.0)
