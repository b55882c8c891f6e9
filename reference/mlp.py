"""A network trained by hand-written backprop, in NumPy: the oracle of record.

The model is config.model, a sequence of layers (dense, then an activation, ... for the
seeds' MLP); forward and backward walk it generically, each layer kind's pair living in
layers/ (a file per family). Shapes: X is (N, D) with one sample per row, y is (N, K). params holds one
tuple per layer with parameters, in model order: (W, b) for dense, W (fan_in, fan_out)
and b (fan_out,); "layer l" is the l-th of them. Dense layer l and its activation
compute z_l = a_{l-1} @ W_l + b_l and a_l = f_l(z_l), with a_0 = X.

Products are spelled np.dot, as the seeds spell them: on the tiny arrays of XOR it
costs half of what the @ operator does, and the reference must keep up with the
seeds' own loop (benchmarks/). A sequence's products go through layers.dense.dot, which
makes them one 2-D product (np.dot of an N-D array does not call BLAS).
"""

import numpy as np

from crosscheck.common import registry
from crosscheck.common.conventions import log_guard, reduced, summed, value
from crosscheck.common.driver import Run, TrainState
from crosscheck.common.problem import batches

from . import layers, optimizers, parallel
from .activations import activation_backward
from .losses import FUSED_WITH_OUTPUT, loss_backward, loss_forward
from .precision import cast, total


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
    """[(dW_l, db_l)] by the chain rule: each layer's backward in turn, from the last layer to the first.

    dz_L = dL/da_L * f_L'(z_L) (from the loss, with f_L folded in where they are fused); then each layer
    takes the gradient of its output and gives that of its input (dx) and of its parameters (dp).
    scale: mixed precision's loss scale S, the gradients those of S L (the loss's own gradient scaled in float32).
    """
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
    """S dL/d(.): the loss's gradient times the loss scale, in float32 and rounded once (as torch.amp scales the
    float32 loss); d itself without a scale."""
    return d if scale is None else cast(cast(d, "float32") * scale, d.dtype.name)


def update(params, grads, opt_state, t, config):
    """(params, opt_state) after update number t of config.optimizer (reference/optimizers.py).

    Plain gradient descent, the seeds' W <- W - lr dW, b <- b - lr db, is spelled out: XOR's step takes
    microseconds, and the optimizers' walk over the leaves would cost as much again (where every layer holds two).
    """
    if config.clip is not None:
        grads = clipped(grads, config.clip, value(config, "clip.norm") == "per_tensor")
    if config.schedule is not None:  # this update's lr
        config = optimizers.scheduled(config, t)
    if config.optimizer == "sgd" and not config.weight_decay and config.pairs:
        lr = config.lr
        return [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(params, grads)], opt_state
    return optimizers.update(params, grads, opt_state, t, config)


def clipped(grads, max_norm, per_tensor=False):
    """g min(1, max_norm / (|g| + 1e-6)) for every leaf g, |g| = sqrt(sum of every leaf's squares): one norm over the
    whole gradient (torch.nn.utils.clip_grad_norm_; 1e-6 keeps a zero gradient finite); per_tensor (clip.norm=
    per_tensor, Keras's clipnorm): each leaf by its own norm"""
    if per_tensor:
        return [tuple(g * min(1.0, max_norm / (np.sqrt(total(g * g)) + 1e-6)) for g in leaves) for leaves in grads]
    norm = np.sqrt(sum(total(g * g) for leaves in grads for g in leaves))
    factor = min(1.0, max_norm / (norm + 1e-6))
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
    """(L, [(dW_l, db_l)]) of the batch (X, y) from config.accumulate micro-batches of consecutive rows: each one's
    loss and gradients, weighted by its share of the batch (n_i / n; 1 for a summed loss, as half_sse), added up"""
    if config.world > 1:  # sharded: this rank's rows (data) or blocks (tensor), over the world (parallel.py)
        return parallel.gradients(gradients, params, X, y, config, noise)
    if config.accumulate == 1:
        return gradients(params, X, y, config, noise)
    n = len(X)
    size = -(-n // config.accumulate)
    loss, grads = 0.0, [tuple(np.zeros_like(p) for p in leaves) for leaves in params]
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
    if all(np.isfinite(g).all() for leaves in grads for g in leaves):
        params, opt_state = update(params, grads, opt_state, int(made) + 1, config)
        good, made = good + 1, made + 1
        S, good = (S * registry.SCALE_GROWTH, 0 * good) if good == config.scale_window else (S, good)
    else:  # an overflow: the step is skipped
        S, good = S * registry.SCALE_BACKOFF, 0 * good
    return loss, params, {**opt_state, **optimizers.scaler_state((S, good, made), config)}


def cast_all(tree, name):
    """Every array of a list of tuples (params, buffers) cast to the dtype called name."""
    return [tuple(cast(p, name) for p in leaves) for leaves in tree]


def train(params, X, y, config, orders=None, checkpoints=(), opt_state=None, step=0, buffers=None, masks=None,
          nudge=None):
    """Train for config.epochs; orders (epochs, N) gives each epoch's sample order, or None for full batch; masks
    (initializers.dropout_masks) each dropout layer's keep masks, (epochs, steps, batch, width).

    Training continues from (opt_state, step, buffers) when given (a run in stretches), else starts afresh.
    nudge: params -> params after every step, for the verdict's shadow run (crosscheck/verdict/findings.py: shadow_run
    nudges each parameter by an ulp, to measure how far the run amplifies rounding); None in every run that is checked.
    """
    steps = batches(len(X), config.batch_size)
    losses = np.empty((config.epochs, len(steps)), dtype=config.dtype)
    opt_state = optimizers.init(params, config) if opt_state is None else opt_state
    buffers = init_buffers(params, config) if buffers is None else buffers
    keeps_buffers = any(buffers)
    saved = {}
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
            if nudge is not None:
                params = nudge(params)
        if epoch + 1 in checkpoints:
            saved[epoch + 1] = TrainState(params, opt_state, step, buffers)
    return Run(losses=losses, checkpoints=saved, params=params, state=TrainState(params, opt_state, step, buffers))
