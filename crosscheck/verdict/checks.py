"""The cross-checks themselves, shared by the tests and the report: each raises Disagreement or returns diffs.

float64 problems are bounded by the reference's own rounding: its output, loss and gradients by their distance from
the reference in extended precision (findings.extended_point), its run by the spread of its runs under rounding
(findings.shadows); float32 problems are compared with the float64 reference run on exactly the same (upcast)
values, bounded by the NumPy float32 reference's own deviation (see tolerances.py).
"""

from operator import attrgetter

import numpy as np

from crosscheck import reference
from crosscheck.common import dtypes, registry
from crosscheck.common.problem import batches
from crosscheck.reference import gradcheck
from crosscheck.suite.cases import declared_by, upcast
from crosscheck.verdict import tolerances
from crosscheck.verdict.compare import Disagreement
from crosscheck.verdict.findings import (
    Findings,
    _evaluated,
    _reference,
    _stacked,
    _trajectory,
    _twin,
    backend_module,
    bounding_driver,
    computed,
    extended_point,
    extended_run,
    flat,
    overflow_allowed,
    param_names,
    reference_point,
    reference_run,
    shadow_run,
    shadows,
    widest,
)
from crosscheck.verdict.vote import _BALLOTS, vote


def check_forward(driver, case, dtype, device="cpu"):
    case = declared_by(driver, case)
    problem = case.problem(dtype)
    config, params, X = problem.config, problem.params, problem.X
    ref, ref64 = _reference(reference_point, case, dtype), _twin(reference_point, case, dtype)
    with overflow_allowed(config):
        output = computed(driver.name, "forward", driver.run_forward, params, X, config, device)
    found = Findings(vote=lambda: vote(driver, case, dtype, "forward", device, known={driver.name: [output]}),
                     dtype=dtype)
    found.compare(output, ref[0], ref64 and ref64[0], "forward", what="network output", backend=driver.name)
    return found.result()


def check_gradients(driver, case, dtype, device="cpu", autodiff=False):
    """The backend's manual gradients (or, with autodiff, its framework's autodiff) against the reference's: in float64
    within 4 x the reference's own distance from its extended twin (extended_point) plus 8 ulps, each leaf; below it by
    the low-precision rule."""
    case = declared_by(driver, case)
    problem = case.problem(dtype)
    config, params, X, y = problem.config, problem.params, problem.X, problem.y
    run = driver.run_autodiff_gradients if autodiff else driver.run_gradients
    label = driver.name + (" autodiff" if autodiff else "")
    with overflow_allowed(config):
        loss, grads = computed(label, "gradients", run, params, X, y, config, device)
    ref_loss, ref_grads = _reference(reference_point, case, dtype)[1]
    ref64 = _twin(reference_point, case, dtype)
    ref64_loss, ref64_grads = ref64[1] if ref64 else (None, None)
    found = Findings(vote=lambda: vote(driver, case, dtype, "gradients", device, known={label: flat(grads)}),
                     dtype=dtype)
    found.compare(loss, ref_loss, ref64_loss, "forward", what="loss", backend=label)
    names = param_names(config, " gradient")
    for i, (name, g) in enumerate(zip(names, flat(grads))):
        found.compare(g, flat(ref_grads)[i], ref64_grads and flat(ref64_grads)[i], "gradient", what=name,
                      backend=label)
    return found.result()


def check_finite_differences(case):
    """The reference's float64 gradients against central differences of its own loss."""
    problem = case.problem("float64")
    _, grads = reference_point(case, "float64")[1]
    numeric = gradcheck.numerical_gradients(problem.params, problem.X, problem.y, problem.config)
    config = problem.config
    found = Findings()
    for name, g, n in zip(param_names(config, " gradient"), flat(grads), flat(numeric)):
        found.compare(g, n, None, "finite_difference", what=name, backend="numpy vs central differences")
    return found.result()


