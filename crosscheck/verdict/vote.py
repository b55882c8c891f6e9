"""The majority vote that closes a failure: every voter's result on the same float64 problem (the reference, each
framework's manual code and autodiff, and, for gradients, central differences), so that a bug in the reference is
blamed on the reference, not on every framework that disagrees with it."""


import numpy as np

from crosscheck import reference
from crosscheck.reference import gradcheck
from crosscheck.verdict import tolerances
from crosscheck.verdict.findings import (
    _evaluated,
    _problem,
    _trajectory,
    extended_point,
    flat,
    reference_point,
    reference_run,
    shadows,
    widest,
)


def voters(driver):
    """Who votes: the reference, every installed built-in framework, and the driver under check (a plug-in)."""
    from crosscheck import backends  # not at the top: the checks import with NumPy alone

    found = {backends.REFERENCE: reference.DRIVER}
    for name in backends.REGISTRY:
        try:
            found.setdefault(name, backends.load(name))
        except backends.BackendUnavailable:
            pass
    found.setdefault(driver.name, driver)
    return found


VOTE_FD_LIMIT = 5000  # central differences join the gradient vote when the network has at most this many parameters
# ... and always at most this many (a fraction of a second of losses); between the two, only where the others leave
# the majority open: a disagreeing report waited 4.5 s for makemore's 4,137 parameters after five of seven had agreed
VOTE_FD_ALWAYS = 500


# (voters, case, dtype, what, device, epochs) -> ballots: one vote per failure, not one per witness
_BALLOTS: dict[tuple, dict] = {}


def _ballots(driver, case, dtype, what, device, epochs, known, in_dtype=False):
    """{voter: (arrays, tolerance kind)} on the float64 problem holding the case's dtype values.

    The reference's results come from the cache, and known holds results the caller already has (float64 only).
    Cached until clear_caches(): every voter is deterministic, so a second witness of one failure reuses the vote.
    """

    key = (tuple(voters(driver)), case, dtype, what, device, epochs, in_dtype)
    if key not in _BALLOTS:
        cast = _cast_low_ballots if in_dtype else _cast_ballots
        _BALLOTS[key] = cast(driver, case, dtype, what, device, epochs, known)
    return _BALLOTS[key]


def _cast_low_ballots(driver, case, dtype, what, device, epochs, known):
    """{voter: (arrays, bounds)} on the dtype problem itself (float32), for an implementation that answers no float64
    problem: each array's bound tolerances.low_bound of the NumPy reference's own deviation in dtype from its float64
    twin, as the checks hold it. Central differences do not vote (in float32 they measure rounding, not slope)."""
    from crosscheck import backends

    problem = _problem(case, dtype, epochs, as_float64=False)
    config, params, X, y = problem.config, problem.params, problem.X, problem.y
    checkpoints = case.checkpoints(config.epochs)
    rule = config.compute or dtype
    X64, config64 = _problem(case, dtype, epochs, as_float64=True).X, _problem(case, dtype, epochs, True).config

    def arrays(point, run, evaluate):
        if what == "forward":
            return [point[0]]
        if what == "gradients":
            return flat(point[1][1])
        return _trajectory(run, len(flat(params)), checkpoints, evaluate)

    low = arrays(reference_point(case, dtype), what == "trajectory" and reference_run(case, dtype, epochs),
                 lambda state: _evaluated(reference.DRIVER, state, X, config, "cpu"))
    wide = arrays(reference_point(case, dtype, as_float64=True),
                  what == "trajectory" and reference_run(case, dtype, epochs, as_float64=True),
                  lambda state: _evaluated(reference.DRIVER, state, X64, config64, "cpu"))
    bounds = tuple(tolerances.low_bound(rule, float(np.max(np.abs(np.asarray(a, np.float64) - b))),
                                        float(np.max(np.abs(b)))) for a, b in zip(low, wide))
    ballots = {name: (values, bounds) for name, values in known.items()}
    ballots.setdefault(backends.REFERENCE, (low, bounds))
    for name, d in voters(driver).items():
        dev = device if d is driver else "cpu"
        try:
            if name in ballots:
                continue
            if what == "forward":
                ballots[name] = ([d.run_forward(params, X, config, dev)], bounds)
            elif what == "gradients":
                ballots[name] = (flat(d.run_gradients(params, X, y, config, dev)[1]), bounds)
            else:
                ballots[name] = (_trajectory(d.train(problem, checkpoints, dev), len(flat(params)), checkpoints,
                                             lambda state, d=d, dev=dev: _evaluated(d, state, X, config, dev)), bounds)
        except Exception:  # noqa: BLE001, S112  (a voter that crashes abstains; its own check reports the crash)
            continue
    return ballots


