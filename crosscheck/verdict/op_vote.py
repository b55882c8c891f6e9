"""The vote on a failing op: which of the reference, each installed framework's manual op, each one's autodiff
vector-Jacobian product, each framework's own op and central differences agree, and whom the failure blames."""

import importlib
from functools import partial

import numpy as np

from crosscheck import backends, reference
from crosscheck.common import registry
from crosscheck.verdict import tolerances
from crosscheck.verdict.findings import backend_module
from crosscheck.verdict.op_inputs import (
    DIRECTIONS,
    EPS,
    activation_inputs,
    kinks,
    layer_inputs,
    loss_inputs,
    native_op,
    noise_of,
    vjp_in,
    wide_twin,
)
from crosscheck.verdict.vote import tally, voters


def _op_functions(module, kind, name, layer, y, noise, native):
    """(forward(values) -> output, backward(values, output_grad) -> [gradient per value]) of one backend's op (module:
    its activations, losses or layers), values in that backend's arrays; None where a value has no gradient."""
    if kind == "activations":
        def forward(values):
            return module.FORWARD[name](values[0])

        def backward(values, d):
            return [module.BACKWARD[name](d, values[0], forward(values))]
    elif kind == "losses":
        fused = registry.LOSSES[name].fused

        def forward(values):
            return module.FORWARD[name](values[0], native(y))

        def backward(values, d):
            a = values[1] if fused else values[0]  # a fused loss's backward reads the output activation's a
            return [module.BACKWARD[name](a, native(y))]
    else:
        def forward(values):
            return module.FORWARD[name](layer, tuple(values[1:]), values[0], *noise)[0]

        def backward(values, d):
            _, cache = module.FORWARD[name](layer, tuple(values[1:]), values[0], *noise)
            dx, dp = module.BACKWARD[name](layer, tuple(values[1:]), cache, d)
            return [dx, *dp]
    return forward, backward


def op_vote(kind, name, device="cpu", seed=0, shape=None, extra=()):
    """One line each for the forward and the backward: which of the reference, each installed framework's manual op,
    each one's autodiff vector-Jacobian product, each framework's own op and central differences agree, and who is
    the odd one out, on the op check's inputs (float64). The backward is compared along the check's random directions
    (through every input at once), which central differences can give too. shape: a layer's where not the registry's
    example; extra: drivers voting beside the built-ins (an op plug-in, Driver.ops)."""
    values, skip, layer, y, mask, d = _op_values(kind, name, seed, shape)
    ids = kind == "layers" and registry.LAYERS[name].ids
    rng = np.random.default_rng(seed + 1)
    directions = [[None if (ids and i == 0) else np.where(s, 0.0, rng.standard_normal(v.shape))
                   for i, (v, s) in enumerate(zip(values, skip))] for _ in range(DIRECTIONS)]
    forwards, backwards, scalars = _op_ballots(kind, name, device, values, skip, layer, y, mask, d, directions, extra)
    bound = _forward_bound(kind, name, values, layer, y, mask)  # the op check's own float64 bound on the forward
    forwards = {voter: (arrays, bound) for voter, (arrays, _) in forwards.items()}
    forward_line, group = _counted(f"{name} forward", forwards)
    # Central differences of a forward the majority agrees on (the reference's where it is among them): of a wrong
    # forward they would side with its backward. Where too few vote on the forward (NumPy alone: the reference and a
    # plug-in), the reference's: the yardstick the op check holds every forward to.
    who = backends.REFERENCE if backends.REFERENCE in group or not group else next(iter(group))
    if who in scalars:
        backwards["central differences"] = ([_central(scalars[who], values, directions)], "finite_difference")
    return forward_line + "\n" + _counted(f"{name} backward", backwards)[0]


def _forward_bound(kind, name, values, layer, y, mask):
    """(the bound on the op's forward,): tolerances.low_bound of the reference's distance from its extended twin
    (wide_twin), the bound check_op holds every forward to, so that the vote and the verdict agree on it."""
    module = importlib.import_module(f"crosscheck.reference.{kind}")

    def reference_forward(*vs):
        forward, _ = _op_functions(module, kind, name, layer, y, noise_of(mask), lambda a: a)
        with np.errstate(all="ignore"):
            return np.asarray(forward(list(vs)))

    ours, wide = reference_forward(*values), wide_twin(reference_forward, *values)
    return (tolerances.low_bound("float64", float(np.max(np.abs(np.asarray(ours, np.longdouble) - wide))),
                                 float(np.max(np.abs(ours)))),)


