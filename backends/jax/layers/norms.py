"""Normalizations in JAX, mirroring reference/layers/norms.py function for function."""

import jax.numpy as jnp

from crosscheck.common.conventions import bessel, running_weights
from crosscheck.reference.layers.norms import (  # one definition: the reference's
    BATCHNORM_EPS,
    LAYERNORM_EPS,
    RMSNORM_EPS,
)


def layernorm_forward(layer, p, x):
    """y = g x^ + b, x^ = (x - mu) / sqrt(var + eps), mu and var (biased) over each sample's features"""
    g, b = p
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    inv_std = 1.0 / jnp.sqrt(var + LAYERNORM_EPS)
    x_hat = (x - mu) * inv_std
    y = g * x_hat + b
    return y, (x, y, x_hat, inv_std)


def layernorm_backward(layer, p, cache, dy):
    """dg = sum_n dy x^, db = sum_n dy; dx = (dx^ - mean(dx^) - x^ mean(dx^ x^)) / sqrt(var + eps), dx^ = dy g,
    the means over each sample's features: the terms through mu and var."""
    g, _ = p
    _, _, x_hat, inv_std = cache
    dx_hat = dy * g
    dx = inv_std * (dx_hat - dx_hat.mean(axis=-1, keepdims=True)
                    - x_hat * (dx_hat * x_hat).mean(axis=-1, keepdims=True))
    leading = tuple(range(dy.ndim - 1))
    return dx, ((dy * x_hat).sum(axis=leading), dy.sum(axis=leading))


def rmsnorm_forward(layer, p, x):
    """y = g x^, x^ = x / sqrt(mean(x^2) + eps), the mean over each sample's features (the last axis)"""
    (g,) = p
    inv_rms = 1.0 / jnp.sqrt((x * x).mean(axis=-1, keepdims=True) + RMSNORM_EPS)
    x_hat = x * inv_rms
    y = g * x_hat
    return y, (x, y, x_hat, inv_rms)


def rmsnorm_backward(layer, p, cache, dy):
    """dg = sum over samples (and steps) of dy x^; dx = (dx^ - x^ mean(dx^ x^)) / rms, dx^ = dy g"""
    (g,) = p
    _, _, x_hat, inv_rms = cache
    dx_hat = dy * g
    dx = inv_rms * (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=-1, keepdims=True))
    return dx, ((dy * x_hat).sum(axis=tuple(range(dy.ndim - 1))),)


def batchnorm_forward(layer, p, x):
    """y = g x^ + b, x^ = (x - mu) / sqrt(c var + eps), mu and var (biased) over the batch, per feature: training
    mode; c = 1, or n / (n - 1) under batchnorm.variance=unbiased (Bessel's, as makemore part 4 normalises)"""
    g, b = p
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    inv_std = 1.0 / jnp.sqrt(var * bessel(layer, "batchnorm.variance", x.shape[0]) + BATCHNORM_EPS)
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
    dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0) * c)
    return dx, ((dy * x_hat).sum(axis=0), dy.sum(axis=0))


def batchnorm_evaluate(layer, p, r, x):
    """y = g (x - running mean) / sqrt(running variance + eps) + b: evaluation mode, no batch statistics"""
    g, b = p
    running_mean, running_var = r
    y = g * (x - running_mean) / jnp.sqrt(running_var + BATCHNORM_EPS) + b
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
    return jnp.zeros_like(g), jnp.ones_like(g)
