"""examples/cs231n_layers.py with one planted mistake: batchnorm_backward without the terms through the batch's
mean and variance (dx = dx_hat / std), the shortcut the assignment warns about.

    pytest --pyargs crosscheck_tests --implementation cs231n=examples.cs231n_layers_buggy:DRIVER --backends cs231n
"""

from types import SimpleNamespace

import numpy as np

from crosscheck.adapters import cs231n
from examples import cs231n_layers


def batchnorm_backward(dout, cache):
    x_hat, gamma, var, eps = cache
    dgamma = (dout * x_hat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dx = dout * gamma / np.sqrt(var + eps)  # planted: the terms through the mean and the variance are missing
    return dx, dgamma, dbeta


LAYERS = SimpleNamespace(**{**vars(cs231n_layers), "batchnorm_backward": batchnorm_backward})
DRIVER = cs231n(LAYERS, name="cs231n")
