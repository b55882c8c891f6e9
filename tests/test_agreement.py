"""The cross-check: every backend agrees with the NumPy reference on outputs, gradients and whole runs."""

import pytest

from crosscheck.suite.cases import CASES
from crosscheck.verdict import checks


@pytest.mark.exercises
def test_forward_output_agrees(driver, device, case, dtype):
    checks.check_forward(driver, case, dtype, device)


@pytest.mark.exercises
def test_manual_gradients_agree(driver, device, case, dtype):
    checks.check_gradients(driver, case, dtype, device)


@pytest.mark.frameworks
def test_autodiff_oracle_agrees(driver, device, case, dtype):
    """The framework's own autodiff of the same loss: an oracle independent of anyone's backward()."""
    checks.check_gradients(driver, case, dtype, device, autodiff=True)


def test_reference_matches_finite_differences(case):
    checks.check_finite_differences(case)


@pytest.mark.exercises
def test_trajectory_agrees(request, driver, device, case, dtype):
    """Loss at every step and parameters at four checkpoints; slow cases over their short run here (with --run-slow
    their full run, below, begins with the same epochs and checks them all)."""
    if case.slow and request.config.getoption("--run-slow"):
        pytest.skip("--run-slow: test_full_trajectory_agrees runs the whole of this run")
    checks.check_trajectory(driver, case, dtype, device, epochs=case.short_epochs)


@pytest.mark.slow
@pytest.mark.parametrize("slow_case", [c for c in CASES if c.slow], ids=lambda c: c.id)
def test_full_trajectory_agrees(driver, device, slow_case, dtype):
    """The seeds' full-length runs (180,000 epochs for seed 2)."""
    checks.check_trajectory(driver, slow_case, dtype, device)
