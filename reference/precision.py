"""The low-precision rule (common/dtypes.py) in NumPy: sums and means accumulated in float32 for a 16-bit float and
rounded once to it, as PyTorch's and JAX's reductions do; and bfloat16 arrays whose every op's result is bfloat16.

NumPy's own sums do not follow the rule: bfloat16 ones (ml_dtypes') accumulate in bfloat16, and float16 ones along a
strided axis (axis 0 of a row-major array) in float16: 4096 ones sum to 256 and to 2048. Its float16 means and
contiguous float16 sums do use float32.

Nor do ml_dtypes' bfloat16 arrays keep their dtype: combined with a Python float (1.0 + b, 0.5 * b) or in a matrix
product they give float32 (NumPy reads 1.0 as a float16 value, and bfloat16 with float16 promotes to float32). The
reference's bfloat16 arrays are therefore BFloat16 arrays, which round every op's floating result to bfloat16: an op
computed in float32 or float64 and rounded once gives the correctly rounded bfloat16 result for + - * / and sqrt
(float32 holds more than twice bfloat16's 8 bits, so the double rounding is innocuous), as frameworks' kernels do.
"""

import numpy as np

from crosscheck.common import dtypes

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


class BFloat16(np.ndarray):
    """A bfloat16 array whose every op (ufunc, method or NumPy function) gives bfloat16 where it gives floats.

    Only the reference's bfloat16 problems use it (reference.DRIVER's to_native); reductions keep NumPy's own
    accumulation (a bfloat16 .sum() accumulates in bfloat16), so that total() and average() above still matter.
    """

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*(_plain(x) for x in inputs), **kwargs)
        return out[0] if out is not None and len(out) == 1 else _rounded(result)

    def __array_function__(self, func, types, args, kwargs):
        return _rounded(func(*_plain(args), **_plain(kwargs)))


def _plain(x):
    """x with every BFloat16 in it seen as a plain ndarray (through tuples, lists and dicts)."""
    if isinstance(x, BFloat16):
        return x.view(np.ndarray)
    if isinstance(x, (tuple, list)):
        return type(x)(_plain(v) for v in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def _rounded(x):
    """Every floating array or scalar in x as a BFloat16 array (a scalar as 0-d), rounded once; the rest as it is."""
    if isinstance(x, tuple):
        return tuple(_rounded(v) for v in x)
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    if isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind in "fV":  # ml_dtypes' bfloat16 is of kind V
        return np.asarray(x).astype(BFLOAT16, copy=False).view(BFloat16)
    return x


def bfloat16(x):
    """x (a NumPy array in bfloat16) as a BFloat16 array; any other array as it is."""
    return x.view(BFloat16) if x.dtype == BFLOAT16 and not isinstance(x, BFloat16) else x


def cast(x, name):
    """x rounded to the dtype called name, a BFloat16 array for bfloat16; ids (integers) as they are."""
    if x.dtype.kind not in "fV":
        return x
    return bfloat16(plain(x).astype(dtypes.numpy_dtype(name)))


def plain(x):
    """A BFloat16 array as the plain ndarray it views; any other array as it is."""
    return x.view(np.ndarray) if isinstance(x, BFloat16) else x


BFLOAT16 = dtypes.available("bfloat16")  # None without ml_dtypes: then there is no bfloat16 problem to compute
