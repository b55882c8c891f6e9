"""The cross-checks themselves, shared by the tests and the report: each raises Disagreement or returns diffs.

float64 problems are compared with the fixed tolerances; float32 problems are
compared with the float64 reference run on exactly the same (upcast) values,
bounded by the NumPy float32 reference's own deviation (see tolerances.py).
"""

import contextlib
import importlib
from functools import lru_cache, partial
from operator import attrgetter
from typing import Any

import numpy as np

import reference
from common import dtypes, registry
from common.driver import batches
from reference import gradcheck

from . import tolerances
from .cases import upcast
from .compare import Disagreement, assert_close, assert_low_close


def param_names(config, suffix=""):
    """['layer 1 weight<suffix>', 'layer 1 bias<suffix>', ...] in params' order (config.leaf_names)."""
    return [name + suffix for name in config.leaf_names()]


def flat(params):
    return [t for layer in params for t in layer]


class Findings:
    """Compares every quantity, then raises one Disagreement listing all that failed (or returns the diffs).

    vote: called only when something disagrees, for (a line that says whom the majority blames, the voters it
    blames) (see vote()).
    """

    def __init__(self, vote=None, dtype=None, rule=None):
        self.diffs, self.failures, self.vote = [], [], vote
        self.dtype = dtype  # the problem's dtype: what a low-precision result must be in, whatever the reference gave
        self.rule = rule  # the row of tolerances.LOW bounding it, where not the dtype's: a mixed run's compute dtype
        self.first_epochs = []  # where a failing trajectory quantity first left its tolerance
        self.lead: list = []  # lines said before the quantities: where a run first parts, by leaf and step

    def compare(self, actual, ref, ref64, kind, *, what, backend, epoch=None):
        """ref is the reference in the problem's dtype; ref64 its float64 twin (None for float64 problems). kind: a
        row of tolerances.FLOAT64, or a Tol itself (a probe's)."""
        try:
            if ref64 is None:
                tol = kind if isinstance(kind, tolerances.Tol) else tolerances.float64(kind)
                diff = assert_close(actual, ref, tol, what=what, backend=backend, epoch=epoch)
            else:
                diff = assert_low_close(actual, ref, ref64, what=what, backend=backend, epoch=epoch, dtype=self.dtype,
                                        rule=self.rule)
            self.diffs.append((what, epoch, diff))
        except Disagreement as exc:
            self.failures.append(str(exc))
            if exc.first_bad:  # a trajectory: epoch lists the checkpoints stacked along axis 0, else axis 0 is epochs
                i = exc.first_bad[0]
                self.first_epochs.append(epoch[i] if isinstance(epoch, list) else i)

    def result(self):
        __tracebackhide__ = True
        if self.failures:
            total = len(self.failures) + len(self.diffs)
            line, blamed = self.vote() if self.vote is not None else (None, ())
            verdict = f"\n{line}" if line else ""
            lead = "".join(f"{line}\n" for line in self.lead)  # where a run first parts (first_steps), if located
            exc = Disagreement(f"{lead}{len(self.failures)} of {total} quantities disagree:\n  "
                               + "\n  ".join(self.failures) + verdict)
            exc.first_epoch = min(self.first_epochs, default=None)
            exc.blamed = tuple(blamed)
            raise exc
        return self.diffs


def computed(label, stage, fn, *args):
    """fn(*args), with a crash turned into a reported Disagreement that names who crashed and where.

    A mistake can make a backend raise (a shape error from a missing transpose) rather than return a wrong
    number; that is a finding about the backend, to be reported like one, not a traceback from the suite.
    """
    __tracebackhide__ = True
    from common.driver import Unsupported

    from .adapters import AdapterError

    try:
        return fn(*args)
    except (Disagreement, Unsupported, AdapterError):  # an adapter's declaration not fitting the code: no finding
        raise
    except Exception as exc:  # noqa: BLE001  (any crash of the code under test is the finding)
        raise Disagreement(f"{label}: {stage}: raised {type(exc).__name__}: {exc}".rstrip() +
                           " (a crash, not a result)") from exc


def overflow_allowed(config):
    """Computing in a 16-bit dtype (alone or mixed), NumPy's overflow warnings silenced: the seeds' sigmoid
    1 / (1 + exp(-z)) takes exp(-z) to inf below z = -11 in float16 and gives 0, its right limit. An overflow is no
    finding by itself; a result that is not finite is one, and the comparison refuses it (crosscheck/compare.py)."""
    if config.compute is not None:  # mixed: a scaled gradient overflows by design (inf, then inf * 0), and is skipped
        return np.errstate(over="ignore", invalid="ignore")
    return np.errstate(over="ignore") if config.dtype in dtypes.HALF else contextlib.nullcontext()


def _problem(case, dtype, epochs, as_float64):
    problem = case.inputs(dtype, epochs)
    if as_float64:
        problem = (*upcast(*problem[:4]), problem[4])
    return problem


@lru_cache(maxsize=64)
def reference_point(case, dtype, as_float64=False):
    """The reference's output and (loss, gradients) at a case's initial parameters, once per process.

    as_float64: the float64 reference on exactly the values of the dtype problem (for float32 bounds).
    """
    config, params, X, y, _ = _problem(case, dtype, None, as_float64)
    with overflow_allowed(config):
        return reference.DRIVER.run_forward(params, X, config), reference.DRIVER.run_gradients(params, X, y, config)


