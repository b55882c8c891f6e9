"""The network in JAX (the generic walk over its layers), mirroring reference/mlp.py function for function.

Arrays in, arrays out, pure functions. The training core compiles whole runs of
epochs: jax.jit around lax.scan over the epochs, one scan per stretch between
checkpoints (each distinct stretch length compiles once; stretches of unequal lengths
go in equal pieces instead, pieces()).
"""

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from crosscheck.common import registry
from crosscheck.common.conventions import log_guard, reduced, summed, value
from crosscheck.common.driver import Run, TrainState
from crosscheck.common.problem import batches, epochs_of  # the same containers, holding this framework's arrays
from crosscheck.common.registry import ACTIVATIONS

from . import layers, optimizers, parallel
from .activations import activation_backward
from .losses import FUSED_WITH_OUTPUT, loss_backward, loss_forward

UNROLL = 8
PIECES = 256  # pieces(): the most calls a run is split into to train it with one program


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
    return d if scale is None else (d.astype(jnp.float32) * scale).astype(d.dtype)


def update(params, grads, opt_state, t, config, k=None):
    """(params, opt_state) after update number t of config.optimizer (backends/jax/optimizers.py); k: its scalars,
    where train_epochs computed them ahead."""
    if config.clip is not None:
        grads = clipped(grads, config.clip, value(config, "clip.norm") == "per_tensor")
    if config.schedule is not None:  # this update's lr
        config = optimizers.scheduled(config, t)
    if config.optimizer == "sgd" and not config.weight_decay and config.pairs:
        lr = config.lr
        return [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(params, grads)], opt_state
    return optimizers.update(params, grads, opt_state, t, config, k)


def clipped(grads, max_norm, per_tensor=False):
    """g min(1, max_norm / (|g| + 1e-6)) for every leaf g, |g| the norm of every leaf's entries together (per_tensor:
    each leaf's own)"""
    if per_tensor:
        return [tuple(g * jnp.minimum(1.0, max_norm / (jnp.sqrt((g * g).sum()) + 1e-6)) for g in leaves)
                for leaves in grads]
    norm = jnp.sqrt(sum((g * g).sum() for leaves in grads for g in leaves))
    factor = jnp.minimum(1.0, max_norm / (norm + 1e-6))
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
    n = X.shape[0]
    size = -(-n // config.accumulate)
    loss, grads = 0.0, [tuple(jnp.zeros_like(p) for p in leaves) for leaves in params]
    for start in range(0, n, size):
        stop = min(start + size, n)
        share = 1.0 if summed(config) else (stop - start) / n
        part, part_grads = gradients(params, X[start:stop], y[start:stop], config,
                                     None if noise is None else [m[start:stop] for m in noise])
        loss = loss + share * part
        grads = [tuple(g + share * d for g, d in zip(leaves, parts)) for leaves, parts in zip(grads, part_grads)]
    return loss, grads


def train_step(params, opt_state, t, X, y, config, k=None, noise=None):
    """Update number t, on the batch (X, y): (loss before the step, new params, new optimizer state)."""
    if config.compute is not None:
        return mixed_step(params, opt_state, t, X, y, config, k, noise)
    loss, grads = accumulated(params, X, y, config, noise)
    return (loss, *update(params, grads, opt_state, t, config, k))


def mixed_step(params, opt_state, t, X, y, config, k=None, noise=None):
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
        return loss, *update(params, grads, opt_state, t, config, k)
    _, good, made = (opt_state[name][0][0] for name in registry.SCALER)
    finite = jnp.all(jnp.stack([jnp.isfinite(g).all() for leaves in grads for g in leaves]))
    state = {name: opt_state[name] for name in registry.OPTIMIZERS[config.optimizer].state}
    # JAX quirk: no branch on a traced value; both outcomes are computed and the skipped step keeps the old ones.
    stepped = update(params, grads, state, made + 1, config)  # the bias corrections from the updates made
    params, state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), stepped, (params, state))
    good = jnp.where(finite, good + 1, 0 * good)
    grow = good == config.scale_window
    S, good = jnp.where(finite, jnp.where(grow, S * registry.SCALE_GROWTH, S), S * registry.SCALE_BACKOFF), \
        jnp.where(grow, 0 * good, good)
    made = jnp.where(finite, made + 1, made)
    return loss, params, {**state, **optimizers.scaler_state((S, good, made), config)}


def cast(x, name):
    """x rounded to the dtype called name; ids (integers) as they are."""
    return x.astype(jnp.dtype(name)) if jnp.issubdtype(x.dtype, jnp.floating) else x


def cast_all(tree, name):
    """Every array of a list of tuples (params, buffers) cast to the dtype called name."""
    return [tuple(cast(p, name) for p in leaves) for leaves in tree]