def _cast_ballots(driver, case, dtype, what, device, epochs, known):
    from crosscheck import backends

    problem = _problem(case, dtype, epochs, as_float64=True)
    config, params, X, y = problem.config, problem.params, problem.X, problem.y
    checkpoints = case.checkpoints(config.epochs)
    twin = {"as_float64": True} if dtype != "float64" else {}
    kind = {"forward": "forward", "gradients": "gradient", "trajectory": "trajectory"}[what]
    if what == "trajectory" and dtype == "float64" and config.compute is None:  # the verdict's bounds, per array
        kind = shadow_bounds(case, epochs, checkpoints, lambda state: _evaluated(reference.DRIVER, state, X, config,
                                                                                 "cpu"))
    elif dtype == "float64" and extended_point(case, dtype) is not None:
        kind = point_bounds(case, what)
    ballots = Ballots({name: (arrays, kind) for name, arrays in (known if dtype == "float64" else {}).items()})
    for name, d in voters(driver).items():
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
                run = (d.train(problem, checkpoints, dev) if name != backends.REFERENCE
                       else reference_run(case, dtype, epochs, **twin))
                ballots[name] = (_trajectory(run, len(flat(params)), checkpoints,
                                             lambda state, d=d, dev=dev: _evaluated(d, state, X, config, dev)), kind)
        except Exception:  # noqa: BLE001, S112  (a voter that crashes abstains; its own check reports the crash)
            continue
    size = sum(t.size for t in flat(params))
    if what == "gradients" and size <= VOTE_FD_LIMIT:  # two losses per parameter: the costliest ballot, cast last
        if size > VOTE_FD_ALWAYS and _settled(ballots):
            ballots.spared = "central differences"
        else:
            ballots["central differences"] = (flat(gradcheck.numerical_gradients(params, X, y, config)),
                                              "finite_difference")
    return ballots


class Ballots(dict):
    """{voter: (arrays, tolerance kind)}, and the voter not asked once a majority stood without it (_settled)."""

    spared = ""


def _settled(ballots):
    """Whether a group of ballots that agree with one another (as tally groups them) would hold a strict majority with
    one more voter still to come: that voter could not overturn it."""
    if len(ballots) < 3:
        return False
    return any(2 * (len(others) + 1) > len(ballots) + 1 for others in _agreement(ballots).values())


def _agreement(ballots):
    """{voter: the other voters whose ballots agree with its own} (_same; with the reference, within its bounds)."""
    from crosscheck import backends

    return {a: {b for b in ballots if b != a and _same(ballots[a], ballots[b], backends.REFERENCE in (a, b))}
            for a in ballots}


def _same(a, b, with_reference=True):
    """Two ballots agree: same shapes, all finite, within the looser of their two tolerances: a kind of
    tolerances.FLOAT64, or a tuple of absolute bounds, one per array (a float64 trajectory's, shadow_bounds), which
    bound a run's distance from the reference's: two other voters, each within it, may lie twice as far apart."""
    (xs, kind_a), (ys, kind_b) = a, b
    if len(xs) != len(ys):
        return False
    bounds = kind_a if isinstance(kind_a, tuple) else kind_b if isinstance(kind_b, tuple) else None
    if "finite_difference" in (kind_a, kind_b):  # central differences: their truncation, not rounding, bounds them
        kind_a = kind_b = "finite_difference"
        bounds = None
    if bounds is None:
        tol = max(tolerances.float64(kind_a), tolerances.float64(kind_b), key=lambda t: t.rtol)

        def allowed(i, x, y):
            return tol.atol + tol.rtol * np.maximum(np.abs(x), np.abs(y))
    else:
        def allowed(i, x, y):
            return bounds[i] * (1 if with_reference else 2)

    for i, (x, y) in enumerate(zip(xs, ys)):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.shape != y.shape or not (np.isfinite(x).all() and np.isfinite(y).all()):
            return False
        if np.any(np.abs(x - y) > allowed(i, x, y)):
            return False
    return True


