"""A diagnosis instead of a diff: where an implementation's run parts from the reference's, and what it looks like.

diagnose(driver, case) looks at the first step, in float64, stage by stage: the network's output, the loss, each
layer's gradients from the output layer down, the update (the parameters after the first epoch), and, if all of
those agree, where the whole run first leaves its tolerance. Then it plants each known mistake of the catalogue
(crosscheck/catalogue.py) in the NumPy reference in turn, and names those with which the reference reproduces
every value the implementation gave, within the float64 tolerances: "it looks like sigmoid'(z) computed from z
where the output a is meant", or "none of the N known mistakes matches".
"""

from dataclasses import dataclass, field

import numpy as np

import backends
from common.driver import Unsupported

from . import checks, mutations, tolerances
from .compare import Disagreement, assert_close

STAGES = ("output", "loss", "gradients", "update", "trajectory")


@dataclass
class Observed:
    """What one implementation gives at a case's first step: each value, or the exception that stood for it."""

    output: object = None
    loss: object = None
    grads: list = field(default_factory=list)  # flat, in params' order
    after: list = field(default_factory=list)  # the parameters after the first epoch, flat
    problems: dict = field(default_factory=dict)  # stage -> the message of what it raised (a Disagreement...)


@dataclass
class Diagnosis:
    backend: str
    case: str
    stage: str | None  # the first stage that parts (STAGES), or None where the first step agrees throughout
    where: str  # what parts there, in words
    matches: list  # catalogue mistakes (id, what) with which the reference reproduces the implementation
    candidates: int  # how many were tried

    def text(self):
        lines = [f"diagnosis of {self.backend} on {self.case} (float64, the first step):", f"  where: {self.where}"]
        if self.stage is None:
            return "\n".join(lines)
        if self.matches:
            looks = "; or ".join(f"{what} [{bug_id}]" for bug_id, what in self.matches)
            lines.append(f"  it looks like: {looks} (the reference with that mistake planted reproduces every value "
                         f"{self.backend} gave)")
        else:
            lines.append(f"  it looks like: none of the {self.candidates} known mistakes matches (crosscheck/"
                         f"catalogue.py); the values above are where to look")
        return "\n".join(lines)


def _first_epoch_problem(case, epochs=1):
    config, params, X, y, orders = case.inputs("float64", epochs)
    return config, params, X, y, None if orders is None else orders[:epochs]


def observe(driver, case, device="cpu"):
    """driver's values at case's first step (float64); a stage it does not support is left out."""
    config, params, X, y, _ = case.inputs("float64")
    seen = Observed()
    try:
        seen.output = np.asarray(driver.run_forward(params, X, config, device))
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
    config1, params1, X1, y1, orders1 = _first_epoch_problem(case)
    try:
        run = driver.run_train(params1, X1, y1, config1, orders1, (1,), device)
        seen.after = checks.flat(run.params)
    except Unsupported:
        pass
    except Exception as exc:  # noqa: BLE001
        seen.problems["update"] = seen.problems.get("update") or f"raised {type(exc).__name__}: {exc}"
    return seen


def _close(actual, expected, kind):
    if actual is None or expected is None:
        return True  # not observed: nothing to hold against it
    try:
        assert_close(actual, expected, tolerances.float64(kind), what="", backend="")
        return True
    except Disagreement:
        return False


def _parts(seen, ref, config):
    """(stage, where): the first stage at which seen parts from ref, described; (None, ...) if none does."""
    if "output" in seen.problems:
        return "output", f"the forward pass {seen.problems['output']}"
    if not _close(seen.output, ref.output, "forward"):
        return "output", "the network's output differs already: the forward pass"
    if "gradients" in seen.problems:
        return "gradients", f"the backward pass {seen.problems['gradients']}"
    if seen.loss is not None and not _close(seen.loss, ref.loss, "forward"):
        return "loss", "the output agrees, the loss does not: the loss function"
    names = checks.param_names(config, " gradient")
    bad = [n for n, g, r in zip(names, seen.grads, ref.grads) if not _close(g, r, "gradient")]
    if bad:
        ok = [n for n in names if n not in bad]
        nearest = bad[-1].rsplit(" ", 2)[0]  # "layer 2": the layer nearest the output whose gradients differ
        return "gradients", (f"the output and the loss agree; going back from the output, the gradients first differ "
                             f"at {nearest} ({', '.join(bad)} differ" + (f"; {', '.join(ok)} agree)" if ok else ")"))
    if "update" in seen.problems:
        return "update", f"the gradients agree; the update does not: {seen.problems['update']}"
    after = checks.param_names(config)
    moved = [n for n, a, r in zip(after, seen.after, ref.after) if not _close(a, r, "trajectory")]
    if moved:
        return "update", (f"the output, the loss and every gradient agree; the parameters after the first epoch do "
                          f"not ({', '.join(moved)}): the update")
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
    pairs = [(seen.output, ref.output, "forward"), (seen.loss, ref.loss, loss_kind)]
    pairs += [(g, r, "gradient") for g, r in zip(seen.grads, ref.grads)]
    pairs += [(a, r, "trajectory") for a, r in zip(seen.after, ref.after)]
    return all(_close(a, r, kind) for a, r, kind in pairs)


