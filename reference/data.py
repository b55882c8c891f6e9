"""Data sets: the seeds' XOR, and synthetic problems drawn from a seed."""

import math

import numpy as np

from common import registry


def xor(dtype="float64"):
    """The XOR truth table as (X (4, 2), y (4, 1)), rows in the seeds' order."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return X, y


def synthetic(config, n_samples, seed=None):
    """(X, y) with X ~ N(0, 1) and targets fitting config's loss, from seed (default config.seed).

    Targets come from a random linear teacher, in the loss's target domain (common/registry.py):
    one-hot class labels, 0/1 labels, or real values in the output activation's range.
    """
    rng = np.random.default_rng([config.seed if seed is None else seed, 2])
    n_in, n_out = math.prod(config.sample_shape), config.layers[-1]
    X = rng.standard_normal((n_samples, *config.sample_shape))
    scores = X.reshape(n_samples, n_in) @ rng.standard_normal((n_in, n_out))  # images: a teacher of their pixels
    targets, outputs = registry.LOSSES[config.loss].targets, registry.ACTIVATIONS[config.output].outputs
    if targets == "one_hot":
        y = np.eye(n_out)[scores.argmax(axis=1)]
    elif targets == "labels":
        y = (scores > 0).astype(float)
    elif outputs == "unit":
        y = 1 / (1 + np.exp(-scores))
    elif outputs == "signed":
        y = np.tanh(scores)
    else:
        y = scores
    return X.astype(config.dtype), y.astype(config.dtype)
