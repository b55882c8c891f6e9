"""A multi-layer perceptron trained by hand-written backprop, in NumPy: the oracle of record.

Shapes: X is (N, D) with one sample per row, y is (N, K). params is a list of
(W, b) per layer, W (fan_in, fan_out) and b (fan_out,). Layer l computes
z_l = a_{l-1} @ W_l + b_l and a_l = f_l(z_l), with a_0 = X.

Products are spelled np.dot, as the seeds spell them: on the tiny arrays of XOR it
costs half of what the @ operator does, and the reference must keep up with the
seeds' own loop (benchmarks/).
"""

import numpy as np

from common.driver import Run, TrainState, batches

from . import optimizers
from .activations import activation_backward, activation_forward
from .losses import FUSED_WITH_OUTPUT, loss_backward, loss_forward


def forward(params, X, config):
    """[(z_1, a_1), ..., (z_L, a_L)] with z_l = a_{l-1} W_l + b_l and a_l = f_l(z_l)."""
    cache = []
    a = X
    for (W, b), name in zip(params, config.activations):
        z = np.dot(a, W) + b
        a = activation_forward(name, z)
        cache.append((z, a))
    return cache


def backward(params, X, y, cache, config):
    """[(dW_l, db_l)] by the chain rule, from the last layer back to the first.

    dz_L = dL/da_L * f_L'(z_L); dW_l = a_{l-1}^T dz_l; db_l = sum_n dz_l;
    da_{l-1} = dz_l W_l^T; dz_{l-1} = da_{l-1} * f_{l-1}'(z_{l-1}).
    """
    z, a = cache[-1]
    if config.loss in FUSED_WITH_OUTPUT:
        dz = loss_backward(config.loss, a, y)
    else:
        dz = activation_backward(config.output, loss_backward(config.loss, a, y), z, a)
    grads = []
    for l in reversed(range(len(params))):
        a_prev = cache[l - 1][1] if l > 0 else X
        W, _ = params[l]
        grads.append((np.dot(a_prev.T, dz), dz.sum(axis=0)))
        if l > 0:
            da = np.dot(dz, W.T)
            z_prev, a_prev = cache[l - 1]
            dz = activation_backward(config.hidden, da, z_prev, a_prev)
    return grads[::-1]


def update(params, grads, opt_state, t, config):
    """(params, opt_state) after update number t of config.optimizer (reference/optimizers.py).

    Plain gradient descent, the seeds' W <- W - lr dW, b <- b - lr db, is spelled out: XOR's step takes
    microseconds, and the optimizers' walk over the leaves would cost as much again.
    """
    if config.optimizer == "sgd" and not config.weight_decay:
        lr = config.lr
        return [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(params, grads)], opt_state
    return optimizers.update(params, grads, opt_state, t, config)


def gradients(params, X, y, config):
    """(L, [(dW_l, db_l)]): the loss and its gradients at params."""
    cache = forward(params, X, config)
    z, a = cache[-1]
    loss = loss_forward(config.loss, z, a, y)
    return loss, backward(params, X, y, cache, config)


def train_step(params, opt_state, t, X, y, config):
    """Update number t, on the batch (X, y): (loss before the step, new params, new optimizer state)."""
    loss, grads = gradients(params, X, y, config)
    return (loss, *update(params, grads, opt_state, t, config))


def train(params, X, y, config, orders=None, checkpoints=(), opt_state=None, step=0):
    """Train for config.epochs; orders (epochs, N) gives each epoch's sample order, or None for full batch.

    Training continues from (opt_state, step) when given (a run in stretches), else starts the optimizer afresh.
    """
    steps = batches(len(X), config.batch_size)
    losses = np.empty((config.epochs, len(steps)), dtype=config.dtype)
    opt_state = optimizers.init(params, config) if opt_state is None else opt_state
    saved = {}
    for epoch in range(config.epochs):
        for s, (start, stop) in enumerate(steps):
            if orders is None:
                Xb, yb = X, y
            else:
                idx = orders[epoch, start:stop]
                Xb, yb = X[idx], y[idx]
            step += 1
            losses[epoch, s], params, opt_state = train_step(params, opt_state, step, Xb, yb, config)
        if epoch + 1 in checkpoints:
            saved[epoch + 1] = TrainState(params, opt_state, step)
    return Run(losses=losses, checkpoints=saved, params=params, state=TrainState(params, opt_state, step))
