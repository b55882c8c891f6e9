"""Optimizers with state (common/registry.py): every one, on every backend, in both dtypes.

- the whole trajectory, every optimizer-state leaf included ("adam first moment of layer 2 weight"),
  agrees with the reference;
- a run trained in two stretches, the second continuing the first's TrainState, is bit for bit the run
  trained in one (an optimizer state silently reset between stretches would not be);
- the reference's manual optimizer agrees with the framework's own (torch.optim, optax) driven by the
  framework's autodiff, where their conventions agree, and disagrees where they are known not to.
"""

import numpy as np
import pytest

from crosscheck import backends
from crosscheck.common import registry
from crosscheck.common.config import Config
from crosscheck.common.initializers import dropout_masks
from crosscheck.suite.cases import BY_ID, DTYPES, Case
from crosscheck.verdict import checks, ops, tolerances
from crosscheck.verdict.compare import Disagreement
from crosscheck.verdict.findings import Findings


def optimizer_case(name, **changes):
    """The optimizer's minibatch case (crosscheck/suite/cases.py: batches of 8 of 20, weight decay on the weights
    only)."""
    case = BY_ID[f"{name}-minibatch"]
    return Case(case.id, case.config.replace(**changes), samples=case.samples)


OPTIMIZERS = list(registry.OPTIMIZERS)
# By default the trajectories run in float64, and the stretch tests on adam; the rest with --run-slow (CI): each
# is a JAX compile of a couple of seconds.
ADAM_BY_DEFAULT = [pytest.param(name, marks=[] if name == "adam" else [pytest.mark.slow]) for name in OPTIMIZERS]
FLOAT64_BY_DEFAULT = [pytest.param(dtype, marks=[] if dtype == "float64" else [pytest.mark.slow])
                      for dtype in DTYPES]
# Where a framework's own optimizer follows another convention than torch.optim's, which the suite follows.
CONVENTIONS = {("jax", "adagrad"): "optax.adagrad puts eps inside the root, rsqrt(G + eps); torch 1 / (sqrt(G) + eps)"}


@pytest.mark.parametrize("dtype", FLOAT64_BY_DEFAULT)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_optimizer_trajectory_agrees(driver, device, dtype, optimizer):
    diffs = checks.check_trajectory(driver, optimizer_case(optimizer), dtype, device)
    state_leaves = [what for what, _, _ in diffs if what.startswith(f"{optimizer} ")]
    assert len(state_leaves) == 4 * len(registry.OPTIMIZERS[optimizer].state)  # 2 layers x (weight, bias)


@pytest.mark.parametrize("optimizer", ADAM_BY_DEFAULT)
def test_two_stretches_are_one_run(driver, device, optimizer):
    """Training 10 epochs, then 10 more from the TrainState reached, is bit for bit training 20 at once."""
    config, params, X, y, orders = optimizer_case(optimizer, epochs=20).inputs()
    whole = driver.run_train(params, X, y, config, orders, (10, 20), device)
    first = driver.run_train(params, X, y, config.replace(epochs=10), orders[:10], (), device)
    second = driver.run_train(first.params, X, y, config.replace(epochs=10), orders[10:], (), device, state=first.state)
    np.testing.assert_array_equal(np.concatenate([first.losses, second.losses]), whole.losses)
    for ours, theirs in zip(checks.flat(second.params), checks.flat(whole.params)):
        np.testing.assert_array_equal(ours, theirs)
    for state in registry.OPTIMIZERS[optimizer].state:
        for ours, theirs in zip(checks.flat(second.state.opt_state[state]), checks.flat(whole.state.opt_state[state])):
            np.testing.assert_array_equal(ours, theirs)
    assert second.state.step == whole.state.step == 20 * 3
    # A checkpoint holds the whole TrainState: the one after epoch 10 is where the first stretch stopped.
    assert whole.checkpoints[10].step == first.state.step == 10 * 3
    for state in registry.OPTIMIZERS[optimizer].state:
        for ours, theirs in zip(checks.flat(whole.checkpoints[10].opt_state[state]),
                                checks.flat(first.state.opt_state[state])):
            np.testing.assert_array_equal(ours, theirs)
    for ours, theirs in zip(checks.flat(whole.checkpoints[10].params), checks.flat(first.params)):
        np.testing.assert_array_equal(ours, theirs)


