"""Layer kinds in PyTorch, mirroring reference/layers.py function for function."""

from common.registry import ACTIVATIONS

from . import activations


def dense_forward(layer, p, x):
    """z = x W + b"""
    W, b = p
    z = x @ W + b
    return z, (x, z)


def dense_backward(layer, p, cache, dz):
    """dW = x^T dz, db = sum_n dz, dx = dz W^T"""
    W, _ = p
    x, _ = cache
    dx = dz @ W.T if layer.input_grad else None
    return dx, (x.T @ dz, dz.sum(dim=0))


def activation_layer_forward(layer, p, z):
    """a = f(z), f the layer's kind (activations.py)"""
    a = activations.FORWARD[layer.kind](z)
    return a, (z, a)


def activation_layer_backward(layer, p, cache, da):
    """dz = da * f'(z); an activation has no parameters"""
    z, a = cache
    return activations.BACKWARD[layer.kind](da, z, a), ()


FORWARD = {"dense": dense_forward, **dict.fromkeys(ACTIVATIONS, activation_layer_forward)}
BACKWARD = {"dense": dense_backward, **dict.fromkeys(ACTIVATIONS, activation_layer_backward)}
