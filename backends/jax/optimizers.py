"""Optimizers in JAX, mirroring reference/optimizers.py name for name (torch.optim's definitions)."""

import math

import jax.numpy as jnp

from crosscheck.common import registry, walk
from crosscheck.common.conventions import value


def sgd_init(p):
    return {}


def sgd_update(p, g, s, k, c, wd):
    """p <- p - lr g"""
    return p - c.lr * g, s


def momentum_init(p):
    return {"momentum buffer": jnp.zeros_like(p)}


def momentum_update(p, g, s, k, c, wd):
    """b <- mu b + g; p <- p - lr b  (torch.optim.SGD with dampening 0: the first b is g, not (1 - mu) g); or, under
    momentum.form=velocity (Keras's, CS231n's, Sutskever et al.'s), v <- mu v - lr g; p <- p + v, kept in its place."""
    if value(c, "momentum.form") == "velocity":
        v = c.momentum * s["momentum buffer"] - c.lr * g
        return p + v, {"momentum buffer": v}
    b = c.momentum * s["momentum buffer"] + g
    return p - c.lr * b, {"momentum buffer": b}


def nesterov_init(p):
    return {"momentum buffer": jnp.zeros_like(p)}


def nesterov_update(p, g, s, k, c, wd):
    """b <- mu b + g; p <- p - lr (g + mu b)  (torch.optim.SGD(nesterov=True): the look-ahead on the gradient); or,
    under nesterov.form=velocity (Bengio et al.'s form, CS231n's notes), v <- mu v - lr g; p <- p - mu v_old +
    (1 + mu) v"""
    if value(c, "nesterov.form") == "velocity":
        v = c.momentum * s["momentum buffer"] - c.lr * g
        return p - c.momentum * s["momentum buffer"] + (1 + c.momentum) * v, {"momentum buffer": v}
    b = c.momentum * s["momentum buffer"] + g
    return p - c.lr * (g + c.momentum * b), {"momentum buffer": b}


def rmsprop_init(p):
    return {"square average": jnp.zeros_like(p)}


def rmsprop_update(p, g, s, k, c, wd):
    """v <- alpha v + (1 - alpha) g^2; p <- p - lr g / (sqrt(v) + eps)  (eps outside the root, as torch.optim), or
    p - lr g / sqrt(v + eps) under rmsprop.eps=inside (TensorFlow 1's, optax's default)"""
    v = c.alpha * s["square average"] + (1 - c.alpha) * g * g
    if value(c, "rmsprop.eps") == "inside":
        return p - c.lr * g / jnp.sqrt(v + c.eps), {"square average": v}
    return p - c.lr * g / (jnp.sqrt(v) + c.eps), {"square average": v}


def adagrad_init(p):
    return {"sum of squares": jnp.zeros_like(p)}


def adagrad_update(p, g, s, k, c, wd):
    """G <- G + g^2; p <- p - lr g / (sqrt(G) + eps)  (torch.optim.Adagrad: no lr decay, G starts at 0)"""
    G = s["sum of squares"] + g * g
    return p - c.lr * g / (jnp.sqrt(G) + c.eps), {"sum of squares": G}


def adam_init(p):
    return {"first moment": jnp.zeros_like(p), "second moment": jnp.zeros_like(p)}


def adam_update(p, g, s, k, c, wd):
    """m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2; p <- p - lr m^ / (sqrt(v^) + eps),
    with m^ = m / (1 - b1^t), v^ = v / (1 - b2^t), k those two (adam_scalars) (eps outside the root, after bias
    correction, as torch.optim); under adam.eps=efficient, Kingma & Ba's efficient form (TensorFlow 1's):
    p <- p - lr_t m / (sqrt(v) + eps), lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), eps beside sqrt(v) before correction."""
    b1, b2 = c.betas
    m = b1 * s["first moment"] + (1 - b1) * g
    v = b2 * s["second moment"] + (1 - b2) * g * g
    if value(c, "adam.eps") == "efficient":
        return p - c.lr * k[1] ** 0.5 / k[0] * m / (jnp.sqrt(v) + c.eps), {"first moment": m, "second moment": v}
    m_hat, v_hat = m / k[0], v / k[1]
    return p - c.lr * m_hat / (jnp.sqrt(v_hat) + c.eps), {"first moment": m, "second moment": v}