def candidates():
    """The catalogue's mistakes that can be planted in the reference and show at the first step or epoch."""
    from .catalogue import BUGS, PROBES

    return [bug for bug in BUGS if bug.check not in PROBES and bug.dtype == "float64"
            and (not bug.only or backends.REFERENCE in bug.only)]


def _short_run(driver, case, device="cpu"):
    """driver's losses over a short run of case, and at its end the parameters, the buffers (batch norm's running
    statistics) and the network's output in evaluation mode, as an Observed (loss, after, output)."""
    config = case.inputs("float64")[0]
    epochs = case.short_epochs or min(config.epochs, 200)
    config, params, X, y, orders = case.inputs("float64", epochs)
    run = driver.run_train(params, X, y, config, orders, case.checkpoints(config.epochs), device)
    buffers = checks.flat(run.state.buffers) if run.state is not None else []
    output = driver.run_forward(run.params, X, config, device, buffers=run.state.buffers) if buffers else None
    return Observed(output=output, loss=np.asarray(run.losses), after=checks.flat(run.params) + buffers)


def _planted_observations(bug, case, look):
    """look(reference driver) with bug planted in the reference; None where the line is not in the reference."""
    import reference

    try:
        with mutations.planted(f"{backends.REGISTRY[backends.REFERENCE][0]}.{bug.module}",
                               *bug.spelled(backends.REFERENCE)):
            with np.errstate(all="ignore"):
                return look(reference.DRIVER)
    except AssertionError:  # the line is not spelled so in this version of the reference
        return None
    except Exception:  # noqa: BLE001  (the planted reference crashed here: it reproduces nothing)
        return None


def diagnose(driver, case, device="cpu"):
    """The Diagnosis of driver on case (crosscheck.cases.Case): where its first step parts from the reference's, and
    which known mistakes, planted in the reference, reproduce it."""
    import reference

    config = case.inputs("float64")[0]
    seen = observe(driver, case, device)
    ref = observe(reference.DRIVER, case)
    stage, where = _parts(seen, ref, config)
    if stage is None:
        try:
            checks.check_trajectory(driver, case, "float64", device, epochs=case.short_epochs)
            where += "; so does the whole run"
        except Disagreement as exc:
            stage = "trajectory"
            where += (f"; the run parts later, from epoch {exc.first_epoch}" if exc.first_epoch is not None
                      else "; the run parts later")
        except Unsupported:
            pass
    # A mistake is named when the reference with it planted reproduces what the implementation gave, and differs from
    # the clean reference in what is observed (a mistake in a layer the case lacks changes nothing, so explains
    # nothing).
    matches, tried = [], candidates()
    if stage == "trajectory":
        look = _short_run
        try:
            seen, ref = _short_run(driver, case, device), _short_run(reference.DRIVER, case)
        except Exception:  # noqa: BLE001  (a crash here was reported by the check itself)
            tried = []
    else:
        look = observe
    for bug in tried if stage is not None else ():
        planted = _planted_observations(bug, case, lambda ref_driver: look(ref_driver, case))
        kind = "trajectory" if stage == "trajectory" else "forward"
        if planted is not None and _matches(seen, planted, kind) and not _matches(ref, planted, kind):
            matches.append((bug.id, bug.what))
    return Diagnosis(driver.name, case.id, stage, where, matches, len(tried))