def check_trajectory(driver, case, dtype, device="cpu", epochs=None, run=None, ref=None, ref64=None):
    """Loss at every step and parameters at the case's checkpoints, against the reference's run: in float64 within
    the spread of the reference's own runs under rounding (findings.shadows), below it within the
    low-precision rule.

    run, ref and ref64 may be passed in when the caller has already trained them (the report does).
    """
    case = declared_by(driver, case)
    problem = case.problem(dtype, epochs)
    config, params, X = problem.config, problem.params, problem.X
    checkpoints = case.checkpoints(config.epochs)
    if ref is None:
        ref, ref64 = _reference(reference_run, case, dtype, epochs), _twin(reference_run, case, dtype, epochs)
    if run is None and driver is reference.DRIVER and bounding_driver(config) is driver:
        run = ref  # the reference's own row: the same deterministic run (tests/test_determinism.py), trained once
    if run is None:
        with overflow_allowed(config):
            run = computed(driver.name, "training", driver.train, problem, checkpoints, device)
    known = {driver.name: _trajectory(run, len(flat(params)), checkpoints,
                                      lambda state: _evaluated(driver, state, X, config, device))}
    found = Findings(vote=lambda: vote(driver, case, dtype, "trajectory", device, epochs, known=known), dtype=dtype,
                     rule=config.compute)
    nudged = ref64 is None and dtype == "float64" and config.compute is None

    def compare(part, what, epoch=None):  # part(a Run) -> the quantity, stacked over the checkpoints where it is kept
        if nudged:
            found.compare_run(part(run), part(ref), shadow_parts(part, case, dtype, epochs), what=what,
                              backend=driver.name, epoch=epoch)
        else:
            found.compare(part(run), part(ref), part(ref64), "trajectory", what=what, backend=driver.name,
                          epoch=epoch)

    compare(lambda r: None if r is None else r.losses, "loss [epoch, step]")
    if sorted(run.checkpoints) != sorted(ref.checkpoints):
        raise AssertionError(f"{driver.name}: checkpoints at epochs {sorted(run.checkpoints)}, "
                             f"expected {sorted(ref.checkpoints)}")
    # Each parameter is compared stacked over the checkpoints: the bound is then set by the reference's largest
    # deviation (float32's) or spread (float64's shadow) over the run, not at one checkpoint (round-off grows and
    # shrinks along a trajectory, most where the loss leaves a plateau).
    for i, name in enumerate(param_names(config)):
        compare(lambda r, i=i: _stacked(r, i, checkpoints), name, list(checkpoints))
    _compare_optimizer_state(found, compare, driver.name, config, checkpoints, run, ref)
    # Every buffer ("layer 2 running mean") along the trajectory too, and the network in evaluation mode, which
    # reads them, at the end.
    _compare_buffers(compare, driver.name, config, checkpoints, run)
    if found.failures:  # where the run first parts: the first step, or the stretch boundary
        found.lead = first_steps(driver, case, dtype, device)
    if config.buffer_names():
        _compare_evaluation(compare, driver, device, problem, checkpoints, run, ref64)
    return found.result()


def _compare_buffers(compare, who, config, checkpoints, run):
    """Each buffer stacked over the checkpoints, by check_trajectory's compare; a run that keeps none is told so."""
    buffer_names = config.buffer_names()
    if buffer_names and any(not flat(run.checkpoints[e].buffers) for e in checkpoints):
        raise Disagreement(f"{who}: keeps no buffers ({', '.join(buffer_names)}) at its checkpoints")
    for i, name in enumerate(buffer_names):
        compare(lambda r, i=i: _stacked(r, i, checkpoints, attrgetter("buffers")), name, list(checkpoints))


def _compare_evaluation(compare, driver, device, problem, checkpoints, run, ref64):
    """The network in evaluation mode (which reads the buffers) at the last checkpoint, by check_trajectory's
    compare: driver's run on its device, the reference's runs (ref64 on the float64 problem) on the CPU."""
    config, X = problem.config, problem.X
    last = max(checkpoints)
    X64, config64 = X.astype(np.float64), upcast(config, [], X, X)[0]

    def evaluated(r):
        if r is run:
            return _evaluated(driver, run.checkpoints[last], X, config, device)
        if r is ref64:
            return None if r is None else _evaluated(reference.DRIVER, r.checkpoints[last], X64, config64, "cpu")
        return _evaluated(reference.DRIVER, r.checkpoints[last], X, config, "cpu")

    compare(evaluated, f"network output in evaluation mode (epoch {last})")


