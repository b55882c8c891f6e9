"""Activations in JAX, mirroring reference/activations.py name for name."""

import jax
import jax.numpy as jnp


def sigmoid_forward(z):
    """a = 1 / (1 + exp(-z))"""
    return 1.0 / (1.0 + jnp.exp(-z))


def sigmoid_backward(da, z, a):
    """f'(z) = a (1 - a)"""
    return da * a * (1.0 - a)


def tanh_forward(z):
    """a = tanh(z)"""
    return jnp.tanh(z)


def tanh_backward(da, z, a):
    """f'(z) = 1 - a^2"""
    return da * (1.0 - a * a)


def relu_forward(z):
    """a = max(z, 0). JAX quirk: jax.nn.relu, not jnp.maximum(z, 0), whose autodiff gives 1/2 at z = 0."""
    return jax.nn.relu(z)


def relu_backward(da, z, a):
    """f'(z) = 1 if z > 0 else 0; 0 at the kink, as jax.nn.relu's custom derivative."""
    return da * (z > 0)


def identity_forward(z):
    """a = z"""
    return z


def identity_backward(da, z, a):
    """f'(z) = 1"""
    return da


def softmax_forward(z):
    """a_k = exp(z_k - max z) / sum_j exp(z_j - max z), row by row."""
    e = jnp.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(da, z, a):
    """dz = a * (da - sum_k da_k a_k), row by row."""
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
