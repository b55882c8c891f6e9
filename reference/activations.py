"""Activations a = f(z), each with its backward pass dz = da * f'(z) right beneath it.

z and a are (N, K): one row per sample. Every backward takes (da, z, a) so that a
derivative can be written from whichever of z or a the math reads best with.

Constants are written as floats (1.0): NumPy turns a Python float scalar into an operand
faster than an int, which XOR's tiny arrays feel (about 5% of its step; benchmarks/). The
values, and so every bit of the results, are the same.
"""

import numpy as np


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
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(da, z, a):
    """dz = a * (da - sum_k da_k a_k): the Jacobian-vector product, row by row."""
    return a * (da - (da * a).sum(axis=1, keepdims=True))


def activation_forward(name, z):
    return FORWARD[name](z)


def activation_backward(name, da, z, a):
    return BACKWARD[name](da, z, a)


FORWARD = {
    "sigmoid": sigmoid_forward,
    "tanh": tanh_forward,
    "relu": relu_forward,
    "identity": identity_forward,
    "softmax": softmax_forward,
}
BACKWARD = {
    "sigmoid": sigmoid_backward,
    "tanh": tanh_backward,
    "relu": relu_backward,
    "identity": identity_backward,
    "softmax": softmax_backward,
}