@lru_cache(maxsize=64)
def reference_run(case, dtype, epochs=None, as_float64=False):
    """The reference's training run for a case, once per process."""
    config, params, X, y, orders = _problem(case, dtype, epochs, as_float64)
    with overflow_allowed(config):
        return reference.DRIVER.run_train(params, X, y, config, orders, case.checkpoints(config.epochs))


def _reference(fn, case, dtype, *args, **kwargs):
    """The reference's (cached) result, a crash of the reference reported as a Disagreement."""
    return computed("numpy (the reference)", fn.__name__.replace("_", " "), partial(fn, **kwargs), case, dtype, *args)


def _twin(fn, case, dtype, *args):
    """fn's float64 twin of a float32 problem, or None for a float64 one."""
    return None if dtype == "float64" else _reference(fn, case, dtype, *args, as_float64=True)


def check_forward(driver, case, dtype, device="cpu"):
    config, params, X, _, _ = case.inputs(dtype)
    ref, ref64 = _reference(reference_point, case, dtype), _twin(reference_point, case, dtype)
    with overflow_allowed(config):
        output = computed(driver.name, "forward", driver.run_forward, params, X, config, device)
    found = Findings(vote=lambda: vote(driver, case, dtype, "forward", device, known={driver.name: [output]}),
                     dtype=dtype)
    found.compare(output, ref[0], ref64 and ref64[0], "forward", what="network output", backend=driver.name)
    return found.result()


def check_gradients(driver, case, dtype, device="cpu", autodiff=False):
    """The backend's manual gradients (or, with autodiff, its framework's autodiff) against the reference's."""
    config, params, X, y, _ = case.inputs(dtype)
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
    config, params, X, y, _ = case.inputs("float64")
    _, grads = reference_point(case, "float64")[1]
    numeric = gradcheck.numerical_gradients(params, X, y, config)
    found = Findings()
    for name, g, n in zip(param_names(config, " gradient"), flat(grads), flat(numeric)):
        found.compare(g, n, None, "finite_difference", what=name, backend="numpy vs central differences")
    return found.result()


def _stacked(run, i, checkpoints, part=attrgetter("params")):
    """The i-th leaf of part(the TrainState) (default: its parameters) at each checkpoint of run, stacked along a
    new first axis; None for no run."""
    return None if run is None else np.stack([flat(part(run.checkpoints[e]))[i] for e in checkpoints])


def check_trajectory(driver, case, dtype, device="cpu", epochs=None, run=None, ref=None, ref64=None):
    """Loss at every step and parameters at the case's checkpoints, against the reference's run.

    run, ref and ref64 may be passed in when the caller has already trained them (the report does).
    """
    config, params, X, y, orders = case.inputs(dtype, epochs)
    checkpoints = case.checkpoints(config.epochs)
    if ref is None:
        ref, ref64 = _reference(reference_run, case, dtype, epochs), _twin(reference_run, case, dtype, epochs)
    if run is None and driver is reference.DRIVER:
        run = ref  # the reference's own row: the same deterministic run (tests/test_determinism.py), trained once
    if run is None:
        with overflow_allowed(config):
            run = computed(driver.name, "training", driver.run_train, params, X, y, config, orders, checkpoints,
                           device)
    known = {driver.name: _trajectory(run, len(flat(params)), checkpoints,
                                      lambda state: _evaluated(driver, state, X, config, device))}
    found = Findings(vote=lambda: vote(driver, case, dtype, "trajectory", device, epochs, known=known), dtype=dtype,
                     rule=config.compute)
    found.compare(run.losses, ref.losses, ref64 and ref64.losses, "trajectory", what="loss [epoch, step]",
                  backend=driver.name)
    if sorted(run.checkpoints) != sorted(ref.checkpoints):
        raise AssertionError(f"{driver.name}: checkpoints at epochs {sorted(run.checkpoints)}, "
                             f"expected {sorted(ref.checkpoints)}")
    # Each parameter is compared stacked over the checkpoints: for float32 the bound is then set by the
    # NumPy float32 reference's largest deviation over the run, not at one checkpoint (round-off grows
    # and shrinks along a trajectory, most where the loss leaves a plateau).
    for i, name in enumerate(param_names(config)):
        ours, theirs, theirs64 = (_stacked(r, i, checkpoints) for r in (run, ref, ref64))
        found.compare(ours, theirs, theirs64, "trajectory", what=name, backend=driver.name, epoch=list(checkpoints))
    # Every optimizer-state leaf ("adam first moment of layer 2 weight") along the trajectory, like a parameter.
    for state in registry.OPTIMIZERS[config.optimizer].state:
        if any(state not in run.checkpoints[e].opt_state for e in checkpoints):
            raise Disagreement(f"{driver.name}: keeps no {config.optimizer} state at its checkpoints")
        for i, name in enumerate(param_names(config)):
            ours, theirs, theirs64 = (_stacked(r, i, checkpoints, lambda s, state=state: s.opt_state[state])
                                      for r in (run, ref, ref64))
            found.compare(ours, theirs, theirs64, "trajectory", what=f"{config.optimizer} {state} of {name}",
                          backend=driver.name, epoch=list(checkpoints))
    # A dynamic loss scaler's scale and updates made (the steps not skipped), held to the reference's exactly at each
    # checkpoint: the skips are part of the trajectory. Not the steps since the last skip: where a gradient creeps up
    # to float16's overflow, rounding decides the step it crosses (numpy, torch and JAX skipped at epochs 49, 55 and
    # 52 of cnn-overlapping-maxpool-tanh-momentum), and that count follows the step.
    for state in registry.SCALER[::2] if config.dynamic else ():
        if any(state not in run.checkpoints[e].opt_state for e in checkpoints):
            raise Disagreement(f"{driver.name}: keeps no dynamic loss scaler's {state} at its checkpoints")
        ours, theirs = (np.stack([r.checkpoints[e].opt_state[state][0][0] for e in checkpoints]) for r in (run, ref))
        found.compare(ours, theirs, None, "trajectory", what=f"dynamic loss scaler's {state}", backend=driver.name,
                      epoch=list(checkpoints))
    # Every buffer ("layer 2 running mean") along the trajectory too, and the network in evaluation mode, which
    # reads them, at the end.
    buffer_names = config.buffer_names()
    if buffer_names and any(not flat(run.checkpoints[e].buffers) for e in checkpoints):
        raise Disagreement(f"{driver.name}: keeps no buffers ({', '.join(buffer_names)}) at its checkpoints")
    for i, name in enumerate(buffer_names):
        ours, theirs, theirs64 = (_stacked(r, i, checkpoints, attrgetter("buffers")) for r in (run, ref, ref64))
        found.compare(ours, theirs, theirs64, "trajectory", what=name, backend=driver.name, epoch=list(checkpoints))
    if found.failures:  # where the run first parts: the first step, or the stretch boundary
        found.lead = first_steps(driver, case, dtype, device)
    if buffer_names:
        last = max(checkpoints)
        ours = _evaluated(driver, run.checkpoints[last], X, config, device)
        theirs = _evaluated(reference.DRIVER, ref.checkpoints[last], X, config, "cpu")
        theirs64 = ref64 and _evaluated(reference.DRIVER, ref64.checkpoints[last], X.astype(np.float64),
                                        upcast(config, [], X, X)[0], "cpu")
        found.compare(ours, theirs, theirs64, "trajectory", what=f"network output in evaluation mode (epoch {last})",
                      backend=driver.name)
    return found.result()


