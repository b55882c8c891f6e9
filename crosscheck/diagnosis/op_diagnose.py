"""What is wrong with one op plug-in (crosscheck/adapters/custom_ops.py) that disagrees: which of its quantities part
from the reference's (its forward, its input gradient, each parameter's), and which of the catalogue's mistakes in
that op's family, planted in the NumPy reference's op one at a time, reproduces every value it gave.

A mistake is named only where the planted reference reproduces the op's values and differs from the clean reference
in them (a mistake in another kind's function changes nothing here, so explains nothing), as diagnose.py names a
model's. Everything is computed in float64 on the op checks' own inputs (crosscheck/verdict/op_inputs.py).
"""

import importlib

import numpy as np

from crosscheck.common import registry
from crosscheck.diagnosis import mutations
from crosscheck.diagnosis.catalogue import BUGS
from crosscheck.diagnosis.observe import close
from crosscheck.verdict.op_inputs import activation_inputs, layer_inputs, loss_inputs


def _inputs(op, seed):
    """(the op's arguments as its family's table takes them, the names of what it gives back)."""
    if op.family == "activations":
        z, da = activation_inputs(op.kind, seed)
        return ("activations", z, da), ["forward", "backward"]
    if op.family == "losses":
        z, a, y = loss_inputs(op.kind, seed)
        return ("losses", z if registry.LOSSES[op.kind].fused else a, a, y), ["forward", "backward"]
    layer, p, x, dy, _ = layer_inputs(op.kind, seed, op.shape)
    names = ["forward", "input gradient", *(f"{leaf} gradient" for leaf in registry.LAYERS[op.kind].params)]
    return ("layers", layer, p, x, dy), names


def _values(forward, backward, arguments, to_native, to_numpy):
    """What a forward and backward pair of the op's family gives on arguments: [forward, then each gradient], as
    NumPy arrays."""
    family, *rest = arguments
    if family == "activations":
        z, da = rest
        a = forward(to_native(z))
        return [to_numpy(a), to_numpy(backward(to_native(da), to_native(z), a))]
    if family == "losses":
        x, a, y = rest
        return [to_numpy(forward(to_native(x), to_native(y))), to_numpy(backward(to_native(a), to_native(y)))]
    layer, p, x, dy = rest
    y, cache = forward(layer, tuple(map(to_native, p)), to_native(x))
    dx, dp = backward(layer, tuple(map(to_native, p)), cache, to_native(dy))
    return [to_numpy(y), to_numpy(dx), *map(to_numpy, dp)]


def _reference_values(op, arguments):
    """The NumPy reference's op on arguments (whatever is planted in it now)."""
    module = importlib.import_module(f"crosscheck.reference.{op.family}")
    with np.errstate(all="ignore"):
        return _values(module.FORWARD[op.kind], module.BACKWARD[op.kind], arguments, np.asarray, np.asarray)


def _same(values, others, names):
    return all(close(v, o, "forward" if name == "forward" else "gradient") for v, o, name in zip(values, others, names))


def candidates(op):
    """The catalogue's float64 mistakes that live in the reference module of op's family."""
    module = "activations" if op.family == "activations" else "losses" if op.family == "losses" else "layers."
    return [bug for bug in BUGS if bug.dtype == "float64" and not bug.only and bug.check in ("forward", "gradients")
            and (bug.module.startswith(module) if module.endswith(".") else bug.module == module)]


def diagnose_op(op, seed=0):
    """The diagnosis of op, as text: where its values part from the reference's, and what mistake it looks like."""
    arguments, names = _inputs(op, seed)
    try:
        with np.errstate(all="ignore"):
            table = op.driver.ops[op.family]
            got = _values(table.FORWARD[op.kind], table.BACKWARD[op.kind], arguments,
                          lambda a: op.driver.to_native(np.ascontiguousarray(a), "cpu"), op.driver.to_numpy)
    except Exception as exc:  # noqa: BLE001  (the op under test crashed: that is the finding)
        return f"diagnosis of {op.name} ({op.kind}, float64):\n  where: it raised {type(exc).__name__}: {exc}"
    clean = _reference_values(op, arguments)
    parted = [name for value, ref, name in zip(got, clean, names)
              if not close(value, ref, "forward" if name == "forward" else "gradient")]
    lines = [f"diagnosis of {op.name} ({op.kind}, float64, on the op checks' inputs):"]
    if not parted:
        lines.append("  where: every value agrees with the reference here; what disagreed is in another precision")
        return "\n".join(lines)
    agreeing = [name for name in names if name not in parted]
    lines.append(f"  where: {', '.join(parted)} differ{'s' if len(parted) == 1 else ''}"
                 + (f"; {', '.join(agreeing)} agree{'s' if len(agreeing) == 1 else ''}" if agreeing else ""))
    tried, matches = candidates(op), []
    for bug in tried:
        with mutations.planted(f"crosscheck.reference.{bug.module}", *bug.spelled("numpy")):
            planted = _reference_values(op, arguments)
        if _same(got, planted, names) and not _same(clean, planted, names):
            matches.append(f"{bug.what} [{bug.id}]")
    if matches:
        lines.append(f"  it looks like: {'; or '.join(matches)} (the reference's {op.kind} with that mistake planted "
                     f"reproduces every value {op.name} gave)")
    else:
        lines.append(f"  it looks like: none of the {len(tried)} known mistakes of its family matches "
                     f"(crosscheck/diagnosis/catalogue.py); the values above are where to look")
    return "\n".join(lines)
