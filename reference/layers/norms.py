"""Normalizations: layernorm and rmsnorm over each sample's features, batchnorm over the batch (with its running
statistics, the buffers of evaluation mode)."""

import numpy as np

from crosscheck.common.conventions import bessel, running_weights

from ..precision import average, total

LAYERNORM_EPS = 1e-5  # torch.nn.functional.layer_norm's default
RMSNORM_EPS = 1e-6  # Llama's (torch.nn.functional.rms_norm's default is the dtype's machine epsilon)
BATCHNORM_EPS = 1e-5  # torch.nn.functional.batch_norm's default (its momentum: common/conventions.py)


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
    """y = g x^ + b, x^ = (x - mu) / sqrt(c var + eps), mu and var (biased) over the batch, per feature: training
    mode; c = 1, or n / (n - 1) under batchnorm.variance=unbiased (Bessel's, as makemore part 4 normalises)"""
    g, b = p
    mu = average(x, axis=0)
    var = average((x - mu) ** 2, axis=0)
    inv_std = 1.0 / np.sqrt(var * bessel(layer, "batchnorm.variance", x.shape[0]) + BATCHNORM_EPS)
    x_hat = (x - mu) * inv_std
    y = g * x_hat + b
    return y, (x, y, x_hat, inv_std, mu, var)


def batchnorm_backward(layer, p, cache, dy):
    """dg = sum_n dy x^, db = sum_n dy; dx = (dx^ - mean(dx^) - c x^ mean(dx^ x^)) / sqrt(c var + eps), dx^ = dy g,
    the means over the batch: the terms through the batch's mean and variance (c as in the forward)."""
    g, _ = p
    _, _, x_hat, inv_std, _, _ = cache
    dx_hat = dy * g
    c = bessel(layer, "batchnorm.variance", dy.shape[0])
    dx = inv_std * (dx_hat - average(dx_hat, axis=0) - x_hat * average(dx_hat * x_hat, axis=0) * c)
    return dx, (total(dy * x_hat, axis=0), total(dy, axis=0))


def batchnorm_evaluate(layer, p, r, x):
    """y = g (x - running mean) / sqrt(running variance + eps) + b: evaluation mode, no batch statistics"""
    g, b = p
    running_mean, running_var = r
    y = g * (x - running_mean) / np.sqrt(running_var + BATCHNORM_EPS) + b
    return y, (x, y)


def batchnorm_running(layer, r, cache):
    """The running statistics after a training step: r <- k r + t s (batchnorm.running_average: torch's t = 0.1,
    k = 1 - t), s the batch's mean and its variance, made unbiased by n / (n - 1) as torch keeps it, or left biased
    under batchnorm.running_variance=biased (CS231n's, Keras's)."""
    mean, var = r
    x, _, _, _, mu, batch_var = cache
    keep, take = running_weights(layer)
    c = bessel(layer, "batchnorm.running_variance", x.shape[0])
    return keep * mean + take * mu, keep * var + take * (batch_var * c)


def batchnorm_buffers(layer, p):
    """The running statistics before training: mean 0, variance 1"""
    g, _ = p
    return np.zeros_like(g), np.ones_like(g)