def _one_step(config, X, y, orders, step, masks):
    """The problem of the run's step number step (1 or 2) alone: its batch, one epoch of one step, its masks."""
    slices = batches(len(X), config.batch_size)
    epoch, s = divmod(step - 1, len(slices))
    start, stop = slices[s]
    rows = slice(None) if orders is None else orders[epoch, start:stop]
    noise = None if masks is None else [m[epoch:epoch + 1, s:s + 1, :stop - start] for m in masks]
    return config.replace(epochs=1, batch_size=None), X[rows], y[rows], noise


def first_steps(driver, case, dtype, device="cpu"):
    """Where a disagreeing run first parts, by leaf and step: the parameters and optimizer state after step 1, then
    after step 2 taken as a continued run from step 1's TrainState (a stretch boundary), against the reference's (and
    its step count: 2, not reset). A list of lines, [] where both steps agree or the backend cannot be run so."""
    from reference.initializers import dropout_masks

    config, params, X, y, orders = case.inputs(dtype)
    masks = dropout_masks(config, len(X)) if config.noise_widths() else None
    names = param_names(config)
    precision = config.compute or dtype  # a mixed run's steps are computed in its compute dtype
    lines: list = []
    states: list = [None, None]  # the backend's state, the reference's
    for step in (1, 2):  # step by step: a step that already parts is said before the next is tried
        one, X1, y1, noise = _one_step(config, X, y, orders, step, masks)
        try:
            for i, who in enumerate((driver, reference.DRIVER)):
                state = states[i]
                start = params if state is None else state.params
                carried: dict = {} if state is None else {"opt_state": state.opt_state, "step": state.step,
                                                          "buffers": state.buffers}
                with overflow_allowed(config), np.errstate(all="ignore"):
                    states[i] = who.run_train(start, X1, y1, one, None, (),
                                              "cpu" if who is reference.DRIVER else device, masks=noise,
                                              **carried).state
        except Exception:  # noqa: BLE001  (the run's own comparison stands; this only locates it)
            return lines
        a, b = states
        if int(a.step) != int(b.step):
            lines.append(f"{driver.name}: after step {step} the step count is {int(a.step)}, where it is {int(b.step)}"
                         + (": the step count reset at a stretch boundary (step 2 continues step 1's state)"
                            if step == 2 else ""))
        parted = [name for name, u, v in zip(names, flat(a.params), flat(b.params)) if not _agrees(u, v, precision)]
        for state in registry.OPTIMIZERS[config.optimizer].state:
            if state in a.opt_state and state in b.opt_state:
                pairs = zip(names, flat(a.opt_state[state]), flat(b.opt_state[state]))
                parted += [f"{config.optimizer} {state} of {name}" for name, u, v in pairs
                           if not _agrees(u, v, precision)]
        if parted:
            boundary = " (continued across a stretch boundary from step 1's state)" if step == 2 else ""
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


def _evaluated(driver, state, X, config, device):
    """The network's output for X in evaluation mode (reading state's buffers: batch norm's running statistics)."""
    return driver.run_forward(state.params, X, config, device, buffers=state.buffers)


def _trajectory(run, n_leaves, checkpoints, evaluate):
    """A run's losses and each parameter stacked over the checkpoints, and where the model keeps buffers, each of
    them too and evaluate(the last checkpoint's state), its network in evaluation mode: one ballot of the vote."""
    last = run.checkpoints[max(checkpoints)]
    buffers = [_stacked(run, i, checkpoints, attrgetter("buffers")) for i in range(len(flat(last.buffers)))]
    evaluated = [evaluate(last)] if buffers else []
    return [run.losses, *(_stacked(run, i, checkpoints) for i in range(n_leaves)), *buffers, *evaluated]


