"""What every check shares: Findings (compare every quantity, then one Disagreement listing all that failed), a
crash of the code under test turned into a finding, and the reference's results each check compares with, computed
once per process (crosscheck/verdict/checks.py clears them when the code under test changes)."""

import contextlib
import importlib
from functools import lru_cache, partial
from operator import attrgetter

import numpy as np

from crosscheck import reference
from crosscheck.common import dtypes
from crosscheck.common.driver import Run, TrainState, Unsupported
from crosscheck.common.errors import AdapterError, refusal
from crosscheck.suite.cases import upcast_problem
from crosscheck.verdict import tolerances
from crosscheck.verdict.compare import Disagreement, assert_close, assert_low_close


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

    def compare(self, actual, ref, ref64, kind, *, what, backend, epoch=None, dtype=None):
        """ref is the reference in the problem's dtype; ref64 its float64 twin (None for float64 problems compared
        with a fixed tolerance; in float64, the reference in extended precision: op_inputs.wide_twin). kind: a row of
        tolerances.FLOAT64, or a Tol itself (a probe's). dtype: the lower dtype actual is held to, where not the
        problem's (a framework's own op that computes in float32 whatever it is given)."""
        try:
            if ref64 is None:
                tol = kind if isinstance(kind, tolerances.Tol) else tolerances.float64(kind)
                diff = assert_close(actual, ref, tol, what=what, backend=backend, epoch=epoch)
            else:
                diff = assert_low_close(actual, ref, ref64, what=what, backend=backend, epoch=epoch,
                                        dtype=dtype or self.dtype, rule=self.rule)
            self.diffs.append((what, epoch, diff))
        except Disagreement as exc:
            self._failed(exc, epoch)

    def compare_run(self, actual, ref, shadows, *, what, backend, epoch=None):
        """A float64 run's quantity against the reference's run, bounded by the spread of the reference's runs under
        rounding: shadows, thunks giving that quantity in each (cheapest first: shadow_run's, then extended_run's),
        asked for only while actual strays past the bound's floor and past each spread so far. The bound is monotone
        in the spread, so passing one passes the widest; a failure is said against the widest."""
        try:
            if ref is not None and _within_floor(actual, ref):
                self.diffs.append((what, epoch, assert_close(actual, ref, tolerances.Tol(0.0, np.inf), what=what,
                                                             backend=backend, epoch=epoch)))
                return
            seen: list = []
            for thunk in shadows:
                quantity = thunk()
                if quantity is None:
                    continue
                seen.append(quantity)
                try:
                    self.diffs.append((what, epoch, assert_low_close(actual, quantity, ref, what=what, backend=backend,
                                                                     epoch=epoch, dtype="float64", twin="nudged")))
                    return
                except Disagreement:
                    continue
            self.diffs.append((what, epoch, assert_low_close(actual, widest(ref, seen) if seen else ref, ref,
                                                             what=what, backend=backend, epoch=epoch,
                                                             dtype="float64", twin="nudged")))
        except Disagreement as exc:
            self._failed(exc, epoch)

    def _failed(self, exc, epoch):
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


def _within_floor(actual, ref):
    """Whether actual lies within the float64 bound's floor of ref (tolerances.low_bound with no spread): then no
    shadow run is needed to pass it. False on a shape mismatch or on anything not finite (the comparison says why)."""
    actual, ref = np.asarray(actual), np.asarray(ref)
    if actual.shape != ref.shape or actual.dtype != ref.dtype or actual.size == 0:
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        floor = tolerances.low_bound("float64", 0.0, float(np.max(np.abs(ref))))
        return bool(np.all(np.abs(actual.astype(np.float64) - ref) <= floor))


def computed(label, stage, fn, *args):
    """fn(*args), with a crash turned into a reported Disagreement that names who crashed and where.

    A mistake can make a backend raise (a shape error from a missing transpose) rather than return a wrong
    number; that is a finding about the backend, to be reported like one, not a traceback from the suite.
    """
    __tracebackhide__ = True
    try:
        return fn(*args)
    except (Disagreement, Unsupported):
        raise
    except AdapterError as exc:  # the code not fitting its adapter: a refusal, no finding; its crash: a finding
        if refusal(exc):
            raise
        raise Disagreement(f"{exc} (a crash, not a result)") from exc
    except Exception as exc:  # noqa: BLE001  (any crash of the code under test is the finding)
        raise Disagreement(f"{label}: {stage}: raised {type(exc).__name__}: {exc}".rstrip() +
                           " (a crash, not a result)") from exc


