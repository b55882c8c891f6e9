"""Activations a = f(z), each with its backward pass dz = da * f'(z) right beneath it.

z and a are (N, K): one row per sample. Every backward takes (da, z, a) so that a
derivative can be written from whichever of z or a the math reads best with.

Constants are written as floats (1.0): NumPy turns a Python float scalar into an operand
faster than an int, which XOR's tiny arrays feel (about 5% of its step; benchmarks/). The
values, and so every bit of the results, are the same.
"""

import math

import numpy as np

from crosscheck.common import registry, walk

from .precision import total

NEGATIVE_SLOPE = 0.01  # leaky_relu's, torch.nn.functional.leaky_relu's and jax.nn.leaky_relu's default
ALPHA = 1.0  # elu's, as torch.nn.functional.elu's and jax.nn.elu's default
GELU_C = math.sqrt(2 / math.pi)  # the tanh approximation's sqrt(2 / pi) and its cubic coefficient
GELU_K = 0.044715


def sigmoid_forward(z):
    """a = 1 / (1 + exp(-z))"""
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_backward(da, z, a):
    """f'(z) = a (1 - a): from the output a, not from z."""
    return da * a * (1.0 - a)


def tanh_forward(z):
    """a = tanh(z)"""
    return np.tanh(z)


def tanh_backward(da, z, a):
    """f'(z) = 1 - a^2"""
    return da * (1.0 - a * a)


def relu_forward(z):
    """a = max(z, 0)"""
    return np.maximum(z, 0)


def relu_backward(da, z, a):
    """f'(z) = 1 if z > 0 else 0; at the kink z = 0 we take 0, as torch and jax.nn.relu do."""
    return da * (z > 0)


def identity_forward(z):
    """a = z"""
    return z


def identity_backward(da, z, a):
    """f'(z) = 1"""
    return da


def softmax_forward(z):
    """a_k = exp(z_k - max z) / sum_j exp(z_j - max z), row by row."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / total(e, axis=-1, keepdims=True)


def softmax_backward(da, z, a):
    """dz = a * (da - sum_k da_k a_k): the Jacobian-vector product, row by row."""
    return a * (da - total(da * a, axis=-1, keepdims=True))


def leaky_relu_forward(z):
    """a = z if z > 0 else s z, s = NEGATIVE_SLOPE"""
    return np.where(z > 0, z, NEGATIVE_SLOPE * z)


def leaky_relu_backward(da, z, a):
    """f'(z) = 1 if z > 0 else s; at the kink z = 0 we take s, as torch does (jax.nn.leaky_relu's autodiff takes 1)."""
    return np.where(z > 0, da, NEGATIVE_SLOPE * da)


def elu_forward(z):
    """a = z if z > 0 else alpha (exp(z) - 1), written with expm1 (exact near 0); the inner where keeps exp from
    overflowing, and autodiff from a NaN, where z > 0 and the branch is not taken."""
    return np.where(z > 0, z, ALPHA * np.expm1(np.where(z > 0, 0.0, z)))


def elu_backward(da, z, a):
    """f'(z) = 1 if z > 0 else alpha exp(z) = a + alpha"""
    return np.where(z > 0, da, da * (a + ALPHA))


def softplus_forward(z):
    """a = log(1 + exp(z)), as logaddexp(0, z): finite for every z (torch's own softplus returns z above z = 20)"""
    return np.logaddexp(0.0, z)


def softplus_backward(da, z, a):
    """f'(z) = sigmoid(z) = 1 - exp(-a), from the output: no overflow, exact where sigmoid(z) is tiny"""
    return da * -np.expm1(-a)


def gelu_forward(z):
    """a = z Phi(z) = z (1 + erf(z / sqrt 2)) / 2, Phi the standard normal CDF (torch's default gelu, exact).

    NumPy has no erf: _erf applies math.erf element by element (in float64, rounded once to z's dtype)."""
    return 0.5 * z * (1.0 + _erf(z / math.sqrt(2.0)))


def gelu_backward(da, z, a):
    """f'(z) = Phi(z) + z phi(z), phi(z) = exp(-z^2 / 2) / sqrt(2 pi) the standard normal density"""
    phi = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return da * (0.5 * (1.0 + _erf(z / math.sqrt(2.0))) + z * phi)


def gelu_tanh_forward(z):
    """a = z (1 + tanh(u)) / 2, u = sqrt(2/pi) (z + 0.044715 z^3): the tanh approximation (jax.nn.gelu's default)"""
    u = GELU_C * (z + GELU_K * z * z * z)  # z * z * z: NumPy's z ** 3 goes through pow, 200x slower on float32
    return 0.5 * z * (1.0 + np.tanh(u))


def gelu_tanh_backward(da, z, a):
    """f'(z) = (1 + t) / 2 + z (1 - t^2) u'(z) / 2, t = tanh(u), u'(z) = sqrt(2/pi) (1 + 3 0.044715 z^2)"""
    t = np.tanh(GELU_C * (z + GELU_K * z * z * z))
    return da * (0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_C * (1.0 + 3 * GELU_K * z * z))


def silu_forward(z):
    """a = z sigmoid(z) (SiLU, swish: the gate of a SwiGLU MLP, as torch.nn.functional.silu)"""
    return z * sigmoid_forward(z)


def silu_backward(da, z, a):
    """f'(z) = s + z s (1 - s) = s (1 + z (1 - s)), s = sigmoid(z): the product rule (s alone drops z s')"""
    s = sigmoid_forward(z)
    return da * s * (1.0 + z * (1.0 - s))

def _erf(x):
    """The error function, element by element, in x's dtype."""
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


def activation_forward(name, z):
    return FORWARD[name](z)


def activation_backward(name, da, z, a):
    return BACKWARD[name](da, z, a)


FORWARD = walk.table(globals(), registry.ACTIVATIONS, "forward")
BACKWARD = walk.table(globals(), registry.ACTIVATIONS, "backward")
