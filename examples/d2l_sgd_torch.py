"""Linear regression's loop from Dive into Deep Learning, in PyTorch: a one-layer net whose gradient function is
written by hand, stepped by d2l's in-place sgd(params, lr, batch_size), which reads each parameter's .grad (the
gradient of the batch's summed loss, as l.sum().backward() leaves it) and divides by the batch size.

    crosscheck --implementation mine=examples.d2l_sgd_torch:DRIVER --backends mine \
        --model dense:3:2,identity --loss mse --samples 40 --epochs 50 --batch-size 10 --lr 0.05
"""

import torch

from crosscheck.adapters import gradient_function


def sgd(params, lr, batch_size):
    """d2l's minibatch stochastic gradient descent."""
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def forward(params, X):
    ((W, b),) = params
    return X @ W + b


def grads(params, X, y):
    """mse over samples and outputs, L = mean((X W + b - y)^2), and its gradient by hand."""
    ((W, b),) = params
    r = X @ W + b - y
    dz = 2 * r / r.numel()
    return (r * r).mean(), [(X.T @ dz, dz.sum(dim=0, keepdim=True))]


def driver(step=sgd, name="d2l-sgd"):
    return gradient_function(grads, name=name, framework="torch", forward=forward, activations=("identity",),
                             losses=("mse",), layers=1, update=step, optimizer="sgd")


DRIVER = driver()
