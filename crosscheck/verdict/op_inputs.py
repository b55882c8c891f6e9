"""Each registered op's inputs for its checks, drawn once from a seed, with edge values in the first row (kinks,
saturation, large logits, exact ties: the registry's); and a backend's own framework op and autodiff, where it has
them. Shared by the op checks (crosscheck/verdict/ops.py), their vote (crosscheck/verdict/op_vote.py) and CS231n's
(cs231n.py)."""

import importlib

import numpy as np

from crosscheck.common import registry
from crosscheck.common.model import Layer
from crosscheck.verdict import tolerances
from crosscheck.verdict.findings import backend_module

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
        a = getattr(importlib.import_module("crosscheck.reference.activations"), f"{output}_forward")(z)
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


def layer_inputs(name, seed=0, shape=None):
    """(layer, p, x, dy, mask) for a layer kind: one layer of it, its parameters, an input (with the edge values of an
    activation), an upstream gradient, and for a noisy kind (dropout) a keep mask, else None. shape: the layer's shape
    where not the registry's example (an op plug-in's: attention without grouped heads), its input as wide."""
    rng = np.random.default_rng(seed)
    kind = registry.LAYERS[name]
    example = kind.example if shape is None else tuple(shape)
    layer = Layer(name, example, slot=0 if kind.params else None, mask=0 if kind.noise else None)
    p = tuple(kind.example_scale * rng.standard_normal(s) for s in kind.shapes(*example))
    sample = kind.example_input or ((example[0],) if kind.width in ("changes", "features") else SHAPE[1:])
    if shape is not None and kind.example_input:
        sample = (*kind.example_input[:-1], example[0])
    x: np.ndarray = 2 * rng.standard_normal((SHAPE[0], *sample))
    if kind.ids:  # ids drawn from the first half of the vocabulary: every sample repeats some, and some rows get none
        x = rng.integers(0, max(1, example[0] // 2 + 1), (SHAPE[0], *sample))
    mask = (rng.random(x.shape) >= example[0]).astype(x.dtype) if kind.noise else None
    if name in registry.ACTIVATIONS:
        x[0] = registry.ACTIVATIONS[name].edges
    elif kind.ids:
        pass
    elif kind.edges and kind.edge_feature:
        x[:, 0] = kind.edges
    elif kind.edges:
        x[0] = kind.edges
    y_ref, _ = importlib.import_module("crosscheck.reference.layers").FORWARD[name](layer, p, x, *noise_of(mask))
    return layer, p, x, rng.standard_normal(y_ref.shape), mask


def noise_of(mask):
    """The extra argument a noisy kind's forward takes: its mask (none for the others)."""
    return () if mask is None else (mask,)


def native_op(driver, kind, name):
    """(the backend's autodiff module, its framework's own op for (kind, name)); (None, None) where it has none."""
    if driver.autodiff_gradients is None:
        return None, None
    autodiff = backend_module(driver, "autodiff")
    return autodiff, autodiff.NATIVE.get((kind, name))


def vjp_in(driver, autodiff, f, i, values, dy):
    """autodiff's vector-Jacobian product of f(*values) in values[i] with dy (None for a scalar f), the others held, as
    NumPy: compiled whole where the backend compiles its ops (Driver.compiled), for the op checks and their vote."""
    def pullback(v, dy, values):
        return autodiff.vjp(lambda u: f(*values[:i], u, *values[i + 1:]), v, dy)

    return driver.to_numpy(driver.compiled(pullback)(values[i], dy, values))


def wide_twin(fn, *arrays):
    """fn(*arrays) computed by the reference in extended precision (tolerances.wider(): np.longdouble), the twin
    a float64 op's bound is measured against; where longdouble is no wider than float64, fn on the arrays nudged by
    one ulp each (a seeded sign per entry), whose spread measures the op's condition instead. Integer arrays (ids)
    and None pass as they are."""
    wide = tolerances.wider()
    rng = np.random.default_rng(12345)

    def twin(a):
        if a is None or a.dtype.kind in "iub":
            return a
        if wide is not None:
            return a.astype(wide)
        return a * (1 + 2.0 ** -52 * rng.choice([-1.0, 1.0], a.shape))

    with np.errstate(over="ignore"):
        return fn(*(twin(a) for a in arrays))
