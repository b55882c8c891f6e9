"""One op's custom backward pass, checked by the op checks: `crosscheck op NAME=module:object`, and
crosscheck.check_op(...) in Python.

    crosscheck op rmsnorm=examples.rmsnorm_torch_op:OP                 # an Op built by an adapter (custom_ops.py)
    crosscheck op mine=my_ops:RMSNormFunction --kind rmsnorm            # a torch.autograd.Function, wrapped here
    crosscheck op mine=my_ops:softmax_xent --kind softmax_cross_entropy --dtypes float64,float32

In each dtype the op runs in: its forward and backward against the NumPy reference's (float64: the reference and its
extended-precision twin, central differences along random directions; below: the low-precision rule), then, where it
disagrees, its diagnosis (crosscheck/diagnosis/op_diagnose.py). Exit status: 0 when it agrees in every dtype, 1 when
it disagrees in one, 2 when the object cannot be read as an op (refused before anything runs, saying why).
"""

import argparse
import importlib
import os
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from crosscheck.adapters import custom_ops
from crosscheck.common import registry
from crosscheck.common.driver import Unsupported
from crosscheck.common.errors import AdapterError
from crosscheck.diagnosis.op_diagnose import diagnose_op
from crosscheck.verdict.compare import Disagreement
from crosscheck.verdict.ops import check_op as run_op_check

FAMILY = {"layers": "a layer kind", "activations": "an activation", "losses": "a loss"}


@dataclass
class OpReport:
    """One op's checks: a line per dtype, the diagnosis where it disagrees; text, status, agrees, HTML in Jupyter."""

    op: Any  # a crosscheck.adapters.custom_ops.Op
    results: list = field(default_factory=list)  # (dtype, "agrees" | "DISAGREES" | "not run", what it says)
    diagnosis: str | None = None

    @property
    def agrees(self):
        return any(r[1] == "agrees" for r in self.results) and all(r[1] != "DISAGREES" for r in self.results)

    @property
    def status(self):
        return 0 if self.agrees else 1

    @property
    def verdict(self):
        if self.agrees:
            return f"AGREE: {self.op.name} matches the NumPy reference's {self.op.kind}"
        if any(r[1] == "DISAGREES" for r in self.results):
            return f"DISAGREE: {self.op.name} did not match the NumPy reference's {self.op.kind}"
        return f"NOT CHECKED: {self.op.name} ran in no dtype"

    @property
    def text(self):
        op = self.op
        shape = "" if op.family != "layers" else f", shape {op.shape or registry.LAYERS[op.kind].example}"
        lines = [f"op check of {op.name} ({op.kind}, {FAMILY[op.family]}{shape}; {op.driver.version})"]
        for dtype, outcome, said in self.results:
            lines.append(f"  {dtype:<9} {outcome}" + (f": {said}" if said else ""))
        if self.diagnosis:
            lines.append(self.diagnosis)
        lines.append(self.verdict)
        return "\n".join(lines)

    def __str__(self):
        return self.text

    def assert_agrees(self):
        if not self.agrees:
            raise AssertionError(self.text)

    def _repr_html_(self):
        import html

        colour = "#176317" if self.agrees else "#a31515"
        return (f"<pre>{html.escape(self.text.rsplit(chr(10), 1)[0])}</pre>"
                f"<p style='color:{colour}'><b>{html.escape(self.verdict)}</b></p>")


def check_op(implementation, kind=None, dtypes=None, seed=0, name=None):
    """The op checks on one custom op, as an OpReport. implementation: an Op (autograd_function(...), custom_vjp(...),
    numpy_pair(...)), or with kind= a torch.autograd.Function, a function under jax.custom_vjp, or a (forward,
    backward) pair of NumPy functions; dtypes: which to check it in (default: the Op's, or float64 and float32)."""
    op = as_op(implementation, kind, name)
    report = OpReport(op)
    for dtype in dtypes or op.dtypes:
        try:
            diffs = run_op_check(op.driver, op.family, op.kind, seed=seed, dtype=dtype, shape=op.shape)
            largest = max((d.max_abs for what, _, d in diffs if d is not None and "central differences" not in what),
                          default=0.0)
            report.results.append((dtype, "agrees", f"{len(diffs)} quantities, the largest deviation from the "
                                                    f"reference {largest:.3e}"))
        except Disagreement as exc:
            report.results.append((dtype, "DISAGREES", str(exc).replace("\n", "\n            ")))
        except Unsupported as exc:
            report.results.append((dtype, "not run", str(exc)))
    if any(outcome == "DISAGREES" for _, outcome, _ in report.results):
        report.diagnosis = diagnose_op(op, seed)
    return report


