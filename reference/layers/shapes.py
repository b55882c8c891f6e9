"""Layers without parameters that mask, route or reshape: dropout, residual (the start of a block), last (a sequence's
last step), flatten, and the activation layer (each activation as a layer)."""

import numpy as np

from .. import activations


def dropout_forward(layer, p, x, mask=None):
    """y = x m / (1 - r): inverted dropout, m this step's keep mask (drawn by the reference); y = x without one
    (evaluation)"""
    if mask is None:
        return x, (x, x, None)
    y = x * mask / (1.0 - layer.shape[0])
    return y, (x, y, mask)


def dropout_backward(layer, p, cache, dy):
    """dx = dy m / (1 - r), with the forward's own mask"""
    _, _, mask = cache
    if mask is None:
        return dy, ()
    return dy * mask / (1.0 - layer.shape[0]), ()


def residual_forward(layer, p, x):
    """y = x: the block's input goes on into f (the walk keeps it, and adds it to f's output where the block ends)"""
    return x, (x, x)


def residual_backward(layer, p, cache, dy):
    """dx = dy, the gradient back through f (the walk adds the one that skipped f)"""
    return dy, ()


def last_forward(layer, p, x):
    """y = x_T: a sequence's last step"""
    y = x[:, -1]
    return y, (x, y)


def last_backward(layer, p, cache, dy):
    """dx_T = dy, and 0 at every other step"""
    x = cache[0]
    dx = np.zeros_like(x)
    dx[:, -1] = dy
    return dx, ()


def flatten_forward(layer, p, x):
    """y = x as (N, C H W), row-major"""
    y = x.reshape(len(x), -1)
    return y, (x, y)


def flatten_backward(layer, p, cache, dy):
    """dx = dy in x's shape"""
    x = cache[0]
    return dy.reshape(x.shape), ()


def activation_layer_forward(layer, p, z):
    """a = f(z), f the layer's kind (reference/activations.py)"""
    a = activations.FORWARD[layer.kind](z)
    return a, (z, a)


def activation_layer_backward(layer, p, cache, da):
    """dz = da * f'(z); an activation has no parameters"""
    z, a = cache
    return activations.BACKWARD[layer.kind](da, z, a), ()
