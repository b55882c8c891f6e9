"""The float64 bounds are derived, not typed in: a run's from the spread of the reference's own run under rounding-sized
nudges (findings.shadow_run), so that an ill-conditioned run (a bias before batch norm, under Adam) is measured and
said, not failed, while a wrong update there is still caught; and each bound can fail."""

import re
from dataclasses import replace

import numpy as np
import pytest

from crosscheck import reference
from crosscheck.common.config import Config
from crosscheck.common.driver import Run
from crosscheck.diagnosis.catalogue import BY_ID as BUGS
from crosscheck.report import run as report
from crosscheck.suite.cases import BY_ID, Case
from crosscheck.verdict import checks
from crosscheck.verdict.compare import Disagreement
from crosscheck.verdict.findings import reference_run, shadow_run

# Linear -> BatchNorm -> ReLU under Adam: the first layer's bias has an exact gradient of 0 (batch norm subtracts it
# again), so each implementation's gradient there is its own rounding noise, which Adam divides by its own RMS.
BN_ADAM = ["--model", "dense:4:8,batchnorm:8,relu,dense:8:3,softmax", "--loss", "softmax_cross_entropy",
           "--optimizer", "adam", "--lr", "0.01", "--samples", "32", "--batch-size", "8", "--epochs", "60"]
BN_CASE = Case("bounds-linear-batchnorm-adam", Config(
    model=(("dense", 4, 8), ("batchnorm", 8), "relu", ("dense", 8, 3), "softmax"), loss="softmax_cross_entropy",
    optimizer="adam", lr=0.01, epochs=60, batch_size=8), samples=32)


@pytest.mark.frameworks
def test_linear_batchnorm_adam_agrees_and_is_said_to_be_ill_conditioned(driver, device, capsys):
    """Correct code on the ill-conditioned run agrees (exit 0), and the report says which leaf amplifies rounding and
    why: its gradient is rounding noise, which Adam scales up to steps of the learning rate."""
    status = report.main([*BN_ADAM, "--backends", driver.name, "--device", device, "--no-progress", "--plot", ""])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "ill-conditioned: layer 1 bias moves" in text
    assert "its gradient is rounding noise" in text
    assert "layer 1 weight moves" not in text  # the well-conditioned leaves are not called ill-conditioned


@pytest.mark.frameworks
def test_a_wrong_update_in_the_ill_conditioned_run_is_still_caught_and_named(driver, device, mutate, capsys):
    """The bound follows the spread leaf by leaf: Adam's bias correction off by one step, planted in the backend,
    moves the well-conditioned leaves far past theirs; the run disagrees and the diagnosis names the mistake."""
    BUGS["adam-bias-correction-off-by-one"].plant(mutate, driver.name)
    status = report.main([*BN_ADAM, "--backends", driver.name, "--device", device, "--no-progress", "--plot", ""])
    text = capsys.readouterr().out
    assert status == 1, text
    assert "[adam-bias-correction-off-by-one]" in text


def _nudged_run(run, leaf, by):
    """run with one parameter leaf (0-based, in flat order) moved by the relative amount by at every checkpoint."""
    def moved(state):
        flat = [t for layer in state.params for t in layer]
        flat[leaf] = flat[leaf] * (1 + by)
        it = iter(flat)
        return state._replace(params=[tuple(next(it) for _ in layer) for layer in state.params])

    checkpoints = {e: moved(s) for e, s in run.checkpoints.items()}
    return Run(losses=run.losses, checkpoints=checkpoints, params=run.params, state=run.state)


def test_the_shadow_bound_passes_rounding_and_fails_more():
    """A well-conditioned run's leaf moved by one ulp passes; moved by 1e-9 (far past its shadow spread, far inside
    the old fixed rtol of 1e-10 times ten) it fails, the message giving the spread it was held to."""
    case = BY_ID["relu-softmax-ce-minibatch"]
    ref = reference_run(case, "float64")
    checks.check_trajectory(reference.DRIVER, case, "float64", run=_nudged_run(ref, 0, 2.0 ** -52), ref=ref)
    with pytest.raises(Disagreement, match="layer 1 weight disagrees with the reference's run: .* rounding") as failure:
        checks.check_trajectory(reference.DRIVER, case, "float64", run=_nudged_run(ref, 0, 1e-9), ref=ref)
    assert "all agree" not in str(failure.value)  # the vote holds the run to the verdict's bounds


def test_the_shadow_run_is_deterministic_and_moves_by_rounding_alone():
    """The shadow run is seeded (the same spread twice) and its nudges are rounding-sized: on a well-conditioned
    case it stays within a few hundred ulps of the reference's run at every checkpoint, not on top of it."""
    case = BY_ID["relu-softmax-ce-minibatch"]
    ref, shadow = reference_run(case, "float64"), shadow_run(case, "float64")
    again = shadow_run.__wrapped__(case, "float64")
    for e in ref.checkpoints:
        for a, b, c in zip(checks.flat(ref.checkpoints[e].params), checks.flat(shadow.checkpoints[e].params),
                           checks.flat(again.checkpoints[e].params)):
            np.testing.assert_array_equal(b, c)
            assert np.max(np.abs(a - b)) <= 512 * 2.0 ** -52 * max(1.0, np.max(np.abs(a)))
    assert any(not np.array_equal(a, b) for a, b in zip(checks.flat(ref.params), checks.flat(shadow.params)))


