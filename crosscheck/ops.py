"""Checks per operation, in the manner of tinygrad's helper_test_op and JAX's lax_reference + check_grads.

check_op(driver, kind, name) takes one registered op (an activation or a loss, common/registry.py),
draws seeded inputs once (with edge values: kinks, saturation, large logits), and checks on the
backend's own functions:
  - its forward against the reference's forward;
  - its backward against the reference's backward, for one random upstream gradient;
  - its backward against the framework's autodiff of its forward (a vector-Jacobian product);
  - its backward against central differences of its forward along random directions (float64).
One place builds the inputs; each registered op gets a one-line test (tests/test_ops.py).
"""

import importlib

import numpy as np

from common import registry

from .checks import Findings, backend_module

SHAPE = (5, 3)
DIRECTIONS = 3
EPS = 1e-6
# Edge values placed in the first row of every input: a kink (0), saturation (±30), large logits (±800).
EDGES = {"relu": [0.0, 0.0, -0.0], "sigmoid": [30.0, -30.0, 0.0], "tanh": [30.0, -30.0, 0.0],
         "identity": [0.0, 1.0, -1.0], "softmax": [800.0, -800.0, 0.0]}
KINKS = {"relu": 0.0}  # where the derivative jumps: central differences straddle it, so directions skip it there


def activation_inputs(name, seed=0):
    """(z, da): z ~ N(0, 2^2) with the op's edge values in the first row, and an upstream gradient da."""
    rng = np.random.default_rng(seed)
    z = 2 * rng.standard_normal(SHAPE)
    z[0] = EDGES[name]
    return z, rng.standard_normal(SHAPE)


def loss_inputs(name, seed=0):
    """(z, a, y) for a loss: logits z (large ones in the first row), the output a = f(z), targets y in its domain."""
    rng = np.random.default_rng(seed)
    loss = registry.LOSSES[name]
    z = 2 * rng.standard_normal(SHAPE)
    output = loss.output or "sigmoid"  # an unfused loss reads a: any output in (0, 1) is in its domain
    if loss.fused:
        z[0] = EDGES[output][:SHAPE[1]]  # saturated logits, where the unfused forms give log(0) and 0/0
    with np.errstate(over="ignore"):  # the reference's sigmoid keeps the seeds' 1 / (1 + exp(-z))
        a = getattr(importlib.import_module("reference.activations"), f"{output}_forward")(z)
    targets = registry.LOSSES[name].targets
    if targets == "one_hot":
        y = np.eye(SHAPE[1])[rng.integers(0, SHAPE[1], SHAPE[0])]
    elif targets == "labels":
        y = (rng.random(SHAPE) > 0.5).astype(float)
    else:
        y = rng.standard_normal(SHAPE)
    return z, a, y


def check_op(driver, kind, name, device="cpu", seed=0):
    """One op on one backend: forward and backward against the reference, autodiff's VJP and central differences."""
    __tracebackhide__ = True
    ours, ref = backend_module(driver, kind), importlib.import_module(f"reference.{kind}")
    native = lambda arr: driver.to_native(np.ascontiguousarray(arr), device)  # noqa: E731
    numpy = driver.to_numpy
    found = Findings()
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

        wrt, skip = z, np.isin(z, list(KINKS.values())) if name in KINKS else np.zeros(z.shape, bool)
        vjp = _autodiff_vjp(driver, lambda x: forward(x), native(z), native(da))
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
        vjp = _autodiff_vjp(driver, lambda x_: forward(x_, native(y)), native(x), None)
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


def _autodiff_vjp(driver, f, x, dy):
    """The framework's own vector-Jacobian product of f at x with dy (None for a scalar f), or None without autodiff."""
    if driver.autodiff_gradients is None:
        return None
    autodiff = backend_module(driver, "autodiff")
    return driver.to_numpy(autodiff.vjp(f, x, dy))


def registered_ops():
    """[(kind, name)] for every registered activation and loss: the parametrization of tests/test_ops.py."""
    return [("activations", name) for name in registry.ACTIVATIONS] + [("losses", name) for name in registry.LOSSES]

