"""The two seed notebooks' training loops, rewritten in their own style: an independent transcription.

They share no code with reference/ (no configuration, no activation table, their
own layouts and update signs), so agreement between them and the reference is
evidence, not tautology. They are also the benchmarks' baseline: the plain NumPy
loop as the notebooks write it.
"""

import numpy as np


def seed1_train(X, y, W_ih, W_ho, lr, epochs, log_every=4000, log=None):
    """Notebook 1: samples as rows, 2-4-1 sigmoid, zero biases (1, H); log(epoch, mean squared error).

    Returns the final (W_ih, b_h, W_ho, b_o); the inputs are not modified.
    """
    W_ih, W_ho = W_ih.copy(), W_ho.copy()
    b_h = np.zeros((1, W_ih.shape[1]), dtype=W_ih.dtype)
    b_o = np.zeros((1, W_ho.shape[1]), dtype=W_ho.dtype)
    for epoch in range(epochs):
        hidden = 1 / (1 + np.exp(-(X @ W_ih + b_h)))
        out = 1 / (1 + np.exp(-(hidden @ W_ho + b_o)))
        delta_out = (y - out) * out * (1 - out)
        delta_hidden = (delta_out @ W_ho.T) * hidden * (1 - hidden)
        W_ho += hidden.T @ delta_out * lr
        b_o += np.sum(delta_out, axis=0, keepdims=True) * lr
        W_ih += X.T @ delta_hidden * lr
        b_h += np.sum(delta_hidden, axis=0, keepdims=True) * lr
        if log is not None and epoch % log_every == 0:
            log(epoch, np.mean(np.square(y - out)))
    return W_ih, b_h, W_ho, b_o


def seed2_train(X_cols, d, w1, b1, w2, b2, lr, epochs, log_every=10_000, log=None):
    """Notebook 2: samples as columns (X_cols is (2, N), d is (N,)), weights (out, in), biases (out, 1).

    log(epoch, average absolute error) after every log_every-th epoch, as the notebook prints.
    Returns the final (w1, b1, w2, b2); the inputs are not modified.
    """
    w1, b1, w2, b2 = w1.copy(), b1.copy(), w2.copy(), b2.copy()
    for epoch in range(epochs):
        a1 = 1 / (1 + np.exp(-(np.dot(w1, X_cols) + b1)))
        a2 = 1 / (1 + np.exp(-(np.dot(w2, a1) + b2)))
        error = d - a2
        dz2 = error * (a2 * (1 - a2))
        dz1 = np.dot(w2.T, dz2) * (a1 * (1 - a1))
        w2 += lr * np.dot(dz2, a1.T)
        b2 += lr * np.sum(dz2, axis=1, keepdims=True)
        w1 += lr * np.dot(dz1, X_cols.T)
        b1 += lr * np.sum(dz1, axis=1, keepdims=True)
        if log is not None and (epoch + 1) % log_every == 0:
            log(epoch, np.average(np.abs(error)))
    return w1, b1, w2, b2


def seed1_initial(seed, input_size=2, hidden_size=4, output_size=1):
    """Notebook 1's initialisation after np.random.seed(seed): randn weights, input-hidden first."""
    rng = np.random.RandomState(seed)
    return rng.randn(input_size, hidden_size), rng.randn(hidden_size, output_size)


def seed2_initial(seed, input_size=2, hidden_size=2, output_size=1):
    """Notebook 2's initialisation after np.random.seed(seed): w1, b1, w2, b2 uniform in [-1, 1)."""
    rng = np.random.RandomState(seed)
    w1 = rng.rand(hidden_size, input_size) * 2 - 1
    b1 = rng.rand(hidden_size, 1) * 2 - 1
    w2 = rng.rand(output_size, hidden_size) * 2 - 1
    b2 = rng.rand(output_size, 1) * 2 - 1
    return w1, b1, w2, b2
