"""Every classic mistake in tests/bug_catalogue.py, planted in every backend in turn, fails the suite.

A mistake in a framework backend is caught by that backend's own cross-check against
the reference. A mistake in the NumPy reference is caught by every healthy framework
backend disagreeing with it (their autodiff oracles and manual code alike); the
message must name the quantity either way.
"""

import numpy as np
import pytest

import backends
from bug_catalogue import BUGS
from crosscheck import checks
from crosscheck.cases import BY_ID
from crosscheck.compare import Disagreement
from test_conventions import assert_kink_gradients


def run_check(bug, driver, device):
    """The cross-check that should catch bug, against driver."""
    if bug.check == "kink":
        assert_kink_gradients(driver.name, driver.run_gradients, device)
        return
    if bug.check == "pieces":
        checks.check_loss_pieces(driver, device)
        return
    case = BY_ID[bug.case]
    if bug.check == "forward":
        checks.check_forward(driver, case, bug.dtype, device)
    elif bug.check == "gradients":
        checks.check_gradients(driver, case, bug.dtype, device)
    else:
        checks.check_trajectory(driver, case, bug.dtype, device, epochs=case.short_epochs or 200)


def witnesses(request, driver, bug):
    """Who checks a mutated backend: itself against the reference (or against central differences, for
    the loss pieces), or, for the reference, the frameworks."""
    if driver.name != backends.REFERENCE or bug.check == "pieces":
        return [driver]
    found = []
    for name in backends.REGISTRY:
        if name != backends.REFERENCE:
            try:
                found.append(backends.load(name))
            except backends.BackendUnavailable:
                pass
    if not found:
        pytest.skip("a mistake in the reference is caught by the framework backends: none is installed")
    return found


@pytest.mark.builtin
@pytest.mark.parametrize("bug", BUGS, ids=[b.id for b in BUGS])
def test_mistake_is_caught_and_named(request, driver, device, mutate, bug):
    old, new = bug.spelled(driver.name)
    package = backends.REGISTRY[driver.name][0]
    mutate(f"{package}.{bug.module}", old, new)
    for witness in witnesses(request, driver, bug):
        with pytest.raises(Disagreement) as info, np.errstate(all="ignore"):
            run_check(bug, witness, device if witness is driver else "cpu")
        assert bug.names in str(info.value), f"{bug.id}: the message does not name {bug.names!r}:\n{info.value}"


def test_catalogue_is_large_and_distinct():
    assert len(BUGS) >= 15
    assert len({b.id for b in BUGS}) == len(BUGS)
    assert len({(b.module, b.old, b.new) for b in BUGS}) == len(BUGS)
