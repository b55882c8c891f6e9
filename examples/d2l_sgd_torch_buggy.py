"""examples/d2l_sgd_torch.py with one planted mistake in its sgd: the gradient not divided by the batch size (the
step batch_size times too long on d2l's summed loss).

    crosscheck --implementation mine=examples.d2l_sgd_torch_buggy:DRIVER --backends mine ...
"""

import torch

from examples import d2l_sgd_torch as correct


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad  # planted: should be lr * param.grad / batch_size
            param.grad.zero_()


DRIVER = correct.driver(sgd)
