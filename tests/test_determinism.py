"""The same seed gives bit-identical results, run after run, on every backend."""

import numpy as np
import pytest

from crosscheck.reference import Config
from crosscheck.suite.cases import BY_ID, Case

# Products large enough for BLAS and XLA to split them over threads, where summation order could vary.
THREADED = Case("threaded", Config(layers=(64, 256, 10), hidden="tanh", output="sigmoid", loss="mse",
                                   init="glorot_uniform", lr=0.05, epochs=5, batch_size=128), samples=512)


@pytest.mark.parametrize("case", [BY_ID["relu-softmax-ce-minibatch"], THREADED], ids=["minibatch", "threaded"])
def test_two_runs_are_bit_identical(driver, device, dtype, case):
    config, params, X, y, orders = case.inputs(dtype)
    middle = config.epochs // 2
    first = driver.run_train(params, X, y, config, orders, (middle,), device)
    again_config, again_params, again_X, again_y, again_orders = case.inputs(dtype)
    second = driver.run_train(again_params, again_X, again_y, again_config, again_orders, (middle,), device)
    np.testing.assert_array_equal(first.losses, second.losses)
    for ours, theirs in zip(first.checkpoints[middle].params + first.params,
                            second.checkpoints[middle].params + second.params):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)


def test_training_does_not_modify_its_inputs(driver, device):
    config, params, X, y, orders = BY_ID["adam-minibatch"].inputs()  # an optimizer with state, minibatches
    copies = [(W.copy(), b.copy()) for W, b in params], X.copy(), y.copy(), orders.copy()
    driver.run_train(params, X, y, config, orders, device=device)
    for (W, b), (W0, b0) in zip(params, copies[0]):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    np.testing.assert_array_equal(X, copies[1])
    np.testing.assert_array_equal(y, copies[2])
    np.testing.assert_array_equal(orders, copies[3])
