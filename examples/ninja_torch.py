"""Manual backprop written in PyTorch tensors, in the manner of makemore's "backprop ninja" exercise: no autograd,
every gradient by hand, tensors in and tensors out. The suite checks it without a conversion to NumPy:

    pytest --pyargs crosscheck_tests --implementation ninja=examples.ninja_torch:DRIVER --backends ninja

A multilayer perceptron of any depth: tanh hidden layers, softmax output, cross-entropy averaged over the batch.
Samples as rows, W (in, out), b (1, out).
"""

import torch

from crosscheck.adapters import gradient_function


def forward(params, X):
    h = X
    for W, b in params[:-1]:
        h = torch.tanh(h @ W + b)
    W, b = params[-1]
    return torch.softmax(h @ W + b, dim=1)


def log_softmax(logits):
    shifted = logits - logits.max(dim=1, keepdim=True).values
    return shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))


def grads(params, X, Y):
    hs = [X]
    for W, b in params[:-1]:
        hs.append(torch.tanh(hs[-1] @ W + b))
    W, b = params[-1]
    log_probs = log_softmax(hs[-1] @ W + b)
    n = X.shape[0]
    loss = -(Y * log_probs).sum() / n
    dlogits = (torch.exp(log_probs) - Y) / n  # softmax and cross-entropy together
    out, d = [], dlogits
    for l in reversed(range(len(params))):
        W, b = params[l]
        out.append((hs[l].T @ d, d.sum(dim=0, keepdim=True)))
        if l:
            d = (d @ W.T) * (1 - hs[l] ** 2)  # through tanh: 1 - tanh^2
    return loss, out[::-1]


DRIVER = gradient_function(grads, name="ninja", framework="torch", forward=forward, activations=("tanh", "softmax"),
                           losses=("softmax_cross_entropy",), dtypes=("float64", "float32"))