def shadow_parts(part, case, dtype, epochs=None):
    """Thunks giving part(a Run) in each of the reference's runs under rounding, cheapest first (findings.shadows)."""
    def of(fn):
        def thunk():
            shadow = _reference(fn, case, dtype, epochs)
            return None if shadow is None else part(shadow)
        return thunk

    return [of(shadow_run), of(extended_run)]


def ill_conditioned(case, epochs=None, ref=None, shadowed_only=False):
    """Lines naming the leaves of a float64 case's run that amplify rounding: where the reference's own runs under
    rounding (findings.shadows: an ulp's nudge at every step, extended precision) spread by more than one ulp a step
    at the leaf's scale, more than the nudges could add up to were the run not amplifying them (XOR's 180,000 epochs
    spread 5 ulps, a bias before batch norm under Adam 5.7e6 ulps in 240 steps), with why where the run shows it (a
    gradient that is rounding noise beside the others', which Adam or RMSprop divide by its own RMS). Their bounds
    follow the spread; [] for a well-conditioned run. ref: the reference's run where the caller has it (the
    report's); shadowed_only: say nothing unless a check already needed the runs under rounding (a backend strayed
    past the bound's floor), so that a report pays for no run it did not need."""
    problem = case.problem("float64", epochs)
    config = problem.config
    if case.config.compute is not None or (shadowed_only and not shadow_run.cache_info().currsize):
        return []
    ref = ref if ref is not None else reference_run(case, "float64", epochs)
    runs = [shadow_run(case, "float64", epochs)]  # and the extended twin's, unless a report has not needed it
    if not shadowed_only or extended_run.cache_info().currsize:
        runs = shadows(case, "float64", epochs)
    checkpoints = case.checkpoints(config.epochs)
    _, grads = reference_point(case, "float64")[1]
    largest = max(float(np.max(np.abs(g))) for g in flat(grads))
    lines, steps = [], config.epochs * len(problem.steps)
    for i, name in enumerate(param_names(config)):
        ours = _stacked(ref, i, checkpoints)
        theirs = widest(ours, [_stacked(r, i, checkpoints) for r in runs])
        spread, scale = float(np.max(np.abs(ours - theirs))), max(float(np.max(np.abs(ours))), 1.0)
        if not np.isfinite(spread) or spread <= steps * dtypes.eps("float64") * scale:
            continue
        why = ""
        g = float(np.max(np.abs(flat(grads)[i])))
        if g <= 64 * dtypes.eps("float64") * largest:
            why = f"; its gradient is rounding noise ({g:.1e} beside the largest {largest:.1e}: exactly 0 in exact " \
                  "arithmetic, as a bias before batch norm's is)"
            if config.optimizer in ("adam", "adamw", "rmsprop"):
                why += f", which {config.optimizer} divides by its own RMS into steps of the learning rate's size"
        ulps = spread / scale / dtypes.eps("float64")
        lines.append(f"ill-conditioned: {name} moves {spread:.2e} ({ulps:.1e} ulps in "
                     f"{steps} steps) under rounding (the reference's own run nudged by an ulp a step, or computed in "
                     f"extended precision){why}; its bound follows that spread")
    return lines


