"""Every classic mistake in crosscheck/diagnosis/catalogue.py, planted in every backend in turn, on each of its cases.

A mistake in a framework backend is caught by that backend's own cross-check against
the reference. A mistake in the NumPy reference is caught by every healthy framework
backend disagreeing with it (their autodiff oracles and manual code alike), and the
vote in the message names the reference as the odd one out; or, for a mistake in its
mixed-precision step (which widens the reference's own bound), by its probe. A probe (kink, loss pieces,
float32 rounding, saturation, the oracle) compares with hand-worked values instead, so
the mutated backend is its own witness there. Either way the failure must be a reported
disagreement (never a crash), name the quantity the mistake touches, and not name the
quantities the maths says it leaves untouched.
"""

import numpy as np
import pytest

from crosscheck import backends, reference
from crosscheck.diagnosis.catalogue import BUGS, PROBES
from crosscheck.suite.cases import BY_ID
from crosscheck.verdict import checks, probes
from crosscheck.verdict.compare import Disagreement

from .test_conventions import assert_kink_gradients

PROBE_CHECKS = {
    "kink": lambda driver, device: assert_kink_gradients(driver.name, driver.run_gradients, device),
    "pieces": probes.check_loss_pieces,
    "float32": probes.check_float32_rounding,
    "saturation": probes.check_saturation,
    "oracle": lambda driver, device: probes.check_oracle(),
    "mixed": probes.check_mixed_precision,
    "rule": probes.check_low_precision_rule,
}


def run_check(bug, case_id, driver, device):
    """The cross-check that should catch bug on case_id, against driver."""
    if bug.check in PROBES:
        PROBE_CHECKS[bug.check](driver, device)
        return
    if bug.probe and driver.name == backends.REFERENCE:
        PROBE_CHECKS[bug.probe](driver, device)
        return
    case = BY_ID[case_id]
    if bug.check == "forward":
        checks.check_forward(driver, case, bug.dtype, device)
    elif bug.check == "gradients":
        checks.check_gradients(driver, case, bug.dtype, device)
    else:
        # at most 200 epochs, and never longer than the case's own run (the GPT block's 30 turn chaotic by 200)
        epochs = case.short_epochs or min(case.config.epochs, 200)
        checks.check_trajectory(driver, case, bug.dtype, device, epochs=epochs)


def witnesses(driver, bug):
    """Who checks a mutated backend: itself (against the reference, or in a probe), or, for the reference, the
    frameworks."""
    if driver.name != backends.REFERENCE or bug.check in PROBES or bug.probe:
        return [driver]
    if bug.module == "parallel":  # the reference runs on one device: its simulated shards carry the mistake
        return [reference.SHARDS]
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


def _cost(bug):
    """How long planting bug on its first case takes, as an order: a probe, then a forward or gradient check, then a
    run; among those, the smaller model and the shorter run first (a GPT block's 30 epochs took 3.7 s on JAX's cold
    cache, XOR's a tenth of a second)."""
    if bug.check in PROBES:
        return (0, 0, 0)
    config = BY_ID[next(iter(bug.cases))].config
    return (1 if bug.check in ("forward", "gradients") else 2, len(config.model), config.epochs)


# By default one mistake of each module is planted in each built-in backend that can carry it (the module's cheapest
# there, _cost), on its first case: every backend's op, layer, loss, optimizer and training code carries a planted
# mistake in the default run; every mistake in every backend on every case with --run-slow (tox -e all, CI).
BUILTIN = list(backends.REGISTRY)
DEFAULT_PLANTS: dict = {}
for _bug in sorted(BUGS, key=_cost):
    for _name in _bug.only or BUILTIN:
        DEFAULT_PLANTS.setdefault((_bug.module, _name), _bug.id)
PLANTS = [pytest.param(bug, case_id, id=f"{bug.id}@{case_id}" if case_id else bug.id,
                       marks=[pytest.mark.slow(reason="the catalogue's plants on their other cases")] if i else [])
          for bug in BUGS for i, case_id in enumerate(bug.cases)]


