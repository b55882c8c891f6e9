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

from crosscheck.common import dtypes, registry
from crosscheck.reference.precision import bfloat16, cast, plain
from crosscheck.verdict.compare import assert_low_close
from crosscheck.verdict.findings import Findings, backend_module, computed
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
from crosscheck.verdict.op_vote import op_vote


def check_op(driver, kind, name, device="cpu", seed=0, dtype="float64", shape=None):
    """One op on one backend: forward and backward against the reference, autodiff's VJP and central differences;
    in a lower precision, forward and backward against the reference by the low-precision rule (check_op_low)."""
    __tracebackhide__ = True
    if dtype != "float64":
        return check_op_low(driver, kind, name, device, seed, dtype, shape)
    ours, ref = backend_module(driver, kind), importlib.import_module(f"crosscheck.reference.{kind}")
    native = lambda arr: driver.to_native(np.ascontiguousarray(arr), device)  # noqa: E731
    # a failure ends with whom voters blame; every value is held to the reference and its extended twin (wide_twin)
    # an op plug-in (Driver.ops) votes beside the built-ins, on its inputs' shape
    found = Findings(vote=lambda: (op_vote(kind, name, device, seed, shape, (driver,) if driver.ops else ()), ()),
                     dtype="float64")
    label = f"{driver.name} {name}"
    if kind == "layers":
        return _check_layer(driver, ours, ref, native, found, name, seed, shape)
    pair = _check_activation if kind == "activations" else _check_loss
    wrt, skip, scalar, vjp, dz, (dz_ref, dz_wide) = pair(driver, ours, ref, native, found, name, label, seed)
    if vjp is not None:  # autodiff against the reference's backward (the backend's own backward is held to it above)
        found.compare(vjp, dz_ref, dz_wide, "gradient",
                      what=f"{name} backward: autodiff's vector-Jacobian product", backend=label)
    rng = np.random.default_rng(seed + 1)
    for k in range(DIRECTIONS):
        v = np.where(skip, 0.0, rng.standard_normal(wrt.shape))
        numeric = (scalar(wrt + EPS * v) - scalar(wrt - EPS * v)) / (2 * EPS)
        found.compare(np.vdot(dz, v), numeric, None, "finite_difference",
                      what=f"{name} backward along random direction {k + 1} (central differences)", backend=label)
    return found.result()


def _check_activation(driver, ours, ref, native, found, name, label, seed):
    """An activation's forward and backward against the reference's (and its extended twin), and the framework's own
    where it has one; (what central differences perturb, where they may not, <da, f(.)>, autodiff's VJP, the
    backend's dz, the reference's dz and its twin's)."""
    numpy = driver.to_numpy
    z, da = activation_inputs(name, seed)
    forward, backward = driver.compiled(ours.FORWARD[name]), driver.compiled(ours.BACKWARD[name])

    def reference_pair(z, da):
        with np.errstate(over="ignore"):  # the reference's sigmoid keeps the seeds' 1 / (1 + exp(-z))
            a = ref.FORWARD[name](z)
        return a, ref.BACKWARD[name](da, z, a)

    (a_ref, dz_ref), (a_wide, dz_wide) = reference_pair(z, da), wide_twin(reference_pair, z, da)
    a = numpy(forward(native(z)))
    dz = numpy(backward(native(da), native(z), native(a_ref)))
    found.compare(a, a_ref, a_wide, "forward", what=f"{name} forward", backend=label)
    found.compare(dz, dz_ref, dz_wide, "gradient", what=f"{name} backward", backend=label)

    def scalar(x):  # <da, f(x)>: its gradient is the vector-Jacobian product backward computes
        return float(np.vdot(da, numpy(forward(native(x)))))

    skip = kinks(name, z)
    vjp = _autodiff_vjp(driver, ours.FORWARD[name], [native(z)], native(da))
    _check_native(driver, native, found, "activations", name, label, z, (a_ref, a_wide), (dz_ref, dz_wide), skip,
                  lambda f: f, da)
    return z, skip, scalar, vjp, dz, (dz_ref, dz_wide)


