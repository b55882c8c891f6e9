"""A textbook two-layer net trained on cross-entropy, the way many write it: the loss guards its log against log(0),
-log(p + 1e-7), while the backward returns the exact gradient, (p - y) / N. The guard is a convention, not a mistake:
every gradient is the exact loss's, and only the loss value differs (by about 1e-7). The driver declares it.

    crosscheck --implementation mine=examples.guarded_ce_numpy:DRIVER --backends mine \
        --model dense:4:8,tanh,dense:8:3,softmax --loss softmax_cross_entropy --samples 60 --epochs 200 --lr 0.1
"""

import numpy as np

from crosscheck.adapters import gradient_function

EPS = 1e-7  # the guard


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def forward(params, X):
    (W1, b1), (W2, b2) = params
    return softmax(np.tanh(X @ W1 + b1) @ W2 + b2)


def output_gradient(p, y):
    """dL/dz of the mean cross-entropy: (p - y) / N."""
    return (p - y) / len(y)


def grads(params, X, y, dz_of=output_gradient):
    (W1, b1), (W2, b2) = params
    h = np.tanh(X @ W1 + b1)
    p = softmax(h @ W2 + b2)
    loss = -np.sum(y * np.log(p + EPS)) / len(y)  # the guarded log
    dz = dz_of(p, y)
    dh = dz @ W2.T * (1 - h ** 2)
    return loss, [(X.T @ dh, dh.sum(axis=0, keepdims=True)), (h.T @ dz, dz.sum(axis=0, keepdims=True))]


DRIVER = gradient_function(grads, name="guarded", forward=forward, activations=("tanh", "softmax"),
                           losses=("softmax_cross_entropy",), layers=2, conventions={"loss.log_guard": "add:1e-7"})
