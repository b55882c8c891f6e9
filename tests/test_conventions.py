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
    """The kink problem's gradients, worked by hand: z_1 = 0, so relu'(0) = 0 stops every gradient of layer 1, and
    a_1 = 0 makes dW_2 = a_1^T dz_2 = 0; the output is b_2 = 0, so dz_2 = a_2 - y = -1 and db_2 = -N per output."""
    params, X, y = kink_problem()
    _, grads = run(params, X, y, KINK, device)
    expected = [(np.zeros_like(W), np.zeros_like(b)) for W, b in params]
    expected[1] = (expected[1][0], np.full_like(params[1][1], -float(len(X))))
    for l, ((dW, db), (rW, rb)) in enumerate(zip(grads, expected), start=1):
        assert_close(dW, rW, tolerances.float64("gradient"), what=f"layer {l} weight gradient at the kink",
                     backend=backend)
        assert_close(db, rb, tolerances.float64("gradient"), what=f"layer {l} bias gradient at the kink",
                     backend=backend)


def test_fused_losses_stay_finite_where_the_output_saturates(driver, device):
    """Where softmax underflows or the sigmoid rounds to 0 or 1, the unfused forms give log(0) and 0/0; the fused
    ones, read from the logits, give the exact loss and gradient (worked by hand in checks.SATURATION), in both
    dtypes."""
    assert len(checks.check_saturation(driver, device)) == 3 * len(checks.SATURATION) * len(checks.SATURATED_LOSS)


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
