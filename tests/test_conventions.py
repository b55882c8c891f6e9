"""Conventions stated in README.md, checked: relu's kink, the fused softmax, float32 staying float32."""

import numpy as np
import pytest

import reference
from crosscheck import checks, tolerances
from crosscheck.compare import assert_close
from reference import Config
from reference.data import xor

KINK = Config(layers=(3, 4, 2), hidden="relu", output="identity", loss="half_sse", init="he_normal", epochs=1)


def kink_problem():
    """Every hidden pre-activation exactly 0: zero first-layer weights and biases."""
    (W1, b1), (W2, b2) = reference.initial_params(KINK)
    X = np.random.default_rng(0).standard_normal((5, 3))
    y = np.ones((5, 2))
    return [(np.zeros_like(W1), np.zeros_like(b1)), (W2, b2)], X, y


def test_reference_relu_derivative_at_the_kink_is_zero():
    params, X, y = kink_problem()
    _, ((dW1, db1), (dW2, db2)) = reference.DRIVER.run_gradients(params, X, y, KINK)
    assert not dW1.any() and not db1.any(), "relu'(0) must be 0: no gradient flows through the kink"
    assert db2.any(), "the output layer still gets a gradient"


def test_backends_take_the_same_kink_convention(driver, device):
    assert_kink_gradients(driver.name, driver.run_gradients, device)


@pytest.mark.frameworks
def test_autodiff_takes_the_same_kink_convention(driver, device):
    """jnp.maximum(z, 0) would fail here: JAX differentiates it as 1/2 at z = 0."""
    assert_kink_gradients(f"{driver.name} autodiff", driver.run_autodiff_gradients, device)


def assert_kink_gradients(backend, run, device):
    params, X, y = kink_problem()
    _, grads = run(params, X, y, KINK, device)
    _, ref = reference.DRIVER.run_gradients(params, X, y, KINK)
    for l, ((dW, db), (rW, rb)) in enumerate(zip(grads, ref), start=1):
        assert_close(dW, rW, tolerances.float64("gradient"), what=f"layer {l} weight gradient at the kink",
                     backend=backend)
        assert_close(db, rb, tolerances.float64("gradient"), what=f"layer {l} bias gradient at the kink",
                     backend=backend)


FUSED_AT_SATURATION = {
    # loss: (config, weights that saturate the output for X = 1, targets the saturated output gets wrong)
    "softmax_cross_entropy": (Config(layers=(1, 2), output="softmax", loss="softmax_cross_entropy",
                                     init="he_normal", epochs=1), [[800.0, -800.0]], [[0.0, 1.0]]),
    "bce": (Config(layers=(1, 2), output="sigmoid", loss="bce", init="he_normal", epochs=1),
            [[800.0, -800.0]], [[0.0, 1.0]]),
}


@pytest.mark.parametrize("loss", list(FUSED_AT_SATURATION))
def test_fused_losses_stay_finite_where_the_output_saturates(driver, device, loss):
    """Where softmax underflows or the sigmoid rounds to 0 or 1, the unfused forms give log(0) and 0/0; the
    fused ones, read from the logits, give the exact loss and gradient (worked by hand: z = (800, -800))."""
    config, W, y = FUSED_AT_SATURATION[loss]
    params = [(np.array(W), np.zeros(2))]
    X, y = np.ones((1, 1)), np.array(y)
    # The reference's sigmoid keeps the seeds' 1 / (1 + exp(-z)): exp(800) overflows, harmlessly, to a = 0.
    with np.errstate(over="ignore"):
        value, ((dW, db),) = driver.run_gradients(params, X, y, config, device)
    # softmax CE: -log softmax(z)_2 = 1600; bce: (log(1 + e^800) - 0 + log(1 + e^-800) + 800) / 2 = 800.
    assert value == {"softmax_cross_entropy": 1600.0, "bce": 800.0}[loss]
    # dz = (a - y) / N (softmax CE) or / (N K) (bce), with a = (1, 0) to the last bit.
    expected = np.array([1.0, -1.0]) / {"softmax_cross_entropy": 1, "bce": 2}[loss]
    np.testing.assert_array_equal(db, expected)
    np.testing.assert_array_equal(dW, [expected])


@pytest.mark.builtin
def test_unfused_loss_pieces_are_right_on_their_own(driver, device):
    """bce_forward / bce_backward (dL/da) are off the training path, which uses the fused form: check them
    against central differences, and chained through sigmoid' against the fused dL/dz."""
    diffs = checks.check_loss_pieces(driver, device)
    assert len(diffs) == 2 * len(checks.UNFUSED_PIECES)


def test_float32_stays_float32(driver, device):
    config = reference.SEED1_XOR.replace(dtype="float32", epochs=3)
    X, y = (a.astype(np.float32) for a in xor())
    run = driver.run_train(reference.initial_params(config), X, y, config, device=device)
    assert run.losses.dtype == np.float32
    assert all(t.dtype == np.float32 for layer in run.params for t in layer)


def test_softmax_backward_is_the_jacobian_vector_product():
    """softmax_backward is never on the training path (cross-entropy fuses it), so check it on its own."""
    rng = np.random.default_rng(1)
    z, da = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    a = reference.activations.softmax_forward(z)
    eps = 1e-6
    numeric = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        bump = np.zeros_like(z)
        bump[i] = eps
        f_plus = np.sum(da * reference.activations.softmax_forward(z + bump))
        f_minus = np.sum(da * reference.activations.softmax_forward(z - bump))
        numeric[i] = (f_plus - f_minus) / (2 * eps)
    assert_close(reference.activations.softmax_backward(da, z, a), numeric, tolerances.float64("finite_difference"),
                 what="softmax backward", backend="numpy vs central differences")