def _compare_optimizer_state(found, compare, name, config, checkpoints, run, ref):
    """Every optimizer-state leaf ("adam first moment of layer 2 weight") along the trajectory, like a parameter (by
    check_trajectory's compare); and a dynamic loss scaler's scale and updates made (the steps not skipped), held to
    the reference's exactly at each checkpoint: the skips are part of the trajectory. Not the steps since the last
    skip: where a gradient creeps up to float16's overflow, rounding decides the step it crosses (numpy, torch and
    JAX skipped at epochs 49, 55 and 52 of cnn-overlapping-maxpool-tanh-momentum), and that count follows the step."""
    for state in registry.OPTIMIZERS[config.optimizer].state:
        if any(state not in run.checkpoints[e].opt_state for e in checkpoints):
            raise Disagreement(f"{name}: keeps no {config.optimizer} state at its checkpoints")
        for i, leaf in enumerate(param_names(config)):
            compare(lambda r, i=i, state=state: _stacked(r, i, checkpoints, lambda s: s.opt_state[state]),
                    f"{config.optimizer} {state} of {leaf}", list(checkpoints))
    for state in registry.SCALER[::2] if config.dynamic else ():
        if any(state not in run.checkpoints[e].opt_state for e in checkpoints):
            raise Disagreement(f"{name}: keeps no dynamic loss scaler's {state} at its checkpoints")
        ours, theirs = (np.stack([r.checkpoints[e].opt_state[state][0][0] for e in checkpoints]) for r in (run, ref))
        found.compare(ours, theirs, None, "trajectory", what=f"dynamic loss scaler's {state}", backend=name,
                      epoch=list(checkpoints))


def _one_step(config, X, y, orders, step, masks):
    """The problem of the run's step number step (1 or 2) alone: its batch, one epoch of one step, its masks."""
    slices = batches(len(X), config.batch_size)
    epoch, s = divmod(step - 1, len(slices))
    start, stop = slices[s]
    rows = slice(None) if orders is None else orders[epoch, start:stop]
    noise = None if masks is None else [m[epoch:epoch + 1, s:s + 1, :stop - start] for m in masks]
    return config.replace(epochs=1, batch_size=None), X[rows], y[rows], noise


def _two_steps(config, X, y, orders, masks):
    """The problem of the run's steps 1 and 2 alone, trained at once: the first two batches of epoch 1 (as one epoch of
    their rows, in order), or, where an epoch is one step, the first two epochs."""
    slices = batches(len(X), config.batch_size)
    if len(slices) >= 2:
        stop = slices[1][1]
        rows = slice(0, stop) if orders is None else orders[0, :stop]
        noise = None if masks is None else [m[0:1, 0:2] for m in masks]
        return config.replace(epochs=1), X[rows], y[rows], np.arange(stop)[None, :], noise  # their rows, in order
    noise = None if masks is None else [m[0:2, 0:1] for m in masks]
    return config.replace(epochs=2), X, y, None if orders is None else orders[:2], noise


def first_steps(driver, case, dtype, device="cpu"):
    """Where a disagreeing run first parts, by leaf and step: the parameters and optimizer state after step 1, then
    after step 2 taken as a continued run from step 1's TrainState (a stretch boundary), against the reference's (and
    its step count: 2, not reset). A backend whose train cannot continue a run (a --command program: the problem file
    carries no optimizer state) trains steps 1 and 2 at once instead, so that the lead reads only what it returned.
    A list of lines, [] where both steps agree or the backend cannot be run so."""
    case = declared_by(driver, case)
    problem = case.problem(dtype)
    config, params, X, y, orders, masks = (problem.config, problem.params, problem.X, problem.y, problem.orders,
                                           problem.noise)
    names = param_names(config)
    precision = config.compute or dtype  # a mixed run's steps are computed in its compute dtype
    lines: list = []
    states: list = [None, None]  # the backend's state, the reference's
    continues = driver.continues()  # a program's train cannot take step 1's state: it trains steps 1 and 2 at once
    for step in (1, 2):  # step by step: a step that already parts is said before the next is tried
        (one, X1, y1, noise), orders1 = _one_step(config, X, y, orders, step, masks), None
        if step == 2 and not continues:
            one, X1, y1, orders1, noise = _two_steps(config, X, y, orders, masks)
            states = [None, None]
        kept = () if continues else (one.epochs,)  # a program returns its state at a checkpoint
        try:
            for i, who in enumerate((driver, reference.DRIVER)):
                state = states[i]
                with overflow_allowed(config), np.errstate(all="ignore"):
                    states[i] = who.run_train(params, X1, y1, one, orders1, kept, "cpu" if who is reference.DRIVER
                                              else device, state=state, masks=noise).state
        except Exception:  # noqa: BLE001  (the run's own comparison stands; this only locates it)
            return lines
        a, b = states
        if int(a.step) != int(b.step):
            lines.append(f"{driver.name}: after step {step} the step count is {int(a.step)}, where it is {int(b.step)}"
                         + (": the step count reset at a stretch boundary (step 2 continues step 1's state)"
                            if step == 2 and continues else ""))
        parted = [name for name, u, v in zip(names, flat(a.params), flat(b.params)) if not _agrees(u, v, precision)]
        for state in registry.OPTIMIZERS[config.optimizer].state:
            if state in a.opt_state and state in b.opt_state:
                pairs = zip(names, flat(a.opt_state[state]), flat(b.opt_state[state]))
                parted += [f"{config.optimizer} {state} of {name}" for name, u, v in pairs
                           if not _agrees(u, v, precision)]
        if parted:
            boundary = " (continued across a stretch boundary from step 1's state)" if step == 2 and continues else ""
            lines.append(f"{driver.name}: first parts after step {step}{boundary}: {', '.join(parted)}")
        if lines:
            return lines
    return lines


