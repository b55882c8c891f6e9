"""Central finite differences: the reference's own independent check of its gradients."""

import numpy as np

from .losses import loss_forward
from .mlp import forward


def loss_at(params, X, y, config):
    """L(params) on (X, y)."""
    return loss_forward(config.loss, *forward(params, X, config)[-1], y)


def numerical_gradients(params, X, y, config, eps=1e-6):
    """[(dW, db)] with each entry (L(p + eps) - L(p - eps)) / (2 eps); float64 only."""
    if np.dtype(config.dtype) != np.float64:
        raise ValueError("finite differences are only meaningful in float64")
    grads = []
    for l, (W, b) in enumerate(params):
        layer = []
        for which, arr in ((0, W), (1, b)):
            g = np.zeros_like(arr)
            for i in np.ndindex(arr.shape):
                plus, minus = _bumped(params, l, which, i, eps), _bumped(params, l, which, i, -eps)
                g[i] = (loss_at(plus, X, y, config) - loss_at(minus, X, y, config)) / (2 * eps)
            layer.append(g)
        grads.append(tuple(layer))
    return grads


def _bumped(params, l, which, index, delta):
    """A copy of params with one entry moved by delta."""
    copy = [(W.copy(), b.copy()) for W, b in params]
    copy[l][which][index] += delta
    return copy
