"""A diagnosis instead of a diff: where an implementation's run parts from the reference's, and what it looks like.

diagnose(driver, case) looks at the first step, in float64, stage by stage: the network's output, the loss, each
layer's gradients from the output layer down, the update (the parameters after the first epoch), and, if all of
those agree, where the whole run first leaves its tolerance. Then it plants each known mistake of the catalogue
(crosscheck/diagnosis/catalogue.py) in the NumPy reference in turn, and names those with which the reference reproduces
every value the implementation gave, within the float64 tolerances: "it looks like sigmoid'(z) computed from z
where the output a is meant", or "none of the N known mistakes matches".
"""

import copy
import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from functools import cache, partial
from typing import Any

import numpy as np

from crosscheck import backends, reference
from crosscheck.common.conventions import CONVENTIONS, alternatives
from crosscheck.common.driver import Unsupported
from crosscheck.common.model import Layer
from crosscheck.common.registry import ACTIVATIONS
from crosscheck.diagnosis import mutations
from crosscheck.diagnosis.catalogue import BUGS, PROBES
from crosscheck.diagnosis.observe import (
    Observed,
    bounded,
    close,
    how_much,
    low_bounds,
    observe,
    shadow_bounds,
    short_run,
    short_runs,
    tolerance_of,
)
from crosscheck.reference import activations as acts
from crosscheck.reference import layers as lyrs
from crosscheck.reference import mlp
from crosscheck.suite.cases import declared_by, under
from crosscheck.verdict import checks
from crosscheck.verdict.compare import Disagreement

STAGES = ("output", "loss", "gradients", "update", "trajectory", "unobserved")
LOOKS = ": it looks like "  # where an adapter's own finding (the update rule's) says what it looks like


@dataclass
class Diagnosis:
    backend: str
    case: str
    stage: str | None  # the first stage that parts (STAGES), or None where the first step agrees throughout
    where: str  # what parts there, in words
    matches: list  # (id, what): catalogue mistakes with which the reference reproduces the implementation, or the
    # adapter's own finding ("update-rule": the step read back at two learning rates is not W - lr x gradient)
    candidates: int  # how many were tried
    dtype: str = "float64"  # what the first step was looked at in: float64, or a float32-only program's float32
    conventions: list = field(default_factory=list)  # ((key, value), ...) each that reproduces it: a declaration

    def text(self):
        lines = [f"diagnosis of {self.backend} on {self.case} ({self.dtype}, the first step):",
                 f"  where: {self.where}"]
        if self.stage in (None, "unobserved"):
            return "\n".join(lines)
        if self.conventions:
            lines += [f"  it follows {'a convention' if len(change) == 1 else 'conventions'}, not a mistake: "
                      + "; and ".join(_followed(key, value) for key, value in change)
                      + f"; declare {' '.join(f'--convention {k}={v}' for k, v in change)} (conventions="
                      + "{" + ", ".join(f"{k!r}: {v!r}" for k, v in change) + "} in Python)"
                      for change in self.conventions]
            return "\n".join(lines)
        planted = [(bug_id, what) for bug_id, what in self.matches if bug_id != "update-rule"]
        lines += [f"  it looks like: {what}" for bug_id, what in self.matches if bug_id == "update-rule"]
        if planted:
            looks = "; or ".join(f"{what} [{bug_id}]" for bug_id, what in planted)
            lines.append(f"  it looks like: {looks} (the reference with that mistake planted reproduces every value "
                         f"{self.backend} gave)")
        elif not self.matches:
            lines.append(f"  it looks like: none of the {self.candidates} known mistakes matches (crosscheck/"
                         f"diagnosis/catalogue.py); the values above are where to look")
        if self.candidates:
            numpy = "NumPy" if self.dtype == "float64" else f"NumPy {self.dtype}"
            lines.append(f"  tried: {self.candidates} of the catalogue's {len(BUGS)} mistakes, planted in the {numpy} "
                         f"reference one at a time; the other {len(BUGS) - self.candidates} cannot be planted there "
                         f"(probes with problems of their own, other dtypes, or the frameworks' code alone)")
        return "\n".join(lines)


def _followed(key, value):
    """What following convention key's value means, and how to declare it."""
    convention = CONVENTIONS[key]
    where = convention.values.get(value) or next(said for v, said in convention.values.items()
                                                 if v.split(":")[0] == value.split(":")[0])
    return f"{convention.doc} as {value} ({where}), where {convention.default} is in force"


