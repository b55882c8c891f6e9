"""Activations in PyTorch, mirroring reference/activations.py name for name."""

import math

import torch

from crosscheck.common import registry, walk
from crosscheck.reference.activations import ALPHA, GELU_C, GELU_K, NEGATIVE_SLOPE  # one definition: the reference's


def sigmoid_forward(z):
    """a = 1 / (1 + exp(-z))"""
    return torch.sigmoid(z)


def sigmoid_backward(da, z, a):
    """f'(z) = a (1 - a)"""
    return da * a * (1.0 - a)


def tanh_forward(z):
    """a = tanh(z)"""
    return torch.tanh(z)


def tanh_backward(da, z, a):
    """f'(z) = 1 - a^2"""
    return da * (1.0 - a * a)


def relu_forward(z):
    """a = max(z, 0)"""
    return torch.relu(z)


def relu_backward(da, z, a):
    """f'(z) = 1 if z > 0 else 0; 0 at the kink, as torch.relu's own backward."""
    return da * (z > 0)


def identity_forward(z):
    """a = z"""
    return z


def identity_backward(da, z, a):
    """f'(z) = 1"""
    return da


def softmax_forward(z):
    """a_k = exp(z_k - max z) / sum_j exp(z_j - max z), row by row."""
    e = torch.exp(z - z.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)


def softmax_backward(da, z, a):
    """dz = a * (da - sum_k da_k a_k), row by row."""
    return a * (da - (da * a).sum(dim=-1, keepdim=True))


def leaky_relu_forward(z):
    """a = z if z > 0 else s z, s = NEGATIVE_SLOPE"""
    return torch.where(z > 0, z, NEGATIVE_SLOPE * z)


def leaky_relu_backward(da, z, a):
    """f'(z) = 1 if z > 0 else s; s at the kink, as torch's own leaky_relu backward."""
    return torch.where(z > 0, da, NEGATIVE_SLOPE * da)


def elu_forward(z):
    """a = z if z > 0 else alpha (exp(z) - 1), written with expm1"""
    return torch.where(z > 0, z, ALPHA * torch.expm1(torch.where(z > 0, 0.0, z)))


def elu_backward(da, z, a):
    """f'(z) = 1 if z > 0 else alpha exp(z) = a + alpha"""
    return torch.where(z > 0, da, da * (a + ALPHA))


def softplus_forward(z):
    """a = log(1 + exp(z)), as logaddexp(0, z) (torch.nn.functional.softplus returns z above z = 20)"""
    return torch.logaddexp(torch.zeros_like(z), z)


def softplus_backward(da, z, a):
    """f'(z) = sigmoid(z) = 1 - exp(-a)"""
    return da * -torch.expm1(-a)


def gelu_forward(z):
    """a = z Phi(z) = z (1 + erf(z / sqrt 2)) / 2"""
    return 0.5 * z * (1.0 + torch.erf(z / math.sqrt(2.0)))


def gelu_backward(da, z, a):
    """f'(z) = Phi(z) + z phi(z)"""
    phi = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return da * (0.5 * (1.0 + torch.erf(z / math.sqrt(2.0))) + z * phi)


def gelu_tanh_forward(z):
    """a = z (1 + tanh(u)) / 2, u = sqrt(2/pi) (z + 0.044715 z^3)"""
    u = GELU_C * (z + GELU_K * z * z * z)
    return 0.5 * z * (1.0 + torch.tanh(u))


def gelu_tanh_backward(da, z, a):
    """f'(z) = (1 + t) / 2 + z (1 - t^2) u'(z) / 2"""
    t = torch.tanh(GELU_C * (z + GELU_K * z * z * z))
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
