"""The MLP in PyTorch, mirroring reference/mlp.py function for function.

Tensors in, tensors out; the training core runs under torch.inference_mode (no
autograd bookkeeping) and updates the parameters in place.
"""

import torch

from common.driver import Run, TrainState, batches  # the same containers, holding this framework's arrays

from . import optimizers
from .activations import activation_backward, activation_forward
from .losses import FUSED_WITH_OUTPUT, loss_backward, loss_forward


def forward(params, X, config):
    """[(z_1, a_1), ..., (z_L, a_L)] with z_l = a_{l-1} W_l + b_l and a_l = f_l(z_l)."""
    cache = []
    a = X
    for (W, b), name in zip(params, config.activations):
        z = a @ W + b
        a = activation_forward(name, z)
        cache.append((z, a))
    return cache


def backward(params, X, y, cache, config):
    """[(dW_l, db_l)] by the chain rule, from the last layer back to the first."""
    z, a = cache[-1]
    if config.loss in FUSED_WITH_OUTPUT:
        dz = loss_backward(config.loss, a, y)
    else:
        dz = activation_backward(config.output, loss_backward(config.loss, a, y), z, a)
    grads = []
    for l in reversed(range(len(params))):
        a_prev = cache[l - 1][1] if l > 0 else X
        W, _ = params[l]
        grads.append((a_prev.T @ dz, dz.sum(dim=0)))
        if l > 0:
            da = dz @ W.T
            z_prev, a_prev = cache[l - 1]
            dz = activation_backward(config.hidden, da, z_prev, a_prev)
    return grads[::-1]


def update(params, grads, opt_state, t, config):
    """(params, opt_state) after update number t of config.optimizer; plain descent in place (sub_ keeps storage)."""
    if config.optimizer == "sgd" and not config.weight_decay:
        lr = config.lr
        for (W, b), (dW, db) in zip(params, grads):
            W.sub_(lr * dW)
            b.sub_(lr * db)
        return params, opt_state
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
    """Train for config.epochs; orders (epochs, N) gives each epoch's sample order, or None for full batch."""
    steps = batches(len(X), config.batch_size)
    losses = torch.empty((config.epochs, len(steps)), dtype=X.dtype, device=X.device)
    saved = {}
    with torch.inference_mode():
        params = [(W.clone(), b.clone()) for W, b in params]
        opt_state = optimizers.init(params, config) if opt_state is None else opt_state
        for epoch in range(config.epochs):
            for s, (start, stop) in enumerate(steps):
                if orders is None:
                    Xb, yb = X, y
                else:
                    idx = orders[epoch, start:stop]
                    Xb, yb = X[idx], y[idx]
                step += 1
                losses[epoch, s], params, opt_state = train_step(params, opt_state, step, Xb, yb, config)
            if epoch + 1 in checkpoints:  # plain descent updates params in place: the checkpoint keeps a copy
                saved[epoch + 1] = TrainState([(W.clone(), b.clone()) for W, b in params], opt_state, step)
    return Run(losses=losses, checkpoints=saved, params=params, state=TrainState(params, opt_state, step))
