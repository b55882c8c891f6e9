"""Whom a failure blames, and whether the oracles themselves can be trusted.

A bug in the reference must be blamed on the reference (a majority vote of the frameworks, their autodiff
and central differences); a crash must be reported like a disagreement; the finite-difference oracle is
checked against closed forms, and the Taylor remainder tells a right gradient (order 2) from a wrong one
(order 1) without any step size to tune; a float32 run must really round in float32.
"""

import numpy as np
import pytest

from crosscheck import backends
from crosscheck.diagnosis.catalogue import BY_ID as BUGS
from crosscheck.suite.cases import BY_ID, CASES
from crosscheck.verdict import checks, probes
from crosscheck.verdict.compare import Disagreement

BIAS_AVERAGED = BUGS["bias-gradient-averaged"]


@pytest.mark.frameworks
def test_a_bug_in_the_reference_is_blamed_on_the_reference(driver, device, mutate):
    """The reference's bias gradient averaged: the framework under check disagrees, and the vote says why."""
    BIAS_AVERAGED.plant(mutate, backends.REFERENCE)
    with pytest.raises(Disagreement) as info:
        checks.check_gradients(driver, BY_ID["seed1-xor"], "float64", device)
    text = str(info.value)
    assert f"{driver.name}: layer 2 bias gradient disagrees" in text
    assert "the odd one out: numpy (the reference)" in text, text
    assert "central differences" in text.split("vote on the gradients")[1].split("the odd one out")[0]


@pytest.mark.frameworks
@pytest.mark.parametrize("spare", [False, True])
def test_central_differences_are_not_asked_once_a_majority_stands_without_them(driver, device, mutate, monkeypatch,
                                                                                spare):
    """Central differences take two losses per parameter: past vote.VOTE_FD_ALWAYS parameters they vote only where the
    others leave the majority open, and the line says they were not asked; at or below it they always vote."""
    from crosscheck.verdict import vote

    monkeypatch.setattr(vote, "VOTE_FD_ALWAYS", 0 if spare else 10 ** 6)
    monkeypatch.setattr(vote, "_BALLOTS", {})
    BIAS_AVERAGED.plant(mutate, driver.name)
    with pytest.raises(Disagreement) as info:
        checks.check_gradients(driver, BY_ID["seed1-xor"], "float64", device)
    line = next(line for line in str(info.value).splitlines() if line.startswith("vote on the gradients"))
    assert line.endswith(f"the odd one out: {driver.name}"), line
    said = "central differences not asked: a majority stood without them"
    assert (said in line and "central differences agree" not in line) if spare else \
        ("central differences" in line.split("the odd one out")[0] and said not in line), line


@pytest.mark.frameworks
def test_a_bug_in_a_framework_is_blamed_on_that_framework(driver, device, mutate):
    BIAS_AVERAGED.plant(mutate, driver.name)
    with pytest.raises(Disagreement) as info:
        checks.check_gradients(driver, BY_ID["seed1-xor"], "float64", device)
    assert f"the odd one out: {driver.name}\n" in str(info.value) + "\n", str(info.value)


@pytest.mark.frameworks
def test_a_bug_in_the_training_loop_is_blamed_by_a_trajectory_vote(driver, device, mutate):
    BUGS["learning-rate-twice"].plant(mutate, driver.name)
    with pytest.raises(Disagreement) as info:
        checks.check_trajectory(driver, BY_ID["seed1-xor"], "float64", device, epochs=50)
    assert "vote on the trajectory (float64, " in str(info.value)
    assert f"the odd one out: {driver.name}" in str(info.value)


@pytest.mark.builtin
def test_a_crash_is_a_reported_disagreement(driver, device, mutate):
    """A missing transpose is a shape error wherever the layers are not square: reported, naming who and where."""
    BUGS["missing-transpose"].plant(mutate, driver.name)
    with pytest.raises(Disagreement, match=r"gradients: raised \w+Error: .*\(a crash, not a result\)") as info:
        checks.check_gradients(driver, BY_ID["seed1-xor"], "float64", device)
    assert str(info.value).startswith(f"{driver.name}: "), str(info.value)


def test_the_finite_difference_oracle_matches_closed_forms():
    assert len(probes.check_oracle()) == 2


def test_a_one_sided_oracle_is_caught(mutate):
    """Made one-sided with a step of 1e-2, the oracle is off by O(1e-2): its own check names it."""
    mutate("crosscheck.reference.gradcheck", "g[i] = (f(_bumped(x, i, eps)) - f(_bumped(x, i, -eps))) / (2 * eps)",
           "g[i] = (f(_bumped(x, i, 1e-2)) - f(x)) / 1e-2")
    with pytest.raises(Disagreement, match="central differences vs the closed form: d/dx sum sin"):
        probes.check_oracle()


# A kind's second case with --run-slow, as everywhere else (conftest.py's case fixture): by default it cost 20 s.
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.second else [])
                                  for c in CASES])
def test_taylor_remainder_shrinks_as_h_squared(driver, device, case, record_property):
    order, remainders = probes.taylor_order(driver, case, device)
    record_property("taylor_order", order)
    assert 1.8 <= order <= 2.3, f"{driver.name} on {case.id}: observed order {order:.2f}, remainders {remainders}"


def test_taylor_remainder_shrinks_only_as_h_for_a_wrong_gradient(driver, device, mutate):
    if driver.name not in backends.REGISTRY:
        pytest.skip("plants a bug in a built-in backend's source")
    BIAS_AVERAGED.plant(mutate, driver.name)
    order, remainders = probes.taylor_order(driver, BY_ID["seed1-xor"], device)
    assert 0.8 <= order <= 1.2, f"{driver.name}: observed order {order:.2f} for a wrong gradient, {remainders}"


def test_a_float32_run_rounds_in_float32(driver, device):
    assert len(probes.check_float32_rounding(driver, device)) == 3


def test_the_rounding_probe_tells_float64_from_float32():
    """The probe's premise, checked in float64: there, the same problem gives what float32 must not."""
    from crosscheck import reference
    from crosscheck.reference import Config

    p = probes.ROUNDING_FORWARD
    config = Config(layers=(2, 1), output="identity", loss="half_sse", init="standard_normal", epochs=1)
    out = reference.DRIVER.run_forward([(np.array(p["W"]), np.array(p["b"]))], np.array(p["X"]), config)
    assert out[0, 0] == 2.0**-30
    p = probes.ROUNDING_TRAIN
    config = config.replace(layers=(1, 1), lr=p["lr"], epochs=p["epochs"])
    run = reference.DRIVER.run_train([(np.array(p["W"]), np.array(p["b"]))], np.array(p["X"]), np.array(p["y"]),
                                     config)
    assert np.float32(run.params[0][0][0, 0]) < 1.0  # the float64 run's drift survives the cast to float32