def layer_label(config, i):
    """config.model[i] in words: "layer 2 (dense)", "the tanh after layer 1", "the output sigmoid"."""
    layer = config.model[i]
    if layer.slot is not None:
        return f"layer {layer.slot + 1} ({layer.kind})"
    if i == len(config.model) - 1:
        return f"the output {layer.kind}"
    below = [earlier.slot for earlier in config.model[:i] if earlier.slot is not None]
    return f"the {layer.kind} after layer {below[-1] + 1}" if below else f"the {layer.kind} on the input"


def _forward_parts(seen, ref, config, name):
    """Where the forward pass parts: the first layer whose output differs, where both give each layer's."""
    if seen.layers is None or ref.layers is None:
        return (f"the network's output differs already: the forward pass ({name} gives only its output, so the "
                f"layer where it parts is not located)")
    for i, (y, r) in enumerate(zip(seen.layers, ref.layers)):
        if not close(y, r, tolerance_of(seen, "layers", i)):
            agree = f"; the {i} layers below it agree" if i else ""
            return f"the forward pass parts at {layer_label(config, i)}, model[{i}]: its output differs{agree}"
    return "the network's output differs, though each layer's output agrees: the forward pass"


def _parts(seen, ref, config, name="it"):
    """(stage, where): the first stage at which seen parts from ref, described; (None, ...) if none does. A stage
    whose values were not received is no agreement: where none was, the stage is "unobserved"."""
    if seen.output is None and seen.loss is None and not seen.after and not seen.problems:
        return "unobserved", (f"{name} gave no value of the first step in {config.dtype} (it answers no "
                              f"{config.dtype} problem), so nothing can be located there; its checks above say where "
                              f"it parts")
    if "output" in seen.problems:
        return "output", f"the forward pass {seen.problems['output']}"
    if not close(seen.output, ref.output, tolerance_of(seen, "output")):
        return "output", _forward_parts(seen, ref, config, name)
    if "gradients" in seen.problems:
        return "gradients", f"the backward pass {seen.problems['gradients']}"
    if seen.loss is not None and not close(seen.loss, ref.loss, tolerance_of(seen, "loss")):
        return "loss", "the output agrees, the loss does not: the loss function"
    names = checks.param_names(config, " gradient")
    bad = [n for i, (n, g, r) in enumerate(zip(names, seen.grads, ref.grads))
           if not close(g, r, tolerance_of(seen, "grads", i, "gradient"))]
    if bad:
        ok = [n for n in names if n not in bad]
        nearest = bad[-1].rsplit(" ", 2)[0]  # "layer 2": the layer nearest the output whose gradients differ
        return "gradients", (f"the output and the loss agree; going back from the output, the gradients first differ "
                             f"at {nearest} ({', '.join(bad)} differ" + (f"; {', '.join(ok)} agree)" if ok else ")"))
    if "update" in seen.problems:
        return "update", f"the gradients agree; the update does not: {seen.problems['update']}"
    after = checks.param_names(config)
    moved = [n for n, a, r, k in zip(after, seen.after, ref.after, _after_kinds(seen)) if not close(a, r, k)]
    if moved:
        noisy = sorted({layer.kind for layer in config.model if layer.mask is not None})
        suspects = (f"the update, or the {'/'.join(noisy)} layers, which act in training alone (the output and the "
                    f"gradients above are taken without them)" if noisy else "the update")
        return "update", (f"the output, the loss and every gradient agree; the parameters after the first epoch do "
                          f"not ({', '.join(moved)}): {suspects}")
    return None, "the first step agrees: output, loss, every gradient and the parameters after the first epoch"


def _crash(problem):
    """The exception type a stage raised ("raised ValueError: ..." -> "ValueError"), or the message itself."""
    return problem.split(":", 1)[0]


def _matches(seen, ref, loss_kind="forward"):
    """Whether the reference's values ref reproduce everything seen: each observed value within tolerance, and the
    same stages raising the same exceptions."""
    crashes = [{stage: _crash(text) for stage, text in o.problems.items()} for o in (seen, ref) if o is not None]
    if ref is None or crashes[0] != crashes[1]:
        return False
    pairs = [(seen.output, ref.output, tolerance_of(seen, "output")),
             (seen.loss, ref.loss, tolerance_of(seen, "loss", None, loss_kind))]
    if seen.layers is not None and ref.layers is not None:
        pairs += [(y, r, tolerance_of(seen, "layers", i)) for i, (y, r) in enumerate(zip(seen.layers, ref.layers))]
    pairs += [(g, r, tolerance_of(seen, "grads", i, "gradient")) for i, (g, r) in enumerate(zip(seen.grads, ref.grads))]
    pairs += [(a, r, k) for a, r, k in zip(seen.after, ref.after, _after_kinds(seen))]
    return all(close(a, r, kind) for a, r, kind in pairs)


