"""Dense layers and their kin in PyTorch, mirroring reference/layers/dense.py function for function."""

import torch


def dot(a, b):
    """a b over a's last axis and b's first (the reference's dot; torch's @ calls BLAS for any leading axes)"""
    return a @ b


def dense_forward(layer, p, x):
    """z = x W + b"""
    W, b = p
    z = x @ W + b  # not torch.addmm(b, x, W): it adds b inside the product's accumulation (in float32, the rounding
    # probe's 1 + 2^-30 - 1 comes out 2^-30, not 0: crosscheck/verdict/probes.py)
    return z, (x, z)


def dense_backward(layer, p, cache, dz):
    """dW = x^T dz, db = sum_n dz, dx = dz W^T"""
    W, _ = p
    x, _ = cache
    dx = dz @ W.T if layer.input_grad else None
    if x.ndim > 2:  # on a sequence (N, T, n), every step is one more sample to W and b
        x, dz = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])
    return dx, (x.T @ dz, dz.sum(dim=0))


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
    return dx, (x.T @ dz,)


def embedding_forward(layer, p, x):
    """y[n, t] = W[x[n, t]]: each id's row of W"""
    (W,) = p
    y = W[x]
    return y, (x, y)


def embedding_backward(layer, p, cache, dy):
    """dW[v] = the sum of dy over every position holding id v (index_put_ with accumulate adds repeated ids up); ids
    have no gradient"""
    (W,) = p
    ids, _ = cache
    dW = torch.zeros_like(W)
    dW.index_put_((ids,), dy, accumulate=True)
    return None, (dW,)
