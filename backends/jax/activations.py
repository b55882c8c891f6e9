"""Activations in JAX, mirroring reference/activations.py name for name."""

import math

import jax
import jax.numpy as jnp
import jax.scipy.special

from crosscheck.common import registry, walk
from crosscheck.reference.activations import ALPHA, GELU_C, GELU_K, NEGATIVE_SLOPE  # one definition: the reference's


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
    e = jnp.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(da, z, a):
    """dz = a * (da - sum_k da_k a_k), row by row."""
    return a * (da - (da * a).sum(axis=-1, keepdims=True))


def leaky_relu_forward(z):
    """a = z if z > 0 else s z, s = NEGATIVE_SLOPE"""
    return jnp.where(z > 0, z, NEGATIVE_SLOPE * z)


def leaky_relu_backward(da, z, a):
    """f'(z) = 1 if z > 0 else s; s at the kink, as torch (jax.nn.leaky_relu's autodiff takes 1)."""
    return jnp.where(z > 0, da, NEGATIVE_SLOPE * da)


def elu_forward(z):
    """a = z if z > 0 else alpha (exp(z) - 1), written with expm1"""
    return jnp.where(z > 0, z, ALPHA * jnp.expm1(jnp.where(z > 0, 0.0, z)))


def elu_backward(da, z, a):
    """f'(z) = 1 if z > 0 else alpha exp(z) = a + alpha"""
    return jnp.where(z > 0, da, da * (a + ALPHA))


def softplus_forward(z):
    """a = log(1 + exp(z)), as logaddexp(0, z)"""
    return jnp.logaddexp(0.0, z)


def softplus_backward(da, z, a):
    """f'(z) = sigmoid(z) = 1 - exp(-a)"""
    return da * -jnp.expm1(-a)


def gelu_forward(z):
    """a = z Phi(z) = z (1 + erf(z / sqrt 2)) / 2"""
    return 0.5 * z * (1.0 + jax.scipy.special.erf(z / math.sqrt(2.0)))


def gelu_backward(da, z, a):
    """f'(z) = Phi(z) + z phi(z)"""
    phi = jnp.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return da * (0.5 * (1.0 + jax.scipy.special.erf(z / math.sqrt(2.0))) + z * phi)


def gelu_tanh_forward(z):
    """a = z (1 + tanh(u)) / 2, u = sqrt(2/pi) (z + 0.044715 z^3)"""
    u = GELU_C * (z + GELU_K * z * z * z)
    return 0.5 * z * (1.0 + jnp.tanh(u))


def gelu_tanh_backward(da, z, a):
    """f'(z) = (1 + t) / 2 + z (1 - t^2) u'(z) / 2"""
    t = jnp.tanh(GELU_C * (z + GELU_K * z * z * z))
    return da * (0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_C * (1.0 + 3 * GELU_K * z * z))


def silu_forward(z):
    """a = z sigmoid(z)"""
    return z * sigmoid_forward(z)


def silu_backward(da, z, a):
    """f'(z) = s (1 + z (1 - s)), s = sigmoid(z)"""
    s = sigmoid_forward(z)
    return da * s * (1.0 + z * (1.0 - s))

def activation_forward(name, z):
    return FORWARD[name](z)


def activation_backward(name, da, z, a):
    return BACKWARD[name](da, z, a)


FORWARD = walk.table(globals(), registry.ACTIVATIONS, "forward")
BACKWARD = walk.table(globals(), registry.ACTIVATIONS, "backward")
