"""Checks per operation, in the manner of tinygrad's helper_test_op and JAX's lax_reference + check_grads.

check_op(driver, kind, name) takes one registered op (an activation, a loss or a layer kind,
common/registry.py),
draws seeded inputs once (with edge values: kinks, saturation, large logits), and checks on the
backend's own functions:
  - its forward against the reference's forward;
  - its backward against the reference's backward, for one random upstream gradient;
  - its backward against the framework's autodiff of its forward (a vector-Jacobian product);
  - its backward against central differences of its forward along random directions (float64).
A layer kind's backward is checked for its input and for each of its parameters.
One place builds the inputs; each registered op gets a one-line test (tests/test_ops.py).
"""

import importlib
from functools import partial

import numpy as np

from common import dtypes, registry
from common.config import Layer
from reference.precision import bfloat16, plain

from .findings import Findings, backend_module, computed
from .vote import tally, voters

SHAPE = (5, 3)
DIRECTIONS = 3
EPS = 1e-6
# Edge values, placed in the first row of every input, are the registry's (common/registry.py): kinks (0),
# saturation (±30), large logits (±800); and for a loss with margins (hinge), an exact tie.
TIE = ([0.0, 1.0, -1.0], 1)  # scores and true class of the tie row: margin 0 - 1 + 1 = 0 for class 0, exactly


def kinks(name, x):
    """Where x sits on op name's kink: central differences step around those entries. An activation's kink is a
    value (relu's 0); a layer kind's (max-pooling's ties) is its edge row, the first sample."""
    if name not in registry.ACTIVATIONS:
        skip = np.zeros(x.shape, bool)
        skip[0] = name in registry.LAYERS and registry.LAYERS[name].kink
        return skip
    kink = registry.ACTIVATIONS[name].kink
    return np.zeros(x.shape, bool) if kink is None else x == kink


def activation_inputs(name, seed=0):
    """(z, da): z ~ N(0, 2^2) with the op's edge values in the first row, and an upstream gradient da."""
    rng = np.random.default_rng(seed)
    z = 2 * rng.standard_normal(SHAPE)
    z[0] = registry.ACTIVATIONS[name].edges
    return z, rng.standard_normal(SHAPE)


def loss_inputs(name, seed=0):
    """(z, a, y) for a loss: logits z (large ones in the first row), the output a = f(z), targets y in its domain."""
    rng = np.random.default_rng(seed)
    loss = registry.LOSSES[name]
    z = 2 * rng.standard_normal(SHAPE)
    output = loss.output or "sigmoid"  # an unfused loss reads a: any output in (0, 1) is in its domain
    if loss.fused:
        z[0] = registry.ACTIVATIONS[output].edges  # saturated logits, where the unfused forms give log(0) and 0/0
    with np.errstate(over="ignore"):  # the reference's sigmoid keeps the seeds' 1 / (1 + exp(-z))
        a = getattr(importlib.import_module("reference.activations"), f"{output}_forward")(z)
    targets = registry.LOSSES[name].targets
    if targets == "one_hot":
        y = np.eye(SHAPE[1])[rng.integers(0, SHAPE[1], SHAPE[0])]
    elif targets == "labels":
        y = (rng.random(SHAPE) > 0.5).astype(float)
    else:
        y = rng.standard_normal(SHAPE)
    if loss.tie:  # an exact tie in the first row, where dL/da jumps: central differences leave that row out
        z[0], a[0], y[0] = TIE[0], TIE[0], np.eye(SHAPE[1])[TIE[1]]
    return z, a, y


