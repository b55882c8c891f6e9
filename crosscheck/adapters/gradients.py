"""Adapters for manual backprop written as a gradient function (crosscheck/adapters/loops.py has the forms that update
their own arrays): gradient_function, makemore's "backprop ninja" style in framework tensors, and named_gradients,
any model the registry builds by leaf name, running statistics included. Training applies the reference's own
optimizer to the gradients the function returns."""

import inspect
from dataclasses import replace
from typing import Any

import numpy as np

from crosscheck.adapters.readback import (
    LAYOUTS,
    AdapterError,
    _check_biases,
    _check_layout,
    _check_shapes,
    _driver,
    _from_layout,
    _named,
    _to_layout,
)
from crosscheck.adapters.update_rules import KEPT, UpdateRule
from crosscheck.common import registry
from crosscheck.common.driver import Capability, Run, TrainState, Unsupported
from crosscheck.common.errors import CodeRaised
from crosscheck.common.problem import batches, schedule
from crosscheck.reference import optimizers
from crosscheck.reference.mlp import gradients, init_buffers, update
from crosscheck.verdict.compare import Disagreement

# -- manual backprop in framework tensors (makemore's "backprop ninja" style) --------------------------------------

def _framework(name):
    """(to_native, to_numpy, version) for arrays of framework name: 'numpy', 'torch' or 'jax' (float64 kept)."""
    if name == "numpy":
        return (lambda a: a), np.asarray, np.__version__
    if name == "torch":
        import torch

        return (lambda a: torch.from_numpy(np.ascontiguousarray(a))), \
            (lambda t: t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)), torch.__version__
    if name == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 stays float64 (the reference's dtype)
        return jax.numpy.asarray, np.asarray, jax.__version__
    raise ValueError(f"framework must be 'numpy', 'torch' or 'jax', got {name!r}")


def _reference_gradients(params, X, y, config, layout, biases):
    """The reference's gradients in the user's layout, computed when called (only to explain a shape mismatch)."""
    return lambda: _to_layout(gradients(params, X, y, config)[1], layout, biases)


class GradientFunction:
    """grads(params, X, y) -> (loss, [(dW, db), ...]), params [(W, b), ...] in the declared layout and framework;
    training applies the reference's own optimizer (any registered one) to the gradients it returns, so the run
    checks the gradients along the whole trajectory."""

    def __init__(self, name, fn, layout, framework, forward, bias_shape="2d"):
        _check_layout(layout)
        _check_biases(bias_shape)
        self.name, self.fn, self.layout, self.fwd, self.biases = name, fn, layout, forward, bias_shape
        self.framework = framework
        self.rule: Any = None  # the code's own update rule (update=), else the reference's optimizer steps it
        self.native, self.numpy, self.version = _framework(framework)

    def _params(self, params):
        return [tuple(self.native(a) for a in pair) for pair in _to_layout(params, self.layout, self.biases)]

    def _calling(self, what, fn, params, X, *rest):
        """fn(user params, X, *rest), a crash inside it named with the function and the shapes it was handed."""
        try:
            return fn(params, X, *rest)
        except (AdapterError, Unsupported, Disagreement):
            raise
        except Exception as exc:
            y = f", y {tuple(rest[0].shape)}" if rest else ""
            raise CodeRaised(f"{self.name}: {what} raised {type(exc).__name__}: {exc}; it was called with "
                               f"{self._handed(params)}: X {tuple(X.shape)}{y}, params {self._shapes(params)}") from exc

    def _handed(self, params):
        return f"layout {self.layout!r} ({LAYOUTS[self.layout]}), bias_shape {self.biases!r}"

    @staticmethod
    def _shapes(params):
        return "[" + ", ".join(f"W{l + 1} {tuple(W.shape)}, b{l + 1} {tuple(b.shape)}"
                               for l, (W, b) in enumerate(params)) + "]"

    def _x(self, X):
        return self.native(X if self.layout == "rows" else X.T)

    def _back(self, out):
        out = self.numpy(out)
        return out if self.layout == "rows" else out.T

    def forward(self, params, X, config):
        if self.fwd is None:
            raise Unsupported(f"{self.name} does not support this check: no forward function declared "
                              f"(gradient_function(..., forward=f) with f(params, X) -> output)")
        return [(None, self._back(self._calling(f"the forward function {_named(self.fwd)}", self.fwd,
                                                self._params(params), self._x(X))))]

    def gradients(self, params, X, y, config):
        out = self._calling(f"the gradient function {_named(self.fn)}", self.fn, self._params(params), self._x(X),
                            self._x(y))
        if not isinstance(out, (tuple, list)) or len(out) != 2 or len(out[1]) != len(params):
            raise AdapterError(f"{self.name}: the gradient function returned {type(out).__name__}; declared: "
                               f"(loss, [(dW, db) for each of the {len(params)} layers])")
        loss, grads = out
        grads = [tuple(self.numpy(g) for g in pair) for pair in grads]
        _check_shapes(self.name, [(f"dW{l + 1}", f"db{l + 1}") for l in range(len(params))], grads, params,
                      self.layout, "as the gradient function returns it", self.biases,
                      reference=_reference_gradients(params, X, y, config, self.layout, self.biases))
        return np.asarray(self.numpy(loss))[()], _from_layout(grads, self.layout, self.biases)

    def _buffers(self, params, config, buffers):
        """The buffers a run starts from: none for dense layers alone."""
        return [() for _ in params]

    def _step(self, params, buffers, X, y, config):
        """(loss, gradients, buffers after the step) from the user's function."""
        return (*self.gradients(params, X, y, config), buffers)

    # -- the code's own update rule (update=), handed its parameters in its own layout and read back
    def _user(self, leaves):
        return _to_layout(leaves, self.layout, self.biases)

    def _ours(self, leaves):
        return _from_layout(leaves, self.layout, self.biases)

    def _leaf_names(self, params):
        return [(f"W{l + 1}", f"b{l + 1}") for l in range(len(params))]

    def _stepped(self, obj, params, grads, n, config):
        """params after the code's update rule's step on grads."""
        return self._ours(self.rule.step(obj, self._user(params), self._user(grads), self._leaf_names(params), n,
                                         config))

    def _kept(self, obj, params, opt_state):
        """The optimizer state a TrainState keeps: the reference's optimizer's, or the code's rule's read back by name
        (read where a state is kept, not every step)."""
        if self.rule is None:
            return opt_state
        kept = self.rule.kept(obj, self._leaf_names(params))
        return {k: v if k == KEPT else self._ours(v) for k, v in kept.items()}

    def fits(self, config, params):
        """Refuses (AdapterError) an update rule that cannot be built, called or read back: one step of a throwaway
        copy on zero gradients (Driver.misfit's probe, before anything trains)."""
        if self.rule is not None:
            obj = self.rule.start(config, self._leaf_names(params), None)
            params = self._stepped(obj, params, [tuple(np.zeros_like(p) for p in pair) for pair in params], 1, config)
            self._kept(obj, params, None)

    def train(self, params, X, y, config, orders=None, checkpoints=(), opt_state=None, step=0, buffers=None):
        """Trains with the reference's optimizer on the code's gradients, or with the code's own update rule."""
        steps = batches(len(X), config.batch_size)
        losses = np.empty((config.epochs, len(steps)), dtype=config.dtype)
        obj = None
        if self.rule is None:
            opt_state = optimizers.init(params, config) if opt_state is None else opt_state
        else:
            obj = self.rule.start(config, self._leaf_names(params), opt_state)
        buffers = self._buffers(params, config, buffers)
        saved = {}
        for epoch, s, idx, _, done in schedule(config, len(X), orders):
            step += 1
            losses[epoch, s], grads, buffers = self._step(params, buffers, X[idx], y[idx], config)
            if self.rule is None:
                params, opt_state = update(params, grads, opt_state, step, config)
            else:
                params = self._stepped(obj, params, grads, len(y[idx]), config)
            if done in checkpoints:
                saved[done] = TrainState(params, self._kept(obj, params, opt_state), step, buffers)
        state = TrainState(params, self._kept(obj, params, opt_state), step, buffers)
        return Run(losses=losses, checkpoints=saved, params=params, state=state)


def gradient_function(grads, *, name="grads", layout="rows", framework="numpy", forward=None,
                      activations=("sigmoid",), losses=("half_sse",), layers=None, dtypes=("float64",),
                      optimizers=None, version=None, bias_shape="2d", conventions=None, update=None, optimizer=None,
                      state=None):
    """A Driver around manual backprop written as a function, in NumPy, PyTorch or JAX tensors (tensors in, tensors
    out, as makemore's "backprop ninja"): grads(params, X, y) -> (loss, [(dW, db), ...]) with params
    [(W, b), ...] in layout ('rows': W (in, out), b (1, out); 'columns': W (out, in), b (out, 1)).

    activations, losses, layers, dtypes: what it implements (the capability the tests draw from). Training
    applies the reference's optimizer to its gradients, so every registered optimizer is supported unless
    optimizers names fewer. forward(params, X) -> output, optional: without it the output is not checked.
    bias_shape: '2d' (as layout says) or 'flat' ((out,), as makemore's b1 = torch.randn(n_hidden)). conventions:
    {key: value} the code follows where PyTorch's differ, e.g. {"loss.log_guard": "add:1e-7"} for -log(p + 1e-7).
    update: the code's own update rule, applied in place of the reference's optimizer (crosscheck/adapters/
    update_rules.py): an optimizer class or factory, built with the run's hyperparameters by their usual names
    (lr, momentum, betas or beta1 and beta2, eps, alpha), whose update(params, grads) steps dicts by name (W1, b1,
    ...); or an in-place step update(params, lr, batch_size) reading each parameter's .grad (d2l's sgd). optimizer:
    the registered optimizer it implements ('sgd' for an in-place step); state: {the registry's state name: the
    object's attribute}, where its usual names do not find it.
    """
    mlp = GradientFunction(name, grads, layout, framework, forward, bias_shape)
    return _with_rule(mlp, name, _trained_by_the_reference(activations, losses, layers, dtypes, optimizers),
                      version or f"{framework} {mlp.version}", conventions, update, optimizer, state)


def _with_rule(mlp, name, capability, version, conventions, update, optimizer, state):
    """The Driver around mlp: trained by the reference's optimizer, or by the code's own update rule (update=)."""
    if update is None:
        if optimizer is not None or state is not None:
            raise ValueError(f"{name}: optimizer= and state= describe an update rule; hand it as update=...")
        return _driver(name, mlp, capability, version, conventions=conventions)
    if optimizer is None:
        raise ValueError(f"{name}: update= needs optimizer=, the registered optimizer it implements: one of "
                         f"{', '.join(registry.OPTIMIZERS)}")
    mlp.rule = UpdateRule(name, update, optimizer, state, mlp.native, mlp.numpy)
    capability = replace(capability, optimizers=(optimizer,), own_updates=True, weight_decay=False)

    def supports(config):
        return capability.reason(config) or mlp.rule.reason(config)

    return _driver(name, mlp, capability, version, supports=supports, conventions=conventions)


def _trained_by_the_reference(activations, losses, layers, dtypes, optimizers, kinds=()):
    """The capability of a gradient function: what it implements, trained in mini-batches by the reference's own
    optimizer (every registered one unless optimizers names fewer), which is not the plug-in's own code."""

    return Capability(activations=tuple(activations), losses=tuple(losses), layers=layers, minibatch=True,
                      optimizers=tuple(optimizers or registry.OPTIMIZERS), dtypes=tuple(dtypes), weight_decay=True,
                      kinds=tuple(kinds), own_updates=False)


# -- manual backprop by leaf name, any model the registry builds (makemore part 4's, batch norm and all) ------------

def _names(spec, what):
    names = spec.replace(",", " ").split() if isinstance(spec, str) else list(spec or ())
    if len(set(names)) != len(names):
        raise ValueError(f"{what}: each name once, got {' '.join(names)}")
    return names


class NamedGradients(GradientFunction):
    """grads(params, X, y) with params {name: tensor} (the parameters, then the running statistics, by the names
    declared in the model's leaf order) -> (loss, {name: gradient}) or (loss, {name: gradient}, {statistic name: its
    value after the step}) for a model that keeps running statistics (batch norm). Samples as rows; each leaf in the
    reference's shape ((out,) biases, (D,) batch-norm scales), those named in row_vectors as (1, D)."""

    def __init__(self, name, fn, params, buffers, row_vectors, labels, framework, forward):
        super().__init__(name, fn, "rows", framework, forward)
        self.names, self.buffer_names = _names(params, "params"), _names(buffers, "buffers")
        self.rows = set(_names(row_vectors, "row_vectors"))
        unknown = self.rows - set(self.names) - set(self.buffer_names)
        if unknown:
            raise ValueError(f"row_vectors names {', '.join(sorted(unknown))}, which params and buffers do not")
        if labels not in ("one_hot", "index"):
            raise ValueError(f"labels must be 'one_hot' (y as the loss's one-hot rows) or 'index' (class ids, as "
                             f"F.cross_entropy takes them), got {labels!r}")
        self.labels = labels
        self.evaluates = forward is not None and "training" in inspect.signature(forward).parameters

    def _fit(self, config):
        leaves, buffers = config.leaf_names(), config.buffer_names()
        if len(leaves) != len(self.names) or len(buffers) != len(self.buffer_names):
            raise Unsupported(f"{self.name} does not support this configuration: it names {len(self.names)} "
                              f"parameters ({' '.join(self.names)}) and {len(self.buffer_names)} running statistics, "
                              f"the model has {len(leaves)} ({', '.join(leaves)}) and {len(buffers)}")
        return leaves, buffers

    def _handed(self, params):
        return "its leaves by name"

    def _user(self, leaves):
        return [tuple(a[None, :] if n in self.rows else a for n, a in zip(names, pair))
                for names, pair in zip(self._leaf_names(leaves), leaves)]

    def _ours(self, leaves):
        return [tuple(a[0] if n in self.rows else a for n, a in zip(names, pair))
                for names, pair in zip(self._leaf_names(leaves), leaves)]

    def _leaf_names(self, params):
        names = iter(self.names)
        return [tuple(next(names) for _ in pair) for pair in params]

    @staticmethod
    def _shapes(params):
        return "{" + ", ".join(f"{n} {tuple(a.shape)}" for n, a in params.items()) + "}"

    def _native(self, name, array):
        return self.native(np.array(array, copy=True)[None, :] if name in self.rows else np.array(array, copy=True))

    def _dict(self, params, buffers=None):
        named = {n: self._native(n, a) for n, a in zip(self.names, (a for pair in params for a in pair))}
        if buffers is not None:
            named.update((n, self._native(n, a)) for n, a in zip(self.buffer_names, (a for b in buffers for a in b)))
        return named

    def _leaf_back(self, name, value, like, what, reference_name):
        got = np.asarray(self.numpy(value))
        want = (1, *np.shape(like)) if name in self.rows else np.shape(like)
        if got.shape != tuple(want):
            hint = ""
            if got.size == int(np.prod(want)) and got.ndim == 2:
                hint = f"; the same values reshaped? declare row_vectors={' '.join(sorted(self.rows | {name}))!r}"
            elif got.size == int(np.prod(want)):
                hint = f"; the same values reshaped? leave {name} out of row_vectors"
            raise AdapterError(f"{self.name}: {what} {name} ({reference_name}) is {got.shape}, but it was handed as "
                               f"{tuple(want)}{hint}")
        return np.array(got, copy=True).reshape(np.shape(like))  # a copy: the user may keep and change theirs

    def _y(self, y):
        return self.native(np.argmax(y, axis=-1).astype(np.int64) if self.labels == "index" else y)

    def forward(self, params, X, config, buffers=None):
        self._fit(config)
        if self.fwd is None:
            raise Unsupported(f"{self.name} does not support this check: no forward function declared "
                              f"(gradient_function(..., forward=f) with f(params, X) -> output)")
        if buffers is None:
            out = self._calling(f"the forward function {_named(self.fwd)}", self.fwd, self._dict(params),
                                self.native(X))
        elif not self.evaluates:
            raise Unsupported(f"{self.name} does not support this check: its forward takes no training argument, so "
                              f"the network in evaluation mode (reading the running statistics) is not checked")
        else:
            out = self._calling(f"the forward function {_named(self.fwd)} (training=False)",
                                lambda p, x: self.fwd(p, x, training=False), self._dict(params, buffers),
                                self.native(X))
        return [(None, self.numpy(out))]

    def _step(self, params, buffers, X, y, config):
        """(loss, grads [(leaf, ...)] per layer, buffers after the step) from the user's function."""
        leaves, buffer_names = self._fit(config)
        out = self._calling(f"the gradient function {_named(self.fn)}", self.fn, self._dict(params, buffers or None),
                            self.native(X), self._y(y))
        if not isinstance(out, (tuple, list)) or len(out) not in (2, 3) or not isinstance(out[1], dict):
            raise AdapterError(f"{self.name}: the gradient function returned {type(out).__name__}; declared: (loss, "
                               f"{{name: gradient}}) or (loss, {{name: gradient}}, {{running statistic: new value}})")
        grads = out[1]
        missing, extra = [n for n in self.names if n not in grads], [n for n in grads if n not in self.names]
        if missing or extra:
            said = ([f"no gradient for {', '.join(missing)}"] if missing else []) + \
                ([f"gradients for {', '.join(extra)}, which params does not name"] if extra else [])
            raise AdapterError(f"{self.name}: the gradient function returned {'; '.join(said)}")
        flat = [a for pair in params for a in pair]
        values = iter(self._leaf_back(n, grads[n], like, "gradient of", ref)
                      for n, like, ref in zip(self.names, flat, leaves))
        shaped = [tuple(next(values) for _ in pair) for pair in params]
        new = buffers
        if self.buffer_names:
            stats = out[2] if len(out) == 3 else {}
            missing = [n for n in self.buffer_names if n not in stats]
            if missing:
                raise AdapterError(f"{self.name}: the gradient function returned no new value of {', '.join(missing)}"
                                   f"; a model with running statistics returns (loss, grads, {{statistic: value}})")
            flat_b = [a for b in buffers for a in b]
            values = iter(self._leaf_back(n, stats[n], like, "running statistic", ref)
                          for n, like, ref in zip(self.buffer_names, flat_b, buffer_names))
            new = [tuple(next(values) for _ in b) for b in buffers]
        return np.asarray(self.numpy(out[0]))[()], shaped, new

    def gradients(self, params, X, y, config):
        loss, grads, _ = self._step(params, self._buffers(params, config, None), X, y, config)
        return loss, grads

    def _buffers(self, params, config, buffers):
        """The running statistics a run starts from: those it continues, or the reference's initial ones."""
        return buffers if buffers and any(buffers) else init_buffers(params, config)


def named_gradients(grads, *, params, name="grads", buffers=(), row_vectors=(), labels="one_hot", framework="numpy",
                    forward=None, kinds=(), activations=("tanh",), losses=("softmax_cross_entropy",),
                    dtypes=("float64",), optimizers=None, version=None, conventions=None, update=None, optimizer=None,
                    state=None):
    """A Driver around manual backprop of any model the registry builds, by leaf name, in NumPy, PyTorch or JAX
    tensors (makemore part 4's "backprop ninja", batch norm and all):

        grads(params, X, y) -> (loss, {name: gradient}) or (loss, {name: gradient}, {statistic: new value})

    params: the names of the model's parameters in its leaf order (e.g. "C W1 b1 bngain bnbias W2 b2" for embedding,
    flatten, dense, batch norm, tanh, dense); buffers: its running statistics' names (e.g. "bnmean bnvar"), handed in
    params too, their values after the step returned; row_vectors: names handed as (1, D) rather than (D,) (makemore's
    bngain and bnbias); labels: 'one_hot' or 'index' (class ids, as F.cross_entropy takes them); kinds: the layer kinds
    besides dense and the activations it implements. forward(params, X[, training]) -> output, optional; with a
    training argument, the network in evaluation mode (training=False, the running statistics in params) is checked
    too. Training applies the reference's optimizer to the gradients it returns. conventions: {key: value} where the
    code follows another convention than PyTorch's (makemore part 4's batch norm: {"batchnorm.variance": "unbiased",
    "batchnorm.running_average": "keep:0.999"}; crosscheck --conventions lists them). update, optimizer, state: the
    code's own update rule, as gradient_function's, its dicts by the names of params.
    """
    mlp = NamedGradients(name, grads, params, buffers, row_vectors, labels, framework, forward)
    return _with_rule(mlp, name, _trained_by_the_reference(activations, losses, None, dtypes, optimizers, kinds),
                      version or f"{framework} {mlp.version}", conventions, update, optimizer, state)
