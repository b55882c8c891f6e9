"""Dense layers and their kin: dense (z = x W + b), linear (z = x W, no bias), embedding (a row of W per id), and dot,
the product every family uses."""

import numpy as np

from ..precision import total


def dot(a, b):
    """a b over a's last axis and b's first: np.dot (on XOR's rows, faster than @), but an N-D a (a sequence,
    (N, T, n)) as one 2-D product: np.dot of an N-D array does not call BLAS (116 times slower at GPT-2's size)"""
    if a.ndim <= 2:
        return np.dot(a, b)
    return np.dot(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[-1])


def dense_forward(layer, p, x):
    """z = x W + b"""
    W, b = p
    z = dot(x, W) + b
    return z, (x, z)


def dense_backward(layer, p, cache, dz):
    """dW = x^T dz, db = sum_n dz, dx = dz W^T"""
    W, _ = p
    x, _ = cache
    dx = dot(dz, W.T) if layer.input_grad else None
    if x.ndim > 2:  # on a sequence (N, T, n), every step is one more sample to W and b
        x, dz = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])
    return dx, (np.dot(x.T, dz), total(dz, axis=0))


def linear_forward(layer, p, x):
    """z = x W: dense without a bias (Llama's projections)"""
    (W,) = p
    z = dot(x, W)
    return z, (x, z)


def linear_backward(layer, p, cache, dz):
    """dW = x^T dz, dx = dz W^T"""
    (W,) = p
    x = cache[0]
    dx = None if not layer.input_grad else dot(dz, W.T)
    x, dz = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])
    return dx, (np.dot(x.T, dz),)


def embedding_forward(layer, p, x):
    """y[n, t] = W[x[n, t]]: each id's row of W"""
    (W,) = p
    y = W[x]
    return y, (x, y)


def embedding_backward(layer, p, cache, dy):
    """dW[v] = the sum of dy over every position holding id v (np.add.at adds repeated ids up); ids have no gradient"""
    (W,) = p
    ids, _ = cache
    dW = np.zeros_like(W)
    np.add.at(dW, ids, dy)
    return None, (dW,)
