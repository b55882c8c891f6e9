"""Update rules written by hand, the two other ways people write them (CS231n's sgd(w, dw, config) -> (w, config) is
layer_pairs.py's): an optimizer object, opt = Adam(lr=..., ...) whose opt.update(params, grads) steps dicts of arrays
by name; and an in-place step, sgd(params, lr, batch_size), d2l's, each parameter's gradient on its .grad.

Either is handed to gradient_function or named_gradients as update=...: training then applies it, every step, to the
gradients the code returns, in place of the reference's optimizer, and what the object keeps (its moments, its
velocity) is read back by name as the reference's optimizer state, so that a wrong moment is named where it parts
(adam first moment of layer 1 weight), not only where the parameters do.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np

from crosscheck.adapters.readback import _callable_as
from crosscheck.common import registry
from crosscheck.common.errors import AdapterError, CodeRaised

# What a constructor's keyword may be called, for each hyperparameter: torch.optim's names, CS231n's and the books'.
HYPER = {"lr": ("lr", "learning_rate", "eta", "alpha_lr", "step_size"),
         "momentum": ("momentum", "mu", "beta"),
         "alpha": ("alpha", "decay_rate", "rho", "decay", "beta2"),
         "eps": ("eps", "epsilon"),
         "beta1": ("beta1", "b1"), "beta2": ("beta2", "b2"), "betas": ("betas",)}
# The attribute names an object's state is looked for under, where state= does not say: the registry's name first.
STATE = {"momentum buffer": ("velocity", "v", "momentum_buffer", "buf", "momentum"),
         "square average": ("square_avg", "cache", "s", "v", "sq"),
         "sum of squares": ("sum_of_squares", "cache", "G", "h", "s"),
         "first moment": ("m", "exp_avg", "first_moment", "m1"),
         "second moment": ("v", "exp_avg_sq", "second_moment", "m2")}
KEPT = "update rule"  # the opt_state's key for the object itself, carried across a stretch boundary (copied): a
# 0-d array of dtype object, in the state's shape ([(leaf,)]), so that the state's tree stays a tree of arrays


def _hyper(config):
    """{hyperparameter: value} of config's optimizer, beta1 and beta2 given apart as well as together."""
    values = {"lr": config.lr, "momentum": config.momentum, "alpha": config.alpha, "eps": config.eps}
    if config.betas is not None:
        values.update(beta1=config.betas[0], beta2=config.betas[1], betas=tuple(config.betas))
    wanted = _wanted(config.optimizer)
    return {k: v for k, v in values.items() if k in wanted}


def _wanted(optimizer):
    hyper = set(registry.OPTIMIZERS[optimizer].hyper) - {"weight_decay"}
    return hyper | ({"beta1", "beta2"} if "betas" in hyper else set())


