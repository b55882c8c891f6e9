"""A deliberately wrong backward pass in any one backend fails the suite, naming the quantity.

(The full bug catalogue is tests/test_bug_catalogue.py; these are the two classics.)
"""

from functools import partial

import pytest

from crosscheck.diagnosis import mutations
from crosscheck.diagnosis.catalogue import BY_ID as BUGS
from crosscheck.suite.cases import BY_ID
from crosscheck.verdict import checks
from crosscheck.verdict.compare import Disagreement


@pytest.mark.frameworks
def test_sigmoid_derivative_from_z_instead_of_a(driver, device, mutate):
    """f'(z) = a (1 - a) computed from z: wrong in both layers of the seeds' network."""
    BUGS["sigmoid-derivative-from-z"].plant(mutate, driver.name)
    with pytest.raises(Disagreement) as info:
        checks.check_gradients(driver, BY_ID["seed1-xor"], "float64", device)
    text = str(info.value)
    assert f"{driver.name}: layer 2 weight gradient disagrees" in text
    assert f"{driver.name}: layer 1 weight gradient disagrees" in text
    assert "loss disagrees" not in text  # the forward pass is untouched, and the message says so


@pytest.mark.frameworks
def test_missing_transpose_in_backward(driver, device, mutate):
    """dx = dz W instead of dz W^T: silent where W is square (layers 2 to 4 of the deep case are 8x8)."""
    BUGS["missing-transpose"].plant(mutate, driver.name)
    with pytest.raises(Disagreement) as info:
        checks.check_gradients(driver, BY_ID["deep-tanh-sigmoid-mse"], "float64", device)
    text = str(info.value)
    assert "layer 4 weight gradient disagrees" not in text  # the last layer is computed before the bug bites
    assert "layer 2 weight gradient disagrees" in text


@pytest.mark.frameworks
def test_bugs_do_not_outlive_their_test(driver, device):
    """Plant, check, undo, check again, in one test (so no test order can make it check nothing): after the
    undo the same backend agrees again, with no leaked patch or stale compiled code."""
    case = BY_ID["deep-tanh-sigmoid-mse"]
    checks.check_gradients(driver, case, "float64", device)  # compiled (JAX) and cached before the plant
    patch = pytest.MonkeyPatch()
    BUGS["missing-transpose"].plant(partial(mutations.mutate, patch), driver.name)
    with pytest.raises(Disagreement):
        checks.check_gradients(driver, case, "float64", device)
    patch.undo()
    mutations.clear_caches()
    checks.check_gradients(driver, case, "float64", device)
    checks.check_gradients(driver, BY_ID["seed1-xor"], "float64", device)
