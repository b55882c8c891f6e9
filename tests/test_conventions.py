"""Conventions stated in docs/conventions.md, checked: relu's kink, the fused softmax, float32 staying float32."""

import numpy as np
import pytest

from crosscheck import reference
from crosscheck.reference import Config
from crosscheck.reference.data import xor
from crosscheck.verdict import probes, tolerances
from crosscheck.verdict.compare import assert_close

from .test_mirrors import FAMILIES

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
    ones, read from the logits, give the exact loss and gradient (worked by hand in probes.SATURATION), in both
    dtypes."""
    assert len(probes.check_saturation(driver, device)) == 3 * len(probes.SATURATION) * len(probes.SATURATED_LOSS)


@pytest.mark.builtin
def test_unfused_loss_pieces_are_right_on_their_own(driver, device):
    """bce_forward / bce_backward (dL/da) are off the training path, which uses the fused form: check them
    against central differences, and chained through sigmoid' against the fused dL/dz."""
    diffs = probes.check_loss_pieces(driver, device)
    assert len(diffs) == 2 * len(probes.UNFUSED_PIECES)


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


# The reference's numerics, where every sum and mean goes through crosscheck.reference.precision (total, average): the
# precision rule in one place. A reduction written another way (x.sum(), np.mean, a float64 accumulator) would pass
# every cross-check in float64 and, accumulated more accurately than float32, in float32 too.
NUMERIC_MODULES = ("activations", *FAMILIES, "losses", "mlp", "optimizers")
REDUCTIONS = {"sum", "mean", "var", "std", "nansum", "nanmean", "reduce", "cumsum", "einsum"}
# What may name float64 in them: an op NumPy lacks, computed in float64 and rounded once (math.erf, element by element).
FLOAT64_ALLOWED = {("activations", "_erf")}


def _calls(tree):
    import ast

    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        for node in ast.walk(function):
            yield function.name, node


def _outside_the_rule(source, module):
    """What in source (a reference module's) reduces outside crosscheck.reference.precision, or names float64."""
    import ast

    found = []
    for function, node in _calls(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in REDUCTIONS:
            found.append(f"{function}(): .{node.func.attr}(...) at line {node.lineno}")
        if isinstance(node, ast.Attribute) and node.attr == "float64" and (module, function) not in FLOAT64_ALLOWED:
            found.append(f"{function}(): float64 at line {node.lineno}")
    return found


@pytest.mark.parametrize("module", NUMERIC_MODULES)
def test_the_references_reductions_go_through_the_precision_rule(module):
    import inspect

    found = _outside_the_rule(inspect.getsource(__import__(f"crosscheck.reference.{module}", fromlist=["_"])), module)
    assert not found, (f"reference/{module.replace('.', '/')}.py reduces outside crosscheck.reference.precision "
                       f"(total, average), or names float64: {'; '.join(found)}")


@pytest.mark.parametrize("bug", ["float32-sum-in-float64", "loss-sum-in-low-precision", "softmax-sum-in-low-precision"])
def test_a_reduction_outside_the_rule_is_seen_in_the_source(bug):
    """The catalogue's reductions outside the rule, written into the reference's source, are each named."""
    import inspect

    from crosscheck.diagnosis.catalogue import BY_ID as BUGS

    planted = BUGS[bug]
    source = inspect.getsource(__import__(f"crosscheck.reference.{planted.module}", fromlist=["_"]))
    assert planted.old in source
    assert _outside_the_rule(source.replace(planted.old, planted.new), planted.module)