def _check_loss(driver, ours, ref, native, found, name, label, seed):
    """A loss's value and gradient against the reference's (and its extended twin), and the framework's own where it
    has one; the same six as _check_activation's."""
    numpy = driver.to_numpy
    z, a, y = loss_inputs(name, seed)
    fused = registry.LOSSES[name].fused
    x = z if fused else a
    # the fused pair, for a fused loss
    forward, backward = driver.compiled(ours.FORWARD[name]), driver.compiled(ours.BACKWARD[name])

    def reference_pair(x, a):
        return ref.FORWARD[name](x, y), ref.BACKWARD[name](a, y)

    (value_ref, dz_ref), (value_wide, dz_wide) = reference_pair(x, a), wide_twin(reference_pair, x, a)
    value = numpy(forward(native(x), native(y)))
    found.compare(value, value_ref, value_wide, "forward", what=f"{name} forward", backend=label)
    dz = numpy(backward(native(a), native(y)))
    found.compare(dz, dz_ref, dz_wide, "gradient", what=f"{name} backward", backend=label)

    def scalar(x_):
        return float(numpy(forward(native(x_), native(y))))

    skip = np.zeros(x.shape, bool)
    if registry.LOSSES[name].tie:
        skip[0] = True
    vjp = _autodiff_vjp(driver, ours.FORWARD[name], [native(x), native(y)], None)
    _check_native(driver, native, found, "losses", name, label, x, (value_ref, value_wide), (dz_ref, dz_wide), skip,
                  lambda f: lambda x_: f(x_, native(y)), None)
    return x, skip, scalar, vjp, dz, (dz_ref, dz_wide)


def assert_within_twin(actual, fn, *arrays, what, backend="test"):
    """actual (float64) within the derived float64 bound of fn(*arrays), the reference's value: 4 x its own distance
    from fn's extended twin (wide_twin) plus 8 ulps at its scale, as every op check holds a value. For tests that hold
    a framework's own buffer, schedule or clipping to the reference without a typed-in rtol."""
    __tracebackhide__ = True
    with np.errstate(over="ignore"):
        ref = fn(*arrays)
    return assert_low_close(np.asarray(actual), np.asarray(ref), np.asarray(wide_twin(fn, *arrays)), what=what,
                            backend=backend, dtype="float64", twin="extended")


def check_op_low(driver, kind, name, device="cpu", seed=0, dtype="float32", shape=None):
    """One op on one backend in a lower precision (float32, bfloat16, float16): the same inputs as check_op's (edges
    included), rounded once to dtype; its forward and backward against the reference's in dtype, within the
    low-precision rule (crosscheck/verdict/tolerances.py: a multiple of the NumPy reference's own deviation in dtype
    from its float64 twin), which also requires results in dtype: a backend computing in float64 inside, or returning
    it, fails."""
    __tracebackhide__ = True
    ours, ref = backend_module(driver, kind), importlib.import_module(f"crosscheck.reference.{kind}")
    found = Findings(dtype=dtype)
    label = f"{driver.name} {name} {dtype}"
    low = dtypes.numpy_dtype(dtype)

    def pair(module, *arrays):  # [forward's value, backward's gradients] by one module's pair
        if kind == "activations":
            z, da, a = arrays
            return [module.FORWARD[name](z), module.BACKWARD[name](da, z, a)]
        if kind == "losses":
            x, a, y = arrays
            return [module.FORWARD[name](x, y), module.BACKWARD[name](a, y)]
        x, dy, mask, *p = arrays
        out, cache = module.FORWARD[name](layer, tuple(p), x, *(() if mask is None else (mask,)))
        dx, dp = module.BACKWARD[name](layer, tuple(p), cache, dy)
        return [out, *([] if dx is None else [dx]), *dp]

    def run(module, arrays, to_native, to_numpy, compiled=lambda fn: fn):  # pair's values, as NumPy arrays
        arrays = [None if a is None else to_native(a) for a in arrays]
        return [to_numpy(value) for value in compiled(partial(pair, module))(*arrays)]

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
            layer, p, x, dy, mask = layer_inputs(name, seed, shape)
            arrays = [x, dy, mask, *p]
            what = ["forward", *([] if registry.LAYERS[name].ids else ["backward: input gradient"]),
                    *(f"backward: {leaf} gradient" for leaf in registry.LAYERS[name].params)]
        single = [a if a is None or a.dtype.kind == "i" else a.astype(low) for a in arrays]
        ref_low = run(ref, single, bfloat16, plain)  # a bfloat16 problem as reference.DRIVER has it (precision.py)
        ref64 = run(ref, [a if a is None or a.dtype.kind == "i" else a.astype(np.float64) for a in single],
                    lambda a: a, lambda a: a)
    native = lambda arr: driver.to_native(np.ascontiguousarray(arr), device)  # noqa: E731
    with np.errstate(over="ignore", under="ignore"):  # the numpy backend is the reference's code: as above
        got = computed(label, f"{name} in {dtype}", run, ours, single, native, driver.to_numpy, driver.compiled)
    for actual, r_low, r64, quantity in zip(got, ref_low, ref64, what):
        found.compare(np.asarray(actual), np.asarray(r_low), np.asarray(r64), "gradient", what=f"{name} {quantity}",
                      backend=label)
    return found.result()


