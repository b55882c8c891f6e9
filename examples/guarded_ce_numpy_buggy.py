"""examples/guarded_ce_numpy.py with one planted mistake: the output gradient summed over the batch, not averaged
(p - y where the mean cross-entropy's is (p - y) / N).

    crosscheck --implementation mine=examples.guarded_ce_numpy_buggy:DRIVER --backends mine ...
"""

from examples import guarded_ce_numpy as correct


def summed(p, y):
    return p - y  # planted: should be (p - y) / N


def grads(params, X, y):
    return correct.grads(params, X, y, dz_of=summed)


DRIVER = correct.gradient_function(grads, name="guarded", forward=correct.forward, activations=("tanh", "softmax"),
                                   losses=("softmax_cross_entropy",), layers=2,
                                   conventions={"loss.log_guard": "add:1e-7"})
