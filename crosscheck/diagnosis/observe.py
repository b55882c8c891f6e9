"""What an implementation gives at a case's first step (observe), and the bounds its values are held to there: the
spread of the reference's runs under rounding in float64 (shadow_bounds), the float32 reference's own deviation in
float32 (low_bounds). The diagnosis (diagnose.py) compares these observations, its own and the planted reference's."""

from dataclasses import dataclass, field

import numpy as np

from crosscheck import reference
from crosscheck.common.conventions import summed
from crosscheck.common.driver import Unsupported
from crosscheck.suite.cases import upcast_problem
from crosscheck.verdict import checks, tolerances
from crosscheck.verdict.compare import Disagreement, assert_close


@dataclass
class Observed:
    """What one implementation gives at a case's first step: each value, or the exception that stood for it."""

    output: object = None
    layers: list | None = None  # each layer's output, where the forward gives them (the built-ins), else None
    loss: object = None
    grads: list = field(default_factory=list)  # flat, in params' order
    after: list = field(default_factory=list)  # the parameters after the first epoch, flat
    problems: dict = field(default_factory=dict)  # stage -> the message of what it raised (a Disagreement...)
    # absolute bounds of the values, where not the float64 table's: {"loss": float, "after": [...]} of a run's, from the
    # reference's runs under rounding (shadow_bounds); in float32 every value's too ("output", "layers", "grads"),
    # from the float32 reference's own deviation (low_bounds)
    bounds: dict = field(default_factory=dict)


def observe(driver, case, device="cpu", dtype="float64", twin=False):
    """driver's values at case's first step in dtype (twin: the float64 problem holding dtype's values); a stage it
    does not support is left out."""
    problem = case.problem(dtype)
    problem = upcast_problem(problem) if twin else problem
    config, params, X, y = problem.config, problem.params, problem.X, problem.y
    seen = Observed()
    try:
        outputs = driver.run_layers(params, X, config, device)  # one forward pass: its output is the last
        seen.output = np.asarray(outputs[-1])
        seen.layers = outputs if len(outputs) == len(config.model) else None
    except Unsupported:
        pass
    except Exception as exc:  # noqa: BLE001  (the code under test crashed: that is what it gave)
        seen.problems["output"] = f"raised {type(exc).__name__}: {exc}"
    try:
        loss, grads = driver.run_gradients(params, X, y, config, device)
        seen.loss, seen.grads = np.asarray(loss), checks.flat(grads)
    except Unsupported:
        pass
    except Disagreement as exc:  # an adapter's own finding (the update rule)
        seen.problems["update"] = str(exc)
    except Exception as exc:  # noqa: BLE001
        seen.problems["gradients"] = f"raised {type(exc).__name__}: {exc}"
    try:
        first = case.problem(dtype, epochs=1)
        run = driver.train(upcast_problem(first) if twin else first, (1,), device)
        seen.after = checks.flat(run.params)
    except Unsupported:
        pass
    except Exception as exc:  # noqa: BLE001
        seen.problems["update"] = seen.problems.get("update") or f"raised {type(exc).__name__}: {exc}"
    return seen


def shadow_bounds(case, epochs):
    """(the loss's bound, [each parameter's, then each buffer's]) after epochs of case in float64:
    tolerances.low_bound of the spread of the reference's runs under rounding, as check_trajectory's, so that a leaf
    whose run amplifies rounding (a bias before batch norm, under Adam) is not taken for a difference."""
    ref, runs = checks.reference_run(case, "float64", epochs), checks.shadows(case, "float64", epochs)

    def bound(a, others):
        b = checks.widest(a, others)
        return tolerances.low_bound("float64", float(np.max(np.abs(a - b))), float(np.max(np.abs(a))))

    def leaves(run):
        return checks.flat(run.params) + checks.flat(run.state.buffers)

    return (bound(ref.losses, [r.losses for r in runs]),
            [bound(a, list(others)) for a, *others in zip(leaves(ref), *map(leaves, runs))])


def bounded(observed, bounds):
    """observed, its values held to bounds (Observed.bounds)."""
    observed.bounds = bounds
    return observed


def tolerance_of(seen, key, i=None, default="forward"):
    """The tolerance of seen's value key (its i-th, for a list): its bound where seen has one, else default's row."""
    bound = seen.bounds.get(key)
    if bound is None:
        return default
    return float(bound if i is None else bound[i])