def test_two_stretches_are_one_run_with_batch_norm_and_dropout(driver, device):
    """Batch norm's running statistics continue too, and dropout's masks: two stretches, the second from the first's
    TrainState (its buffers included) with its own epochs of the run's masks, are bit for bit one run; a second
    stretch started from fresh buffers is not."""
    case = BY_ID["batchnorm-dropout-momentum-minibatch"]
    config, params, X, y, orders = case.inputs(epochs=20)
    masks = dropout_masks(config, len(X))
    whole = driver.run_train(params, X, y, config, orders, (10, 20), device)  # draws the same masks itself
    first = driver.run_train(params, X, y, config.replace(epochs=10), orders[:10], (), device,
                             masks=[m[:10] for m in masks])
    rest = config.replace(epochs=10), orders[10:], (), device
    later = {"masks": [m[10:] for m in masks]}
    second = driver.run_train(first.params, X, y, *rest, state=first.state, **later)
    np.testing.assert_array_equal(np.concatenate([first.losses, second.losses]), whole.losses)
    assert len(checks.flat(whole.state.buffers)) == 4  # two batch norms x (running mean, running variance)
    for ours, theirs in zip(checks.flat(second.state.buffers), checks.flat(whole.state.buffers)):
        np.testing.assert_array_equal(ours, theirs)
    for ours, theirs in zip(checks.flat(whole.checkpoints[10].buffers), checks.flat(first.state.buffers)):
        np.testing.assert_array_equal(ours, theirs)
    # One epoch on (two steps), so that the buffers' history has decayed by 0.9^2 only, far above rounding: from
    # fresh buffers (zeros and ones) the running statistics must differ from the carried ones, or this test could not
    # tell a stretch that drops them from one that carries them.
    one = config.replace(epochs=1), orders[10:11], (), device
    kept = {"masks": [m[10:11] for m in masks]}
    carried = driver.run_train(first.params, X, y, *one, state=first.state, **kept)
    fresh = driver.run_train(first.params, X, y, *one, state=first.state._replace(buffers=()), **kept)
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(checks.flat(fresh.state.buffers),
                                                           checks.flat(carried.state.buffers)))
    assert gap > 1e-3, (f"{driver.name}: a stretch started from fresh buffers ended within {gap:.3g} of one that "
                        f"carried them: the running statistics were not carried, or this case cannot tell")


@pytest.mark.frameworks
@pytest.mark.parametrize("optimizer", [pytest.param(name, marks=[] if name in ("adam", "adagrad") else
                                                    [pytest.mark.slow]) for name in OPTIMIZERS])
def test_the_frameworks_own_optimizer_agrees(driver, device, optimizer):
    case = optimizer_case(optimizer)
    if (driver.name, optimizer) in CONVENTIONS:
        with pytest.raises(Disagreement, match="loss \\[epoch, step\\] disagrees"):
            checks.check_framework_optimizer(driver, case, device)
        # Where eps is negligible beside sqrt(G) the two conventions meet, and then they must agree.
        case = optimizer_case(optimizer, eps=1e-30)
    checks.check_framework_optimizer(driver, case, device)


@pytest.mark.frameworks
def test_the_frameworks_own_clipping_agrees_or_is_a_known_convention(driver, device, request):
    """The GPT block's run clips its gradients to norm 1 (22 of its 90 steps clip): torch.optim.AdamW after
    torch.nn.utils.clip_grad_norm_ is the reference's run; optax.clip_by_global_norm scales by c / |g| where torch
    scales by c / (|g| + 1e-6), a finding: its run parts from the first clipped step, by about 1e-6 relative."""
    if driver.name == "jax" and not request.config.getoption("--run-slow"):
        pytest.skip("slow: JAX compiles the GPT block's optax run for several seconds; runs with --run-slow")
    case = BY_ID["gpt-block-adamw-minibatch"]
    assert case.config.clip == 1.0
    if driver.name == "jax":
        with pytest.raises(Disagreement, match="loss \\[epoch, step\\] disagrees"):
            checks.check_framework_optimizer(driver, case, device)
        return
    checks.check_framework_optimizer(driver, case, device)


@pytest.mark.frameworks
def test_the_frameworks_own_schedule_agrees(driver, device):
    """The RMS norm, SwiGLU block's run warms its lr up over 20 updates and decays it along a cosine to 0 at its 180th:
    torch.optim.AdamW stepped by torch's LambdaLR then CosineAnnealingLR (SequentialLR), and optax.adamw given
    optax.warmup_cosine_decay_schedule (on a float64 count: see its float32 finding below), each driven by its
    framework's autodiff, are the reference's run."""
    case = BY_ID["rmsnorm-silu-swiglu-adamw-minibatch"]
    assert case.config.schedule == "warmup_cosine"
    checks.check_framework_optimizer(driver, case, device)


