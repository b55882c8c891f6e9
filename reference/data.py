"""Data sets: the seeds' XOR, and synthetic problems drawn from a seed."""

import numpy as np


def xor(dtype="float64"):
    """The XOR truth table as (X (4, 2), y (4, 1)), rows in the seeds' order."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return X, y


def synthetic(config, n_samples, seed=None):
    """(X, y) with X ~ N(0, 1) and targets fitting config's loss, from seed (default config.seed).

    Targets come from a random linear teacher: class labels (one-hot) for
    softmax_cross_entropy, 0/1 labels for bce, real values otherwise.
    """
    rng = np.random.default_rng([config.seed if seed is None else seed, 2])
    n_in, n_out = config.layers[0], config.layers[-1]
    X = rng.standard_normal((n_samples, n_in))
    scores = X @ rng.standard_normal((n_in, n_out))
    if config.loss == "softmax_cross_entropy":
        y = np.eye(n_out)[scores.argmax(axis=1)]
    elif config.loss == "bce":
        y = (scores > 0).astype(float)
    elif config.output in ("sigmoid",):
        y = 1 / (1 + np.exp(-scores))
    elif config.output == "tanh":
        y = np.tanh(scores)
    else:
        y = scores
    return X.astype(config.dtype), y.astype(config.dtype)
