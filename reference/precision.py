"""Sums and means as the low-precision rule has them (common/dtypes.py): accumulated in float32 for a 16-bit float
and rounded once to it, as PyTorch's and JAX's reductions do; as NumPy has them otherwise.

NumPy's own sums do not: bfloat16 ones (ml_dtypes') accumulate in bfloat16, and float16 ones along a strided axis
(axis 0 of a row-major array) in float16: 4096 ones sum to 256 and to 2048. Its float16 means and contiguous float16
sums do use float32.
"""

import numpy as np

# x.dtype.itemsize, not a dtype's name: XOR's backward sums twice a step, and reading a name costs a microsecond each


def total(x, axis=None, keepdims=False):
    """sum x over axis"""
    if x.dtype.itemsize != 2:  # float64, float32
        return x.sum(axis=axis, keepdims=keepdims)
    return x.sum(axis=axis, keepdims=keepdims, dtype=np.float32).astype(x.dtype)


def average(x, axis=None, keepdims=False):
    """mean x over axis"""
    if x.dtype.itemsize != 2:
        return x.mean(axis=axis, keepdims=keepdims)
    return x.mean(axis=axis, keepdims=keepdims, dtype=np.float32).astype(x.dtype)
