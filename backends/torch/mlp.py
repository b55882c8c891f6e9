"""The network in PyTorch (the generic walk over its layers), mirroring reference/mlp.py function for function.

Tensors in, tensors out; the training core runs under torch.inference_mode (no
autograd bookkeeping) and updates the parameters in place.
"""

import torch

from crosscheck.common import registry
from crosscheck.common.conventions import log_guard, reduced, summed, value
from crosscheck.common.driver import Run, TrainState
from crosscheck.common.problem import batches  # the same containers, holding this framework's arrays

from . import layers, optimizers, parallel
from .activations import activation_backward
from .losses import FUSED_WITH_OUTPUT, loss_backward, loss_forward


def forward(params, X, config, buffers=None, noise=None):
    """[cache_1, ..., cache_L]: each layer of config.model in turn, y = layer(x) from x = X; the last cache is
    the output activation's (z, a). With buffers, in evaluation mode: a layer that keeps buffers reads them
    (batch norm its running statistics) instead of the batch. noise: this training step's masks, one per noisy
    layer (dropout); without them a noisy layer passes its input on, as in evaluation."""
    caches, skips = [], []
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
        if layer.kind == "residual":  # a block begins: its input is kept to be added back where it ends
            skips.append(x)
        for _ in range(layer.closes):  # a block ends: y = x + f(x)
            x = x + skips.pop()
    return caches


def backward(params, X, y, caches, config, scale=None):
    """[(dW_l, db_l)] by the chain rule: each layer's backward in turn, from the last layer to the first."""
    z, a = caches[-1]
    dL = scaled(loss_backward(config.loss, a, y, reduced(config, a)), scale)  # dL/dz where fused, else dL/da
    if config.loss in FUSED_WITH_OUTPUT:
        dz = dL
    else:
        dz = activation_backward(config.output, dL, z, a)
    grads = [()] * len(params)
    dy, skipped = dz, []
    for layer, cache in zip(reversed(config.model[:-1]), reversed(caches[:-1])):  # the output activation: above
        skipped += [dy] * layer.closes  # where a block ends, its output's gradient also skips f, to the block's input
        p = () if layer.slot is None else params[layer.slot]
        dy, dp = layers.BACKWARD[layer.kind](layer, p, cache, dy)
        if layer.kind == "residual":
            dy = dy + skipped.pop()  # dx = df(x) + dy: the residual's own term
        if layer.slot is not None:  # a tied matrix's second use adds its gradient to the first's
            grads[layer.slot] = dp if not grads[layer.slot] else tuple(a + b for a, b in zip(grads[layer.slot], dp))
    return grads


def scaled(d, scale):
    """S dL/d(.): the loss's gradient times the loss scale, in float32 and rounded once; d itself without a scale."""
    return d if scale is None else (d.float() * scale).to(d.dtype)


def update(params, grads, opt_state, t, config):
    """(params, opt_state) after update number t of config.optimizer; plain descent in place (sub_ keeps storage,
    and takes lr as its alpha: one op where p - lr g is two)."""
    if config.clip is not None:
        grads = clipped(grads, config.clip, value(config, "clip.norm") == "per_tensor")
    if config.schedule is not None:  # this update's lr
        config = optimizers.scheduled(config, t)
    if config.optimizer == "sgd" and not config.weight_decay:
        lr = config.lr
        for leaves, leaf_grads in zip(params, grads):
            for p, g in zip(leaves, leaf_grads):
                p.sub_(g, alpha=lr)
        return params, opt_state
    return optimizers.update(params, grads, opt_state, t, config)


def clipped(grads, max_norm, per_tensor=False):
    """g min(1, max_norm / (|g| + 1e-6)) for every leaf g, |g| the norm of every leaf's entries together (per_tensor:
    each leaf's own)"""
    if per_tensor:
        return [tuple(g * torch.clamp(max_norm / (torch.sqrt((g * g).sum()) + 1e-6), max=1.0) for g in leaves)
                for leaves in grads]
    norm = torch.sqrt(sum((g * g).sum() for leaves in grads for g in leaves))
    factor = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    return [tuple(g * factor for g in leaves) for leaves in grads]


