"""examples/makemore_notebook_torch.py with one planted mistake: batch norm's backward without the terms through the
batch's mean and variance (dhprebn = bngain dhpreact / std), as if the statistics were constants.

    crosscheck --implementation ninja=examples.makemore_notebook_torch_buggy:DRIVER --backends ninja ...
"""

from examples import makemore_notebook_torch as correct


def without_statistics(dhpreact, bngain, bnraw, bnvar_inv, n):
    return bngain * bnvar_inv * dhpreact  # planted: the mean's and the variance's terms left out


def grads(p, X, Y):
    return correct.grads(p, X, Y, bn_backward=without_statistics)


DRIVER = correct.named_gradients(grads, params=correct.NAMES, buffers="bnmean bnvar",
                                 row_vectors="bngain bnbias bnmean bnvar", labels="index", framework="torch",
                                 forward=correct.forward, name="ninja-notebook",
                                 kinds=("embedding", "flatten", "batchnorm"), activations=("tanh", "softmax"),
                                 conventions=correct.CONVENTIONS)
