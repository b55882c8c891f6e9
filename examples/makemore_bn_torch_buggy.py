"""examples/makemore_bn_torch.py with one planted mistake, the one makemore part 4 warns of: the embedding's gradient
written per id instead of added up, so an id used twice in a batch keeps only its last use's gradient.

    crosscheck --implementation ninja=examples.makemore_bn_torch_buggy:DRIVER --backends ninja ...
"""

from examples import makemore_bn_torch as correct


def overwritten(C, X, demb):
    dC = correct.torch.zeros_like(C)
    rows = demb.reshape(-1, C.shape[1])
    for k, i in enumerate(X.reshape(-1).tolist()):
        dC[i] = rows[k]  # planted: should be dC[i] += rows[k]; a repeated id keeps its last use's gradient
    return dC


def grads(p, X, Y):
    return correct.grads(p, X, Y, embedding=overwritten)


DRIVER = correct.named_gradients(grads, params=correct.NAMES, buffers="bnmean bnvar",
                                 row_vectors="bngain bnbias bnmean bnvar", labels="index", framework="torch",
                                 forward=correct.forward, name="ninja", kinds=("embedding", "flatten", "batchnorm"),
                                 activations=("tanh", "softmax"))
