"""examples/gpt2_block_numpy.py with one planted mistake: the tied token embedding given one of its two gradients
(the embedding's use overwrites the output layer's, where its gradient is their sum).

    crosscheck --implementation gpt2=examples.gpt2_block_numpy_buggy:DRIVER --backends gpt2 ...
"""

import numpy as np

from examples import gpt2_block_numpy as correct


def overwritten(dwte_out, X, dx0):
    dwte = np.zeros_like(dwte_out)  # planted: should start from dwte_out, the output layer's gradient
    np.add.at(dwte, X, dx0)
    return dwte


def grads(p, X, y):
    return correct.grads(p, X, y, embedding=overwritten)


DRIVER = correct.driver(grads)
