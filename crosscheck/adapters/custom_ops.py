"""A custom backward pass for one op, checked by the suite's own op checks: forward and backward against the NumPy
reference and its extended-precision twin, central differences along random directions, in float64 and each lower
precision it runs in (the derived bounds of crosscheck/verdict/ops.py), and where it disagrees, the diagnosis of
crosscheck/diagnosis/op_diagnose.py.

    from crosscheck.adapters import autograd_function, custom_vjp, numpy_pair
    OP = autograd_function(RMSNormFunction, kind="rmsnorm")           # a torch.autograd.Function subclass
    OP = custom_vjp(softmax_xent, kind="softmax_cross_entropy")       # a function under jax.custom_vjp
    OP = numpy_pair(attention_forward, attention_backward, kind="attention", shape=(8, 2))

then `crosscheck op mine=my_ops:OP`, or `crosscheck.check_op(OP)` in Python. kind is a registered op (`crosscheck
--help` lists them): an activation, a loss or a layer kind, whose maths the op must compute. The op's arguments:

- a layer kind: op(x, *params) -> y, the parameters in the registry's order (rmsnorm: scale; attention: the qkv
  weight (width, 3 width), the output weight (width, width)); a NumPy pair forward(x, *params) -> (y, cache),
  backward(dy, cache) -> (dx, *dparams);
- an activation: op(z) -> a; a NumPy pair forward(z) -> (a, cache), backward(da, cache) -> dz;
- a loss: op(x, y) -> its value, x the logits z for a loss fused with its output (softmax_cross_entropy, bce), else
  the output a; a NumPy pair forward(x, y) -> (value, cache), backward(cache) -> dx.

The framework's autodiff of a torch.autograd.Function or a custom_vjp runs the op's own backward: that is what is
checked, and so autodiff is no independent oracle here (the built-in backends' checks hold the frameworks' own); the
op votes beside the built-ins where it disagrees (crosscheck/verdict/op_vote.py).
"""

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from crosscheck import backends
from crosscheck.common import registry
from crosscheck.common.driver import Driver
from crosscheck.common.errors import AdapterError

DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class Op:
    """One op plug-in: its name, the registered kind it computes and that kind's family ("layers", "activations" or
    "losses"), the Driver the op checks run it through, the dtypes it is checked in, and the layer shape its inputs
    take (None: the registry's example)."""

    name: str
    kind: str
    family: str
    driver: Driver
    dtypes: tuple = DTYPES
    shape: tuple | None = None


def family_of(kind):
    """The family of a registered op kind; an unknown one is an AdapterError listing them."""
    if kind in registry.LOSSES:
        return "losses"
    if kind in registry.ACTIVATIONS:
        return "activations"
    if kind in registry.LAYERS:
        layer = registry.LAYERS[kind]
        if layer.noise or layer.ids or layer.buffers:
            raise AdapterError(f"kind {kind!r}: an op plug-in is checked on values alone; a layer with a mask, ids or "
                               f"running statistics is checked through a model's adapter (docs/your-code.md)")
        return "layers"
    raise AdapterError(f"unknown op kind {kind!r}; the registered ones: activations {tuple(registry.ACTIVATIONS)}, "
                       f"losses {tuple(registry.LOSSES)}, layers {tuple(registry.LAYERS)}")


def _op(name, kind, framework, pair, dtypes, shape, version):
    """The Op of a (forward, backward) pair in the tables' signatures, run through framework's conversions."""
    family = family_of(kind)
    base = backends.load(framework)
    unknown = [d for d in dtypes if d not in registry.DTYPES]
    if unknown:
        raise AdapterError(f"{name}: unknown dtype(s) {unknown}; choose from {registry.DTYPES}")
    forward, backward = pair(family)
    tables = {family: SimpleNamespace(FORWARD={kind: forward}, BACKWARD={kind: backward})}
    driver = Driver(name=name, version=version or f"{framework} {base.version}", devices=("cpu",), mlp=None,
                    to_native=base.to_native, to_numpy=base.to_numpy, ops=tables)
    return Op(name, kind, family, driver, tuple(dtypes), None if shape is None else tuple(shape))