def running(buffers, params, X, config, noise=None):
    """The buffers after a training step on the batch X (at the step's params): each layer that keeps some updates
    them from its training-mode cache (batch norm: its running statistics). Mixed precision: from the forward in
    config.compute, kept in config.dtype."""
    if config.compute is not None:
        low = config.computing()
        new = running(cast_all(buffers, low.dtype), cast_all(params, low.dtype), cast(X, low.dtype), low,
                      None if noise is None else [cast(m, low.dtype) for m in noise])
        return cast_all(new, config.dtype)
    new = list(buffers)
    for layer, cache in zip(config.model, forward(params, X, config, noise=noise)):
        if layer.kind in layers.RUNNING:
            new[layer.slot] = layers.RUNNING[layer.kind](layer, buffers[layer.slot], cache)
    return new


def init_buffers(params, config):
    """The buffers before training: [() for a layer that keeps none, else its kind's initial ones]."""
    return [layers.BUFFERS[layer.kind](layer, p) if layer.kind in layers.BUFFERS else ()
            for layer, p in zip(config.parametrized, params)]


def gradients(params, X, y, config, noise=None, scale=None):
    """(L, [(dW_l, db_l)]): the loss and its gradients at params (with noise: the step's dropout masks; with scale:
    the gradients of scale L)."""
    cache = forward(params, X, config, noise=noise)
    z, a = cache[-1]
    loss = loss_forward(config.loss, z, a, y, log_guard(config), reduced(config, a))
    return loss, backward(params, X, y, cache, config, scale)


def accumulated(params, X, y, config, noise=None):
    """(L, grads) of the batch from config.accumulate micro-batches, each weighted by its share of the batch"""
    if config.world > 1:  # sharded: this rank's rows (data) or blocks (tensor), over the world (parallel.py)
        return parallel.gradients(gradients, params, X, y, config, noise)
    if config.accumulate == 1:
        return gradients(params, X, y, config, noise)
    n = len(X)
    size = -(-n // config.accumulate)
    loss, grads = 0.0, [tuple(torch.zeros_like(p) for p in leaves) for leaves in params]
    for start in range(0, n, size):
        stop = min(start + size, n)
        share = 1.0 if summed(config) else (stop - start) / n
        part, part_grads = gradients(params, X[start:stop], y[start:stop], config,
                                     None if noise is None else [m[start:stop] for m in noise])
        loss = loss + share * part
        grads = [tuple(g + share * d for g, d in zip(leaves, parts)) for leaves, parts in zip(grads, part_grads)]
    return loss, grads


def train_step(params, opt_state, t, X, y, config, noise=None):
    """Update number t, on the batch (X, y): (loss before the step, new params, new optimizer state)."""
    if config.compute is not None:
        return mixed_step(params, opt_state, t, X, y, config, noise)
    loss, grads = accumulated(params, X, y, config, noise)
    return (loss, *update(params, grads, opt_state, t, config))


def mixed_step(params, opt_state, t, X, y, config, noise=None):
    """A mixed-precision step: the forward and backward in config.compute on a copy of the float32 master weights
    (the loss's gradient times the scale S), the gradients cast to float32 and divided by S, then the update of the
    master weights and the optimizer's state in float32. A dynamic scale skips a step whose gradients are not all
    finite (nothing updated) and halves S; after scale_window steps in a row without one, it doubles S."""
    low = config.computing()
    S = config.loss_scale if not config.dynamic else opt_state["loss scale"][0][0]
    copy = cast_all(params, low.dtype)
    loss, grads = gradients(copy, cast(X, low.dtype), cast(y, low.dtype), low,
                            None if noise is None else [cast(m, low.dtype) for m in noise], S)
    grads = [tuple(cast(g, config.dtype) / S if S is not None else cast(g, config.dtype) for g in leaves)
             for leaves in grads]
    loss = cast(loss, config.dtype)
    if not config.dynamic:
        return loss, *update(params, grads, opt_state, t, config)
    _, good, made = (opt_state[name][0][0] for name in registry.SCALER)
    if all(bool(torch.isfinite(g).all()) for leaves in grads for g in leaves):
        params, opt_state = update(params, grads, opt_state, int(made) + 1, config)
        good, made = good + 1, made + 1
        S, good = (S * registry.SCALE_GROWTH, 0 * good) if good == config.scale_window else (S, good)
    else:  # an overflow: the step is skipped
        S, good = S * registry.SCALE_BACKOFF, 0 * good
    return loss, params, {**opt_state, **optimizers.scaler_state((S, good, made), config, made.device)}


def cast(x, name):
    """x rounded to the dtype called name; ids (integers) as they are."""
    return x.to(getattr(torch, name)) if x.is_floating_point() else x


def cast_all(tree, name):
    """Every tensor of a list of tuples (params, buffers) cast to the dtype called name."""
    return [tuple(cast(p, name) for p in leaves) for leaves in tree]


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
