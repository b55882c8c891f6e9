"""The precision ladder: every backend agrees with the NumPy reference in bfloat16 and float16 (README.md, "Low
precision"), within the low-precision rule: a multiple of the NumPy reference's own deviation in the dtype, measured
on the same values (crosscheck/tolerances.py LOW)."""

import numpy as np
import pytest

from common import dtypes
from crosscheck import checks
from crosscheck.cases import HALF_CASES, MIXED_CASES, half_failure

HALF = [pytest.param(case, marks=[] if case.id == "seed1-xor" else [pytest.mark.slow], id=case.id)
        for case in HALF_CASES]


@pytest.fixture(params=dtypes.HALF)
def half(request):
    if request.param == "bfloat16":
        pytest.importorskip("ml_dtypes", reason="bfloat16 needs ml_dtypes (the low-precision extra)")
    return request.param


@pytest.mark.parametrize("case", HALF)
def test_forward_output_agrees_in_16_bits(driver, device, case, half):
    checks.check_forward(driver, case, half, device)


@pytest.mark.parametrize("case", HALF)
def test_manual_gradients_agree_in_16_bits(driver, device, case, half):
    checks.check_gradients(driver, case, half, device)


@pytest.mark.frameworks
@pytest.mark.parametrize("case", HALF)
def test_autodiff_oracle_agrees_in_16_bits(driver, device, case, half):
    checks.check_gradients(driver, case, half, device, autodiff=True)


def test_jax_autodiff_sums_a_broadcast_bias_in_bfloat16():
    """Where a framework's autodiff cannot follow the rule, measured: JAX differentiates a broadcast bias with
    lax.reduce_sum, which XLA:CPU accumulates in bfloat16 when fused with its operand (jnp.sum upcasts to float32). On
    char-lstm-many-to-many-sgd's 540 positions (30 samples x 18 steps) JAX's autodiff dense bias gradient strayed
    2.7e-2, past the bound's 1.6e-2 (the manual JAX backward, which sums with jnp, agrees). On its own: the gradient
    of sum((x + b)^2) for b broadcast over 540 rows
    of x = 0.01 is 540 * 0.02 = 10.8 (10.8125 in bfloat16) when summed in float32; compiled, JAX gives 8, where a
    bfloat16 accumulator stalls (8 + 0.02 rounds back to 8). If this starts to pass, JAX follows the rule and the
    finding can go."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x, b = jnp.full((30, 18, 10), 0.01, jnp.bfloat16), jnp.zeros(10, jnp.bfloat16)
    db = jax.jit(jax.grad(lambda b: jnp.sum(((x + b) * (x + b)).astype(jnp.float32))))(b)
    assert float(db[0]) == 8.0
    assert float(jax.jit(lambda x: jnp.sum(2 * x, axis=(0, 1)))(x)[0]) == pytest.approx(10.8, rel=2 ** -8)


@pytest.mark.parametrize("case", HALF)
def test_trajectory_agrees_in_16_bits(driver, device, case, half):
    """Loss at every step and parameters at the checkpoints; a run known not to train in the dtype alone (Adam in
    float16) must diverge in the reference, as measured, rather than be skipped."""
    reason = half_failure(case, half)
    if reason is None:
        checks.check_trajectory(driver, case, half, device, epochs=case.short_epochs)
        return
    with np.errstate(all="ignore"):
        run = checks.reference_run(case, half, case.short_epochs)
    assert not np.isfinite(run.losses.astype(np.float64)).all(), f"{case.id} trained in {half}: no longer {reason}"


MIXED = [pytest.param(case, marks=[] if case.id.startswith("seed1-xor") else [pytest.mark.slow], id=case.id)
         for case in MIXED_CASES]


@pytest.mark.parametrize("case", MIXED)
def test_trajectory_agrees_in_mixed_precision(driver, device, case):
    """Computed in bfloat16 or float16 on float32 master weights and state (float16 with loss scaling, the dynamic
    scaler's skipped steps compared exactly), against the NumPy reference's mixed-precision run, bounded by its own
    deviation from the float64 run of the same values; XOR's first 2,500 epochs by default, all 10,000 with
    --run-slow."""
    if case.config.compute == "bfloat16":
        pytest.importorskip("ml_dtypes", reason="bfloat16 needs ml_dtypes (the low-precision extra)")
    checks.check_trajectory(driver, case, "float32", device, epochs=case.short_epochs)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in MIXED_CASES if c.slow], ids=lambda c: c.id)
def test_full_trajectory_agrees_in_mixed_precision(driver, device, case):
    checks.check_trajectory(driver, case, "float32", device)