def low_bounds(case, dtype, device="cpu"):
    """Every first-step value's bound in dtype (float32): tolerances.low_bound of the NumPy reference's own deviation
    in dtype from its float64 twin on the same values, as the checks hold a float32 run."""
    low, wide = observe(reference.DRIVER, case, dtype=dtype), observe(reference.DRIVER, case, dtype=dtype, twin=True)

    def bound(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return tolerances.low_bound(dtype, float(np.max(np.abs(a - b))), float(np.max(np.abs(b))))

    return {"output": bound(low.output, wide.output), "loss": bound(low.loss, wide.loss),
            "layers": None if low.layers is None else [bound(a, b) for a, b in zip(low.layers, wide.layers)],
            "grads": [bound(a, b) for a, b in zip(low.grads, wide.grads)],
            "after": [bound(a, b) for a, b in zip(low.after, wide.after)]}


def close(actual, expected, kind):
    """Whether an observed value is the planted reference's: within tolerance (kind: a row of the float64 table, or
    an absolute bound), and a mistake that makes NaN or
    infinities (a causal mask that hides a whole row) making the same ones at the same places. This names a mistake;
    it is no verdict (the checks' comparisons fail on any NaN)."""
    if actual is None or expected is None:
        return True  # not observed: nothing to hold against it
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape == expected.shape and actual.dtype.kind == expected.dtype.kind == "f":
        finite = np.isfinite(expected)
        if not finite.all():
            if not np.array_equal(actual[~finite], expected[~finite], equal_nan=True):
                return False
            actual, expected = actual[finite], expected[finite]
            if not actual.size:
                return True
    tol = tolerances.Tol(rtol=0.0, atol=kind) if isinstance(kind, float) else tolerances.float64(kind)
    try:
        assert_close(actual, expected, tol, what="", backend="")
        return True
    except Disagreement:
        return False


def short_run(driver, case, device="cpu"):
    """driver's losses over a short run of case, and at its end the parameters, the buffers (batch norm's running
    statistics) and the network's output in evaluation mode, as an Observed (loss, after, output)."""
    problem = case.problem("float64", case.short_epochs or min(case.config.epochs, 200))
    config, X = problem.config, problem.X
    run = driver.train(problem, case.checkpoints(config.epochs), device)
    buffers = checks.flat(run.state.buffers) if run.state is not None else []
    output = driver.run_forward(run.params, X, config, device, buffers=run.state.buffers) if buffers else None
    return Observed(output=output, loss=np.asarray(run.losses), after=checks.flat(run.params) + buffers)


def short_runs(driver, case, device):
    """(driver's short run, held to the bounds of the reference's own runs under rounding; the reference's)."""
    loss_bound, after_bounds = shadow_bounds(case, case.short_epochs or min(case.config.epochs, 200))
    return (bounded(short_run(driver, case, device), {"loss": loss_bound, "after": after_bounds}),
            short_run(reference.DRIVER, case))


def scale_of(ours, theirs):
    """k where ours is k x theirs throughout (every leaf, to 1e-6 relative), else None."""
    a = np.concatenate([np.ravel(np.asarray(x, dtype=np.float64)) for x in ours])
    b = np.concatenate([np.ravel(np.asarray(x, dtype=np.float64)) for x in theirs])
    if a.shape != b.shape or not np.all(np.isfinite(a)) or not np.vdot(b, b):
        return None
    k = float(np.vdot(a, b) / np.vdot(b, b))
    return k if np.linalg.norm(a - k * b) <= 1e-6 * max(float(np.linalg.norm(a)), 1e-300) else None


def how_much(ours, theirs, n, what, config, lr=None):
    """'; every gradient is 4 x the reference's: ...' where ours is a constant multiple of theirs, saying what the
    factor points to (n: the samples one step takes; lr: the learning rate, for a step); else ''."""
    averaged = not summed(config)
    k = scale_of(ours, theirs)
    if k is None or abs(k - 1) < 1e-6:
        return ""
    said = f"; every {what} is {k:.6g} × the reference's"
    near = lambda x: abs(k - x) <= 1e-6 * abs(x)  # noqa: E731
    if near(-1):
        return f"{said}: the sign is flipped (a step up the loss)"
    if n > 1 and near(n) and averaged:
        return (f"{said}, the {n} samples of the step: the {what} is not divided by the batch size (the loss "
                f"{config.loss} summed where it is averaged)")
    if n > 1 and near(1 / n):
        return (f"{said}, 1/{n}: the {what} is divided by the batch size ({n}) twice" if averaged else
                f"{said}, 1/{n}: the {what} is divided by the batch size ({n}), where the loss {config.loss} sums "
                f"over the samples")
    if lr is not None and lr != 1 and near(lr):
        return f"{said}, the learning rate {lr:g}: the learning rate is applied twice"
    if lr is not None and lr != 1 and near(1 / lr):
        return f"{said}, 1/lr: the learning rate is missing"
    return f"{said}: a constant factor (a scale in the loss or the update)"