def train(params, X, y, config, orders=None, checkpoints=(), opt_state=None, step=0, buffers=None, masks=None):
    """Train for config.epochs; orders (epochs, N) gives each epoch's sample order, or None for full batch.

    The whole TrainState (params, optimizer state, step, buffers) is what the scan carries, stretch to stretch.
    """
    stops = sorted({e for e in checkpoints if 0 < e < config.epochs} | {config.epochs})
    opt_state = optimizers.init(params, config) if opt_state is None else opt_state
    buffers = init_buffers(params, config) if buffers is None else buffers
    # JAX quirk: the step must sit where X does, as the step each stretch hands back does; an uncommitted one
    # (plain jnp.asarray) is another argument signature, and the second stretch compiled train_epochs all over again.
    state = TrainState(params, opt_state, jax.device_put(jnp.asarray(step), X.sharding), buffers)
    losses, saved, done = [], {}, 0
    piece = pieces(stops)
    for stop in stops:
        while done < stop:  # the stretch, in pieces of one length where pieces() gives one
            upto = min(stop, done + piece) if piece else stop
            stretch, noise = epochs_of(orders, masks, done, upto)
            state, stretch_losses = train_epochs(state, X, y, stretch, config, upto - done, noise)
            losses.append(stretch_losses)
            done = upto
        if done in checkpoints:
            saved[done] = state
    return Run(losses=jnp.concatenate(losses), checkpoints=saved, params=state.params, state=state)


def pieces(stops):
    """The length every stretch of the run is trained in, as pieces of it; None: each stretch whole.

    JAX quirk: train_epochs' length is static, so each stretch length is a program of its own: a run of 30 epochs kept
    at 7, 15, 22 and 30 compiled two (stretches of 7 and 8 epochs; 0.3-0.4 s each). Where the stretches differ, the
    run goes in pieces of their greatest common divisor, one program, when that is at most PIECES calls (a call costs
    tens of microseconds); the same steps in the same order."""
    lengths = {stop - start for start, stop in zip((0, *stops), stops)}
    piece = math.gcd(*lengths)
    return piece if len(lengths) > 1 and stops[-1] // piece <= PIECES else None


@partial(jax.jit, static_argnames=("config", "length"))
def train_epochs(state, X, y, orders, config, length, masks=None):
    """length epochs in one compiled lax.scan: (TrainState after them, losses (length, steps))."""
    steps = batches(X.shape[0], config.batch_size)
    # JAX quirk: a scalar that changes every step (adam's bias corrections 1 - b^t) is a separate call per step on
    # the CPU, which the leaves' updates wait on: it doubled Adam's XOR epoch. The stretch's scalars are computed
    # here instead, all at once, from the same formula (optimizers.scalars), and each step is handed its own.
    ts = state.step + 1 + jnp.arange(length * len(steps)).reshape(length, len(steps))
    # In the training dtype (y's: X may hold ids), as the weakly typed scalar a step computes for itself is used (scan's
    # xs are not weak).
    scalars = tuple(k.astype(y.dtype) for k in optimizers.scalars(ts, config))

    keeps_buffers = any(state.buffers)
    # JAX quirk: each step written out in the epoch compiles its forward, backward and update again (a GPT block's
    # epoch of 3 steps compiled 2.5 s, of 5 steps 5.4 s). The epoch's leading steps of one size run as a lax.scan of
    # one step instead; a last, smaller batch is a step of its own.
    size = steps[0][1] - steps[0][0]
    full = sum(1 for start, stop in steps if stop - start == size)

    def step(state, order, start, size, k, noise):  # update number state.step + 1, on order[start:start + size]
        params, opt_state, t, buffers = state
        if order is None:
            Xb, yb = X, y
        else:
            idx = lax.dynamic_slice_in_dim(order, start, size)
            Xb, yb = X[idx], y[idx]
        t = t + 1
        if keeps_buffers:  # from the step's batch, at the step's parameters
            buffers = running(buffers, params, Xb, config, noise)
        loss, params, opt_state = train_step(params, opt_state, t, Xb, yb, config, k, noise)
        return TrainState(params, opt_state, t, buffers), loss

    def epoch(state, xs):
        order, epoch_scalars, epoch_masks = xs
        losses = []
        if full > 1:  # the leading steps of one size, one compiled step
            leading = (size * jnp.arange(full), tuple(scalar[:full] for scalar in epoch_scalars),
                       None if epoch_masks is None else [m[:full, :size] for m in epoch_masks])
            state, leading_losses = lax.scan(lambda state, xs: step(state, order, xs[0], size, *xs[1:]), state,
                                             leading)
            losses.append(leading_losses)
        for s in range(full if full > 1 else 0, len(steps)):  # the others written out
            start, stop = steps[s]
            k = tuple(scalar[s] for scalar in epoch_scalars)
            noise = None if epoch_masks is None else [m[s, :stop - start] for m in epoch_masks]
            state, loss = step(state, order, start, stop - start, k, noise)
            losses.append(loss[None])
        return state, jnp.concatenate(losses)

    # JAX quirk: unrolling full-batch epochs, 8 per loop iteration, lets XLA fuse across epochs: on XOR, whose loop
    # XLA:CPU compiles whole (small_loops in __init__.py), it halves the SGD epoch (~0.14 -> ~0.07 us, benchmarks/),
    # at no cost in accuracy. A minibatch epoch is already several steps long, and unrolling it costs compile time; so
    # does unrolling a model with layers beyond dense ones (a small CNN's full-batch case compiled in 16 s unrolled).
    mlp_only = all(layer.kind == "dense" or layer.kind in ACTIVATIONS for layer in config.model)
    unroll = min(UNROLL, length) if len(steps) == 1 and mlp_only else 1
    return lax.scan(epoch, state, (orders, scalars, masks), length=length, unroll=unroll)