def as_op(obj, kind=None, name=None):
    """obj as an Op: itself if it is one (renamed to name), else wrapped by the adapter its type calls for."""
    if isinstance(obj, custom_ops.Op):
        if kind is not None and kind != obj.kind:
            raise AdapterError(f"{obj.name} computes {obj.kind!r}, not the --kind {kind!r} given")
        return obj if name is None else replace(obj, name=name, driver=replace(obj.driver, name=name))
    if kind is None:
        raise AdapterError(f"{name or obj!r} is no Op: say which registered op it computes (--kind, or kind=), or "
                           "build it with crosscheck.adapters.autograd_function, custom_vjp or numpy_pair")
    custom_ops.family_of(kind)  # a kind the op checks cannot take is said before the object's type
    named = {"name": name} if name else {}
    if isinstance(obj, type) and any(c.__name__ == "Function" and c.__module__.startswith("torch.autograd")
                                     for c in obj.__mro__):
        return custom_ops.autograd_function(obj, kind=kind, **named)
    if type(obj).__name__ == "custom_vjp" and type(obj).__module__.startswith("jax"):
        return custom_ops.custom_vjp(obj, kind=kind, **named)
    if isinstance(obj, tuple | list) and len(obj) == 2 and all(callable(f) for f in obj):
        return custom_ops.numpy_pair(*obj, kind=kind, **named)
    raise AdapterError(f"{name or obj!r} is a {type(obj).__name__}: an op is a torch.autograd.Function subclass, a "
                       "function under jax.custom_vjp, a (forward, backward) pair of NumPy functions, or an Op")


def _load(spec):
    """(name, the object) of "NAME=module:object", the module imported from the current folder first."""
    name, sep, target = spec.partition("=")
    module_name, colon, attr = target.partition(":")
    if not sep or not colon or not name.strip():
        raise AdapterError(f"an op is given as NAME=module:object, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name.strip())
    except ModuleNotFoundError as exc:
        raise AdapterError(f"op {name!r}: no module named {exc.name!r} (looked in {os.getcwd()} and on sys.path)") \
            from None
    for part in attr.strip().split("."):
        if not hasattr(obj, part):
            raise AdapterError(f"op {name!r}: {module_name} has no {part!r}")
        obj = getattr(obj, part)
    return name.strip(), obj


def op_main(argv):
    p = argparse.ArgumentParser(prog="crosscheck op", description=__doc__.split("\n\n")[0])
    p.add_argument("op", metavar="NAME=module:object",
                   help="the op: an Op, or a Function, custom_vjp or pair with --kind")
    p.add_argument("--kind", default=None, help=f"the registered op it computes: {', '.join(registry.LAYERS)}, "
                                                f"{', '.join(registry.LOSSES)}")
    p.add_argument("--dtypes", default=None, help="comma-separated (default: the Op's, or float64,float32)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    dtypes = None if args.dtypes is None else tuple(d.strip() for d in args.dtypes.split(",") if d.strip())
    try:
        name, obj = _load(args.op)
        op = as_op(obj, args.kind, name)
        unknown = [d for d in dtypes or () if d not in registry.DTYPES]
        if unknown:
            raise AdapterError(f"--dtypes: unknown {unknown}; choose from {registry.DTYPES}")
    except AdapterError as exc:
        p.error(str(exc))
    report = check_op(op, dtypes=dtypes, seed=args.seed)
    print(report.text)
    return report.status
