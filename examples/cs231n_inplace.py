"""CS231n's update rules as the assignment's template writes them: the weight and the config's arrays changed in place
(w -= learning_rate * dw; return w, config), with the layer functions of cs231n_layers.py. A rule that changes its
array in place must not rewrite the checkpoints the suite has saved: the adapter copies at every boundary.

    pytest --pyargs crosscheck_tests --implementation inplace=examples.cs231n_inplace:DRIVER --backends inplace
"""

import sys

import numpy as np

from crosscheck.cs231n import cs231n
from examples import cs231n_layers


def sgd(w, dw, config):
    w -= config["learning_rate"] * dw
    return w, config


def sgd_momentum(w, dw, config):
    v = config["velocity"]
    v *= config["momentum"]
    v -= config["learning_rate"] * dw
    w += v
    return w, config


def rmsprop(w, dw, config):
    cache = config["cache"]
    cache *= config["decay_rate"]
    cache += (1 - config["decay_rate"]) * dw * dw
    w -= config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    return w, config


def adam(w, dw, config):
    config["t"] += 1
    m, v = config["m"], config["v"]
    m *= config["beta1"]
    m += (1 - config["beta1"]) * dw
    v *= config["beta2"]
    v += (1 - config["beta2"]) * dw * dw
    m_hat = m / (1 - config["beta1"] ** config["t"])
    v_hat = v / (1 - config["beta2"] ** config["t"])
    w -= config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    return w, config


DRIVER = cs231n(cs231n_layers, sys.modules[__name__], name="cs231n-inplace")