def test_the_schedule_is_optaxs_and_torchs_until_its_end():
    """scheduled_lr of every update against optax.warmup_cosine_decay_schedule at the updates made (to rounding) and
    torch's SequentialLR(LambdaLR, CosineAnnealingLR) up to decay_steps; past it optax holds end_lr and torch's cosine
    climbs again (it is periodic): a finding, and why the cases end their decay at their last update."""
    torch, optax = pytest.importorskip("torch"), pytest.importorskip("optax")
    jax = pytest.importorskip("jax")
    backends.load("jax")  # it enables float64, as in every JAX run here

    from crosscheck.backends.torch.autodiff import framework_schedule
    from crosscheck.reference.optimizers import scheduled_lr

    config = Config(lr=0.01, schedule="warmup_cosine", warmup_steps=10, decay_steps=90, end_lr=0.001)
    ours = np.array([scheduled_lr(t, config) for t in range(1, 121)])
    assert ours[0] == 0.0 and ours[10] == pytest.approx(0.01, rel=1e-15) and ours[90] == ours[-1] == 0.001
    schedule = optax.warmup_cosine_decay_schedule(0.0, 0.01, 10, 90, 0.001)
    # within the float64 floor at the schedule's scale (8 ulps): both compute the same cosine, each rounding its own way
    floor = tolerances.low_bound("float64", 0.0, float(np.max(ours)))
    assert np.max(np.abs(np.array([float(schedule(t)) for t in range(120)]) - ours)) <= floor
    # the finding: on optax's own int32 step count the schedule computes in float32, even with float64 enabled
    assert schedule(jax.numpy.int32(5)).dtype == np.float32 and float(schedule(jax.numpy.int32(5))) != 0.005
    p = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=0.01)
    scheduler, theirs = framework_schedule(optimizer, config), []
    for _ in range(120):
        theirs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert np.max(np.abs(np.array(theirs[:91]) - ours[:91])) <= floor
    assert theirs[-1] > 1.1 * ours[-1]  # the finding: past decay_steps, torch's cosine climbs again


@pytest.mark.parametrize(("case_id", "accumulate"), [("attention-positions-adamw-minibatch", 3),
                                                    ("attention-grouped-tanh-momentum", 4), ("seed1-xor", 3)])
def test_accumulated_micro_batches_are_the_whole_batch(driver, device, case_id, accumulate):
    """Gradient accumulation must equal the whole batch within the bound: two epochs with each step's gradient
    accumulated over micro-batches of unequal sizes (the last batch's smaller still), against the same run taking each
    batch whole, on every backend; the XOR run's loss is summed (half_sse), so there its micro-batches add up."""
    case = BY_ID[case_id]
    problem = case.problem("float64", epochs=2)
    whole = problem.config.replace(accumulate=1)
    split = problem.config.replace(accumulate=accumulate)
    runs = [driver.run_train(problem.params, problem.X, problem.y, config, problem.orders, (2,), device)
            for config in (whole, split)]
    # the micro-batches add in another order than the batch's own sums: rounding, bounded as every float64 run is, by
    # the spread of the reference's own runs under rounding (checks.shadow_parts)
    found = Findings()
    found.compare_run(runs[1].losses, runs[0].losses, checks.shadow_parts(lambda r: r.losses, case, "float64", 2),
                      what="loss", backend=f"{driver.name} accumulated")
    for i, (a, b) in enumerate(zip(checks.flat(runs[1].params), checks.flat(runs[0].params))):
        found.compare_run(a, b, checks.shadow_parts(lambda r, i=i: checks.flat(r.params)[i], case, "float64", 2),
                          what=f"leaf {i}", backend=f"{driver.name} accumulated")
    found.result()
    assert not np.array_equal(runs[1].losses, runs[0].losses * accumulate)  # not the summed mistake's


def test_accumulation_that_cannot_be_the_batch_is_refused(driver):
    """Gradient accumulation is refused, named, before training where it cannot equal the batch: batch norm (its
    statistics would be each micro-batch's), mixed precision, or a batch smaller than the micro-batches asked for."""
    with pytest.raises(ValueError, match="gradient accumulation with batch norm is another model"):
        BY_ID["batchnorm-gelu-mse"].config.replace(accumulate=2)
    with pytest.raises(ValueError, match="gradient accumulation is not supported in mixed precision"):
        Config(dtype="float32", compute="bfloat16", accumulate=2)
    with pytest.raises(ValueError, match="accumulate .* must be a positive integer, got 0"):
        Config(accumulate=0)
    config, params, X, y, orders = BY_ID["attention-positions-adamw-minibatch"].inputs(epochs=1)
    with pytest.raises(ValueError, match="accumulate 9 splits each batch into that many micro-batches, but the last "
                                         "batch of each epoch holds 8 samples"):
        driver.run_train(params, X, y, config.replace(accumulate=9), orders)