@pytest.mark.builtin
@pytest.mark.parametrize(("bug", "case_id"), PLANTS)
def test_mistake_is_caught_and_named(request, monkeypatch, driver, device, mutate, bug, case_id):
    if bug.only and driver.name not in bug.only:
        pytest.skip(f"{bug.id} can only live in {', '.join(bug.only)}")
    if DEFAULT_PLANTS[bug.module, driver.name] != bug.id and not request.config.getoption("--run-slow"):
        pytest.skip("slow: the catalogue's other plants (one mistake per module in each backend by default)")
    if driver.name != backends.REFERENCE:  # only a mistake in the reference asserts the vote: spare its reruns
        monkeypatch.setattr(checks, "vote", lambda *args, **kwargs: ("vote not taken (bug catalogue)", ()))
    old, new = bug.spelled(driver.name)
    package = backends.REGISTRY[driver.name][0]
    mutate(f"{package}.{bug.module}", old, new)
    expect = bug.cases[case_id]
    for witness in witnesses(driver, bug):
        with pytest.raises(Disagreement) as info, np.errstate(all="ignore"):
            run_check(bug, case_id, witness, device if witness is driver else "cpu")
        text = str(info.value)
        assert "(a crash, not a result)" not in text, f"{bug.id} on {case_id}: a crash, not a disagreement:\n{text}"
        named = "mixed-precision probe" if bug.probe and witness.name == backends.REFERENCE else expect.names
        assert named in text, f"{bug.id}: the message does not name {named!r}:\n{text}"
        for quantity in expect.untouched:
            named = (f": {quantity} disagrees", f": {quantity} in float32", f": {quantity}: ")  # values, shape/dtype
            assert not any(phrase in text for phrase in named), \
                f"{bug.id} on {case_id}: {quantity!r} is untouched by the mistake, yet named:\n{text}"
        if driver.name == backends.REFERENCE and bug.check not in PROBES and not bug.probe \
                and witness is not reference.SHARDS:
            # The vote runs in float64; a float32-only mistake is named by the float32 check itself.
            blame = "the odd one out: numpy (the reference)" if bug.dtype == "float64" else "numpy float32 reference:"
            assert blame in text, f"{bug.id}: the message does not blame numpy ({blame!r}):\n{text}"


def test_catalogue_is_large_and_distinct():
    assert len(BUGS) >= 35
    assert len({b.id for b in BUGS}) == len(BUGS)
    assert len({(b.module, b.old, b.new) for b in BUGS}) == len(BUGS)


def test_every_mistake_is_planted_on_at_least_two_cases_or_is_a_probe():
    for bug in BUGS:
        assert set(bug.cases) <= set(BY_ID) | {""}, bug.id
        assert (bug.check in PROBES and list(bug.cases) == [""]) or len(bug.cases) >= 2, bug.id


def test_the_cases_hold_square_layers_and_partial_batches():
    """A missing transpose runs (instead of crashing) only where the layers after the first are square; a dropped
    last batch shows only where the batch size does not divide N. Both kinds of case exist (and run in both dtypes)."""
    square = [c for c in BY_ID.values() if len(set(c.config.layers[1:])) == 1 and len(c.config.layers) > 3]
    partial = [c for c in BY_ID.values() if c.config.batch_size and (c.samples or 4) % c.config.batch_size]
    assert len(square) >= 2 and len(partial) >= 2, (square, partial)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_plant_in_a_framework_backend_keeps_the_references_cached_runs(request, backend):
    """The reference's cached runs hold planted code only after a plant outside the framework backends: a plant in
    crosscheck.backends.* leaves them, so the catalogue's framework plants do not train the reference again (they did,
    twice a plant, while the check still looked for the backends' modules under their old top-level name)."""
    from crosscheck.diagnosis import mutations
    from crosscheck.verdict.findings import reference_run

    from .strictness import load_or_skip

    load_or_skip(request.config, backend)
    case = BY_ID["seed1-xor"]
    clean = reference_run(case, "float64", 3)
    bug = next(b for b in BUGS if b.check not in PROBES and (not b.only or backend in b.only))
    with mutations.planted(f"{backends.REGISTRY[backend][0]}.{bug.module}", *bug.spelled(backend)):
        assert reference_run(case, "float64", 3) is clean, f"a plant in {backend}'s {bug.module} cleared them"
    assert reference_run(case, "float64", 3) is clean, "undoing the plant cleared them"
    reference_bug = next(b for b in BUGS if b.check not in PROBES and (not b.only or backends.REFERENCE in b.only))
    with mutations.planted(f"{backends.REGISTRY[backends.REFERENCE][0]}.{reference_bug.module}",
                           *reference_bug.spelled(backends.REFERENCE)):
        assert reference_run(case, "float64", 3) is not clean, "a plant in the reference kept its runs"
