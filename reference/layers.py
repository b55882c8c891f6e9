"""Layer kinds, each a forward and a backward, in NumPy; the model (mlp.py) walks them in order.

forward(layer, p, x) -> (y, cache): the layer's output, and what its backward needs. Every cache
begins with (input, output).
backward(layer, p, cache, dy) -> (dx, dp): the gradient for the layer's input, and for its own
parameters p (a tuple shaped like p; () for a layer without parameters). The first layer's input is the
data, whose gradient nobody needs: there (layer.input_grad False) dx may be None.

A new layer kind is a pair here, the same pair in each backend's layers.py, and an entry in
common/registry.py LAYERS; the walk does not change.
"""

import numpy as np

from common.registry import ACTIVATIONS

from . import activations


def dense_forward(layer, p, x):
    """z = x W + b"""
    W, b = p
    z = np.dot(x, W) + b
    return z, (x, z)


def dense_backward(layer, p, cache, dz):
    """dW = x^T dz, db = sum_n dz, dx = dz W^T"""
    W, _ = p
    x, _ = cache
    dx = np.dot(dz, W.T) if layer.input_grad else None
    return dx, (np.dot(x.T, dz), dz.sum(axis=0))


def activation_layer_forward(layer, p, z):
    """a = f(z), f the layer's kind (reference/activations.py)"""
    a = activations.FORWARD[layer.kind](z)
    return a, (z, a)


def activation_layer_backward(layer, p, cache, da):
    """dz = da * f'(z); an activation has no parameters"""
    z, a = cache
    return activations.BACKWARD[layer.kind](da, z, a), ()


FORWARD = {"dense": dense_forward, **dict.fromkeys(ACTIVATIONS, activation_layer_forward)}
BACKWARD = {"dense": dense_backward, **dict.fromkeys(ACTIVATIONS, activation_layer_backward)}
