"""Losses in JAX, mirroring reference/losses.py name for name."""

import jax.numpy as jnp

from crosscheck.common import registry, walk
from crosscheck.reference.losses import FUSED_WITH_OUTPUT, SPELT  # noqa: F401  (the same facts for every backend)


def half_sse_forward(a, y):
    """L = 1/2 sum_{n,k} (a - y)^2"""
    return 0.5 * jnp.sum((a - y) ** 2)


def half_sse_backward(a, y):
    """dL/da = a - y"""
    return a - y


def mse_forward(a, y):
    """L = 1/(N K) sum_{n,k} (a - y)^2"""
    return jnp.mean((a - y) ** 2)


def mse_backward(a, y):
    """dL/da = 2 (a - y) / (N K)"""
    return 2 * (a - y) / a.size


def bce_forward(a, y):
    """L = -1/(N K) sum_{n,k} [y log a + (1 - y) log(1 - a)]"""
    return -jnp.mean(y * jnp.log(a) + (1 - y) * jnp.log(1 - a))


def bce_backward(a, y):
    """dL/da = (a - y) / (a (1 - a)) / (N K)"""
    return (a - y) / (a * (1 - a)) / a.size


def sigmoid_bce_forward(z, y):
    """L = 1/(N K) sum_{n,k} [log(1 + exp(z)) - y z]: bce of a = sigmoid(z), from the logits z.

    log(1 + exp(z)) is logaddexp(0, z), finite for every z; bce_forward of sigmoid(z) is log(0) where
    the sigmoid rounds to 0 or 1.
    """
    return jnp.mean(jnp.logaddexp(0, z) - y * z)


def sigmoid_bce_backward(a, y):
    """dL/dz = (a - y) / (N K): bce's dL/da = (a - y) / (a (1 - a)) / (N K) times sigmoid's a (1 - a), cancelled.

    Fused, like softmax cross-entropy, so that it stays finite where a rounds to 0 or 1 (0/0 unfused).
    """
    return (a - y) / a.size


def positions(a):
    """N, the samples in the batch: (N, K) -> N, and (N, T, K) -> N T, every step of every sequence"""
    return a.size // a.shape[-1]


def softmax_cross_entropy_forward(z, y):
    """L = -1/N sum_{n,k} y (s - log sum_j exp(s_j)) with s = z - max z: -1/N sum y log softmax(z), from the logits."""
    s = z - z.max(axis=-1, keepdims=True)
    return -jnp.sum(y * (s - jnp.log(jnp.sum(jnp.exp(s), axis=-1, keepdims=True)))) / positions(z)


def softmax_cross_entropy_backward(a, y):
    """dL/dz = (a - y) / N, softmax fused in (see the reference)."""
    return (a - y) / positions(a)


def hinge_forward(a, y):
    """L = 1/N sum_n sum_{j != y_n} max(0, a_j - a_{y_n} + 1): CS231n's multiclass SVM loss, y one-hot."""
    m = a - (a * y).sum(axis=-1, keepdims=True) + 1.0
    margins = jnp.where(m > 0, m, 0.0) * (1.0 - y)
    return margins.sum() / positions(a)


def hinge_backward(a, y):
    """dL/da_j = 1[margin_j > 0] / N for j != y_n, and dL/da_{y_n} = -(the number of positive margins) / N."""
    active = (a - (a * y).sum(axis=-1, keepdims=True) + 1.0 > 0) * (1.0 - y)
    return (active - y * active.sum(axis=-1, keepdims=True)) / positions(a)


def loss_forward(name, z, a, y, guard=None, c=1.0):
    """The loss at the output layer's (z, a): losses fused with their output activation read the logits z; with a
    guard (loss.log_guard), the value as code that guards its log writes it; c times the mean (conventions.reduced:
    loss.reduction=sum, mse.average=samples)."""
    if guard is not None:
        return reduce(guarded_forward(name, a, y, guard), c)
    return reduce(FORWARD[name](z, y) if name in FUSED_WITH_OUTPUT else FORWARD[name](a, y), c)


def guarded_forward(name, a, y, guard):
    """-1/N sum y log g(a) (cross-entropy), or bce's mean of y log g(a) + (1 - y) log g(1 - a), g(p) = p + E (add:E)
    or p clipped to [E, 1 - E] (clip:E): the value alone; the backward stays the exact one, as such code writes it."""
    form, eps = guard

    def g(p):
        return p + eps if form == "add" else jnp.clip(p, eps, 1.0 - eps)

    if name == "softmax_cross_entropy":
        return -(y * jnp.log(g(a))).sum() / positions(a)
    return -(y * jnp.log(g(a)) + (1 - y) * jnp.log(g(1 - a))).mean()


def loss_backward(name, a, y, c=1.0):
    return reduce(BACKWARD[name](a, y), c)


def reduce(t, c):
    """c t: a sum is c times the mean (the mean kept as it is where c is 1)"""
    return t if c == 1.0 else c * t


FORWARD = walk.table(globals(), registry.LOSSES, "forward", aliases=SPELT)
BACKWARD = walk.table(globals(), registry.LOSSES, "backward", aliases=SPELT)
