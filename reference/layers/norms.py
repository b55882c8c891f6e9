"""Normalizations: layernorm and rmsnorm over each sample's features, batchnorm over the batch (with its running
statistics, the buffers of evaluation mode)."""

import numpy as np

from ..precision import average, total

LAYERNORM_EPS = 1e-5  # torch.nn.functional.layer_norm's default
RMSNORM_EPS = 1e-6  # Llama's (torch.nn.functional.rms_norm's default is the dtype's machine epsilon)
BATCHNORM_EPS, BATCHNORM_MOMENTUM = 1e-5, 0.1  # torch.nn.functional.batch_norm's defaults


def layernorm_forward(layer, p, x):
    """y = g x^ + b, x^ = (x - mu) / sqrt(var + eps), mu and var (biased) over each sample's (or position's) features"""
    g, b = p
    mu = average(x, axis=-1, keepdims=True)
    var = average((x - mu) ** 2, axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + LAYERNORM_EPS)
    x_hat = (x - mu) * inv_std
    y = g * x_hat + b
    return y, (x, y, x_hat, inv_std)


def layernorm_backward(layer, p, cache, dy):
    """dg = sum_n dy x^, db = sum_n dy; dx = (dx^ - mean(dx^) - x^ mean(dx^ x^)) / sqrt(var + eps), dx^ = dy g,
    the means over each sample's features: the terms through mu and var."""
    g, _ = p
    _, _, x_hat, inv_std = cache
    dx_hat = dy * g
    dx = inv_std * (dx_hat - average(dx_hat, axis=-1, keepdims=True)
                    - x_hat * average(dx_hat * x_hat, axis=-1, keepdims=True))
    leading = tuple(range(dy.ndim - 1))  # the samples, and the positions of a sequence
    return dx, (total(dy * x_hat, axis=leading), total(dy, axis=leading))


def rmsnorm_forward(layer, p, x):
    """y = g x^, x^ = x / sqrt(mean(x^2) + eps), the mean over each sample's features (the last axis)"""
    (g,) = p
    inv_rms = 1.0 / np.sqrt(average(x * x, axis=-1, keepdims=True) + RMSNORM_EPS)
    x_hat = x * inv_rms
    y = g * x_hat
    return y, (x, y, x_hat, inv_rms)


def rmsnorm_backward(layer, p, cache, dy):
    """dg = sum over samples (and steps) of dy x^; dx = (dx^ - x^ mean(dx^ x^)) / rms, dx^ = dy g, the mean over
    the features: the term through the mean of squares."""
    (g,) = p
    _, _, x_hat, inv_rms = cache
    dx_hat = dy * g
    dx = inv_rms * (dx_hat - x_hat * average(dx_hat * x_hat, axis=-1, keepdims=True))
    return dx, (total(dy * x_hat, axis=tuple(range(dy.ndim - 1))),)


def batchnorm_forward(layer, p, x):
    """y = g x^ + b, x^ = (x - mu) / sqrt(var + eps), mu and var (biased) over the batch, per feature: training mode"""
    g, b = p
    mu = average(x, axis=0)
    var = average((x - mu) ** 2, axis=0)
    inv_std = 1.0 / np.sqrt(var + BATCHNORM_EPS)
    x_hat = (x - mu) * inv_std
    y = g * x_hat + b
    return y, (x, y, x_hat, inv_std, mu, var)


def batchnorm_backward(layer, p, cache, dy):
    """dg = sum_n dy x^, db = sum_n dy; dx = (dx^ - mean(dx^) - x^ mean(dx^ x^)) / sqrt(var + eps), dx^ = dy g,
    the means over the batch: the terms through the batch's mean and variance."""
    g, _ = p
    _, _, x_hat, inv_std, _, _ = cache
    dx_hat = dy * g
    dx = inv_std * (dx_hat - average(dx_hat, axis=0) - x_hat * average(dx_hat * x_hat, axis=0))
    return dx, (total(dy * x_hat, axis=0), total(dy, axis=0))


def batchnorm_evaluate(layer, p, r, x):
    """y = g (x - running mean) / sqrt(running variance + eps) + b: evaluation mode, no batch statistics"""
    g, b = p
    running_mean, running_var = r
    y = g * (x - running_mean) / np.sqrt(running_var + BATCHNORM_EPS) + b
    return y, (x, y)


def batchnorm_running(layer, r, cache):
    """The running statistics after a training step: r <- (1 - m) r + m s, s the batch's mean and its variance
    made unbiased, var n / (n - 1) (the biased one normalises; torch keeps the unbiased one)."""
    mean, var = r
    x, _, _, _, mu, batch_var = cache
    n = x.shape[0]
    return ((1.0 - BATCHNORM_MOMENTUM) * mean + BATCHNORM_MOMENTUM * mu,
            (1.0 - BATCHNORM_MOMENTUM) * var + BATCHNORM_MOMENTUM * batch_var * n / (n - 1))


def batchnorm_buffers(layer, p):
    """The running statistics before training: mean 0, variance 1"""
    g, _ = p
    return np.zeros_like(g), np.ones_like(g)
