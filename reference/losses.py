"""Losses L(a, y) of the output a (N, K) against targets y (N, K), each with dL/da beneath it.

N is the number of samples in the batch and K the number of outputs.
"""

import numpy as np


def half_sse_forward(a, y):
    """L = 1/2 sum_{n,k} (a - y)^2 = 1/2 <r, r> with r = a - y: the seeds' objective (their update is descent on it)."""
    r = a - y
    return 0.5 * np.vdot(r, r)


def half_sse_backward(a, y):
    """dL/da = a - y"""
    return a - y


def mse_forward(a, y):
    """L = 1/(N K) sum_{n,k} (a - y)^2 = <r, r> / (N K) with r = a - y"""
    r = a - y
    return np.vdot(r, r) / r.size


def mse_backward(a, y):
    """dL/da = 2 (a - y) / (N K)"""
    return 2 * (a - y) / a.size


def bce_forward(a, y):
    """L = -1/(N K) sum_{n,k} [y log a + (1 - y) log(1 - a)], for a in (0, 1)."""
    return -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))


def bce_backward(a, y):
    """dL/da = (a - y) / (a (1 - a)) / (N K)"""
    return (a - y) / (a * (1 - a)) / a.size


def softmax_cross_entropy_forward(a, y):
    """L = -1/N sum_{n,k} y log a, with a = softmax(z) and each row of y summing to 1."""
    return -np.sum(y * np.log(a)) / a.shape[0]


def softmax_cross_entropy_backward(a, y):
    """dL/dz = (a - y) / N: softmax's Jacobian applied to dL/da = -y / (N a), simplified.

    This one returns the gradient with respect to the logits z, not a: the fused
    form stays finite where a underflows to 0, and mlp.backward knows to skip softmax.
    """
    return (a - y) / a.shape[0]


def loss_forward(name, a, y):
    return FORWARD[name](a, y)


def loss_backward(name, a, y):
    return BACKWARD[name](a, y)


FORWARD = {
    "half_sse": half_sse_forward,
    "mse": mse_forward,
    "bce": bce_forward,
    "softmax_cross_entropy": softmax_cross_entropy_forward,
}
BACKWARD = {
    "half_sse": half_sse_backward,
    "mse": mse_backward,
    "bce": bce_backward,
    "softmax_cross_entropy": softmax_cross_entropy_backward,
}
# Losses whose backward already returns dL/dz of the output layer (their activation is fused in).
FUSED_WITH_OUTPUT = ("softmax_cross_entropy",)