def test_clipping_scales_by_one_global_norm_as_torch_and_optax_define_it():
    """The reference's clipping against torch.nn.utils.clip_grad_norm_ and optax.clip_by_global_norm on one gradient of
    the GPT block (norm 1.44): below the norm nothing changes; above it, torch's scale c / (|g| + 1e-6) is the
    reference's to rounding, and optax's c / |g| is it times (|g| + 1e-6) / |g|, the epsilon it leaves out."""
    torch, optax, jnp = pytest.importorskip("torch"), pytest.importorskip("optax"), pytest.importorskip("jax.numpy")
    backends.load("jax")  # it enables float64: optax clips the float64 gradients as they are
    from crosscheck.reference.mlp import clipped, gradients

    config, params, X, y, _ = BY_ID["gpt-block-adamw-minibatch"].inputs()
    _, grads = gradients(params, X[:16], y[:16], config)
    norm = np.sqrt(sum(np.sum(g * g) for leaves in grads for g in leaves))
    assert 1.3 < norm < 1.5
    for c in (0.5, 1.0, 2.0):
        ours = [g for leaves in clipped(grads, c) for g in leaves]
        leaves = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in ours]
        for t, g in zip(leaves, (g for layer in grads for g in layer)):
            t.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(leaves, c)
        flat = [g for layer in grads for g in layer]

        def ours_at(k, optax_form=False, c=c):  # leaf k of the reference's clipping (optax's form: its scale c / |g|)
            def clip(*gs):
                scaled = clipped([gs], c)[0][k]
                n = np.sqrt(sum(np.sum(g * g) for g in gs))
                return scaled * ((n + 1e-6) / n if optax_form and n > c else 1)
            return clip

        for k, t in enumerate(leaves):  # each within the derived float64 bound of the reference's (extended twin)
            ops.assert_within_twin(t.grad.numpy(), ours_at(k), *flat, what=f"torch's clipped leaf {k}")
        tx = optax.clip_by_global_norm(c)
        theirs, _ = tx.update([jnp.asarray(g) for g in flat], tx.init(None))
        for k, t in enumerate(theirs):
            ops.assert_within_twin(np.asarray(t), ours_at(k, optax_form=True), *flat, what=f"optax's clipped leaf {k}")
        if norm > c:  # the finding itself: optax's scale is not torch's
            assert max(np.max(np.abs(np.asarray(t) - g)) for t, g in zip(theirs, ours)) > 1e-8


