"""makemore part 4 ("becoming a backprop ninja") as its notebook writes batch norm, in PyTorch tensors: the batch's
variance with Bessel's correction, 1/(n-1), in training (the notebook notes that PyTorch normalises with 1/n), and
running statistics moved by 0.001 of the batch's. Both are conventions, not mistakes, and the driver declares them,
so the reference computes the same; examples/makemore_bn_torch.py is the same model written to PyTorch's.

    crosscheck --implementation ninja=examples.makemore_notebook_torch:DRIVER --backends ninja --data names.txt \
        --model embedding:27:10,flatten,dense:30:64,batchnorm:64,tanh,dense:64:27,softmax --input-shape 3 \
        --loss softmax_cross_entropy --batch-size 32 --samples 512 --epochs 5 --lr 0.1

Left undeclared, the report says which conventions the code follows and how to declare them.
"""

import torch

from crosscheck.adapters import named_gradients

EPS = 1e-5
NAMES = "C W1 b1 bngain bnbias W2 b2"
CONVENTIONS = {"batchnorm.variance": "unbiased", "batchnorm.running_average": "keep:0.999"}


def forward(p, X, training=True):
    """The probabilities; training=False normalizes by the running statistics, as evaluation does."""
    emb = p["C"][X]
    hprebn = emb.view(emb.shape[0], -1) @ p["W1"] + p["b1"]
    if training:
        mean, var = hprebn.mean(0, keepdim=True), hprebn.var(0, keepdim=True)  # torch.var: Bessel's, by default
    else:
        mean, var = p["bnmean"], p["bnvar"]
    h = torch.tanh(p["bngain"] * (hprebn - mean) * (var + EPS) ** -0.5 + p["bnbias"])
    return torch.softmax(h @ p["W2"] + p["b2"], dim=1)


def batchnorm_backward(dhpreact, bngain, bnraw, bnvar_inv, n):
    """dhprebn for the forward above: the notebook's one-line form, its variance term over n - 1."""
    return bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))


def grads(p, X, Y, bn_backward=batchnorm_backward):
    C, W1, b1, bngain, bnbias, W2, b2 = (p[name] for name in NAMES.split())
    n = X.shape[0]
    # forward, in the notebook's pieces
    emb = C[X]
    embcat = emb.view(n, -1)
    hprebn = embcat @ W1 + b1
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff ** 2
    bnvar = 1 / (n - 1) * bndiff2.sum(0, keepdim=True)  # Bessel's correction, as the notebook writes it
    bnvar_inv = (bnvar + EPS) ** -0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2
    logits = logits - logits.max(1, keepdim=True).values
    logprobs = logits - torch.log(torch.exp(logits).sum(1, keepdim=True))
    loss = -logprobs[torch.arange(n), Y].mean()
    # backward
    dlogits = torch.softmax(logits, 1)
    dlogits[torch.arange(n), Y] -= 1
    dlogits /= n
    dh = dlogits @ W2.T
    dW2, db2 = h.T @ dlogits, dlogits.sum(0)
    dhpreact = (1.0 - h ** 2) * dh
    dbngain, dbnbias = (bnraw * dhpreact).sum(0, keepdim=True), dhpreact.sum(0, keepdim=True)
    dhprebn = bn_backward(dhpreact, bngain, bnraw, bnvar_inv, n)
    dembcat = dhprebn @ W1.T
    dW1, db1 = embcat.T @ dhprebn, dhprebn.sum(0)
    dC = torch.zeros_like(C)
    dC.index_add_(0, X.reshape(-1), dembcat.view(emb.shape).reshape(-1, C.shape[1]))
    # the running statistics, moved by 0.001 of the batch's (the notebook's bnmean_running and its variance)
    running = {"bnmean": 0.999 * p["bnmean"] + 0.001 * bnmeani, "bnvar": 0.999 * p["bnvar"] + 0.001 * bnvar}
    return loss, {"C": dC, "W1": dW1, "b1": db1, "bngain": dbngain, "bnbias": dbnbias, "W2": dW2, "b2": db2}, running


DRIVER = named_gradients(grads, params=NAMES, buffers="bnmean bnvar", row_vectors="bngain bnbias bnmean bnvar",
                         labels="index", framework="torch", forward=forward, name="ninja-notebook",
                         kinds=("embedding", "flatten", "batchnorm"), activations=("tanh", "softmax"),
                         conventions=CONVENTIONS)