def overflow_allowed(config):
    """Computing in a 16-bit dtype (alone or mixed), NumPy's overflow warnings silenced: the seeds' sigmoid
    1 / (1 + exp(-z)) takes exp(-z) to inf below z = -11 in float16 and gives 0, its right limit. An overflow is no
    finding by itself; a result that is not finite is one, and the comparison refuses it
    (crosscheck/verdict/compare.py)."""
    if config.compute is not None:  # mixed: a scaled gradient overflows by design (inf, then inf * 0), and is skipped
        return np.errstate(over="ignore", invalid="ignore")
    return np.errstate(over="ignore") if config.dtype in dtypes.HALF else contextlib.nullcontext()


def _problem(case, dtype, epochs, as_float64):
    """The case's Problem in dtype, or its float64 twin: the same values, computed in float64."""
    problem = case.problem(dtype, epochs)
    return upcast_problem(problem) if as_float64 else problem


def bounding_driver(config):
    """The reference run whose own rounding sets a problem's bounds: the reference on one device; for a sharded problem
    below float64, its simulated shards (reference.SHARDS), whose sums over the ranks round as a sharded backend's do
    (a tensor-parallel GPT block's float32 weights stray twice as far as the one-device run's). The float64 twin, the
    oracle, is the run on one device."""
    return reference.SHARDS if config.parallel is not None and config.dtype != "float64" else reference.DRIVER


@lru_cache(maxsize=64)
def reference_point(case, dtype, as_float64=False):
    """The reference's output and (loss, gradients) at a case's initial parameters, once per process.

    as_float64: the float64 reference on exactly the values of the dtype problem (for float32 bounds).
    """
    p = _problem(case, dtype, None, as_float64)
    driver = bounding_driver(p.config)
    with overflow_allowed(p.config):
        return driver.run_forward(p.params, p.X, p.config), driver.run_gradients(p.params, p.X, p.y, p.config)


@lru_cache(maxsize=64)
def extended_point(case, dtype):
    """reference_point of a float64 case computed in extended precision (np.longdouble, where wider; else None): the
    twin whose distance from the float64 reference bounds a backend's output, loss and gradients (tolerances.LOW
    ["float64"]), as the float32 reference's distance from float64 bounds float32's."""
    if dtype != "float64":
        return None
    twin = extended_layers(_problem(case, dtype, None, False))
    return None if twin is None else (twin[0][-1], twin[1])


def one_device(config):
    """config as the reference runs it: a sharded problem on one device (what every sharded run is compared with)."""
    return config.replace(parallel=None) if config.world > 1 else config


def widened(problem):
    """(params, X, y, masks) of problem in np.longdouble where it is wider than float64 (ids as they are), else None."""
    wide = tolerances.wider()
    if wide is None:
        return None

    def up(t):
        return t if t.dtype.kind in "iub" else t.astype(wide)

    masks = None if problem.noise is None else [up(m) for m in problem.noise]
    return [tuple(map(up, leaves)) for leaves in problem.params], up(problem.X), up(problem.y), masks


def extended_layers(problem):
    """([each layer's output], (loss, gradients)) of the reference on a float64 problem in extended precision, as
    reference.DRIVER computes them (run_layers, run_gradients: on one device); None where longdouble is no wider."""
    arrays = widened(problem)
    if arrays is None:
        return None
    params, X, y, _ = arrays
    config = one_device(problem.config)
    with np.errstate(all="ignore"):  # a non-finite twin is refused by the comparison, naming it
        outputs = [cache[1] for cache in reference.mlp.forward(params, X, config)]
        return outputs, reference.mlp.gradients(params, X, y, config)


def nudged_train(problem, checkpoints):
    """The reference's run of a float64 problem (on one device) with every parameter nudged by one ulp, up or down (a
    seeded sign per entry, flipped or not at each step), after every step: the run under rounding-sized changes."""
    config = one_device(problem.config)
    rng = np.random.default_rng(config.seed + 7919)
    signs = [[rng.choice((-1.0, 1.0), p.shape) for p in leaves] for leaves in problem.params]
    flips = iter(rng.choice((-1.0, 1.0), config.epochs * len(problem.steps)))

    def nudge(params):  # p + s ulp(p): one sign pattern per leaf, flipped or not at each step
        flip = next(flips)
        return [tuple(p + flip * s * np.spacing(p) for p, s in zip(leaves, ss)) for leaves, ss in zip(params, signs)]

    with np.errstate(all="ignore"):  # a run that diverges spreads without bound, which the comparison refuses
        return reference.mlp.train(problem.params, problem.X, problem.y, config, problem.orders, checkpoints,
                                   masks=problem.noise, nudge=nudge)


def extended_train(problem, checkpoints):
    """The reference's run of a float64 problem (on one device) in extended precision, its arrays left in it; None
    where longdouble is no wider than float64."""
    arrays = widened(problem)
    if arrays is None:
        return None
    params, X, y, masks = arrays
    with np.errstate(all="ignore"):  # as nudged_train's
        return reference.mlp.train(params, X, y, one_device(problem.config), problem.orders, checkpoints, masks=masks)