def _agrees(ours, theirs, dtype):
    """Whether two leaves agree after a step or two: float64's trajectory tolerance, or, in a lower precision, within
    a few of its ulps of the larger (a first step has had no time to drift)."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape or not np.all(np.isfinite(ours)):
        return False
    if dtype == "float64":
        tol = tolerances.float64("trajectory")
        return bool(np.all(np.abs(ours - theirs) <= tol.atol + tol.rtol * np.abs(theirs)))
    bound = tolerances.FIRST_STEP_ULPS * dtypes.eps(dtype) * np.maximum(np.abs(theirs), 1.0)
    return bool(np.all(np.abs(ours - theirs) <= bound))


def clear_caches(reference=True):
    """Forget every cached vote and, with reference, every cached reference result (after the code under test
    changed: crosscheck/diagnosis/mutations.py says which)."""
    if reference:
        reference_point.cache_clear()
        reference_run.cache_clear()
        extended_point.cache_clear()
        shadow_run.cache_clear()
        extended_run.cache_clear()
    _BALLOTS.clear()


FRAMEWORK_OPTIMIZER = {"torch": "torch.optim", "jax": "optax"}


def check_framework_optimizer(driver, case, device="cpu", native=False):
    """The reference's manual optimizer against the framework's own (torch.optim, optax) driven by the framework's
    autodiff, over the case's whole run in float64: losses at every step, parameters at the checkpoints. native: of
    the loss by the framework's own layers (torch.nn.functional's conv2d, lax.reduce_window, ...), not the manual
    forward: the whole model trained the framework's way, no manual line in it."""
    case = declared_by(driver, case)
    problem = case.problem("float64")
    config, params, X, y, orders = problem.pieces()
    checkpoints = case.checkpoints(config.epochs)
    autodiff = backend_module(driver, "autodiff")
    arrays = driver.native_params(params, device), driver.to_native(X, device), driver.to_native(y, device)
    run = computed(driver.name, "training", autodiff.optimizer_train, *arrays, config,
                   None if orders is None else driver.to_native(orders, device), checkpoints, native)
    ref = _reference(reference_run, case, "float64")
    label = (f"{driver.name}{'s own layers' if native else ''} autodiff + "
             f"{FRAMEWORK_OPTIMIZER[driver.name]}.{config.optimizer}")
    found = Findings()

    found.compare_run(driver.to_numpy(run.losses), ref.losses, shadow_parts(lambda r: r.losses, case, "float64"),
                      what="loss [epoch, step]", backend=label)
    for i, name in enumerate(param_names(config)):
        # The framework's own run keeps its optimizer's state to itself: its checkpoints hold parameters alone.
        ours = np.stack([driver.to_numpy(flat(run.checkpoints[e])[i]) for e in checkpoints])
        found.compare_run(ours, _stacked(ref, i, checkpoints),
                          shadow_parts(lambda r, i=i: _stacked(r, i, checkpoints), case, "float64"), what=name,
                          backend=label, epoch=list(checkpoints))
    return found.result()
