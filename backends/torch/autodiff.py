"""The independent oracle: gradients of the very same loss by torch.autograd."""

import torch

from .losses import loss_forward
from .mlp import Run, forward


def vjp(f, x, dy=None):
    """The vector-Jacobian product dy^T (df/dx) by torch.autograd (dy None: f is scalar, its gradient)."""
    x = x.detach().clone().requires_grad_(True)
    out = f(x)
    (grad,) = torch.autograd.grad(out, x, grad_outputs=dy)
    return grad.detach()


def autodiff_gradients(params, X, y, config):
    """(L, [(dW_l, db_l)]) from torch.autograd.grad of loss(forward(params))."""
    leaves = [(W.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)) for W, b in params]
    z, a = forward(leaves, X, config)[-1]
    loss = loss_forward(config.loss, z, a, y)
    flat = torch.autograd.grad(loss, [t for layer in leaves for t in layer])
    return loss.detach(), [(flat[2 * l], flat[2 * l + 1]) for l in range(len(leaves))]


def train(params, X, y, config, orders=None, checkpoints=()):
    """Full-batch gradient descent with torch.autograd's gradients: what manual backprop is measured against."""
    if orders is not None or checkpoints or config.optimizer != "sgd" or config.weight_decay:
        raise ValueError("the autodiff training loop is full batch plain descent, without checkpoints")
    losses = torch.empty((config.epochs, 1), dtype=X.dtype, device=X.device)
    params = [(W.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)) for W, b in params]
    flat_params = [t for layer in params for t in layer]
    for epoch in range(config.epochs):
        z, a = forward(params, X, config)[-1]
        loss = loss_forward(config.loss, z, a, y)
        grads = torch.autograd.grad(loss, flat_params)
        with torch.no_grad():
            for p, g in zip(flat_params, grads):
                p.sub_(config.lr * g)
            losses[epoch, 0] = loss
    return Run(losses=losses, checkpoints={}, params=[(W.detach(), b.detach()) for W, b in params])