def _op_values(kind, name, seed, shape=None):
    """(values, skip, layer, y, mask, d): the op's inputs as the check draws them, which of their entries sit where
    the derivative jumps (skipped), the layer, the targets, the dropout mask and the upstream gradient."""
    if kind == "activations":
        z, d = activation_inputs(name, seed)
        return [z], [kinks(name, z)], None, None, None, d
    if kind == "losses":
        z, a, y = loss_inputs(name, seed)
        fused = registry.LOSSES[name].fused
        values = [z, a] if fused else [a]
        tie = np.zeros(values[0].shape, bool)
        if registry.LOSSES[name].tie:
            tie[0] = True
        return values, [tie] + ([np.ones(a.shape, bool)] if fused else []), None, y, None, None  # a: fused's helper
    layer, p, x, d, mask = layer_inputs(name, seed, shape)
    return [x, *p], [kinks(name, x), *(np.zeros(t.shape, bool) for t in p)], layer, None, mask, d


def _op_ballots(kind, name, device, values, skip, layer, y, mask, d, directions, extra=()):
    """Every voter's forward and its backward projected on the directions ({voter: ballot} each), and each one's
    <d, forward(values)> for central differences."""

    def project(grads):
        return np.array([sum(float(np.vdot(g, v)) for g, v in zip(grads, vs) if v is not None and g is not None)
                         for vs in directions])

    forwards, backwards, scalars = {}, {}, {}
    for voter, drv in {**voters(reference.DRIVER), **{drv.name: drv for drv in extra}}.items():
        dev = "cpu" if voter == backends.REFERENCE or drv.ops is not None else device
        native = lambda arr, drv=drv, dev=dev: drv.to_native(np.ascontiguousarray(arr), dev)  # noqa: E731
        numpy = drv.to_numpy
        forward, backward = map(drv.compiled, _op_functions(backend_module(drv, kind), kind, name, layer, y,
                                                            tuple(map(native, noise_of(mask))), native))
        try:
            with np.errstate(all="ignore"):
                ours = [native(v) for v in values]
                forwards[voter] = ([numpy(forward(ours))], "forward")
                scalars[voter] = partial(_scalar, forward, native, numpy, d)
                grads = backward(ours, None if d is None else native(d))
                backwards[voter] = ([project([None if g is None else numpy(g) for g in grads])], "finite_difference")
                autodiff, own = native_op(drv, kind, name)
                if autodiff is None:
                    continue
                backwards[f"{voter} autodiff"] = ([project(_vjps(drv, autodiff, forward, values, directions, skip, d,
                                                                 native))], "finite_difference")
                # an own op that computes in a lower dtype whatever it is given (jax.nn.dot_product_attention's
                # float32 softmax) is held to that dtype's bound by the check, so it casts no float64 ballot
                if own is not None and (kind, name) not in getattr(autodiff, "NATIVE_DTYPE", {}):
                    theirs = drv.compiled(_own_forward(own, kind, layer, y, native))
                    forwards[f"{voter}'s own"] = ([numpy(theirs(ours))], "forward")
                    backwards[f"{voter}'s own"] = ([project(_vjps(drv, autodiff, theirs, values, directions, skip, d,
                                                                  native))], "finite_difference")
        except Exception:  # noqa: BLE001, S112  (a voter that crashes abstains; its own check reports the crash)
            continue
    return forwards, backwards, scalars


def _counted(what, ballots):
    if len(ballots) < 3:  # the reference alone, or one framework beside it without an own op
        return f"vote on the {what}: only {len(ballots)} voter(s), too few for a majority", []
    return tally(what, ballots)


def _central(scalar, values, directions):
    """Central differences of scalar(values) along each direction."""
    numeric = []
    for vs in directions:
        plus = [v if u is None else v + EPS * u for v, u in zip(values, vs)]
        minus = [v if u is None else v - EPS * u for v, u in zip(values, vs)]
        with np.errstate(all="ignore"):
            numeric.append((scalar(plus) - scalar(minus)) / (2 * EPS))
    return np.array(numeric)


def _scalar(forward, native, numpy, d, values):
    """<d, forward(values)> (the forward itself for a scalar one), values as NumPy, in a float."""
    result = np.asarray(numpy(forward([native(v) for v in values])), dtype=np.float64)
    return float(result) if d is None else float(np.vdot(d, result))


def _vjps(drv, autodiff, forward, values, directions, skip, d, native):
    """autodiff's vector-Jacobian product of forward in each value, the others held (None where none is wanted)."""
    natives = [native(v) for v in values]
    return [None if directions[0][i] is None or skip[i].all() else
            vjp_in(drv, autodiff, lambda *vs: forward(list(vs)), i, natives, None if d is None else native(d))
            for i in range(len(values))]


def _own_forward(own, kind, layer, y, native):
    """The framework's own op (autodiff.NATIVE) as forward(values)."""
    if kind == "activations":
        return lambda values: own(values[0])
    if kind == "losses":
        return lambda values: own(values[0], native(y))
    return lambda values: own(layer, values[0], *values[1:])
