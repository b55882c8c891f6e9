"""Dense layers and their kin in JAX, mirroring reference/layers/dense.py function for function."""

import jax.numpy as jnp

TINY = 64  # products with at most this many multiply-adds are written out (see dot)


def dot(a, b):
    """a @ b, as np.dot in the reference.

    JAX quirk: on the CPU, XLA calls a library routine for every dot, tens of nanoseconds
    each, which dominates XOR's epoch; a product this small is written as a broadcast
    multiply and a sum instead, which XLA fuses with its neighbours. Broadcasting would
    quietly accept mismatched shapes, so they are checked first (at trace time: free).
    """
    if a.shape[-1] != b.shape[0]:
        raise ValueError(f"dot: shapes {a.shape} and {b.shape} not aligned")
    if a.ndim == 2 and a.shape[0] * a.shape[1] * b.shape[1] <= TINY:
        return (a[:, :, None] * b[None, :, :]).sum(axis=1)
    return a @ b


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
    return dx, (dot(x.T, dz), dz.sum(axis=0))


def linear_forward(layer, p, x):
    """z = x W"""
    (W,) = p
    z = dot(x, W)
    return z, (x, z)


def linear_backward(layer, p, cache, dz):
    """dW = x^T dz, dx = dz W^T"""
    (W,) = p
    x = cache[0]
    dx = None if not layer.input_grad else dot(dz, W.T)
    x, dz = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])
    return dx, (dot(x.T, dz),)


def embedding_forward(layer, p, x):
    """y[n, t] = W[x[n, t]]: each id's row of W"""
    (W,) = p
    y = W[x]
    return y, (x, y)


def embedding_backward(layer, p, cache, dy):
    """dW[v] = the sum of dy over every position holding id v (.at[].add adds repeated ids up); ids have no gradient"""
    (W,) = p
    ids, _ = cache
    dW = jnp.zeros_like(W).at[ids].add(dy)
    return None, (dW,)
