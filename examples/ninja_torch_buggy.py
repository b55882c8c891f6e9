"""examples/ninja_torch.py with one planted mistake: each layer's bias gradient averaged over the batch, where the
loss has already averaged once.

    pytest --pyargs crosscheck_tests --implementation ninja=examples.ninja_torch_buggy:DRIVER --backends ninja
"""

import torch

from crosscheck.adapters import gradient_function
from examples.ninja_torch import forward, log_softmax


def grads(params, X, Y):
    hs = [X]
    for W, b in params[:-1]:
        hs.append(torch.tanh(hs[-1] @ W + b))
    W, b = params[-1]
    log_probs = log_softmax(hs[-1] @ W + b)
    n = X.shape[0]
    loss = -(Y * log_probs).sum() / n
    dlogits = (torch.exp(log_probs) - Y) / n
    out, d = [], dlogits
    for l in reversed(range(len(params))):
        W, b = params[l]
        out.append((hs[l].T @ d, d.mean(dim=0, keepdim=True)))  # planted: d.sum
        if l:
            d = (d @ W.T) * (1 - hs[l] ** 2)
    return loss, out[::-1]


DRIVER = gradient_function(grads, name="ninja", framework="torch", forward=forward, activations=("tanh", "softmax"),
                           losses=("softmax_cross_entropy",), dtypes=("float64", "float32"))