def adam_scalars(t, c):
    """The bias corrections of update t, shared by every leaf: (1 - b1^t, 1 - b2^t)."""
    b1, b2 = c.betas
    return 1 - b1**t, 1 - b2**t


def adamw_init(p):
    return {"first moment": jnp.zeros_like(p), "second moment": jnp.zeros_like(p)}


def adamw_update(p, g, s, k, c, wd):
    """p <- p (1 - lr wd), then adam's step: decay decoupled from the gradient (torch.optim.AdamW)."""
    return adam_update(p * (1 - c.lr * wd), g, s, k, c, 0.0)


def scheduled_lr(t, c):
    """lr of update t: linear warmup from 0 over c.warmup_steps updates, then cosine decay to c.end_lr (t traced: both
    branches computed, one kept; the lr in the training dtype, as a Python float would be taken)"""
    count = t - 1
    progress = jnp.minimum(count - c.warmup_steps, c.decay_steps - c.warmup_steps) / (c.decay_steps - c.warmup_steps)
    lr = c.end_lr + (c.lr - c.end_lr) * 0.5 * (1.0 + jnp.cos(math.pi * progress))
    if c.warmup_steps:
        lr = jnp.where(count < c.warmup_steps, c.lr * count / c.warmup_steps, lr)
    return lr.astype(c.dtype)


def scheduled(config, t):
    """config as update t sees it: its lr the schedule's"""
    return walk.AtRate(config, scheduled_lr(t, config))


def init(params, config):
    """The optimizer's state at step 0: {state name: [(state of W, state of b)] per layer}; and a dynamic loss
    scaler's (registry.SCALER), one scalar each."""
    state = walk.optimizer_init(params, config, INIT[config.optimizer])
    return {**state, **scaler_state((registry.SCALE_START, 0.0, 0.0), config)} if config.dynamic else state


def scaler_state(values, config):
    """{name: [(scalar,)]} for the scaler's values (scale, steps without overflow, updates made), in config.dtype."""
    return {name: [(jnp.asarray(v, dtype=config.dtype),)] for name, v in zip(registry.SCALER, values)}


def update(params, grads, state, t, config, k=None):
    """(params, state) after update number t of config.optimizer, leaf by leaf, weight decay included.

    k: the step's scalars, scalars(t, config), where the caller computed them ahead (the scan does, for a whole
    stretch at once: see mlp.train_epochs)."""
    k = scalars(t, config) if k is None else k
    return walk.optimizer_update(params, grads, state, k, config, leaf_update)


def leaf_update(p, g, s, k, config, l, which):
    """One leaf's update (layer l's leaf number which), weight decay included: coupled L2 adds wd p to g (the
    gradient of wd/2 |p|^2), or under weight_decay.form=decoupled (SGDW's, Keras 3's) p shrinks by (1 - lr wd) apart
    from the step; adamw's pair applies its own, decoupled."""
    wd = config.weight_decay if config.decays(l, which) else 0.0
    if wd and not registry.OPTIMIZERS[config.optimizer].decoupled_decay:
        if value(config, "weight_decay.form") == "decoupled":
            return UPDATE[config.optimizer](p * (1 - config.lr * wd), g, s, k, config, wd)
        g = g + wd * p
    return UPDATE[config.optimizer](p, g, s, k, config, wd)


def scalars(t, config):
    """What update number t computes once for all its leaves: adam's bias corrections; () for the others."""
    return SCALARS[config.optimizer](t, config) if config.optimizer in SCALARS else ()


INIT = walk.table(globals(), registry.OPTIMIZERS, "init")
UPDATE = walk.table(globals(), registry.OPTIMIZERS, "update")
SCALARS = walk.table(globals(), ("adam", "adamw"), "scalars", aliases={"adamw": "adam"})