class UpdateRule:
    """rule: a class or factory of an optimizer object (with .update(params, grads)), or an in-place step
    rule(params, lr, batch_size); optimizer: the registered optimizer it implements; state: {registry state name:
    the object's attribute} (each a dict by parameter name), where the names in STATE do not find it; native and
    numpy: the adapter's conversions of an array to the code's framework and back."""

    def __init__(self, name, rule, optimizer, state, native, numpy):
        if optimizer not in registry.OPTIMIZERS:
            raise ValueError(f"{name}: optimizer must be one of {', '.join(registry.OPTIMIZERS)}, got {optimizer!r}")
        self.name, self.rule, self.optimizer, self.state = name, rule, optimizer, dict(state or {})
        self.native, self.numpy = native, numpy
        self.in_place = not (inspect.isclass(rule) or _returns_object(rule))
        if self.in_place:
            if optimizer != "sgd":
                raise AdapterError(f"{name}: an in-place step rule(params, lr, batch_size) takes lr alone, so it is "
                                   f"plain descent (optimizer='sgd'), not {optimizer}; hand an optimizer object "
                                   f"(a class with update(params, grads)) for {optimizer}")
            _takes(name, rule, ("params", "lr", "batch_size"))
        unknown = set(self.state) - set(registry.OPTIMIZERS[optimizer].state)
        if unknown:
            raise ValueError(f"{name}: state names {', '.join(sorted(unknown))}, which {optimizer} does not keep; it "
                             f"keeps {', '.join(registry.OPTIMIZERS[optimizer].state) or 'nothing'}")

    def reason(self, config):
        """Why config cannot be trained by the rule (None where it can)."""
        if config.optimizer != self.optimizer:
            return f"its update rule is {self.optimizer}, not {config.optimizer}"
        for what, said in (("schedule", "a learning-rate schedule"), ("clip", "gradient clipping"),
                           ("weight_decay", "weight decay")):
            if getattr(config, what):
                return f"{said} (its update rule takes a fixed lr and the gradient as it is)"
        return None

    def start(self, config, names, opt_state):
        """The object a run steps with: the one a run continues (a copy), else one built from config's
        hyperparameters; an in-place step keeps nothing."""
        if self.in_place:
            return None
        if opt_state and KEPT in opt_state:
            return copy.deepcopy(np.asarray(opt_state[KEPT][0][0]).item())
        hyper = _hyper(config)
        try:
            signature = inspect.signature(self.rule)
        except (TypeError, ValueError):
            signature = None
        kwargs = _keywords(self.name, self.rule, signature, hyper)
        try:
            obj = self.rule(**kwargs)
        except Exception as exc:
            raise CodeRaised(f"{self.name}: building the optimizer {_called(self.rule)}(**{kwargs}) raised "
                             f"{type(exc).__name__}: {exc}") from exc
        _callable_as(self.name, obj, "update", ("params", "grads"))
        return obj

    def step(self, obj, params, grads, names, n, config):
        """params after one step of the rule on grads (leaves [(W, b), ...], NumPy), each handed by name."""
        native, numpy = self.native, self.numpy
        flat = [(name, p, g) for pair, gpair, lnames in zip(params, grads, names) for name, p, g in
                zip(lnames, pair, gpair)]
        if self.in_place:
            leaves = [_with_grad(native(np.array(p, copy=True)), native(g * n)) for _, p, g in flat]
            _calling(self.name, _called(self.rule), self.rule, leaves, config.lr, n)
            new = [numpy(leaf) for leaf in leaves]
        else:
            ps = {name: native(np.array(p, copy=True)) for name, p, _ in flat}
            gs = {name: native(g) for name, _, g in flat}
            out = _calling(self.name, f"{type(obj).__name__}.update", obj.update, ps, gs)
            got = out if isinstance(out, dict) else ps
            missing = [name for name, _, _ in flat if name not in got]
            if missing:
                raise AdapterError(f"{self.name}: {type(obj).__name__}.update returned a dict without "
                                   f"{', '.join(missing)}; it returns the new parameters by name, or None after "
                                   f"changing them in place")
            new = [numpy(got[name]) for name, _, _ in flat]
        stepped = iter(new)
        return [tuple(next(stepped) for _ in pair) for pair in params]

    def kept(self, obj, names):
        """The object's state as the reference's ({state name: [(W leaf, b leaf)] per layer}), copied, and a copy of
        the object itself (KEPT) for a run that continues."""
        if obj is None:
            return {}
        itself = np.empty((), dtype=object)
        itself[()] = copy.deepcopy(obj)
        state: dict = {KEPT: [(itself,)]}
        for key in registry.OPTIMIZERS[self.optimizer].state:
            held = self._attribute(obj, key, names)
            state[key] = [tuple(np.array(self.numpy(held[name]), copy=True) for name in lnames) for lnames in names]
        return state

    def _attribute(self, obj, key, names):
        """The object's dict of key's state by parameter name (state=, else the first of STATE's names it has)."""
        wanted = [n for lnames in names for n in lnames]
        tried = [self.state[key]] if key in self.state else list(STATE[key])
        for attr in tried:
            held = getattr(obj, attr, None)
            if isinstance(held, dict) and all(n in held for n in wanted):
                return held
        dicts = sorted(k for k, v in vars(obj).items() if isinstance(v, dict)) if hasattr(obj, "__dict__") else []
        raise AdapterError(f"{self.name}: {type(obj).__name__} keeps no {self.optimizer} {key} by parameter name "
                           f"under {', '.join(tried)} (after its first step; its dicts: {', '.join(dicts) or 'none'})"
                           f"; declare state={{{key!r}: 'its attribute'}}")


def _returns_object(rule):
    """Whether rule is a factory (no positional parameter without a default), not a step of three arguments."""
    try:
        params = inspect.signature(rule).parameters.values()
    except (TypeError, ValueError):
        return False
    return not [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]


def _keywords(name, rule, signature, hyper):
    """The keywords rule is built with: each hyperparameter under the name its signature takes it by."""
    if signature is None:
        return dict(hyper)
    params = signature.parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return {k: v for k, v in hyper.items() if k not in ("beta1", "beta2")}
    kwargs = {}
    for key, value in hyper.items():
        spelled = next((s for s in HYPER[key] if s in params and s not in kwargs), None)
        if spelled is not None:
            kwargs[spelled] = value
    missing = [p.name for p in params.values() if p.default is p.empty and p.name not in kwargs
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        raise AdapterError(f"{name}: {_called(rule)}{signature} requires {', '.join(missing)}, which the adapter "
                           f"cannot tell from the run's hyperparameters ({', '.join(hyper)}); name them as "
                           f"torch.optim does (lr, momentum, alpha, eps, betas)")
    return kwargs


def _takes(name, fn, handed):
    """Refuses a step function that cannot be called with the arguments handed (AdapterError, before anything
    trains); an object's method is _callable_as's."""
    try:
        inspect.signature(fn).bind(*handed)
    except TypeError as exc:
        raise AdapterError(f"{name}: {_called(fn)}{inspect.signature(fn)} cannot be called as the adapter "
                           f"calls it, ({', '.join(handed)}): {exc}") from None
    except ValueError:
        pass


def _calling(name, what, fn, *args):
    try:
        return fn(*args)
    except AdapterError:
        raise
    except Exception as exc:
        raise CodeRaised(f"{name}: the update rule {what} raised {type(exc).__name__}: {exc}") from exc


class _Leaf(np.ndarray):
    """A NumPy parameter with its gradient on .grad, as d2l's step reads it: p -= lr * p.grad / batch_size."""

    grad = None


def _with_grad(p, g):
    if isinstance(p, np.ndarray):
        leaf = p.view(_Leaf)
        leaf.grad = g
        return leaf
    p.grad = g  # a torch tensor: its .grad, as autograd would leave it
    return p


def _called(fn):
    return getattr(fn, "__name__", type(fn).__name__)