def point_bounds(case, what):
    """The float64 forward's or gradients' bound per ballot array, as check_forward and check_gradients set it:
    tolerances.low_bound of the reference's distance from its extended twin (findings.extended_point)."""
    (output, (_, grads)), (wide, (_, wide_grads)) = reference_point(case, "float64"), extended_point(case, "float64")
    pairs = [(output, wide)] if what == "forward" else list(zip(flat(grads), flat(wide_grads)))
    return tuple(tolerances.low_bound("float64", float(np.max(np.abs(np.asarray(r, np.longdouble) - w))),
                                      float(np.max(np.abs(r)))) for r, w in pairs)


def shadow_bounds(case, epochs, checkpoints, evaluate):
    """The float64 trajectory's bound per ballot array (losses, each parameter, each buffer, the evaluated output), as
    check_trajectory sets it: tolerances.low_bound of the spread of the reference's runs under rounding
    (findings.shadows), so that the vote and the verdict hold a run to one bound."""
    ref = reference_run(case, "float64", epochs)
    n = len(flat(ref.checkpoints[max(checkpoints)].params))
    arrays = [_trajectory(run, n, checkpoints, evaluate) for run in (ref, *shadows(case, "float64", epochs))]
    return tuple(tolerances.low_bound("float64", float(np.max(np.abs(r - widest(r, others)))), float(np.max(np.abs(r))))
                 for r, *others in zip(*arrays))


def vote(driver, case, dtype, what, device="cpu", epochs=None, known=None):
    """(one line: which implementations and oracles agree with each other, and who is the odd one out; the odd ones).

    A majority vote (as Muffin votes across backends): every voter's result on the same float64 problem
    (the reference, each framework's manual code and autodiff, and, for gradients, central differences),
    so that a bug in the reference is blamed on the reference, not on every framework that disagrees with it.
    """
    ballots = _ballots(driver, case, dtype, what, device, epochs, known or {})
    if len(ballots) < 3:
        return f"vote on the {what}: only {len(ballots)} voter(s), too few for a majority", ()
    where = ""
    if dtype != "float64" and driver.name in ballots:  # it voted, and agreed, in float64: the fault is dtype's
        where = f"; the disagreement is specific to {dtype}"
    elif dtype != "float64":  # it gave no float64 result: the vote is held in its own dtype
        low = _ballots(driver, case, dtype, what, device, epochs, known or {}, in_dtype=True)
        if driver.name in low and len(low) >= 3:
            line, group = tally(what, low, prefer=driver.name, dtype=dtype)
            return line, tuple(b for b in low if group and b not in group)
        where = (f" ({driver.name} gave no float64 result to vote with, so the vote cannot tell whether {dtype} alone "
                 "is to blame)")
    line, group = tally(what, ballots, prefer=driver.name, unanimous=f"all agree{where}",
                        spared=getattr(ballots, "spared", ""))
    return line, tuple(b for b in ballots if group and b not in group)


def tally(what, ballots, prefer=None, unanimous="all agree", dtype="float64", spared=""):
    """(the vote's line, its majority: [] where there is none) over ballots ({voter: (arrays, tolerance kind)}, at
    least three): 'vote on the WHAT (float64, N voters): a, b agree with each other; the odd one out: c'. prefer: the
    voter whose group wins a tie of sizes (the implementation under check); spared: a voter not asked, once a majority
    stood without it (_settled), said beside the count."""
    from crosscheck import backends

    agree = _agreement(ballots)
    best = max(ballots, key=lambda a: (len(agree[a]), a == prefer))
    group = [b for b in ballots if b == best or b in agree[best]]
    if backends.REFERENCE in group:  # with the reference in it, whoever strays past its bound of it is odd, as the
        group = [b for b in group if b == backends.REFERENCE or b in agree[backends.REFERENCE]]  # verdict says
    odd = [b for b in ballots if b not in group]
    not_asked = f"; {spared} not asked: a majority stood without them" if spared else ""
    head = f"vote on the {what} ({dtype}, {len(ballots)} voters{not_asked}): "
    if not odd:
        return head + unanimous, group
    if 2 * len(group) <= len(ballots):
        return head + "no majority: " + "; ".join(f"{a} agrees with {', '.join(sorted(agree[a])) or 'no one'}"
                                               for a in ballots), []
    blamed = ", ".join(f"{b} (the reference)" if b == backends.REFERENCE else b for b in odd)
    return head + f"{', '.join(group)} agree with each other; the odd one out: {blamed}", group