def _check_layer(driver, ours, ref, native, found, name, seed, shape=None):
    """A layer kind: forward, and backward for its input and each parameter, against the reference, autodiff's VJP
    (one input at a time, the rest held) and central differences along random directions in all of them at once.
    ours, ref, native and found: the backend's and the reference's layers modules, the conversion and the findings
    check_op built."""
    numpy = driver.to_numpy
    label = f"{driver.name} {name} layer"
    layer, p, x, dy, mask = layer_inputs(name, seed, shape)
    noise = tuple(map(native, noise_of(mask)))  # a noisy kind's forward is checked with its mask

    def layer_forward(p, x, noise):  # the backend's forward of the layer: (output, cache)
        return ours.FORWARD[name](layer, p, x, *noise)

    forward = driver.compiled(layer_forward)
    backward = driver.compiled(lambda p, cache, dy: ours.BACKWARD[name](layer, p, cache, dy))

    def reference_pair(x, dy, *rest):  # [output, input gradient, each parameter's gradient]: the reference's
        *p, m = rest
        with np.errstate(over="ignore"):  # the reference's sigmoid keeps the seeds' 1 / (1 + exp(-z))
            y_ref, cache_ref = ref.FORWARD[name](layer, tuple(p), x, *noise_of(m))
        dx_ref, dp_ref = ref.BACKWARD[name](layer, tuple(p), cache_ref, dy)
        return [y_ref, dx_ref, *dp_ref]

    y, cache = computed(label, f"{name} layer forward", forward, tuple(map(native, p)), native(x), noise)
    dx, dp = computed(label, f"{name} layer backward", backward, tuple(map(native, p)), cache, native(dy))
    refs, wides = (computed("numpy (the reference)", f"{name} layer backward", f, reference_pair, x, dy, *p, mask)
                   for f in (lambda f, *a: f(*a), wide_twin))  # after the backend's: a planted crash is its own
    found.compare(numpy(y), refs[0], wides[0], "forward", what=f"{name} layer forward", backend=label)
    ids = int(registry.LAYERS[name].ids)  # 1 for a kind that reads integer ids: its input has no gradient to check
    grads = [None if ids else numpy(dx), *map(numpy, dp)]
    inputs = [x, *p]
    names = ["input", *registry.LAYERS[name].params]
    if len(grads) != len(inputs):
        found.compare(np.array(len(grads)), np.array(len(inputs)), None, "gradient",
                      what=f"{name} layer backward: number of gradients", backend=label)
        return found.result()
    for g, g_ref, g_wide, leaf in list(zip(grads, refs[1:], wides[1:], names))[ids:]:
        found.compare(g, g_ref, g_wide, "gradient", what=f"{name} layer backward: {leaf} gradient", backend=label)

    def output(values, run=forward):  # the layer's output, values its input (x) and parameters in turn
        return run(tuple(values[1:]), values[0], noise)[0]

    for i, leaf in list(enumerate(names))[ids:]:
        vjp = _autodiff_vjp(driver, lambda *values: output(values, layer_forward), [native(t) for t in inputs],
                            native(dy), i)
        if vjp is not None:  # autodiff against the reference's gradient, as the backend's own backward above
            found.compare(vjp, refs[i + 1], wides[i + 1], "gradient",
                          what=f"{name} layer backward: {leaf} gradient by autodiff's vector-Jacobian product",
                          backend=label)
    _check_native_layer(driver, native, found, layer, label, inputs, names, refs, wides, grads, dy, ids)

    def scalar(values):  # <dy, the layer's output>: its gradient in every input is what backward computes
        return float(np.vdot(dy, numpy(output([native(t) for t in values]))))

    _differences(found, scalar, inputs, grads, kinks(name, x), ids, seed, f"{name} layer backward", label)
    return found.result()


def _differences(found, scalar, inputs, grads, kink, ids, seed, what, label):
    """Central differences of scalar along DIRECTIONS random directions in every input at once (inputs[0] held where
    it is ids, or where kink marks it), against the backward's gradients grads."""
    rng = np.random.default_rng(seed + 1)
    for k in range(DIRECTIONS):
        vs = [np.where(kink, 0.0, rng.standard_normal(inputs[0].shape)), *(rng.standard_normal(t.shape)
                                                                            for t in inputs[1:])]
        if ids:  # ids are not values: they stay put
            vs[0] = None
        numeric = (scalar([t if v is None else t + EPS * v for t, v in zip(inputs, vs)]) -
                   scalar([t if v is None else t - EPS * v for t, v in zip(inputs, vs)])) / (2 * EPS)
        found.compare(sum(np.vdot(g, v) for g, v in list(zip(grads, vs))[ids:]), numeric, None, "finite_difference",
                      what=f"{what} along random direction {k + 1} (central differences)", backend=label)