@lru_cache(maxsize=64)
def reference_run(case, dtype, epochs=None, as_float64=False):
    """The reference's training run for a case (bounding_driver's), once per process."""
    problem = _problem(case, dtype, epochs, as_float64)
    with overflow_allowed(problem.config):
        return bounding_driver(problem.config).train(problem, case.checkpoints(problem.config.epochs))


@lru_cache(maxsize=64)
def shadow_run(case, dtype, epochs=None):
    """The reference's float64 run of a case with every parameter nudged by one ulp after every step (nudged_train):
    what the same code gives under rounding-sized changes. Its spread from the reference's own run measures how far
    the run amplifies rounding, leaf by leaf (an exact zero gradient under batch norm, which Adam divides by its own
    RMS, spreads as far as the learning rate); with extended_run's, it bounds every backend's deviation (shadows)."""
    problem = case.problem(dtype, epochs)
    return nudged_train(problem, case.checkpoints(problem.config.epochs))


@lru_cache(maxsize=64)
def extended_run(case, dtype, epochs=None):
    """The reference's run of a float64 case computed in extended precision (extended_train; None where longdouble is
    no wider), rounded to float64 at the end: the float64 run's own rounding, as the NumPy float32 reference's
    deviation from float64 measures float32's. It sees what nudges miss: sums over ranks or tokens rounded in another
    order, a relu's argument rounded across its kink."""
    problem = case.problem(dtype, epochs)
    run = extended_train(problem, case.checkpoints(problem.config.epochs))
    if run is None:
        return None

    def down(tree):
        return [tuple(np.asarray(t, np.float64) for t in leaves) for leaves in tree]

    def state(s):
        return TrainState(down(s.params), {k: down(v) for k, v in s.opt_state.items()}, s.step, down(s.buffers))

    return Run(losses=np.asarray(run.losses, np.float64), params=down(run.params), state=state(run.state),
               checkpoints={e: state(s) for e, s in run.checkpoints.items()})


def shadows(case, dtype, epochs=None):
    """The reference's runs under rounding: shadow_run's and extended_run's (where longdouble is wider)."""
    return [run for run in (shadow_run(case, dtype, epochs), extended_run(case, dtype, epochs)) if run is not None]


def widest(ref, candidates):
    """Of candidate arrays (the same quantity in each shadow run), the one farthest from ref: the spread bounds use."""
    def spread(c):  # a non-finite spread is the widest: the comparison then refuses it, naming it
        d = np.abs(np.asarray(c, np.float64) - ref)
        return float(np.max(d)) if np.isfinite(d).all() else np.inf

    return max(candidates, key=spread)


def _reference(fn, case, dtype, *args, **kwargs):
    """The reference's (cached) result, a crash of the reference reported as a Disagreement."""
    return computed("numpy (the reference)", fn.__name__.replace("_", " "), partial(fn, **kwargs), case, dtype, *args)


def _twin(fn, case, dtype, *args):
    """fn's float64 twin of a float32 problem; for a float64 one, reference_point's extended twin (extended_point),
    None for a run (its bounds come from the runs under rounding, shadows) or where longdouble is no wider."""
    if dtype == "float64":
        return _reference(extended_point, case, dtype) if fn is reference_point else None
    return _reference(fn, case, dtype, *args, as_float64=True)


def _evaluated(driver, state, X, config, device):
    """The network's output for X in evaluation mode (reading state's buffers: batch norm's running statistics)."""
    return driver.run_forward(state.params, X, config, device, buffers=state.buffers)


def _stacked(run, i, checkpoints, part=attrgetter("params")):
    """The i-th leaf of part(the TrainState) (default: its parameters) at each checkpoint of run, stacked along a
    new first axis; None for no run."""
    return None if run is None else np.stack([flat(part(run.checkpoints[e]))[i] for e in checkpoints])


def _trajectory(run, n_leaves, checkpoints, evaluate):
    """A run's losses and each parameter stacked over the checkpoints, and where the model keeps buffers, each of
    them too and evaluate(the last checkpoint's state), its network in evaluation mode: one ballot of the vote."""
    last = run.checkpoints[max(checkpoints)]
    buffers = [_stacked(run, i, checkpoints, attrgetter("buffers")) for i in range(len(flat(last.buffers)))]
    evaluated = [evaluate(last)] if buffers else []
    return [run.losses, *(_stacked(run, i, checkpoints) for i in range(n_leaves)), *buffers, *evaluated]


def backend_module(driver, name):
    """A built-in backend's own module (losses, activations, autodiff...), for checks of its individual functions;
    an op plug-in's own table for its family (Driver.ops)."""
    if driver.ops is not None:
        return driver.ops[name]
    from crosscheck import backends  # not at the top: the checks import with NumPy alone (tests/test_mirrors.py)

    return importlib.import_module(f"{backends.REGISTRY[driver.name][0]}.{name}")