def _after_kinds(seen):
    """Each of seen.after's tolerances: its bound where observed with one, else the trajectory row."""
    return [tolerance_of(seen, "after", i, "trajectory") for i in range(len(seen.after))]


def candidates():
    """The catalogue's mistakes that can be planted in the reference and show at the first step or epoch."""
    return [bug for bug in BUGS if bug.check not in PROBES and bug.dtype == "float64"
            and (not bug.only or backends.REFERENCE in bug.only)]


def _planted_observations(bug, case, look, at=None):
    """look(reference driver, case) with bug planted in the reference (at: in model[at] alone, for a mistake in an
    activation); None where the line is not in the reference."""
    module, planted_reference = _in_reference(bug), _planted_reference(case)
    try:
        if at is None:
            with mutations.planted(module, *bug.spelled(backends.REFERENCE)), np.errstate(all="ignore"):
                return look(planted_reference, case)
        with _activation_planted_at(module, *bug.spelled(backends.REFERENCE)), np.errstate(all="ignore"):
            return look(planted_reference, _Marked(case, at))
    except AssertionError:  # the line is not spelled so in this version of the reference
        return None
    except Exception:  # noqa: BLE001  (the planted reference crashed here: it reproduces nothing)
        return None


def _in_reference(bug):
    return f"{backends.REGISTRY[backends.REFERENCE][0]}.{bug.module}"


def _planted_reference(case):
    """The reference a mistake is planted in: on a sharded problem its shards, simulated (the clean reference runs on
    one device, where a mistake of the collectives would never run)."""
    return reference.SHARDS if case.config.parallel is not None else reference.DRIVER


def _acting(bugs, case, look):
    """bugs less those planted in a function of the reference that look at case never calls: planted, such a mistake
    changes nothing, so reproduces nothing, and planting it costs a run (about half the catalogue on an MLP)."""
    with np.errstate(all="ignore"):
        calls = mutations.called(lambda: look(_planted_reference(case), case))
    found = (mutations.planted_in(_in_reference(bug), bug.spelled(backends.REFERENCE)[0]) for bug in bugs)  # lazily
    return bugs if calls is None else [bug for bug, where in zip(bugs, found) if where is None or where in calls]


# -- a mistake in one activation layer alone: students slip in one layer, where the catalogue plants in every one

class _Target(Layer):
    """The one layer of a model (a copy of its Layer) in which _activation_planted_at's mistake acts."""


class _Marked:
    """case with model[index] of each of its configs a _Target."""

    def __init__(self, case, index):
        self.case, self.index = case, index

    def __getattr__(self, name):
        return getattr(self.case, name)

    def problem(self, *args, **kwargs):
        problem = self.case.problem(*args, **kwargs)
        model = list(problem.config.model)
        model[self.index] = _Target(**{f.name: getattr(model[self.index], f.name) for f in fields(Layer)})
        marked = copy.copy(problem.config)
        object.__setattr__(marked, "model", tuple(model))  # past validation: the same model, one layer marked
        return replace(problem, config=marked)

    def inputs(self, *args, **kwargs):
        return self.problem(*args, **kwargs).pieces()


@contextmanager
def _activation_planted_at(module, old, new):
    """The reference with a mistake of reference/activations.py planted in the _Target layer alone."""
    with mutations.planted(module, old, new):  # take the planted functions out, then put the module back
        forward, backward, output_backward = dict(acts.FORWARD), dict(acts.BACKWARD), acts.activation_backward
    clean_forward, clean_backward = lyrs.shapes.activation_layer_forward, lyrs.shapes.activation_layer_backward

    def layer_forward(layer, p, z):
        if not isinstance(layer, _Target):
            return clean_forward(layer, p, z)
        a = forward[layer.kind](z)
        return a, (z, a)

    def layer_backward(layer, p, cache, da):
        if not isinstance(layer, _Target):
            return clean_backward(layer, p, cache, da)
        return backward[layer.kind](da, *cache), ()

    def mlp_backward(params, X, y, caches, config, scale=None):  # the output activation's backward: mlp.backward's
        marked = isinstance(config.model[-1], _Target)
        mlp.activation_backward = output_backward if marked else acts.activation_backward
        try:
            return clean_mlp_backward(params, X, y, caches, config, scale)
        finally:
            mlp.activation_backward = acts.activation_backward

    clean_mlp_backward, patch = mlp.backward, mutations.Patch()
    try:
        for kind in lyrs.ACTIVATIONS:
            patch.setitem(lyrs.FORWARD, kind, layer_forward)
            patch.setitem(lyrs.BACKWARD, kind, layer_backward)
        patch.setattr(mlp, "backward", mlp_backward)
        yield
    finally:
        patch.undo()
        mutations.clear_caches(reference=True)  # the reference's own tables were patched, not through mutate


