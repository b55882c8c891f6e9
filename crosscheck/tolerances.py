"""The one tolerance table. README.md ("Tolerances") says where each figure comes from.

float64: fixed tolerances, elementwise |actual - expected| <= atol + rtol |expected|.
float32: no fixed figure. A backend's float32 deviation from the float64 reference
must stay within FLOAT32_FACTOR times the NumPy float32 reference's own deviation
from it, measured in the same test, plus a floor of FLOAT32_FLOOR_ULPS float32 ulps
of the quantity's scale (for when the NumPy float32 result happens to be nearly exact).
"""

from dataclasses import dataclass

import numpy as np


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

FLOAT32_FACTOR = 4.0
FLOAT32_FLOOR_ULPS = 8


def float64(kind):
    return FLOAT64[kind]


def float32_bound(ref32_deviation, scale):
    """Largest deviation from the float64 reference allowed of a float32 backend."""
    return FLOAT32_FACTOR * ref32_deviation + FLOAT32_FLOOR_ULPS * float(np.finfo(np.float32).eps) * max(scale, 1.0)
