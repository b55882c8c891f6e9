"""Activations in PyTorch, mirroring reference/activations.py name for name."""

import torch


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
    e = torch.exp(z - z.amax(dim=1, keepdim=True))
    return e / e.sum(dim=1, keepdim=True)


def softmax_backward(da, z, a):
    """dz = a * (da - sum_k da_k a_k), row by row."""
    return a * (da - (da * a).sum(dim=1, keepdim=True))


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
