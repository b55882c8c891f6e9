"""The independent oracle: gradients of the very same loss by torch.autograd."""

import torch

from .losses import loss_forward
from .mlp import forward


def autodiff_gradients(params, X, y, config):
    """(L, [(dW_l, db_l)]) from torch.autograd.grad of loss(forward(params))."""
    leaves = [(W.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)) for W, b in params]
    loss = loss_forward(config.loss, forward(leaves, X, config)[-1][1], y)
    flat = torch.autograd.grad(loss, [t for layer in leaves for t in layer])
    return loss.detach(), [(flat[2 * l], flat[2 * l + 1]) for l in range(len(leaves))]
