"""CS231n's assignment 2 as students often write it, on top of cs231n_layers.py's other functions: the update rules
change the weight and the config's arrays in place, as the assignment's template does (w -= learning_rate * dw;
return w, config), and batch norm takes its sums and means with keepdims=True, so that its running statistics and
its dgamma and dbeta are (1, D) for gamma of shape (D,). The adapter is told so (keepdims=True); a rule that changes
its array in place must not rewrite the checkpoints the suite has saved, and the adapter copies at every boundary.

    pytest --pyargs crosscheck_tests --implementation student=examples.cs231n_student:DRIVER --backends student
"""

import sys
from types import SimpleNamespace

import numpy as np

from crosscheck.adapters import cs231n
from examples import cs231n_layers


def batchnorm_forward(x, gamma, beta, bn_param):
    mode, eps, momentum = bn_param["mode"], bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    n, d = x.shape
    running_mean = bn_param.get("running_mean", np.zeros((1, d), dtype=x.dtype))
    running_var = bn_param.get("running_var", np.ones((1, d), dtype=x.dtype))
    if mode == "train":
        mu = np.mean(x, axis=0, keepdims=True)
        var = np.var(x, axis=0, keepdims=True)
        x_hat = (x - mu) / np.sqrt(var + eps)
        out = gamma * x_hat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var  # the biased variance, as the assignment asks
        cache = (x_hat, gamma, var, eps)
    else:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        cache = None
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return out, cache


def batchnorm_backward(dout, cache):
    x_hat, gamma, var, eps = cache
    dgamma = np.sum(dout * x_hat, axis=0, keepdims=True)
    dbeta = np.sum(dout, axis=0, keepdims=True)
    dx_hat = dout * gamma
    dx = (dx_hat - np.mean(dx_hat, axis=0, keepdims=True)
          - x_hat * np.mean(dx_hat * x_hat, axis=0, keepdims=True)) / np.sqrt(var + eps)
    return dx, dgamma, dbeta


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


LAYERS = SimpleNamespace(**{**vars(cs231n_layers), "batchnorm_forward": batchnorm_forward,
                            "batchnorm_backward": batchnorm_backward})
DRIVER = cs231n(LAYERS, sys.modules[__name__], name="cs231n-student", keepdims=True)