def backend_module(driver, name):
    """A built-in backend's own module (losses, activations, autodiff...), for checks of its individual functions."""
    import backends  # not at the top: the checks import with NumPy alone (tests/test_mirrors.py)

    return importlib.import_module(f"{backends.REGISTRY[driver.name][0]}.{name}")




# Losses kept unfused beside their fused training form: name -> the output activation they fuse with.
UNFUSED_PIECES = {"bce": "sigmoid"}


def check_loss_pieces(driver, device="cpu", seed=0):
    """A built-in backend's unfused loss pieces, in float64, on its own functions.

    dL/da from <name>_backward against central differences of <name>_forward, and the chain
    f'(z) * dL/da against the fused backward that training uses (dL/dz), at random interior points.
    """
    losses, activations = backend_module(driver, "losses"), backend_module(driver, "activations")
    rng = np.random.default_rng(seed)
    found = Findings()
    for name, output in UNFUSED_PIECES.items():
        z = rng.uniform(-3, 3, size=(5, 3))
        a = reference.activations.activation_forward(output, z)
        y = rng.uniform(0, 1, size=z.shape)
        forward, backward = getattr(losses, f"{name}_forward"), getattr(losses, f"{name}_backward")
        native = [driver.to_native(arr, device) for arr in (z, a, y)]
        da = driver.to_numpy(backward(native[1], native[2]))

        def loss_of(a_, forward=forward, y_=native[2]):
            return float(driver.to_numpy(forward(driver.to_native(a_, device), y_)))

        numeric = gradcheck.central_differences(loss_of, a)
        found.compare(da, numeric, None, "finite_difference", what=f"{name}_backward (dL/da)",
                      backend=f"{driver.name} vs central differences")
        chained = driver.to_numpy(activations.activation_backward(output, driver.to_native(da, device), *native[:2]))
        fused = driver.to_numpy(losses.loss_backward(name, native[1], native[2]))
        found.compare(chained, fused, None, "gradient", what=f"{output}'(z) * {name}_backward against the fused dL/dz",
                      backend=driver.name)
    return found.result()


def check_oracle(seed=0):
    """The finite-difference oracle itself, on functions whose derivatives are known in closed form.

    f(x) = sum sin(x) x^2 has df/dx = cos(x) x^2 + 2 x sin(x); g(x) = log(sum exp(x)) has dg/dx = softmax(x).
    """
    x = np.random.default_rng(seed).uniform(-2, 2, size=(3, 4))
    known = {
        "d/dx sum sin(x) x^2": (lambda x: float(np.sum(np.sin(x) * x * x)), np.cos(x) * x * x + 2 * x * np.sin(x)),
        "d/dx log sum exp(x)": (lambda x: float(np.log(np.sum(np.exp(x)))), np.exp(x) / np.sum(np.exp(x))),
    }
    found = Findings()
    for what, (f, derivative) in known.items():
        found.compare(gradcheck.central_differences(f, x), derivative, None, "finite_difference", what=what,
                      backend="central differences vs the closed form")
    return found.result()


TAYLOR_STEPS = 2.0 ** -np.arange(3, 14)  # h from 1/8 to 1/8192: above round-off, inside the quadratic regime


def taylor_order(driver, case, device="cpu", seed=0):
    """(order, remainders): how |L(p + h v) - L(p) - h <grad L, v>| shrinks with h along a random direction v.

    With the right gradient the remainder is O(h^2) (order 2); with a wrong one it is dominated by
    h <grad L - g, v> (order 1). No step size to tune: the slope of log remainder over log h is the verdict.
    """
    config, params, X, y, _ = case.inputs("float64")
    loss, grads = driver.run_gradients(params, X, y, config, device)
    rng = np.random.default_rng(seed)
    direction = [tuple(rng.standard_normal(t.shape) for t in layer) for layer in params]
    slope = sum(float(np.vdot(g, v)) for g, v in zip(flat(grads), flat(direction)))
    remainders = []
    for h in TAYLOR_STEPS:
        moved = [tuple(t + h * v for t, v in zip(layer, step)) for layer, step in zip(params, direction)]
        remainders.append(abs(float(driver.run_gradients(moved, X, y, config, device)[0]) - float(loss) - h * slope))
    # The median of the local slopes, not one fit: where a relu kink is crossed between two steps, that one
    # slope is off, and a median of ten ignores it.
    local = np.diff(np.log(np.maximum(remainders, 1e-300))) / np.diff(np.log(TAYLOR_STEPS))
    return float(np.median(local)), remainders


# A problem on which float32 and float64 arithmetic give different answers by construction, worked by hand.
# One dense layer, identity output, half_sse. Forward: z = 1 * 1 + 2^-30 * 1 - 1. In float32, 1 + 2^-30 rounds
# to 1 (half an ulp of 1 is 2^-24), so z = 0 and the loss 0; in float64 z = 2^-30, which float32 holds exactly.
ROUNDING_FORWARD: dict[str, Any] = dict(X=[[1.0, 2.0**-30]], W=[[1.0], [1.0]], b=[-1.0], y=[[0.0]])
# Training: W = 1, b = 0, x = 1, y = 1 - 2^-20, lr 2^-10, 64 epochs. dz = z - y stays near 2^-20, so each step
# moves W by about 2^-30, below half an ulp of 1: float32 rounds every step away and W stays exactly 1.0.
# In float64 the steps add up to about 64 * 2^-30 = 2^-24, one float32 ulp below 1, which survives the cast.
ROUNDING_TRAIN: dict[str, Any] = dict(X=[[1.0]], W=[[1.0]], b=[0.0], y=[[1.0 - 2.0**-20]], lr=2.0**-10, epochs=64)


