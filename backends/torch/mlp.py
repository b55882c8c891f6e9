"""The network in PyTorch (the generic walk over its layers), mirroring reference/mlp.py function for function.

Tensors in, tensors out; the training core runs under torch.inference_mode (no
autograd bookkeeping) and updates the parameters in place.
"""

import torch

from common.driver import Run, TrainState, batches  # the same containers, holding this framework's arrays

from . import layers, optimizers
from .activations import activation_backward
from .losses import FUSED_WITH_OUTPUT, loss_backward, loss_forward


def forward(params, X, config, buffers=None, noise=None):
    """[cache_1, ..., cache_L]: each layer of config.model in turn, y = layer(x) from x = X; the last cache is
    the output activation's (z, a). With buffers, in evaluation mode: a layer that keeps buffers reads them
    (batch norm its running statistics) instead of the batch. noise: this training step's masks, one per noisy
    layer (dropout); without them a noisy layer passes its input on, as in evaluation."""
    caches = []
    x = X
    for layer in config.model:
        p = () if layer.slot is None else params[layer.slot]  # the layer's own parameters, if it has any
        if buffers is not None and layer.kind in layers.EVALUATE:
            x, cache = layers.EVALUATE[layer.kind](layer, p, buffers[layer.slot], x)
        elif layer.mask is not None:
            x, cache = layers.FORWARD[layer.kind](layer, p, x, None if noise is None else noise[layer.mask])
        else:
            x, cache = layers.FORWARD[layer.kind](layer, p, x)
        caches.append(cache)
    return caches


def backward(params, X, y, caches, config):
    """[(dW_l, db_l)] by the chain rule: each layer's backward in turn, from the last layer to the first."""
    z, a = caches[-1]
    if config.loss in FUSED_WITH_OUTPUT:
        dz = loss_backward(config.loss, a, y)
    else:
        dz = activation_backward(config.output, loss_backward(config.loss, a, y), z, a)
    grads = [()] * len(params)
    dy = dz
    for layer, cache in zip(reversed(config.model[:-1]), reversed(caches[:-1])):  # the output activation: above
        p = () if layer.slot is None else params[layer.slot]
        dy, dp = layers.BACKWARD[layer.kind](layer, p, cache, dy)
        if layer.slot is not None:
            grads[layer.slot] = dp
    return grads


def update(params, grads, opt_state, t, config):
    """(params, opt_state) after update number t of config.optimizer; plain descent in place (sub_ keeps storage)."""
    if config.optimizer == "sgd" and not config.weight_decay:
        lr = config.lr
        for leaves, leaf_grads in zip(params, grads):
            for p, g in zip(leaves, leaf_grads):
                p.sub_(lr * g)
        return params, opt_state
    return optimizers.update(params, grads, opt_state, t, config)


def running(buffers, params, X, config, noise=None):
    """The buffers after a training step on the batch X (at the step's params): each layer that keeps some updates
    them from its training-mode cache (batch norm: its running statistics)."""
    new = list(buffers)
    for layer, cache in zip(config.model, forward(params, X, config, noise=noise)):
        if layer.kind in layers.RUNNING:
            new[layer.slot] = layers.RUNNING[layer.kind](layer, buffers[layer.slot], cache)
    return new


def init_buffers(params, config):
    """The buffers before training: [() for a layer that keeps none, else its kind's initial ones]."""
    return [layers.BUFFERS[layer.kind](layer, p) if layer.kind in layers.BUFFERS else ()
            for layer, p in zip(config.parametrized, params)]


def gradients(params, X, y, config, noise=None):
    """(L, [(dW_l, db_l)]): the loss and its gradients at params (with noise: the step's dropout masks)."""
    cache = forward(params, X, config, noise=noise)
    z, a = cache[-1]
    loss = loss_forward(config.loss, z, a, y)
    return loss, backward(params, X, y, cache, config)


def train_step(params, opt_state, t, X, y, config, noise=None):
    """Update number t, on the batch (X, y): (loss before the step, new params, new optimizer state)."""
    loss, grads = gradients(params, X, y, config, noise)
    return (loss, *update(params, grads, opt_state, t, config))


def train(params, X, y, config, orders=None, checkpoints=(), opt_state=None, step=0, buffers=None, masks=None):
    """Train for config.epochs; orders (epochs, N) gives each epoch's sample order, or None for full batch."""
    steps = batches(len(X), config.batch_size)
    losses = torch.empty((config.epochs, len(steps)), dtype=y.dtype, device=y.device)
    saved = {}
    with torch.inference_mode():
        params = [tuple(p.clone() for p in leaves) for leaves in params]
        opt_state = optimizers.init(params, config) if opt_state is None else opt_state
        buffers = init_buffers(params, config) if buffers is None else buffers
        keeps_buffers = any(buffers)
        for epoch in range(config.epochs):
            for s, (start, stop) in enumerate(steps):
                if orders is None:
                    Xb, yb = X, y
                else:
                    idx = orders[epoch, start:stop]
                    Xb, yb = X[idx], y[idx]
                step += 1
                noise = None if masks is None else [m[epoch, s, :stop - start] for m in masks]
                if keeps_buffers:  # from the step's batch, at the step's parameters
                    buffers = running(buffers, params, Xb, config, noise)
                losses[epoch, s], params, opt_state = train_step(params, opt_state, step, Xb, yb, config, noise)
            if epoch + 1 in checkpoints:  # plain descent updates params in place: the checkpoint keeps a copy
                kept = [tuple(p.clone() for p in leaves) for leaves in params]
                saved[epoch + 1] = TrainState(kept, opt_state, step, buffers)
    return Run(losses=losses, checkpoints=saved, params=params, state=TrainState(params, opt_state, step, buffers))
