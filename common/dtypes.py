"""The dtypes a problem or an op can be computed in, by name: NumPy's own, and bfloat16 through ml_dtypes.

float64 is the reference's own precision, compared with fixed tolerances. The others are bounded by the NumPy
reference's own rounding in them (crosscheck/verdict/tolerances.py): float32, and the 16-bit floats bfloat16 (8 bits of
significand, float32's range) and float16 (11 bits, largest finite 65504).

The rule every backend follows in a 16-bit dtype (docs/precision.md, "Low precision"): arrays are stored in it and each
op's result is rounded to it; products (matrix products) and reductions (sums, means) accumulate in float32 and are
rounded once. NumPy's matrix products do (np.dot), but its sums not always: ml_dtypes' bfloat16 ones accumulate in
bfloat16, and float16 ones along a strided axis (axis 0 of a row-major array: a bias gradient) in float16, so the
reference spells its reductions with crosscheck.reference.precision's total and average.
"""

import numpy as np

WIDE = ("float64", "float32")
HALF = ("bfloat16", "float16")  # the 16-bit floats
ALL = WIDE + HALF


def numpy_dtype(name):
    """The NumPy dtype called name; bfloat16 is ml_dtypes' (JAX's own), imported when first asked for."""
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise ValueError("dtype bfloat16 needs ml_dtypes (pip install 'backprop-crosscheck[low-precision]', "
                             "or install JAX, which brings it)") from None
        return np.dtype(ml_dtypes.bfloat16)
    if name not in ALL:
        raise ValueError(f"unknown dtype {name!r}; choose one of {ALL}")
    return np.dtype(name)


def available(name):
    """The NumPy dtype called name, or None where it needs ml_dtypes (bfloat16) and that is not installed."""
    try:
        return numpy_dtype(name)
    except ValueError:
        if name in ALL:
            return None
        raise


def name_of(dtype):
    """The name of a NumPy dtype among ALL ("bfloat16" for ml_dtypes'), or None."""
    name = np.dtype(dtype).name
    return name if name in ALL else None


def eps(name):
    """The spacing of the dtype's floats just above 1: float32 2^-23, bfloat16 2^-7, float16 2^-10."""
    return {"float64": 2.0 ** -52, "float32": 2.0 ** -23, "bfloat16": 2.0 ** -7, "float16": 2.0 ** -10}[name]
