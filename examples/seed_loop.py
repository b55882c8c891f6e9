"""The second seed's way of writing it: no class, one loop body over arrays, samples as columns, updated in place.

Wrapped as a function of the arrays, as it stands, the suite checks it with the step-function adapter:

    pytest --pyargs crosscheck_tests --implementation loop=examples.seed_loop:DRIVER --backends loop

The targets are flat (d of shape (N,), one output), as in the notebook; the update is W += lr * (...)(d - a),
gradient descent on half the sum of squared errors.
"""

import numpy as np

from crosscheck.adapters import step_function


def logistic(v):
    return 1 / (1 + np.exp(-v))


def forward(w1, b1, w2, b2, X):
    return logistic(w2 @ logistic(w1 @ X + b1) + b2)


def step(w1, b1, w2, b2, X, d, lr):
    hidden = logistic(w1 @ X + b1)
    out = logistic(w2 @ hidden + b2)
    delta_out = (d - out) * out * (1 - out)
    delta_hidden = (w2.T @ delta_out) * hidden * (1 - hidden)
    w2 += lr * delta_out @ hidden.T
    b2 += lr * delta_out.sum(axis=1, keepdims=True)
    w1 += lr * delta_hidden @ X.T
    b1 += lr * delta_hidden.sum(axis=1, keepdims=True)


DRIVER = step_function(step, name="loop", params="w1 b1 w2 b2", layout="columns", targets="flat", forward=forward)
