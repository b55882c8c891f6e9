"""Losses in PyTorch, mirroring reference/losses.py name for name."""

import torch

from crosscheck.common import registry, walk
from crosscheck.reference.losses import FUSED_WITH_OUTPUT, SPELT  # noqa: F401  (the same facts for every backend)


def half_sse_forward(a, y):
    """L = 1/2 sum_{n,k} (a - y)^2"""
    return 0.5 * torch.sum((a - y) ** 2)


def half_sse_backward(a, y):
    """dL/da = a - y"""
    return a - y


def mse_forward(a, y):
    """L = 1/(N K) sum_{n,k} (a - y)^2"""
    return torch.mean((a - y) ** 2)


def mse_backward(a, y):
    """dL/da = 2 (a - y) / (N K)"""
    return 2 * (a - y) / a.numel()


def bce_forward(a, y):
    """L = -1/(N K) sum_{n,k} [y log a + (1 - y) log(1 - a)]"""
    return -torch.mean(y * torch.log(a) + (1 - y) * torch.log(1 - a))


def bce_backward(a, y):
    """dL/da = (a - y) / (a (1 - a)) / (N K)"""
    return (a - y) / (a * (1 - a)) / a.numel()


def sigmoid_bce_forward(z, y):
    """L = 1/(N K) sum_{n,k} [log(1 + exp(z)) - y z]: bce of a = sigmoid(z), from the logits z.

    log(1 + exp(z)) is logaddexp(0, z), finite for every z; bce_forward of sigmoid(z) is log(0) where
    the sigmoid rounds to 0 or 1.
    """
    return torch.mean(torch.logaddexp(torch.zeros_like(z), z) - y * z)


def sigmoid_bce_backward(a, y):
    """dL/dz = (a - y) / (N K): bce's dL/da = (a - y) / (a (1 - a)) / (N K) times sigmoid's a (1 - a), cancelled.

    Fused, like softmax cross-entropy, so that it stays finite where a rounds to 0 or 1 (0/0 unfused).
    """
    return (a - y) / a.numel()


def positions(a):
    """N, the samples in the batch: (N, K) -> N, and (N, T, K) -> N T, every step of every sequence"""
    return a.numel() // a.shape[-1]


def softmax_cross_entropy_forward(z, y):
    """L = -1/N sum_{n,k} y (s - log sum_j exp(s_j)) with s = z - max z: -1/N sum y log softmax(z), from the logits."""
    s = z - z.amax(dim=-1, keepdim=True)
    return -torch.sum(y * (s - torch.log(torch.sum(torch.exp(s), dim=-1, keepdim=True)))) / positions(z)


def softmax_cross_entropy_backward(a, y):
    """dL/dz = (a - y) / N, softmax fused in (see the reference)."""
    return (a - y) / positions(a)


def hinge_forward(a, y):
    """L = 1/N sum_n sum_{j != y_n} max(0, a_j - a_{y_n} + 1): CS231n's multiclass SVM loss, y one-hot."""
    m = a - (a * y).sum(dim=-1, keepdim=True) + 1.0
    margins = torch.where(m > 0, m, 0.0) * (1.0 - y)
    return margins.sum() / positions(a)


def hinge_backward(a, y):
    """dL/da_j = 1[margin_j > 0] / N for j != y_n, and dL/da_{y_n} = -(the number of positive margins) / N."""
    active = (a - (a * y).sum(dim=-1, keepdim=True) + 1.0 > 0) * (1.0 - y)
    return (active - y * active.sum(dim=-1, keepdim=True)) / positions(a)


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
        return p + eps if form == "add" else p.clamp(eps, 1.0 - eps)

    if name == "softmax_cross_entropy":
        return -(y * torch.log(g(a))).sum() / positions(a)
    return -(y * torch.log(g(a)) + (1 - y) * torch.log(g(1 - a))).mean()


def loss_backward(name, a, y, c=1.0):
    return reduce(BACKWARD[name](a, y), c)


def reduce(t, c):
    """c t: a sum is c times the mean (the mean kept as it is where c is 1)"""
    return t if c == 1.0 else c * t


FORWARD = walk.table(globals(), registry.LOSSES, "forward", aliases=SPELT)
BACKWARD = walk.table(globals(), registry.LOSSES, "backward", aliases=SPELT)
