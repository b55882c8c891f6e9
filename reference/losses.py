"""Losses L(a, y) of the output a (N, K) against targets y (N, K), each with dL/da beneath it.

N is the number of samples in the batch and K the number of outputs. A model that scores every step of a sequence
has a and y (N, T, K): the classes lie along the last axis, and a loss that averages over samples averages over
the N T positions (as torch's cross_entropy does).
"""

import numpy as np

from crosscheck.common import registry, walk

from .precision import average, total


def half_sse_forward(a, y):
    """L = 1/2 sum_{n,k} (a - y)^2 = 1/2 <r, r> with r = a - y: the seeds' objective (their update is descent on it)."""
    r = a - y
    return 0.5 * np.vdot(r, r)


def half_sse_backward(a, y):
    """dL/da = a - y"""
    return a - y


def mse_forward(a, y):
    """L = 1/(N K) sum_{n,k} (a - y)^2 = <r, r> / (N K) with r = a - y"""
    r = a - y
    return np.vdot(r, r) / r.size


def mse_backward(a, y):
    """dL/da = 2 (a - y) / (N K)"""
    return 2 * (a - y) / a.size


def bce_forward(a, y):
    """L = -1/(N K) sum_{n,k} [y log a + (1 - y) log(1 - a)], for a in (0, 1)."""
    return -average(y * np.log(a) + (1 - y) * np.log(1 - a))


def bce_backward(a, y):
    """dL/da = (a - y) / (a (1 - a)) / (N K)"""
    return (a - y) / (a * (1 - a)) / a.size


def sigmoid_bce_forward(z, y):
    """L = 1/(N K) sum_{n,k} [log(1 + exp(z)) - y z]: bce of a = sigmoid(z), from the logits z.

    log(1 + exp(z)) is logaddexp(0, z), finite for every z; bce_forward of sigmoid(z) is log(0) where
    the sigmoid rounds to 0 or 1.
    """
    return average(np.logaddexp(0, z) - y * z)


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
    return -total(y * (s - np.log(total(np.exp(s), axis=-1, keepdims=True)))) / positions(z)


def softmax_cross_entropy_backward(a, y):
    """dL/dz = (a - y) / N: softmax's Jacobian applied to dL/da = -y / (N a), simplified.

    This one returns the gradient with respect to the logits z, not a: the fused
    form stays finite where a underflows to 0, and mlp.backward knows to skip softmax.
    """
    return (a - y) / positions(a)


def hinge_forward(a, y):
    """L = 1/N sum_n sum_{j != y_n} max(0, a_j - a_{y_n} + 1): CS231n's multiclass SVM loss on the scores a, y one-hot.

    (torch's multi_margin_loss divides by the number of classes as well; optax's multiclass_hinge_loss takes the
    largest margin instead of their sum.)"""
    m = a - total(a * y, axis=-1, keepdims=True) + 1.0
    margins = np.where(m > 0, m, 0.0) * (1.0 - y)  # max(0, m), written so that autodiff too counts a tie as inactive
    return total(margins) / positions(a)


def hinge_backward(a, y):
    """dL/da_j = 1[margin_j > 0] / N for j != y_n, and dL/da_{y_n} = -(the number of positive margins) / N.

    A margin of exactly 0 counts as inactive, as torch's multi_margin_loss has it."""
    active = (a - total(a * y, axis=-1, keepdims=True) + 1.0 > 0) * (1.0 - y)
    return (active - y * total(active, axis=-1, keepdims=True)) / positions(a)


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
        return p + eps if form == "add" else np.clip(p, eps, 1.0 - eps)

    if name == "softmax_cross_entropy":
        return -total(y * np.log(g(a))) / positions(a)
    return -average(y * np.log(g(a)) + (1 - y) * np.log(g(1 - a)))


def loss_backward(name, a, y, c=1.0):
    return reduce(BACKWARD[name](a, y), c)


def reduce(t, c):
    """c t: a sum is c times the mean (the mean kept as it is where c is 1)"""
    return t if c == 1.0 else c * t


SPELT = {"bce": "sigmoid_bce"}  # the loss whose functions are spelt with the activation they are fused with
FORWARD = walk.table(globals(), registry.LOSSES, "forward", aliases=SPELT)
BACKWARD = walk.table(globals(), registry.LOSSES, "backward", aliases=SPELT)
# Losses fused with their output activation: the forward reads the logits z, the backward returns dL/dz.
FUSED_WITH_OUTPUT = registry.fused_losses()
