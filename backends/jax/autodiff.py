"""The independent oracle: gradients of the very same loss by jax.grad."""

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from .losses import loss_forward
from .mlp import UNROLL, Run, forward, update


def vjp(f, x, dy=None):
    """The vector-Jacobian product dy^T (df/dx) by jax.vjp (dy None: f is scalar, its gradient)."""
    out, pullback = jax.vjp(f, x)
    (grad,) = pullback(jnp.ones_like(out) if dy is None else dy)
    return grad


def autodiff_gradients(params, X, y, config):
    """(L, [(dW_l, db_l)]) from jax.value_and_grad of loss(forward(params))."""

    def loss_of(params):
        z, a = forward(params, X, config)[-1]
        return loss_forward(config.loss, z, a, y)

    loss, grads = jax.value_and_grad(loss_of)(params)
    return loss, [tuple(layer) for layer in grads]


def train(params, X, y, config, orders=None, checkpoints=()):
    """Full-batch gradient descent with jax.grad's gradients, compiled the same way as mlp.train."""
    if orders is not None or checkpoints or config.optimizer != "sgd":
        raise ValueError("the autodiff training loop is full batch plain descent, without checkpoints")
    params, losses = _train_epochs(params, X, y, config, config.epochs)
    return Run(losses=losses, checkpoints={}, params=params)


@partial(jax.jit, static_argnames=("config", "length"))
def _train_epochs(params, X, y, config, length):
    def epoch(params, _):
        loss, grads = autodiff_gradients(params, X, y, config)
        return update(params, grads, {}, 0, config)[0], loss[None]

    return lax.scan(epoch, params, None, length=length, unroll=min(UNROLL, length))