def layer_inputs(name, seed=0):
    """(layer, p, x, dy, mask) for a layer kind: one layer of it, its parameters, an input (with the edge values of an
    activation), an upstream gradient, and for a noisy kind (dropout) a keep mask, else None."""
    rng = np.random.default_rng(seed)
    kind = registry.LAYERS[name]
    layer = Layer(name, kind.example, slot=0 if kind.params else None,  # the registry's example shape
                  mask=0 if kind.noise else None)
    p = tuple(rng.standard_normal(shape) for shape in kind.shapes(*kind.example))
    sample = kind.example_input or ((kind.example[0],) if kind.width in ("changes", "features") else SHAPE[1:])
    x: np.ndarray = 2 * rng.standard_normal((SHAPE[0], *sample))
    if kind.ids:  # ids drawn from the first half of the vocabulary: every sample repeats some, and some rows get none
        x = rng.integers(0, max(1, kind.example[0] // 2 + 1), (SHAPE[0], *sample))
    mask = (rng.random(x.shape) >= kind.example[0]).astype(x.dtype) if kind.noise else None
    if name in registry.ACTIVATIONS:
        x[0] = registry.ACTIVATIONS[name].edges
    elif kind.ids:
        pass
    elif kind.edges and kind.edge_feature:
        x[:, 0] = kind.edges
    elif kind.edges:
        x[0] = kind.edges
    y_ref, _ = importlib.import_module("reference.layers").FORWARD[name](layer, p, x, *_noise(mask))
    return layer, p, x, rng.standard_normal(y_ref.shape), mask


def _noise(mask):
    """The extra argument a noisy kind's forward takes: its mask (none for the others)."""
    return () if mask is None else (mask,)


def check_op(driver, kind, name, device="cpu", seed=0, dtype="float64"):
    """One op on one backend: forward and backward against the reference, autodiff's VJP and central differences;
    in a lower precision, forward and backward against the reference by the low-precision rule (check_op_low)."""
    __tracebackhide__ = True
    if dtype != "float64":
        return check_op_low(driver, kind, name, device, seed, dtype)
    ours, ref = backend_module(driver, kind), importlib.import_module(f"reference.{kind}")
    native = lambda arr: driver.to_native(np.ascontiguousarray(arr), device)  # noqa: E731
    numpy = driver.to_numpy
    found = Findings(vote=lambda: (op_vote(kind, name, device, seed), ()))  # a failure ends with whom voters blame
    label = f"{driver.name} {name}"
    if kind == "activations":
        z, da = activation_inputs(name, seed)
        forward, backward = ours.FORWARD[name], ours.BACKWARD[name]
        with np.errstate(over="ignore"):  # the reference's sigmoid keeps the seeds' 1 / (1 + exp(-z))
            a_ref = ref.FORWARD[name](z)
        a = numpy(forward(native(z)))
        dz = numpy(backward(native(da), native(z), native(a_ref)))
        dz_ref = ref.BACKWARD[name](da, z, a_ref)
        found.compare(a, a_ref, None, "forward", what=f"{name} forward", backend=label)
        found.compare(dz, dz_ref, None, "gradient", what=f"{name} backward", backend=label)

        def scalar(x):  # <da, f(x)>: its gradient is the vector-Jacobian product backward computes
            return float(np.vdot(da, numpy(forward(native(x)))))

        wrt, skip = z, kinks(name, z)
        vjp = _autodiff_vjp(driver, lambda x: forward(x), native(z), native(da))
        _check_native(driver, native, found, kind, name, label, z, a_ref, dz, skip, lambda f: f, da)
    elif kind == "layers":
        return _check_layer(driver, ours, ref, native, found, name, seed)
    else:
        z, a, y = loss_inputs(name, seed)
        fused = registry.LOSSES[name].fused
        x = z if fused else a
        forward, backward = ours.FORWARD[name], ours.BACKWARD[name]  # the fused pair, for a fused loss
        value = numpy(forward(native(x), native(y)))
        found.compare(value, ref.FORWARD[name](x, y), None, "forward", what=f"{name} forward", backend=label)
        dz = numpy(backward(native(a), native(y)))
        found.compare(dz, ref.BACKWARD[name](a, y), None, "gradient", what=f"{name} backward", backend=label)

        def scalar(x_):
            return float(numpy(forward(native(x_), native(y))))

        wrt, skip = x, np.zeros(x.shape, bool)
        if registry.LOSSES[name].tie:
            skip[0] = True
        vjp = _autodiff_vjp(driver, lambda x_: forward(x_, native(y)), native(x), None)
        _check_native(driver, native, found, kind, name, label, x, ref.FORWARD[name](x, y), dz, skip,
                      lambda f: lambda x_: f(x_, native(y)), None)
    if vjp is not None:
        found.compare(dz, vjp, None, "gradient", what=f"{name} backward against autodiff's vector-Jacobian product",
                      backend=label)
    rng = np.random.default_rng(seed + 1)
    for k in range(DIRECTIONS):
        v = np.where(skip, 0.0, rng.standard_normal(wrt.shape))
        numeric = (scalar(wrt + EPS * v) - scalar(wrt - EPS * v)) / (2 * EPS)
        found.compare(np.vdot(dz, v), numeric, None, "finite_difference",
                      what=f"{name} backward along random direction {k + 1} (central differences)", backend=label)
    return found.result()


def check_op_low(driver, kind, name, device="cpu", seed=0, dtype="float32"):
    """One op on one backend in a lower precision (float32, bfloat16, float16): the same inputs as check_op's (edges
    included), rounded once to dtype; its forward and backward against the reference's in dtype, within the
    low-precision rule (crosscheck/tolerances.py: a multiple of the NumPy reference's own deviation in dtype from its
    float64 twin), which also requires results in dtype: a backend computing in float64 inside, or returning it,
    fails."""
    __tracebackhide__ = True
    ours, ref = backend_module(driver, kind), importlib.import_module(f"reference.{kind}")
    found = Findings(dtype=dtype)
    label = f"{driver.name} {name} {dtype}"
    low = dtypes.numpy_dtype(dtype)

    def run(module, arrays, to_native, to_numpy):  # (forward's value, backward's gradients) by one module's pair
        arrays = [None if a is None else to_native(a) for a in arrays]
        if kind == "activations":
            z, da, a = arrays
            return [to_numpy(module.FORWARD[name](z)), to_numpy(module.BACKWARD[name](da, z, a))]
        if kind == "losses":
            x, a, y = arrays
            return [to_numpy(module.FORWARD[name](x, y)), to_numpy(module.BACKWARD[name](a, y))]
        x, dy, mask, *p = arrays
        out, cache = module.FORWARD[name](layer, tuple(p), x, *(() if mask is None else (mask,)))
        dx, dp = module.BACKWARD[name](layer, tuple(p), cache, dy)
        return [to_numpy(out), *([] if dx is None else [to_numpy(dx)]), *map(to_numpy, dp)]

    with np.errstate(over="ignore", under="ignore"):  # sigmoid's 1 / (1 + exp(-z)); 16-bit exp underflows
        if kind == "activations":
            z, da = activation_inputs(name, seed)
            arrays = [z, da, ref.FORWARD[name](z)]
            what = ["forward", "backward"]
        elif kind == "losses":
            z, a, y = loss_inputs(name, seed)
            arrays = [z if registry.LOSSES[name].fused else a, a, y]
            what = ["forward", "backward"]
        else:
            layer, p, x, dy, mask = layer_inputs(name, seed)
            arrays = [x, dy, mask, *p]
            what = ["forward", *([] if registry.LAYERS[name].ids else ["backward: input gradient"]),
                    *(f"backward: {leaf} gradient" for leaf in registry.LAYERS[name].params)]
        single = [a if a is None or a.dtype.kind == "i" else a.astype(low) for a in arrays]
        ref_low = run(ref, single, bfloat16, plain)  # a bfloat16 problem as reference.DRIVER has it (precision.py)
        ref64 = run(ref, [a if a is None or a.dtype.kind == "i" else a.astype(np.float64) for a in single],
                    lambda a: a, lambda a: a)
    native = lambda arr: driver.to_native(np.ascontiguousarray(arr), device)  # noqa: E731
    with np.errstate(over="ignore", under="ignore"):  # the numpy backend is the reference's code: as above
        got = computed(label, f"{name} in {dtype}", run, ours, single, native, driver.to_numpy)
    for actual, r_low, r64, quantity in zip(got, ref_low, ref64, what):
        found.compare(np.asarray(actual), np.asarray(r_low), np.asarray(r64), "gradient", what=f"{name} {quantity}",
                      backend=label)
    return found.result()


def _check_layer(driver, ours, ref, native, found, name, seed):
    """A layer kind: forward, and backward for its input and each parameter, against the reference, autodiff's VJP
    (one input at a time, the rest held) and central differences along random directions in all of them at once.
    ours, ref, native and found: the backend's and the reference's layers modules, the conversion and the findings
    check_op built."""
    numpy = driver.to_numpy
    label = f"{driver.name} {name} layer"
    layer, p, x, dy, mask = layer_inputs(name, seed)
    noise = tuple(map(native, _noise(mask)))  # a noisy kind's forward is checked with its mask
    forward = lambda layer, p, x: ours.FORWARD[name](layer, p, x, *noise)  # noqa: E731
    backward = ours.BACKWARD[name]
    with np.errstate(over="ignore"):  # the reference's sigmoid keeps the seeds' 1 / (1 + exp(-z))
        y_ref, cache_ref = ref.FORWARD[name](layer, p, x, *_noise(mask))
    y, cache = computed(label, f"{name} layer forward", forward, layer, tuple(map(native, p)), native(x))
    found.compare(numpy(y), y_ref, None, "forward", what=f"{name} layer forward", backend=label)
    dx, dp = computed(label, f"{name} layer backward", backward, layer, tuple(map(native, p)), cache, native(dy))
    ids = int(registry.LAYERS[name].ids)  # 1 for a kind that reads integer ids: its input has no gradient to check
    grads = [None if ids else numpy(dx), *map(numpy, dp)]
    dx_ref, dp_ref = ref.BACKWARD[name](layer, p, cache_ref, dy)
    inputs = [x, *p]
    names = ["input", *registry.LAYERS[name].params]
    if len(grads) != len(inputs):
        found.compare(np.array(len(grads)), np.array(len(inputs)), None, "gradient",
                      what=f"{name} layer backward: number of gradients", backend=label)
        return found.result()
    for g, g_ref, leaf in list(zip(grads, [dx_ref, *dp_ref], names))[ids:]:
        found.compare(g, g_ref, None, "gradient", what=f"{name} layer backward: {leaf} gradient", backend=label)

    def output(values):  # the layer's output with inputs[0] (x) and its parameters replaced by values
        return forward(layer, tuple(values[1:]), values[0])[0]

    for i, leaf in list(enumerate(names))[ids:]:
        def of_one(v, i=i):
            values = [native(t) for t in inputs]
            values[i] = v
            return output(values)

        vjp = _autodiff_vjp(driver, of_one, native(inputs[i]), native(dy))
        if vjp is not None:
            found.compare(grads[i], vjp, None, "gradient",
                          what=f"{name} layer backward: {leaf} gradient against autodiff's vector-Jacobian product",
                          backend=label)
    _check_native_layer(driver, native, found, layer, label, inputs, names, y_ref, grads, dy, ids)
    rng = np.random.default_rng(seed + 1)
    kink = kinks(name, x)

    def scalar(values):
        return float(np.vdot(dy, numpy(output([native(t) for t in values]))))

    for k in range(DIRECTIONS):
        vs = [np.where(kink, 0.0, rng.standard_normal(x.shape)), *(rng.standard_normal(t.shape) for t in p)]
        if ids:  # ids are not values: they stay put
            vs[0] = None
        numeric = (scalar([t if v is None else t + EPS * v for t, v in zip(inputs, vs)]) -
                   scalar([t if v is None else t - EPS * v for t, v in zip(inputs, vs)])) / (2 * EPS)
        found.compare(sum(np.vdot(g, v) for g, v in list(zip(grads, vs))[ids:]), numeric, None, "finite_difference",
                      what=f"{name} layer backward along random direction {k + 1} (central differences)",
                      backend=label)
    return found.result()


def _native_op(driver, kind, name):
    """(the backend's autodiff module, its framework's own op for (kind, name)); (None, None) where it has none."""
    if driver.autodiff_gradients is None:
        return None, None
    autodiff = backend_module(driver, "autodiff")
    return autodiff, autodiff.NATIVE.get((kind, name))


def _check_native(driver, native, found, kind, name, label, x, value_ref, dx, skip, bind, dy):
    """The framework's own op (the backend's autodiff.NATIVE: torch.nn.functional, jax.nn, optax) as one more oracle:
    its value against the reference's, and its vector-Jacobian product against the backend's backward, away from
    kinks and ties (where frameworks take different one-sided derivatives: see NATIVE). bind(f): the op of x alone."""
    autodiff, own = _native_op(driver, kind, name)
    if own is None:
        return
    own = bind(own)
    found.compare(driver.to_numpy(own(native(x))), value_ref, None, "forward",
                  what=f"{name} forward against {driver.name}'s own", backend=label)
    vjp = driver.to_numpy(autodiff.vjp(own, native(x), None if dy is None else native(dy)))
    found.compare(np.where(skip, 0.0, dx), np.where(skip, 0.0, vjp), None, "gradient",
                  what=f"{name} backward against {driver.name}'s own {name}'s vector-Jacobian product", backend=label)


def _check_native_layer(driver, native, found, layer, label, inputs, names, y_ref, grads, dy, ids=0):
    """A layer kind against the framework's own (torch.nn.functional.linear, conv2d, ...; own(layer, x, *params)): its
    output against the reference's, and its vector-Jacobian product in the input and each parameter against the
    backend's backward (at max-pooling's ties too: the framework's choice of maximum is the convention checked)."""
    name = layer.kind
    autodiff, own = _native_op(driver, "layers", name)
    if own is None:
        return
    own = partial(own, layer)
    found.compare(driver.to_numpy(own(*map(native, inputs))), y_ref, None, "forward",
                  what=f"{name} layer forward against {driver.name}'s own", backend=label)
    for i, leaf in list(enumerate(names))[ids:]:
        def of_one(v, i=i):
            values = [native(t) for t in inputs]
            values[i] = v
            return own(*values)

        vjp = driver.to_numpy(autodiff.vjp(of_one, native(inputs[i]), native(dy)))
        found.compare(grads[i], vjp, None, "gradient", backend=label,
                      what=f"{name} layer backward: {leaf} gradient against {driver.name}'s own {name}'s VJP")


def _autodiff_vjp(driver, f, x, dy):
    """The framework's own vector-Jacobian product of f at x with dy (None for a scalar f), or None without autodiff."""
    if driver.autodiff_gradients is None:
        return None
    autodiff = backend_module(driver, "autodiff")
    return driver.to_numpy(autodiff.vjp(f, x, dy))


def registered_ops():
    """[(kind, name)] for every registered activation, loss and layer kind: the parametrization of tests/test_ops.py."""
    return ([("activations", name) for name in registry.ACTIVATIONS] + [("losses", name) for name in registry.LOSSES]
            + [("layers", name) for name in registry.LAYERS])



# -- the vote on a failing op: whom its failure blames -------------------------------------------------------------

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


def op_vote(kind, name, device="cpu", seed=0):
    """One line each for the forward and the backward: which of the reference, each installed framework's manual op,
    each one's autodiff vector-Jacobian product, each framework's own op and central differences agree, and who is
    the odd one out, on the op check's inputs (float64). The backward is compared along the check's random directions
    (through every input at once), which central differences can give too."""
    import backends
    import reference


    if kind == "activations":
        z, d = activation_inputs(name, seed)
        values, skip, layer, y, mask = [z], [kinks(name, z)], None, None, None
    elif kind == "losses":
        z, a, y = loss_inputs(name, seed)
        fused = registry.LOSSES[name].fused
        values, d, layer, mask = ([z, a] if fused else [a]), None, None, None
        tie = np.zeros(values[0].shape, bool)
        if registry.LOSSES[name].tie:
            tie[0] = True
        skip = [tie] + ([np.ones(a.shape, bool)] if fused else [])  # a is the fused loss's helper, not a value
    else:
        layer, p, x, d, mask = layer_inputs(name, seed)
        values, y = [x, *p], None
        skip = [kinks(name, x), *(np.zeros(t.shape, bool) for t in p)]
    ids = kind == "layers" and registry.LAYERS[name].ids
    rng = np.random.default_rng(seed + 1)
    directions = [[None if (ids and i == 0) else np.where(s, 0.0, rng.standard_normal(v.shape))
                   for i, (v, s) in enumerate(zip(values, skip))] for _ in range(DIRECTIONS)]

    def project(grads):
        return np.array([sum(float(np.vdot(g, v)) for g, v in zip(grads, vs) if v is not None and g is not None)
                         for vs in directions])

    forwards, backwards, scalars = {}, {}, {}  # scalars: each voter's <d, forward(values)>, for central differences
    for voter, drv in voters(reference.DRIVER).items():
        dev = "cpu" if voter == backends.REFERENCE else device
        native = lambda arr, drv=drv, dev=dev: drv.to_native(np.ascontiguousarray(arr), dev)  # noqa: E731
        numpy = drv.to_numpy
        module = backend_module(drv, kind)
        noise = tuple(map(native, _noise(mask)))
        forward, backward = _op_functions(module, kind, name, layer, y, noise, native)
        try:
            with np.errstate(all="ignore"):
                ours = [native(v) for v in values]
                forwards[voter] = ([numpy(forward(ours))], "forward")
                scalars[voter] = partial(_scalar, forward, native, numpy, d)
                grads = backward(ours, None if d is None else native(d))
                backwards[voter] = ([project([None if g is None else numpy(g) for g in grads])], "finite_difference")
                autodiff, own = _native_op(drv, kind, name)
                if autodiff is None:
                    continue
                backwards[f"{voter} autodiff"] = ([project(_vjps(autodiff, forward, values, directions, skip, d,
                                                                 native, numpy))], "finite_difference")
                if own is not None:
                    theirs = _own_forward(own, kind, layer, y, native)
                    forwards[f"{voter}'s own"] = ([numpy(theirs(ours))], "forward")
                    backwards[f"{voter}'s own"] = ([project(_vjps(autodiff, theirs, values, directions, skip, d,
                                                                  native, numpy))], "finite_difference")
        except Exception:  # noqa: BLE001, S112  (a voter that crashes abstains; its own check reports the crash)
            continue

    def counted(what, ballots):
        if len(ballots) < 3:  # the reference alone, or one framework beside it without an own op
            return f"vote on the {what}: only {len(ballots)} voter(s), too few for a majority", []
        return tally(what, ballots)

    forward_line, group = counted(f"{name} forward", forwards)
    # Central differences of a forward the majority agrees on (the reference's where it is among them): of a wrong
    # forward they would side with its backward.
    who = backends.REFERENCE if backends.REFERENCE in group else next(iter(group), None)
    if who is not None:
        numeric = []
        for vs in directions:
            plus = [v if u is None else v + EPS * u for v, u in zip(values, vs)]
            minus = [v if u is None else v - EPS * u for v, u in zip(values, vs)]
            with np.errstate(all="ignore"):
                numeric.append((scalars[who](plus) - scalars[who](minus)) / (2 * EPS))
        backwards["central differences"] = ([np.array(numeric)], "finite_difference")
    return forward_line + "\n" + counted(f"{name} backward", backwards)[0]


def _scalar(forward, native, numpy, d, values):
    """<d, forward(values)> (the forward itself for a scalar one), values as NumPy, in a float."""
    result = np.asarray(numpy(forward([native(v) for v in values])), dtype=np.float64)
    return float(result) if d is None else float(np.vdot(d, result))


def _vjps(autodiff, forward, values, directions, skip, d, native, numpy):
    """autodiff's vector-Jacobian product of forward in each value, the others held (None where none is wanted)."""
    vjps: list = []
    for i in range(len(values)):
        if directions[0][i] is None or skip[i].all():
            vjps.append(None)
            continue

        def of_one(t, i=i):
            return forward([t if j == i else native(v) for j, v in enumerate(values)])

        vjps.append(numpy(autodiff.vjp(of_one, native(values[i]), None if d is None else native(d))))
    return vjps


def _own_forward(own, kind, layer, y, native):
    """The framework's own op (autodiff.NATIVE) as forward(values)."""
    if kind == "activations":
        return lambda values: own(values[0])
    if kind == "losses":
        return lambda values: own(values[0], native(y))
    return lambda values: own(layer, values[0], *values[1:])