def diagnose(driver, case, device="cpu", run_failed=False, first_epoch=None, dtype="float64"):
    """The Diagnosis of driver on case (crosscheck.suite.cases.Case): where its first step parts from the reference's,
    and which known mistakes, planted in the reference, reproduce it. run_failed: the caller's check of the whole run
    failed (first_epoch: where), which a first step that agrees then leaves to the run; never contradicted. dtype: the
    run's; an implementation that answers no float64 problem (a float32-only program) is diagnosed in it, the
    mistakes planted in the reference in that dtype and matched within its low-precision bounds."""
    case = declared_by(driver, case)
    precision, seen = _looked_at(driver, case, device, dtype)
    ref = observe(reference.DRIVER, case, dtype=precision)
    stage, where = _where(driver, case, device, precision, seen, ref, (run_failed, first_epoch))
    runs = cache(partial(short_runs, driver, case, device))  # trained once, for the conventions and the catalogue
    followed = _conventions(case, precision, stage, seen, ref, runs, getattr(driver.mlp, "BORROWS_LOSS", False))
    if followed:  # a convention reproduces it: no mistake is looked for
        return Diagnosis(driver.name, case.id, stage, where, [], 0, precision, followed)
    where, matches, tried = _named(case, precision, stage, where, seen, ref, runs)
    return Diagnosis(driver.name, case.id, stage, where, matches, len(tried), precision)


def _conventions(case, precision, stage, seen, ref, runs, borrowed=False):
    """[((key, value), ...)]: registered conventions, one changed from case's, else two, under which the reference
    reproduces driver over a short run (the running statistics' show only there; the first step where no run can be
    had). Only changes whose first step reproduces driver's, or leaves the reference's as it is (acting later), are
    run (steps are cheap); where driver's first step parts, only those holding one that reproduces it (a change that
    leaves the first step as it is cannot reproduce one that parts; with one that does, it can: makemore part 4's).
    borrowed: driver's loss is the suite's own of its output (the read-back adapters'), computed under whatever the
    config declares, so it says nothing of the code: the loss is left out of the comparison."""
    if stage in (None, "unobserved") or precision != "float64":
        return []
    reproducing, later = _first_steps_under(case, seen, ref, borrowed)
    if not reproducing and (stage != "trajectory" or not later):
        return []
    look: Any = observe
    kind = "forward"
    try:
        (seen, ref), look, kind = runs(), short_run, "trajectory"
    except Exception:  # noqa: BLE001  (a crash here was reported by the check itself; the first step is judged)
        pass
    for together in (1, 2):  # one convention changed, else two (makemore part 4 changes two of batch norm's)
        found = []
        for change in itertools.combinations(reproducing + later, together):
            if len({key for key, _ in change}) < together or (
                    stage != "trajectory" and not any(one in reproducing for one in change)):
                continue
            try:
                with np.errstate(all="ignore"):
                    alt = _lent(look(reference.DRIVER, under(case, change)), seen, borrowed)
            except Exception:  # noqa: BLE001, S112  (the reference under it cannot run this case)
                continue
            if _matches(seen, alt, kind) and not _matches(bounded(ref, seen.bounds), alt, kind):
                found.append(change)
        if found:
            return found
    return []


def _first_steps_under(case, seen, ref, borrowed):
    """(the single changes under which the reference's first step reproduces driver's, those under which it stays the
    reference's own: they act later, or not on this case)."""
    reproducing, later = [], []
    for change in alternatives(case.config):
        try:
            with np.errstate(all="ignore"):
                first = _lent(observe(reference.DRIVER, under(case, [change])), seen, borrowed)
        except Exception:  # noqa: BLE001, S112  (the reference under it cannot run this case: it reproduces nothing)
            continue
        if _matches(seen, first, "forward"):
            reproducing.append(change)
        elif _matches(bounded(ref, seen.bounds), first, "forward"):
            later.append(change)
    return reproducing, later


def _lent(alt, seen, borrowed):
    """alt with seen's loss where the loss seen is the suite's, not the code's (borrowed): left out of the match."""
    if borrowed:
        alt.loss = seen.loss
    return alt