def check_float32_rounding(driver, device="cpu"):
    """A float32 run must round in float32: a backend that computes in float64 inside and casts back at the end
    has a smaller deviation than the NumPy float32 reference and passes every bound, but not this."""
    from reference import Config

    found = Findings()
    p = ROUNDING_FORWARD
    config = Config(layers=(2, 1), output="identity", loss="half_sse", init="standard_normal", epochs=1,
                    dtype="float32")
    params = [(np.array(p["W"], np.float32), np.array(p["b"], np.float32))]
    X, y = np.array(p["X"], np.float32), np.array(p["y"], np.float32)
    zero = np.zeros((1, 1), np.float32)
    found.compare(driver.run_forward(params, X, config, device), zero, None, "forward",
                  what="float32 rounding probe: network output (1 + 2^-30 - 1 is 0 in float32)", backend=driver.name)
    loss, _ = driver.run_gradients(params, X, y, config, device)
    found.compare(loss, np.float32(0), None, "forward", what="float32 rounding probe: loss", backend=driver.name)
    p = ROUNDING_TRAIN
    config = Config(layers=(1, 1), output="identity", loss="half_sse", init="standard_normal", lr=p["lr"],
                    epochs=p["epochs"], dtype="float32")
    params = [(np.array(p["W"], np.float32), np.array(p["b"], np.float32))]
    run = driver.run_train(params, np.array(p["X"], np.float32), np.array(p["y"], np.float32), config, device=device)
    found.compare(run.params[0][0], np.ones((1, 1), np.float32), None, "forward",
                  what="float32 rounding probe: layer 1 weight after 64 sub-ulp updates (stays 1.0 in float32)",
                  backend=driver.name)
    return found.result()


# The mixed-precision probe's problems, each worked by hand (a mixed run's mistakes widen the NumPy reference's own
# deviation, and with it the bound, so a mistake planted in the reference's mixed step needs a check of its own).
# Hinge: CS231n's multiclass hinge on one sample of class 0, x = 1, scores W + b = (1, 1): the margin of class 1 is
# 1, active, and stays so (it only shrinks to 3/4), so dL/ds = (-1, 1) at every step; W += lr (1, -1) and b likewise.
# With lr 2^-10 and 64 steps: W = (1 + 2^-4, 1 - 2^-4), b = (2^-4, -2^-4). Each step moves W by a quarter of
# bfloat16's half ulp at 1 (2^-8), so weights kept in bfloat16 never move, and the float32 master copy must.
MIXED_HINGE: dict[str, Any] = dict(X=[[1.0]], W=[[1.0, 1.0]], b=[0.0, 0.0], y=[[1.0, 0.0]], lr=2.0 ** -10, epochs=64)
# Tiny: half_sse of one output z = x W + b with x = 2^-12, W = 1/4, b = 0 and y = 0: dz = z = 2^-14, float16's
# smallest normal, and dW = x dz = 2^-26, below half of float16's smallest subnormal (2^-24): 0 unscaled. Scaled by
# 2^16 it is 2^-10, then 2^-26 again in float32: one step of lr 1 gives W = 1/4 - 2^-26, b = -2^-14.
MIXED_TINY: dict[str, Any] = dict(X=[[2.0 ** -12]], W=[[0.25]], b=[0.0], y=[[0.0]], lr=1.0, epochs=1)


def check_mixed_precision(driver, device="cpu"):
    """Mixed precision against hand-worked runs (MIXED_HINGE, MIXED_TINY above): float32 master weights that keep
    sub-ulp bfloat16 updates; float16's dynamic loss scale skipping its first step, whose scaled gradient (2^16)
    overflows, then halving to 2^15 and undoing itself in the other 63; and a float16 gradient of 2^-26, lost
    without the scale, kept with it."""
    from reference import Config

    found = Findings()
    f32 = partial(np.array, dtype=np.float32)
    # compute, problem, loss, loss scale; expected: weight, bias, final loss scale (dynamic), updates made
    for compute, p, loss, scale, weight, bias, final_scale, made in (
            ("bfloat16", MIXED_HINGE, "hinge", None, 2.0 ** -4 * np.array([[1, -1]]) + 1, [2.0 ** -4, -2.0 ** -4],
             None, 64),
            ("float16", MIXED_HINGE, "hinge", "dynamic", 63 * 2.0 ** -10 * np.array([[1, -1]]) + 1,
             [63 * 2.0 ** -10, -63 * 2.0 ** -10], 2.0 ** 15, 63),
            ("float16", MIXED_TINY, "half_sse", "dynamic", [[0.25 - 2.0 ** -26]], [-2.0 ** -14], 2.0 ** 16, 1)):
        if dtypes.available(compute) is None:
            continue
        config = Config(layers=(1, len(p["b"])), output="identity", loss=loss, init="standard_normal", lr=p["lr"],
                        epochs=p["epochs"], dtype="float32", compute=compute, loss_scale=scale)
        label = f"mixed-precision probe ({compute}{', dynamic loss scale' if scale else ''}, {made} updates made):"
        with overflow_allowed(config):
            run = computed(driver.name, "training", driver.run_train, [(f32(p["W"]), f32(p["b"]))], f32(p["X"]),
                           f32(p["y"]), config, None, (p["epochs"],), device)
        found.compare(run.params[0][0], f32(weight), None, "forward", what=f"{label} layer 1 weight",
                      backend=driver.name)
        found.compare(run.params[0][1], f32(bias), None, "forward", what=f"{label} layer 1 bias", backend=driver.name)
        if scale:
            state = run.checkpoints[p["epochs"]].opt_state
            for name, value in zip(registry.SCALER[::2], (final_scale, made)):
                found.compare(state[name][0][0], f32(value), None, "forward", what=f"{label} {name}",
                              backend=driver.name)
    return found.result()


