"""The loop body of examples/seed_loop.py with one planted mistake: the output bias's update lacks the learning rate.

    pytest --pyargs crosscheck_tests --implementation loop=examples.seed_loop_buggy:DRIVER --backends loop

Every gradient it implies at a learning rate of 1 is right; the suite reads the step back at a second learning
rate and says the update rule is wrong: "the layer 2 bias update is not W − lr × gradient ... it looks like the
learning rate is missing".
"""

from crosscheck.adapters import step_function
from examples.seed_loop import forward, logistic


def step(w1, b1, w2, b2, X, d, lr):
    hidden = logistic(w1 @ X + b1)
    out = logistic(w2 @ hidden + b2)
    delta_out = (d - out) * out * (1 - out)
    delta_hidden = (w2.T @ delta_out) * hidden * (1 - hidden)
    w2 += lr * delta_out @ hidden.T
    b2 += delta_out.sum(axis=1, keepdims=True)  # planted: lr * missing
    w1 += lr * delta_hidden @ X.T
    b1 += lr * delta_hidden.sum(axis=1, keepdims=True)


DRIVER = step_function(step, name="loop", params="w1 b1 w2 b2", layout="columns", targets="flat", forward=forward)
