"""Manual backprop through a character model with batch norm, in PyTorch tensors, in the manner of makemore part 4
("becoming a backprop ninja"): an embedding table C, the window's embeddings concatenated, a linear layer (W1, b1),
batch norm (bngain, bnbias, running statistics bnmean and bnvar), tanh, a linear layer (W2, b2) and cross-entropy
on integer labels; every gradient by hand, tensors in and tensors out, by name.

    crosscheck --implementation ninja=examples.makemore_bn_torch:DRIVER --backends ninja --data names.txt \
        --model embedding:27:10,flatten,dense:30:64,batchnorm:64,tanh,dense:64:27,softmax --input-shape 3 \
        --loss softmax_cross_entropy --batch-size 32 --samples 512 --epochs 5 --lr 0.1

Two conventions are PyTorch's here, where makemore's notebook differs: the batch's variance that normalizes is the
biased one (1/n; the notebook uses Bessel's 1/(n-1) in training, and notes that PyTorch does not), and the running
statistics move by 0.1 of the batch's (PyTorch's BatchNorm1d default; the notebook's 0.001). bngain and bnbias are
(1, n_hidden) as the notebook makes them (row_vectors), b1 and b2 one-dimensional.
"""

import torch

from crosscheck.adapters import named_gradients

EPS = 1e-5  # torch.nn.BatchNorm1d's eps
MOMENTUM = 0.1  # the share of the batch's statistics in the running ones (BatchNorm1d's momentum)
NAMES = "C W1 b1 bngain bnbias W2 b2"


def forward(p, X, training=True):
    """The probabilities; training=False normalizes by the running statistics, as evaluation does."""
    emb = p["C"][X]
    hprebn = emb.view(emb.shape[0], -1) @ p["W1"] + p["b1"]
    if training:
        mean, var = hprebn.mean(0, keepdim=True), hprebn.var(0, keepdim=True, unbiased=False)
    else:
        mean, var = p["bnmean"], p["bnvar"]
    h = torch.tanh(p["bngain"] * (hprebn - mean) * (var + EPS) ** -0.5 + p["bnbias"])
    return torch.softmax(h @ p["W2"] + p["b2"], dim=1)


def batch_variance(bndiff, n):
    """The variance that normalizes in training: biased, as PyTorch's (makemore's notebook: Bessel's, / (n - 1))."""
    return (bndiff ** 2).sum(0, keepdim=True) / n


def embedding_backward(C, X, demb):
    """dC: each row of C gets the gradients of every place its id was used, added up."""
    dC = torch.zeros_like(C)
    dC.index_add_(0, X.reshape(-1), demb.reshape(-1, C.shape[1]))
    return dC


def grads(p, X, Y, variance=batch_variance, embedding=embedding_backward):
    C, W1, b1, bngain, bnbias, W2, b2 = (p[name] for name in NAMES.split())
    n = X.shape[0]
    # forward, kept in pieces for the backward
    emb = C[X]  # (n, T, d)
    embcat = emb.view(n, -1)
    hprebn = embcat @ W1 + b1
    bnmeani = hprebn.mean(0, keepdim=True)
    bndiff = hprebn - bnmeani
    bnvar = variance(bndiff, n)
    bnvar_inv = (bnvar + EPS) ** -0.5
    bnraw = bndiff * bnvar_inv
    hpreact = bngain * bnraw + bnbias
    h = torch.tanh(hpreact)
    logits = h @ W2 + b2
    logits = logits - logits.max(1, keepdim=True).values
    logprobs = logits - torch.log(torch.exp(logits).sum(1, keepdim=True))
    loss = -logprobs[torch.arange(n), Y].mean()
    # backward
    dlogits = torch.exp(logprobs)
    dlogits[torch.arange(n), Y] -= 1
    dlogits /= n
    dh = dlogits @ W2.T
    dW2, db2 = h.T @ dlogits, dlogits.sum(0)
    dhpreact = (1.0 - h ** 2) * dh
    dbngain, dbnbias = (bnraw * dhpreact).sum(0, keepdim=True), dhpreact.sum(0, keepdim=True)
    m = n if variance is batch_variance else n - 1  # what the variance divides by
    dhprebn = bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / m * bnraw * (dhpreact * bnraw).sum(0))
    dembcat = dhprebn @ W1.T
    dW1, db1 = embcat.T @ dhprebn, dhprebn.sum(0)
    demb = dembcat.view(emb.shape)
    dC = embedding(C, X, demb)
    # the running statistics after the step (the running variance unbiased, as PyTorch keeps it)
    running = {"bnmean": (1 - MOMENTUM) * p["bnmean"] + MOMENTUM * bnmeani,
               "bnvar": (1 - MOMENTUM) * p["bnvar"] + MOMENTUM * (bndiff ** 2).sum(0, keepdim=True) / (n - 1)}
    return loss, {"C": dC, "W1": dW1, "b1": db1, "bngain": dbngain, "bnbias": dbnbias, "W2": dW2, "b2": db2}, running


DRIVER = named_gradients(grads, params=NAMES, buffers="bnmean bnvar", row_vectors="bngain bnbias bnmean bnvar",
                         labels="index", framework="torch", forward=forward, name="ninja",
                         kinds=("embedding", "flatten", "batchnorm"), activations=("tanh", "softmax"))