# The low-precision rule on each backend's own sums, worked by hand over 4096 terms, where a 16-bit accumulator stalls
# (at 256 in bfloat16, at 2048 in float16; XLA's tree of partial sums strays less, but strays). Each problem is one
# dense layer from inputs 0, so that its logits are its bias, r(.) rounds to the dtype, and every sum is taken in
# float32 (exactly, here) and rounded once:
# - half_sse of z = 0 against y = -1 over 4096 rows of 2 outputs: the loss 8192 / 2 = 4096, the bias gradient 4096;
# - softmax cross-entropy of 2 classes at logits 0 over 4096 rows of class 0: the loss is the mean of 4096 terms
#   r(log 2), that term, and the bias gradient sums (0.5 - y) / 4096: -1/2 and 1/2;
# - softmax cross-entropy of one row of 4096 classes at logits (0, -3/8, ..., -3/8), class 0: with e = r(exp(-3/8))
#   and S = r(1 + 4095 e), the loss r(log S) and the bias gradient a - y, a = (r(1 / S), r(e / S), ...) (the
#   softmax's own normalizing sum, and cross-entropy's log-sum-exp).
RULE_TERMS = 4096


def check_low_precision_rule(driver, device="cpu"):
    """Each 16-bit dtype's sums accumulated in float32 (common/dtypes.py): loss reductions, a bias gradient, and a
    softmax's normalizing sum, against RULE_TERMS's hand-worked values above."""
    from reference import Config

    found = Findings()
    n = RULE_TERMS
    for dtype in dtypes.HALF:
        low = dtypes.available(dtype)
        if low is None:
            continue
        r = lambda v, low=low: np.asarray(v, np.float64).astype(low).astype(np.float64)  # noqa: E731
        e = r(np.exp(-0.375))
        S = r(1 + (n - 1) * e)
        a = np.array([r(1 / S)] + [r(e / S)] * (n - 1))
        one_hot = np.eye(n)[0]
        for loss, output, rows, width, bias, y, value, gradient in (
                ("half_sse", "identity", n, 2, [0.0, 0.0], [-1.0, -1.0], n, [n, n]),
                ("softmax_cross_entropy", "softmax", n, 2, [0.0, 0.0], [1.0, 0.0], r(np.log(2.0)), [-0.5, 0.5]),
                ("softmax_cross_entropy", "softmax", 1, n, -0.375 * (1 - one_hot), one_hot, r(np.log(S)),
                 r(a - one_hot))):
            config = Config(layers=(2, width), output=output, loss=loss, init="standard_normal", epochs=1, dtype=dtype)
            params = [(np.zeros((2, width), low), np.array(bias, low))]
            X, Y = np.zeros((rows, 2), low), np.broadcast_to(np.array(y, low), (rows, width)).copy()
            with overflow_allowed(config):
                got, ((_, db),) = computed(driver.name, "gradients", driver.run_gradients, params, X, Y, config, device)
            label = f"low-precision rule probe ({loss}, {rows} x {width}, in {dtype}):"
            tol = tolerances.probe(dtype)
            found.compare(got, np.array(value, low)[()], None, tol, what=f"{label} loss", backend=driver.name)
            found.compare(db, np.array(gradient, low), None, tol, what=f"{label} layer 1 bias gradient",
                          backend=driver.name)
    _float32_rule(driver, device, found)
    return found.result()


RULE32_SUMS = 32  # independent float32 sums: float32 accumulation rounds ~40% of them off the correct rounding here


def _float32_rule(driver, device, found):
    """float32 sums accumulate in float32, not more accurately: RULE32_SUMS bias gradients of RULE_TERMS rows (half_sse
    at zero parameters: db_k = -sum_n y_nk), y multiples of 2^-20 in [0.5, 1), whose exact sums float64 holds. Each
    must be within RULE_TERMS ulps of the exact sum, and not every one correctly rounded: float32 accumulation (any
    order: NumPy's, torch's, XLA's) rounds partial sums past 16 and so misses the correct rounding in some of them,
    where a sum accumulated in float64 and cast back gets every one right (measured: numpy 0, torch 10, jax 9 of 16
    correctly rounded; float64 accumulation 16 of 16)."""
    from reference import Config

    n, k = RULE_TERMS, RULE32_SUMS
    rng = np.random.default_rng(32)
    Y = (0.5 + rng.integers(0, 2 ** 19, (n, k)) * 2.0 ** -20).astype(np.float32)
    exact = -Y.astype(np.float64).sum(axis=0)  # exact: multiples of 2^-20 below 2^12
    config = Config(layers=(2, k), output="identity", loss="half_sse", init="standard_normal", epochs=1,
                    dtype="float32")
    params = [(np.zeros((2, k), np.float32), np.zeros(k, np.float32))]
    _, ((_, db),) = computed(driver.name, "gradients", driver.run_gradients, params, np.zeros((n, 2), np.float32), Y,
                             config, device)
    label = f"float32 rule probe ({k} sums of {n} terms):"
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    bound = tolerances.SUM_ULPS_PER_TERM * n * float(ulp.max())
    found.compare(db, exact.astype(np.float32), None, tolerances.Tol(rtol=0.0, atol=bound),
                  what=f"{label} layer 1 bias gradient", backend=driver.name)
    rounded = int(np.sum(np.asarray(db) == exact.astype(np.float32)))
    if rounded == k and np.asarray(db).dtype == np.float32:
        found.failures.append(f"{driver.name}: {label} layer 1 bias gradient: all {k} sums came out correctly rounded, "
                              f"as a sum accumulated in float64 and cast back gives; float32 accumulation misses some "
                              f"(the rule: float32 sums accumulate in float32)")