def test_bad_optimizer_settings_are_refused():
    for changes, message in (({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
                             ({"optimizer": "momentum", "momentum": 1.0}, "momentum must be a number in \\[0, 1\\)"),
                             ({"optimizer": "adam", "betas": (0.9,)}, "betas must be a pair"),
                             ({"optimizer": "adagrad", "eps": 0.0}, "eps must be a positive finite number"),
                             ({"optimizer": "adam", "momentum": 0.5}, r"adam does not read momentum \(it reads lr, "
                                                                     r"betas, eps\); got momentum=0.5"),
                             ({"weight_decay": -1.0}, "weight_decay must be a non-negative"),
                             ({"decay_biases": 1}, "decay_biases must be True or False"),
                             ({"clip": 0.0}, r"clip \(the largest gradient norm\) must be None or a positive finite"),
                             ({"clip": float("inf")}, "clip .* must be None or a positive finite number, got inf"),
                             ({"schedule": "linear"}, "unknown schedule 'linear'"),
                             ({"warmup_steps": 5}, "warmup_steps, decay_steps and end_lr belong to a schedule"),
                             ({"schedule": "warmup_cosine", "warmup_steps": 5, "decay_steps": 5},
                              r"decay_steps .* must be an integer past warmup_steps \(5\), got 5"),
                             ({"schedule": "warmup_cosine", "decay_steps": 9, "end_lr": 0.5},
                              r"end_lr must be a number in \[0, lr = 0.1\], got 0.5")):
        with pytest.raises((ValueError, TypeError), match=message):
            Config(**changes)


@pytest.mark.parametrize("optimizer", [p for p in ADAM_BY_DEFAULT if registry.OPTIMIZERS[p.values[0]].state])
def test_a_state_reset_between_stretches_is_another_run(driver, device, optimizer):
    """The mistake the stretch test guards against: restarting the optimizer at a checkpoint changes the run."""
    config, params, X, y, orders = optimizer_case(optimizer, epochs=20).inputs()
    whole = driver.run_train(params, X, y, config, orders, (), device)
    first = driver.run_train(params, X, y, config.replace(epochs=10), orders[:10], (), device)
    reset = driver.run_train(first.params, X, y, config.replace(epochs=10), orders[10:], (), device)
    assert not np.array_equal(reset.losses, whole.losses[10:])


@pytest.mark.frameworks
@pytest.mark.parametrize(("bug", "step", "names"), [
    ("rmsprop-rho-on-the-wrong-term", 1, "rmsprop square average of layer 1 weight"),
    ("momentum-buffer-not-carried", 1, "momentum momentum buffer of layer 1 weight"),  # the old state kept: zeros
])
def test_an_update_rule_mistake_is_first_named_by_its_state_leaf_and_step(driver, device, mutate, bug, step, names):
    """Before the checkpoints' long list, the failure says where the run first parts: the optimizer state leaf, and
    the step (step 2 taken as a run continued from step 1's state, across a stretch boundary)."""
    from crosscheck.diagnosis.catalogue import BY_ID as BUGS

    BUGS[bug].plant(mutate, driver.name)
    optimizer = bug.split("-")[0]
    with pytest.raises(Disagreement) as info:
        checks.check_trajectory(driver, optimizer_case(optimizer), "float64", device)
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"{driver.name}: first parts after step {step}") and names in first, str(info.value)


def test_a_step_count_reset_at_a_stretch_boundary_is_named_as_such():
    """A train that restarts its step count when it continues a run (Adam's bias correction then starts over): the
    report's run in stretches parts, and the failure says the step count was reset at a stretch boundary."""
    from dataclasses import replace
    from types import SimpleNamespace

    from crosscheck import reference
    from crosscheck.report import run as report

    def train(*args, step=0, **kwargs):
        return reference.mlp.train(*args, step=0, **kwargs)  # the step count lost at every continuation

    mlp = SimpleNamespace(forward=reference.mlp.forward, gradients=reference.mlp.gradients, train=train)
    driver = replace(reference.DRIVER, name="resets", mlp=mlp)
    case = optimizer_case("adam")
    run, _ = report._train_stretches(driver, case, case.problem(), "cpu", None)
    with pytest.raises(Disagreement, match=r"resets: after step 2 the step count is 1, where it is 2: the step count "
                                           r"reset at a stretch boundary"):
        checks.check_trajectory(driver, case, "float64", run=run)


@pytest.mark.frameworks
def test_a_run_that_goes_non_finite_still_says_where_it_first_parted(driver, device, mutate):
    """Adam's bias correction with the step count one short divides by zero at step 1: the run is NaN from there, and
    the failure leads with the step and the leaves it first parted at, not with a NaN alone."""
    module = f"{backends.REGISTRY[driver.name][0]}.optimizers"
    mutate(module, "return 1 - b1**t, 1 - b2**t", "return 1 - b1**(t - 1), 1 - b2**(t - 1)")
    with pytest.raises(Disagreement) as info:
        checks.check_trajectory(driver, optimizer_case("adam"), "float64", device)
    text = str(info.value)
    assert text.startswith(f"{driver.name}: first parts after step 1: layer 1 weight"), text
    assert "the run diverged, which is never agreement" in text


def test_every_optimizer_gets_its_own_defaults_and_none_inherits_anothers():
    """Each hyperparameter's default comes from the optimizer's registry entry; switching optimizers drops what the
    new one does not read and re-defaults what was the old one's default, keeping what was chosen."""
    for name, spec in registry.OPTIMIZERS.items():
        config = Config(optimizer=name)
        for hyper in registry.HYPERPARAMETERS:
            assert getattr(config, hyper) == spec.defaults.get(hyper), (name, hyper)
    adam = Config(optimizer="adam")
    assert (adam.replace(optimizer="adagrad").eps, adam.replace(optimizer="adagrad").betas) == (1e-10, None)
    assert Config(optimizer="adam", eps=1e-6).replace(optimizer="rmsprop").eps == 1e-6  # chosen, and read: kept
    assert Config(optimizer="momentum", momentum=0.5).replace(optimizer="adam").momentum is None