def test_ill_conditioned_names_the_leaf_and_why():
    lines = checks.ill_conditioned(BN_CASE)
    assert len(lines) == 1 and lines[0].startswith("ill-conditioned: layer 1 bias moves"), lines
    assert "its gradient is rounding noise" in lines[0] and "adam divides by its own RMS" in lines[0]
    assert checks.ill_conditioned(BY_ID["relu-softmax-ce-minibatch"]) == []


def test_a_sharded_or_mixed_case_has_no_shadow_of_its_own():
    """Below float64 the low-precision rule bounds a run (the reference in that dtype), not the shadow run."""
    case = replace(BN_CASE, id="bounds-mixed", config=BN_CASE.config.replace(dtype="float32", compute="bfloat16"))
    assert checks.ill_conditioned(case) == []


STATEFUL = Case("bounds-program-momentum", Config(model=(("dense", 3, 5), "tanh", ("dense", 5, 1), "identity"),
                                                  loss="mse", optimizer="momentum", lr=0.05, epochs=12, batch_size=4),
                samples=12)


def _stateful(planted):
    import sys
    from pathlib import Path

    from crosscheck.exchange.command import command

    program = Path(__file__).with_name("stateful_program.py")
    return command([sys.executable, str(program), *(["--planted"] if planted else [])],
                   name="planted" if planted else "mine")


def test_a_programs_step_by_step_lead_reads_only_what_it_returned():
    """A --command program cannot be handed step 1's optimizer state (the problem file carries none), so the lead
    trains its steps 1 and 2 at once, each returning its state at a checkpoint: a correct momentum program agrees and
    gets no lead; one that drops its buffer after each step is told so after step 1, with no stretch boundary said
    (it never crossed one)."""
    pytest.importorskip("safetensors")
    assert checks.first_steps(_stateful(False), STATEFUL, "float64") == []
    checks.check_trajectory(_stateful(False), STATEFUL, "float64")
    lead = checks.first_steps(_stateful(True), STATEFUL, "float64")
    # the buffer it drops parts at step 1 already (the parameters do at step 2): read from what the program returned
    assert lead == ["planted: first parts after step 1: momentum momentum buffer of layer 1 weight, momentum momentum "
                    "buffer of layer 1 bias, momentum momentum buffer of layer 2 weight, momentum momentum buffer of "
                    "layer 2 bias"], lead
    with pytest.raises(Disagreement, match="planted: first parts after step 1: momentum momentum buffer") as failure:
        checks.check_trajectory(_stateful(True), STATEFUL, "float64")
    assert "stretch boundary" not in str(failure.value)


def test_the_vote_says_float32_alone_is_to_blame_only_where_the_implementation_voted_in_float64():
    """A float32-only implementation gives no float64 ballot: it is voted in float32 (each voter's float32 result
    within the float32 rule's bounds), never told the disagreement is specific to float32; one that voted (and
    agreed) in float64 gets that line."""
    from dataclasses import replace as swap

    from crosscheck.verdict.vote import vote

    pytest.importorskip("torch")
    case = BY_ID["relu-softmax-ce-minibatch"]
    only32 = swap(reference.DRIVER, name="only32", reference=False,
                  supports=lambda config: "float32 only" if config.dtype == "float64" else None)
    line, _ = vote(only32, case, "float32", "gradients")
    assert line.startswith("vote on the gradients (float32, ") and line.endswith("all agree"), line
    both = swap(reference.DRIVER, name="both", reference=False)
    line, _ = vote(both, case, "float32", "gradients")
    assert "(float64, " in line and "all agree; the disagreement is specific to float32" in line, line


def test_a_float32_only_program_with_a_backward_slip_is_diagnosed_and_voted_in_float32(capsys):
    """A --command program that answers float32 problems alone (as llm.c's trainer does), its hidden layer's backward
    missing tanh's derivative: the report's diagnosis runs in float32, says where the gradients part, names the
    catalogue's mistake, and the float32 vote names the program; the same program without the slip agrees."""
    import sys
    from pathlib import Path

    pytest.importorskip("safetensors")
    program = f"{sys.executable} {Path(__file__).with_name('stateful_program.py')} --float32-only"
    common = ["--model", "dense:3:5,tanh,dense:5:1,identity", "--loss", "mse", "--optimizer", "momentum", "--lr",
              "0.05", "--samples", "12", "--batch-size", "4", "--epochs", "12", "--dtype", "float32",
              "--no-progress", "--plot", ""]
    from crosscheck import backends

    saved = dict(backends._plugins)
    try:
        assert report.main(["--command", f"ok={program}", "--backends", "ok", *common]) == 0, capsys.readouterr().out
        capsys.readouterr()
        status = report.main(["--command", f"slip={program} --planted-backward", "--backends", "slip", *common])
    finally:
        backends._plugins.clear()
        backends._plugins.update(saved)
    text = capsys.readouterr().out
    assert status == 1, text
    assert "diagnosis of slip on report (float32, the first step):" in text, text
    assert "the gradients first differ at layer 1" in text and "[missing-hidden-derivative]" in text, text
    assert "planted in the NumPy float32 reference" in text
    if "vote on the gradients (float32" in text:  # with a framework installed, a third voter: the vote is held
        assert re.search(r"vote on the gradients \(float32, \d voters\): .*the odd one out: slip", text), text