def _voters(driver):
    """Who votes: the reference, every installed built-in framework, and the driver under check (a plug-in)."""
    import backends  # not at the top: the checks import with NumPy alone

    found = {backends.REFERENCE: reference.DRIVER}
    for name in backends.REGISTRY:
        try:
            found.setdefault(name, backends.load(name))
        except backends.BackendUnavailable:
            pass
    found.setdefault(driver.name, driver)
    return found


VOTE_FD_LIMIT = 5000  # central differences join the gradient vote when the network has at most this many parameters


# (voters, case, dtype, what, device, epochs) -> ballots: one vote per failure, not one per witness
_BALLOTS: dict[tuple, dict] = {}


def _ballots(driver, case, dtype, what, device, epochs, known):
    """{voter: (arrays, tolerance kind)} on the float64 problem holding the case's dtype values.

    The reference's results come from the cache, and known holds results the caller already has (float64 only).
    Cached until clear_caches(): every voter is deterministic, so a second witness of one failure reuses the vote.
    """

    key = (tuple(_voters(driver)), case, dtype, what, device, epochs)
    if key not in _BALLOTS:
        _BALLOTS[key] = _cast_ballots(driver, case, dtype, what, device, epochs, known)
    return _BALLOTS[key]


def clear_caches():
    """Forget every cached reference result and vote (after the code under test changed: crosscheck/mutations.py)."""
    reference_point.cache_clear()
    reference_run.cache_clear()
    _BALLOTS.clear()


def _cast_ballots(driver, case, dtype, what, device, epochs, known):
    import backends

    config, params, X, y, orders = _problem(case, dtype, epochs, as_float64=True)
    checkpoints = case.checkpoints(config.epochs)
    twin = {"as_float64": True} if dtype != "float64" else {}
    kind = {"forward": "forward", "gradients": "gradient", "trajectory": "trajectory"}[what]
    ballots = {name: (arrays, kind) for name, arrays in (known if dtype == "float64" else {}).items()}
    for name, d in _voters(driver).items():
        dev = device if d is driver else "cpu"
        try:
            if what == "forward":
                if name not in ballots:
                    ballots[name] = ([d.run_forward(params, X, config, dev)] if name != backends.REFERENCE else
                                     [reference_point(case, dtype, **twin)[0]], kind)
            elif what == "gradients":
                if name not in ballots:
                    ballots[name] = (flat(d.run_gradients(params, X, y, config, dev)[1]) if name != backends.REFERENCE
                                     else flat(reference_point(case, dtype, **twin)[1][1]), kind)
                if d.autodiff_gradients is not None and f"{name} autodiff" not in ballots:
                    ballots[f"{name} autodiff"] = (flat(d.run_autodiff_gradients(params, X, y, config, dev)[1]), kind)
            elif name not in ballots:
                run = (d.run_train(params, X, y, config, orders, checkpoints, dev) if name != backends.REFERENCE
                       else reference_run(case, dtype, epochs, **twin))
                ballots[name] = (_trajectory(run, len(flat(params)), checkpoints,
                                             lambda state, d=d, dev=dev: _evaluated(d, state, X, config, dev)), kind)
        except Exception:  # noqa: BLE001, S112  (a voter that crashes abstains; its own check reports the crash)
            continue
    if what == "gradients" and sum(t.size for t in flat(params)) <= VOTE_FD_LIMIT:
        ballots["central differences"] = (flat(gradcheck.numerical_gradients(params, X, y, config)),
                                          "finite_difference")
    return ballots


def _same(a, b):
    """Two ballots agree: same shapes, all finite, within the looser of their two tolerances."""
    (xs, kind_a), (ys, kind_b) = a, b
    tol = max(tolerances.float64(kind_a), tolerances.float64(kind_b), key=lambda t: t.rtol)
    if len(xs) != len(ys):
        return False
    for x, y in zip(xs, ys):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.shape != y.shape or not (np.isfinite(x).all() and np.isfinite(y).all()):
            return False
        if np.any(np.abs(x - y) > tol.atol + tol.rtol * np.maximum(np.abs(x), np.abs(y))):
            return False
    return True


def vote(driver, case, dtype, what, device="cpu", epochs=None, known=None):
    """(one line: which implementations and oracles agree with each other, and who is the odd one out; the odd ones).

    A majority vote (as Muffin votes across backends): every voter's result on the same float64 problem
    (the reference, each framework's manual code and autodiff, and, for gradients, central differences),
    so that a bug in the reference is blamed on the reference, not on every framework that disagrees with it.
    """
    ballots = _ballots(driver, case, dtype, what, device, epochs, known or {})
    if len(ballots) < 3:
        return f"vote on the {what}: only {len(ballots)} voter(s), too few for a majority", ()
    where = f"; the disagreement is specific to {dtype}" if dtype != "float64" else ""
    line, group = tally(what, ballots, prefer=driver.name, unanimous=f"all agree{where}")
    return line, tuple(b for b in ballots if group and b not in group)