def _recovered(a, fused):
    """A loss's input from its output a, for a backward that reads the op itself: the logits log(a) where the loss is
    fused with softmax or sigmoid (their output at log(a) is a again, to rounding), else a."""
    return np.log(a) if fused else a


def autograd_function(function, *, kind, name=None, dtypes=DTYPES, shape=None, version=None):
    """An Op around a torch.autograd.Function subclass (its apply) or any function of torch tensors whose backward is
    the one to check; kind: the registered op it computes."""
    import torch

    fn = getattr(function, "apply", function)
    fused = kind in registry.LOSSES and registry.LOSSES[kind].fused

    def leaves(*tensors):
        return [t.detach().requires_grad_(t.is_floating_point()) for t in tensors]

    def pair(family):
        if family == "layers":
            def forward(layer, p, x):
                xs = leaves(x, *p)
                with torch.enable_grad():
                    y = fn(*xs)
                return y.detach(), (xs, y)

            def backward(layer, p, cache, dy):
                xs, y = cache
                dx, *dp = torch.autograd.grad(y, xs, dy, allow_unused=True, materialize_grads=True)
                return dx, tuple(dp)
        elif family == "activations":
            def forward(z):
                return fn(z).detach()

            def backward(da, z, a):
                (z,) = leaves(z)
                with torch.enable_grad():
                    return torch.autograd.grad(fn(z), z, da)[0]
        else:
            def forward(x, y):
                return fn(x, y).detach()

            def backward(a, y):
                (x,) = leaves(torch.log(a) if fused else a)  # the logits, as _recovered says
                with torch.enable_grad():
                    return torch.autograd.grad(fn(x, y), x)[0]
        return forward, backward

    return _op(name or getattr(function, "__name__", "op"), kind, "torch", pair, dtypes, shape, version)


def custom_vjp(function, *, kind, name=None, dtypes=DTYPES, shape=None, version=None):
    """An Op around a JAX function whose VJP is the one to check (a jax.custom_vjp, or any jax function); kind: the
    registered op it computes."""
    import jax
    import jax.numpy as jnp

    fused = kind in registry.LOSSES and registry.LOSSES[kind].fused

    def pair(family):
        if family == "layers":
            def forward(layer, p, x):
                return jax.vjp(function, x, *p)

            def backward(layer, p, cache, dy):
                dx, *dp = cache(dy)
                return dx, tuple(dp)
        elif family == "activations":
            def forward(z):
                return function(z)

            def backward(da, z, a):
                return jax.vjp(function, z)[1](da)[0]
        else:
            def forward(x, y):
                return function(x, y)

            def backward(a, y):
                x = jnp.log(a) if fused else a
                value, vjp = jax.vjp(lambda x: function(x, y), x)
                return vjp(jnp.ones_like(value))[0]
        return forward, backward

    return _op(name or getattr(function, "__name__", "op"), kind, "jax", pair, dtypes, shape, version)


def numpy_pair(forward_fn, backward_fn, *, kind, name=None, dtypes=DTYPES, shape=None, version=None):
    """An Op around a forward and a backward written by hand in NumPy (the module docstring gives their arguments);
    kind: the registered op they compute."""
    fused = kind in registry.LOSSES and registry.LOSSES[kind].fused

    def pair(family):
        if family == "layers":
            def forward(layer, p, x):
                return forward_fn(x, *p)

            def backward(layer, p, cache, dy):
                dx, *dp = backward_fn(dy, cache)
                return dx, tuple(dp)
        elif family == "activations":
            def forward(z):
                return forward_fn(z)[0]

            def backward(da, z, a):
                return backward_fn(da, forward_fn(z)[1])
        else:
            def forward(x, y):
                return forward_fn(x, y)[0]

            def backward(a, y):
                return backward_fn(forward_fn(_recovered(a, fused), y)[1])
        return forward, backward

    return _op(name or getattr(forward_fn, "__name__", "op"), kind, "numpy", pair, dtypes, shape, version)
