"""Central finite differences: the reference's own independent check of its gradients."""

import numpy as np

from crosscheck.common.conventions import reduced

from .losses import loss_forward
from .mlp import forward


def loss_at(params, X, y, config):
    """L(params) on (X, y)."""
    z, a = forward(params, X, config)[-1]
    return loss_forward(config.loss, z, a, y, c=reduced(config, a))


def central_differences(f, x, eps=1e-6):
    """df/dx for a scalar f of the array x, entry by entry: (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        g[i] = (f(_bumped(x, i, eps)) - f(_bumped(x, i, -eps))) / (2 * eps)
    return g


def numerical_gradients(params, X, y, config, eps=1e-6):
    """[(gradient of each leaf) per layer] by central differences of L in each parameter array; float64 only."""
    if np.dtype(config.dtype) != np.float64:
        raise ValueError("finite differences are only meaningful in float64")
    grads = []
    for l, layer in enumerate(params):
        grads.append(tuple(central_differences(lambda arr, l=l, which=which: loss_at(_replaced(params, l, which, arr),
                                                                                     X, y, config), arr, eps)
                           for which, arr in enumerate(layer)))
    return grads


def _bumped(x, index, delta):
    """A copy of x with one entry moved by delta."""
    copy = x.copy()
    copy[index] += delta
    return copy


def _replaced(params, l, which, arr):
    """params with layer l's weight (which = 0) or bias (which = 1) replaced by arr."""
    layer = list(params[l])
    layer[which] = arr
    return [*params[:l], tuple(layer), *params[l + 1:]]