def tally(what, ballots, prefer=None, unanimous="all agree"):
    """(the vote's line, its majority: [] where there is none) over ballots ({voter: (arrays, tolerance kind)}, at
    least three): 'vote on the WHAT (float64, N voters): a, b agree with each other; the odd one out: c'. prefer: the
    voter whose group wins a tie of sizes (the implementation under check)."""
    import backends

    agree = {a: {b for b in ballots if b != a and _same(ballots[a], ballots[b])} for a in ballots}
    best = max(ballots, key=lambda a: (len(agree[a]), a == prefer))
    group = [b for b in ballots if b == best or b in agree[best]]
    odd = [b for b in ballots if b not in group]
    head = f"vote on the {what} (float64, {len(ballots)} voters): "
    if not odd:
        return head + unanimous, group
    if 2 * len(group) <= len(ballots):
        return head + "no majority: " + "; ".join(f"{a} agrees with {', '.join(sorted(agree[a])) or 'no one'}"
                                               for a in ballots), []
    blamed = ", ".join(f"{b} (the reference)" if b == backends.REFERENCE else b for b in odd)
    return head + f"{', '.join(group)} agree with each other; the odd one out: {blamed}", group


# Fused losses where the output saturates, worked by hand: one sample, x = 1, no bias, z = (c, -c) with c large
# enough that softmax underflows (and exp(c) overflows) in the dtype, and targets (0, 1) that the saturated output
# gets wrong. softmax CE: L = -log softmax(z)_2 = 2c, dz = a - y = (1, -1). bce: L = (logaddexp(0, c) + logaddexp(0,
# -c) + c) / 2 = c (to the last bit), dz = (a - y) / 2 = (1/2, -1/2).
SATURATION = {"float64": 800.0, "float32": 100.0}
SATURATED_LOSS = {"softmax_cross_entropy": (2.0, 1.0), "bce": (1.0, 2.0)}  # loss: (L / c, N K)


def check_saturation(driver, device="cpu"):
    """Each fused loss at saturated logits, in each dtype, against the hand-worked values above: a softmax
    without its max subtracted gives inf / inf = NaN here, and an unfused bce 0 / 0."""
    from reference import Config

    found = Findings()
    for dtype, c in SATURATION.items():
        for loss, (per_c, nk) in SATURATED_LOSS.items():
            output = "softmax" if loss == "softmax_cross_entropy" else "sigmoid"
            config = Config(layers=(1, 2), output=output, loss=loss, init="he_normal", epochs=1, dtype=dtype)
            params = [(np.array([[c, -c]], dtype), np.zeros(2, dtype))]
            X, y = np.ones((1, 1), dtype), np.array([[0.0, 1.0]], dtype)
            # The reference's sigmoid keeps the seeds' 1 / (1 + exp(-z)): exp(c) overflows, harmlessly, to a = 0.
            with np.errstate(over="ignore"):
                value, ((dW, db),) = computed(driver.name, "gradients", driver.run_gradients, params, X, y, config,
                                              device)
            dz = np.array([1.0, -1.0], dtype) / nk
            label = f"{loss} at saturated logits ±{c:g} ({dtype}):"
            found.compare(value, np.array(per_c * c, dtype)[()], None, "forward", what=f"{label} loss",
                          backend=driver.name)
            found.compare(db, dz, None, "forward", what=f"{label} layer 1 bias gradient", backend=driver.name)
            found.compare(dW, dz[None, :], None, "forward", what=f"{label} layer 1 weight gradient",
                          backend=driver.name)
    return found.result()


FRAMEWORK_OPTIMIZER = {"torch": "torch.optim", "jax": "optax"}


def check_framework_optimizer(driver, case, device="cpu", native=False):
    """The reference's manual optimizer against the framework's own (torch.optim, optax) driven by the framework's
    autodiff, over the case's whole run in float64: losses at every step, parameters at the checkpoints. native: of
    the loss by the framework's own layers (torch.nn.functional's conv2d, lax.reduce_window, ...), not the manual
    forward: the whole model trained the framework's way, no manual line in it."""
    config, params, X, y, orders = case.inputs("float64")
    checkpoints = case.checkpoints(config.epochs)
    autodiff = backend_module(driver, "autodiff")
    arrays = driver.native_params(params, device), driver.to_native(X, device), driver.to_native(y, device)
    run = computed(driver.name, "training", autodiff.optimizer_train, *arrays, config,
                   None if orders is None else driver.to_native(orders, device), checkpoints, native)
    ref = _reference(reference_run, case, "float64")
    label = (f"{driver.name}{'s own layers' if native else ''} autodiff + "
             f"{FRAMEWORK_OPTIMIZER[driver.name]}.{config.optimizer}")
    found = Findings()
    found.compare(driver.to_numpy(run.losses), ref.losses, None, "trajectory", what="loss [epoch, step]",
                  backend=label)
    for i, name in enumerate(param_names(config)):
        # The framework's own run keeps its optimizer's state to itself: its checkpoints hold parameters alone.
        ours = np.stack([driver.to_numpy(flat(run.checkpoints[e])[i]) for e in checkpoints])
        found.compare(ours, _stacked(ref, i, checkpoints), None, "trajectory", what=name, backend=label,
                      epoch=list(checkpoints))
    return found.result()