def _looked_at(driver, case, device, dtype):
    """(the precision driver is diagnosed in, its first step there held to the reference's bounds): float64, or dtype
    where it answers no float64 problem. The bounds are the reference's, taken before anything is planted in it."""
    precision, seen = "float64", observe(driver, case, device)
    if dtype != "float64" and _parts(seen, Observed(), case.config)[0] == "unobserved":
        precision, seen = dtype, observe(driver, case, device, dtype)
    bounds: dict = {}
    try:
        if precision == "float64":
            bounds = {"after": shadow_bounds(case, 1)[1][:len(checks.flat(case.problem(precision).params))]}
        else:
            bounds = low_bounds(case, precision)
    except Exception:  # noqa: BLE001  (the reference's own crash is reported by the checks; the table's row holds)
        pass
    return precision, bounded(seen, bounds)


def _where(driver, case, device, precision, seen, ref, run):
    """(the first stage that parts, or None; what parts there, in words, with how much where it can say). run: the
    caller's (whether the whole run failed, from which epoch); where the first step agrees, a short run is tried."""
    problem = case.problem(precision)
    config, params, X = problem.config, problem.params, problem.X
    stage, where = _parts(seen, ref, config, driver.name)
    if stage == "gradients" and "gradients" not in seen.problems:
        where += how_much(seen.grads, ref.grads, len(X), "gradient", config)
    elif stage == "update" and "update" not in seen.problems and seen.after and ref.after:
        start = checks.flat(params)
        where += how_much([a - p for a, p in zip(seen.after, start)], [a - p for a, p in zip(ref.after, start)],
                           config.batch_size or len(X), "step", config, config.lr)
    run_failed, first_epoch = run
    if stage is None and run_failed:
        return "trajectory", where + "; the run parts later" + (f", from epoch {first_epoch}"
                                                                 if first_epoch is not None else "")
    if stage is None:
        try:
            checks.check_trajectory(driver, case, precision, device, epochs=case.short_epochs)
            where += f"; so does the run of {case.short_epochs} epochs" if case.short_epochs else "; so does the run"
        except Disagreement as exc:
            stage = "trajectory"
            where += (f"; the run parts later, from epoch {exc.first_epoch}" if exc.first_epoch is not None
                      else "; the run parts later")
        except Unsupported:
            pass
    return stage, where


def _named(case, precision, stage, where, seen, ref, runs):
    """(where, the mistakes named, the catalogue's mistakes tried). A mistake is named when the reference with it
    planted reproduces what the implementation gave, and differs from the clean reference in what is observed (a
    mistake in a layer the case lacks changes nothing, so explains nothing). A mistake in an activation is then tried
    in each activation layer alone, where planted in all of them it matched nothing: a slip in one layer is the
    common kind."""
    config = case.problem(precision).config
    matches, tried = [], candidates()
    rule = seen.problems.get("update", "")
    if stage == "update" and LOOKS in rule:  # the adapter's update-rule check has already said what it looks like
        where, looks = rule.split(LOOKS, 1)
        matches.append(("update-rule", f"{looks} (the step read back at two learning rates)"))
    look: object = partial(observe, dtype=precision)
    if stage == "trajectory" and precision != "float64":
        tried = []  # a low-precision run's later parting: located by the checks, not planted
    elif stage == "trajectory":
        look = short_run
        try:
            seen, ref = runs()
        except Exception:  # noqa: BLE001  (a crash here was reported by the check itself)
            tried = []
    kind = "trajectory" if stage == "trajectory" else "forward"

    def reproduces(planted):
        return planted is not None and _matches(seen, planted, kind) and not _matches(bounded(ref, seen.bounds),
                                                                                      planted, kind)

    if stage in (None, "unobserved"):  # nothing parts, or nothing was received to reproduce: none is named
        return where, matches, [] if stage == "unobserved" else tried
    acting = _acting(tried, case, look)  # counted as tried; the others cannot change what the reference gives
    matches += [(bug.id, bug.what) for bug in acting if reproduces(_planted_observations(bug, case, look))]
    if stage in ("output", "loss", "gradients") and not matches:
        positions = [i for i, layer in enumerate(config.model) if layer.kind in ACTIVATIONS]
        for bug in (bug for bug in acting if bug.module == "activations"):
            matches += [(bug.id, f"{bug.what}, in {layer_label(config, i)} alone (model[{i}])") for i in positions
                        if reproduces(_planted_observations(bug, case, look, at=i))]
    return where, matches, tried
