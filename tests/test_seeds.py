"""The seed notebooks' XOR runs, reproduced by the reference from the same random numbers.

The notebooks set no seed, so their printed figures cannot be regenerated bit for
bit; instead their loops, transcribed independently in crosscheck/suite/seedloops.py,
are run from np.random.RandomState(seed) exactly as the notebooks would draw, and
the reference must retrace them, log lines included.
"""

import numpy as np
import pytest

from crosscheck import reference
from crosscheck.reference.data import xor
from crosscheck.suite import seedloops
from crosscheck.suite.cases import BY_ID
from crosscheck.verdict import tolerances
from crosscheck.verdict.checks import reference_run
from crosscheck.verdict.compare import assert_close

TRAJECTORY = tolerances.float64("trajectory")
XOR_TARGETS = np.array([[0.0], [1.0], [1.0], [0.0]])


def test_initial_params_are_the_notebooks_draws():
    W_ih, W_ho = seedloops.seed1_initial(0)
    (W1, b1), (W2, b2) = reference.initial_params(reference.SEED1_XOR)
    np.testing.assert_array_equal(W1, W_ih)
    np.testing.assert_array_equal(W2, W_ho)
    assert not b1.any() and not b2.any()
    w1, bb1, w2, bb2 = seedloops.seed2_initial(0)
    (W1, b1), (W2, b2) = reference.initial_params(reference.SEED2_XOR)
    for ours, theirs in ((W1, w1.T), (b1, bb1[:, 0]), (W2, w2.T), (b2, bb2[:, 0])):
        np.testing.assert_array_equal(ours, theirs)


def _seed1_run(epochs):
    X, y = xor()
    logged = []
    final = seedloops.seed1_train(X, y, *seedloops.seed1_initial(0), lr=0.1, epochs=epochs,
                                  log=lambda e, v: logged.append((e, v)))
    return final, logged


def test_seed1_run_is_retraced():
    """2-4-1, 10,000 epochs; the notebook logs the mean squared error at epochs 0, 4000, 8000."""
    (W_ih, b_h, W_ho, b_o), logged = _seed1_run(reference.SEED1_XOR.epochs)
    run = reference_run(BY_ID["seed1-xor"], "float64")
    (W1, b1), (W2, b2) = run.params
    for ours, theirs, what in ((W1, W_ih, "layer 1 weight"), (b1, b_h[0], "layer 1 bias"),
                               (W2, W_ho, "layer 2 weight"), (b2, b_o[0], "layer 2 bias")):
        assert_close(ours, theirs, TRAJECTORY, what=what, backend="numpy vs notebook 1", epoch=10_000)
    # half_sse over 4 samples of 1 output is 2x the mean squared error the notebook prints.
    ours = [(e, 2 * run.losses[e, 0] / 4) for e, _ in logged]
    assert [e for e, _ in logged] == [0, 4000, 8000]
    assert_close(np.array([v for _, v in ours]), np.array([v for _, v in logged]), TRAJECTORY,
                 what="logged mean squared error", backend="numpy vs notebook 1")


def _assert_learns_xor(params, config):
    output = reference.DRIVER.run_forward(params, xor()[0], config)
    assert np.all(np.abs(output - XOR_TARGETS) < 0.1), f"did not learn XOR: outputs {output.ravel()}"


def test_seed1_run_learns_xor():
    _assert_learns_xor(reference_run(BY_ID["seed1-xor"], "float64").params, reference.SEED1_XOR)


def _seed2_run(epochs):
    X, y = xor()
    logged = []
    final = seedloops.seed2_train(X.T, y[:, 0], *seedloops.seed2_initial(0), lr=0.1, epochs=epochs,
                                  log=lambda e, v: logged.append((e, v)))
    return final, logged


def _assert_seed2_params(params, final, epoch):
    """Our (W (in, out), b (out,)) against the notebook's (w (out, in), b (out, 1))."""
    (W1, c1), (W2, c2) = params
    w1, b1, w2, b2 = final
    for ours, theirs, what in ((W1, w1.T, "layer 1 weight"), (c1, b1[:, 0], "layer 1 bias"),
                               (W2, w2.T, "layer 2 weight"), (c2, b2[:, 0], "layer 2 bias")):
        assert_close(ours, theirs, TRAJECTORY, what=what, backend="numpy vs notebook 2", epoch=epoch)


def test_seed2_short_run_is_retraced():
    """The first 20,000 epochs of notebook 2 in the default run, its two log lines included."""
    case = BY_ID["seed2-xor"]
    final, logged = _seed2_run(case.short_epochs)
    run = _assert_seed2_log(case, logged)
    _assert_seed2_params(run.params, final, case.short_epochs)


@pytest.mark.slow
def test_seed2_run_is_retraced_and_learns_xor():
    """2-2-1, 180,000 epochs; the notebook logs the average absolute error every 10,000 epochs."""
    case = BY_ID["seed2-xor"]
    final, logged = _seed2_run(case.config.epochs)
    assert [e for e, _ in logged] == list(range(9_999, 180_000, 10_000))
    run = _assert_seed2_log(case, logged)  # a run of all 180,000 epochs: the last logged epoch is 179,999
    _assert_seed2_params(run.params, final, case.config.epochs)
    _assert_learns_xor(run.params, reference.SEED2_XOR)


def _assert_seed2_log(case, logged):
    """The notebook logs |d - a2| from the forward pass of epoch e, i.e. with the params after e epochs. Returns the
    reference's run, to the epoch after the last logged one."""
    config, params, X, y, _ = case.inputs("float64", logged[-1][0] + 1)
    run = reference.DRIVER.run_train(params, X, y, config, checkpoints=[e for e, _ in logged])
    ours = [np.mean(np.abs(y - reference.DRIVER.run_forward(run.checkpoints[e].params, X, config))) for e, _ in logged]
    assert_close(np.array(ours), np.array([v for _, v in logged]), TRAJECTORY, what="logged average error",
                 backend="numpy vs notebook 2")
    return run
