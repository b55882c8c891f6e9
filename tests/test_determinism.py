"""The same seed gives bit-identical results, run after run, on every backend."""

import numpy as np

from crosscheck.cases import BY_ID


def test_two_runs_are_bit_identical(driver, device, dtype):
    case = BY_ID["relu-softmax-ce-minibatch"]
    config, params, X, y, orders = case.inputs(dtype)
    first = driver.run_train(params, X, y, config, orders, (50,), device)
    again_config, again_params, again_X, again_y, again_orders = case.inputs(dtype)
    second = driver.run_train(again_params, again_X, again_y, again_config, again_orders, (50,), device)
    np.testing.assert_array_equal(first.losses, second.losses)
    for ours, theirs in zip(first.checkpoints[50] + first.params, second.checkpoints[50] + second.params):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)


def test_training_does_not_modify_its_inputs(driver, device):
    config, params, X, y, orders = BY_ID["tanh-identity-mse-minibatch"].inputs()
    copies = [(W.copy(), b.copy()) for W, b in params], X.copy(), y.copy(), orders.copy()
    driver.run_train(params, X, y, config, orders, device=device)
    for (W, b), (W0, b0) in zip(params, copies[0]):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    np.testing.assert_array_equal(X, copies[1])
    np.testing.assert_array_equal(orders, copies[3])