def _check_native(driver, native, found, kind, name, label, x, value_ref, dx_ref, skip, bind, dy):
    """The framework's own op (the backend's autodiff.NATIVE: torch.nn.functional, jax.nn, optax) as one more oracle:
    its value and its vector-Jacobian product against the reference's (value_ref, dx_ref: each a pair of the float64
    reference and its extended twin), away from kinks and ties (where frameworks take different one-sided
    derivatives: see NATIVE). bind(f): the op of x alone."""
    autodiff, own = native_op(driver, kind, name)
    if own is None:
        return
    own = bind(own)
    found.compare(driver.to_numpy(driver.compiled(own)(native(x))), *value_ref, "forward",
                  what=f"{name} forward against {driver.name}'s own", backend=label)
    vjp = vjp_in(driver, autodiff, own, 0, [native(x)], None if dy is None else native(dy))
    found.compare(np.where(skip, 0.0, vjp), *(np.where(skip, 0.0, d).astype(d.dtype) for d in dx_ref), "gradient",
                  what=f"{name} backward against {driver.name}'s own {name}'s vector-Jacobian product", backend=label)


def _check_native_layer(driver, native, found, layer, label, inputs, names, refs, wides, grads, dy, ids=0):
    """A layer kind against the framework's own (torch.nn.functional.linear, conv2d, ...; own(layer, x, *params)): its
    output and its vector-Jacobian product in the input and each parameter against the reference's (refs: [output,
    input gradient, each parameter's gradient]; wides: their extended twins), at max-pooling's ties too: the
    framework's choice of maximum is the convention checked. An own op that computes in a lower dtype whatever it is
    given (the backend's autodiff.NATIVE_DTYPE: jax.nn.dot_product_attention's float32 softmax) is held to that
    dtype's bound instead: the NumPy reference's own deviation in it, on the same values."""
    name = layer.kind
    autodiff, own = native_op(driver, "layers", name)
    if own is None:
        return
    own = partial(own, layer)
    low = getattr(autodiff, "NATIVE_DTYPE", {}).get(("layers", name))
    lows = [] if low is None else _reference_in(layer, inputs, dy, low)
    as_low = (lambda a: a) if low is None else (lambda a: np.asarray(a).astype(dtypes.numpy_dtype(low)))
    what = f"{name} layer forward against {driver.name}'s own"
    value = driver.to_numpy(driver.compiled(own)(*map(native, inputs)))
    if low is None:
        found.compare(value, refs[0], wides[0], "forward", what=what, backend=label)
    else:
        found.compare(as_low(value), lows[0], refs[0], "forward", what=what, backend=label, dtype=low)
    for i, leaf in list(enumerate(names))[ids:]:
        vjp = vjp_in(driver, autodiff, own, i, [native(t) for t in inputs], native(dy))
        what = f"{name} layer backward: {leaf} gradient against {driver.name}'s own {name}'s VJP"
        if low is None:
            found.compare(vjp, refs[i + 1], wides[i + 1], "gradient", backend=label, what=what)
        else:
            found.compare(as_low(vjp), lows[i + 1], grads[i], "gradient", backend=label, dtype=low,
                          what=f"{what} (its own computes in {low})")


def _reference_in(layer, inputs, dy, dtype):
    """[output, input gradient, each parameter's gradient]: the reference's layer on inputs and dy rounded to dtype."""
    ref = importlib.import_module("crosscheck.reference.layers")
    x, *p = (cast(t, dtype) for t in inputs)
    y, cache = ref.FORWARD[layer.kind](layer, tuple(p), x)
    dx, dp = ref.BACKWARD[layer.kind](layer, tuple(p), cache, cast(dy, dtype))
    return [y, dx, *dp]


def _autodiff_vjp(driver, f, values, dy, i=0):
    """The framework's own vector-Jacobian product of f(*values) in values[i] with dy (None for a scalar f), the others
    held (vjp_in), or None without autodiff."""
    if driver.autodiff_gradients is None:
        return None
    return vjp_in(driver, backend_module(driver, "autodiff"), f, i, values, dy)


def registered_ops():
    """[(kind, name)] for every registered activation, loss and layer kind: the parametrization of tests/test_ops.py."""
    return ([("activations", name) for name in registry.ACTIVATIONS] + [("losses", name) for name in registry.LOSSES]
            + [("layers", name) for name in registry.LAYERS])
