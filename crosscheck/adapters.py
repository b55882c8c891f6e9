"""Adapters: check an implementation as it is written, without rewriting it.

Each builds a Driver around code in one of the forms people write backprop in:

- seed_style(factory): a class in the first seed's style, weights as attributes, feedforward(X) returning the
  output and backward(X, y, learning_rate) updating the weights in place;
- step_function(step): the second seed's loop body as a function of arrays,
  step(w1, b1, w2, b2, X, d, lr) -> (w1, b1, w2, b2), or updating them in place;
- nielsen(factory): Michael Nielsen's Network (lists of biases and weights, samples as columns,
  backprop(x, y) -> (nabla_b, nabla_w) per sample, update_mini_batch(mini_batch, eta)).

An adapter sets the parameters from the shared seed, runs the code, and reads the parameters back. Where the
code only updates (seed_style, step_function) the gradients are implied by the update: W_before - W_after at a
learning rate of 1 (exact in binary, so only W's rounding remains), and the same step at a learning rate of 1/2
must move half as far; one that does not is a wrong update rule (the learning rate missing, or applied twice),
reported as such rather than as a wrong gradient. Each declares what it supports (its layers, activation, loss,
batching, dtypes); every other configuration is skipped with the reason.

    from crosscheck.adapters import seed_style
    DRIVER = seed_style(lambda layers: NeuralNetwork(*layers), name="mine")

then `pytest --pyargs crosscheck_tests --implementation mine=my_module:DRIVER --backends mine`.
"""

import inspect
import re

import numpy as np

from common.driver import Capability, Driver, Run, Unsupported, batches
from reference.losses import loss_forward

from .compare import Disagreement

IMPLIED_LR = 1.0  # the step whose effect is read back as a gradient: exact in binary, so only W's rounding remains
HALF_LR = 0.5  # the second step: a right update rule moves exactly half as far
LAYOUTS = {"rows": "samples as rows: X (N, in), W (in, out), b (1, out), y (N, out)",
           "columns": "samples as columns: X (in, N), W (out, in), b (out, 1), y (out, N)"}


class AdapterError(ValueError):
    """An adapter's declaration does not fit the code it wraps (attribute names, layout, parameter order): said
    with what was expected, before the code trains. Not a disagreement: the check could not be made."""


def _check_layout(layout):
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'rows' ({LAYOUTS['rows']}) or 'columns' ({LAYOUTS['columns']}), "
                         f"got {layout!r}")


def _leaf_name(l, leaf):
    return f"layer {l + 1} {'weight' if leaf == 0 else 'bias'}"


BIASES = {"2d": "each bias 2-D: (1, out) in rows, (out, 1) in columns", "flat": "each bias 1-D: (out,)"}


def _check_biases(biases):
    if biases not in BIASES:
        raise ValueError(f"bias_shape must be '2d' ({BIASES['2d']}) or 'flat' ({BIASES['flat']}, as makemore's and "
                         f"CS231n's), got {biases!r}")


def _to_layout(params, layout, biases="2d"):
    """[(W (in, out), b (out,))] in the user's layout: rows (W, b (1, out)) or columns (W.T, b (out, 1)); with
    biases 'flat', b stays (out,)."""
    if layout == "rows":
        return [(W.copy(), b.copy() if biases == "flat" else b[None, :].copy()) for W, b in params]
    return [(W.T.copy(), b.copy() if biases == "flat" else b[:, None].copy()) for W, b in params]


def _from_layout(arrays, layout, biases="2d"):
    """The inverse of _to_layout."""
    def bias(b):
        b = np.array(b, copy=True)
        return b if biases == "flat" else b[0] if layout == "rows" else b[:, 0]

    if layout == "rows":
        return [(np.array(W, copy=True), bias(b)) for W, b in arrays]
    return [(np.array(W, copy=True).T, bias(b)) for W, b in arrays]


def _expected_shapes(params, layout, biases="2d"):
    return [(W.shape, b.shape) for W, b in _to_layout(params, layout, biases)]


def _check_shapes(who, names, arrays, params, layout, when, biases="2d", reference=None):
    """Each of arrays (W, b per layer, as read from the user's code) has the shape the declared layout gives it.

    A bias whose values are only reshaped ((out,) for (1, out), or the reverse) is named as such, with the declaration
    that fits; reference (optional): a callable giving the right arrays in the declared layout, to say whether the
    values agree once reshaped."""
    other = "columns" if layout == "rows" else "rows"
    for l, ((W, b), (w_shape, b_shape)) in enumerate(zip(arrays, _expected_shapes(params, layout, biases))):
        for leaf, (got, want) in enumerate(((np.shape(W), w_shape), (np.shape(b), b_shape))):
            got, want = tuple(got), tuple(want)
            if got == want:
                continue
            hint = f"; declare layout={other!r}?" if got == want[::-1] else ""
            if leaf == 1 and int(np.prod(got)) == int(np.prod(want)) and len(got) != len(want):
                fits = "flat" if len(got) == 1 else "2d"
                hint = f"; declare bias_shape={fits!r} ({BIASES[fits]})"
                if reference is not None:
                    right = np.asarray(reference()[l][leaf]).ravel()
                    # Loose on purpose: a hint that must hold for float32 gradients too, not the verdict (the checks
                    # that follow a declaration are).
                    same = np.allclose(np.asarray(b, dtype=np.float64).ravel(), right.astype(np.float64),
                                       rtol=1e-6, atol=1e-12)
                    hint = (f": its values agree with the reference's once reshaped to {want}{hint}" if same
                            else f", and its values differ from the reference's even reshaped to {want}{hint}")
            raise AdapterError(f"{who}: {names[l][leaf]} ({_leaf_name(l, leaf)}) is {got} {when}, but layout "
                               f"{layout!r} ({LAYOUTS[layout]}{'; biases flat' if biases == 'flat' else ''}) makes it "
                               f"{want}{hint}")


def _check_update_rule(who, before, full, half, lr_full=IMPLIED_LR, lr_half=HALF_LR):
    """The steps (before - after) taken at lr_full and at lr_half are in the ratio lr_half / lr_full, as
    W - lr * gradient makes them; otherwise the update rule itself is wrong, and the message says how: the learning
    rate missing or applied twice, or, where the layers nearer the output step in proportion and one below does not,
    a gradient read after another layer's update (the order of operations)."""
    expected = lr_half / lr_full
    with np.errstate(all="ignore"):  # a step that overflows is not in proportion, and is said so; no warning
        ratios = _ratios(before, full, half, expected)
    if ratios:
        _say_update_rule(who, ratios, before, expected, lr_full, lr_half)


def _ratios(before, full, half, expected):
    """{(layer, leaf): the ratio of its two steps} for each leaf whose steps are not in the ratio expected."""
    ratios = {}
    for l, (p0, p1, ph) in enumerate(zip(before, full, half)):
        for leaf in range(2):
            d1, dh = p0[leaf] - p1[leaf], p0[leaf] - ph[leaf]
            scale = max(np.max(np.abs(p0[leaf])), np.max(np.abs(p1[leaf])), np.max(np.abs(d1)), 1e-300)
            if not np.all(np.abs(dh - expected * d1) <= 8 * np.finfo(d1.dtype).eps * scale):
                ratios[(l, leaf)] = float(np.vdot(dh, d1) / np.vdot(d1, d1)) if np.any(d1) else float("inf")
    return ratios


def _say_update_rule(who, ratios, before, expected, lr_full, lr_half):
    """The Disagreement that says how the update rule is wrong, from the first leaf out of proportion."""
    (l, leaf), ratio = next(iter(ratios.items()))
    in_proportion = [k for k in range(len(before)) if (k, 0) not in ratios and (k, 1) not in ratios]
    if abs(ratio - 1) < 0.05:
        how = "it looks like the learning rate is missing"
    elif abs(ratio - expected ** 2) < 0.05 * expected ** 2:
        how = "it looks like the learning rate is applied twice (lr² × gradient)"
    elif in_proportion and all(k < max(in_proportion) for k, _ in ratios):
        above = ", ".join(f"layer {k + 1}" for k in in_proportion if k > l)
        how = (f"the step is not proportional to the learning rate, while {above} steps in proportion: layer {l + 1}'s "
               f"gradient looks read after {above}'s update (its delta computed from weights already updated); "
               f"compute every gradient before updating any")
    else:
        how = "the step is not proportional to the learning rate"
    raise Disagreement(
        f"{who}: the {_leaf_name(l, leaf)} update is not W − lr × gradient: the step taken at lr "
        f"{lr_half:g} is {ratio:.3g} × the step at lr {lr_full:g}, where it should be {expected:g}: {how}")


def _capability(layers, activation, loss, dtypes, minibatch, outputs=None):
    """What code implementing dense layers with one activation throughout, trained by plain descent, supports."""
    return Capability(activations=(activation,), losses=(loss,), layers=layers, minibatch=minibatch,
                      dtypes=tuple(dtypes), outputs=outputs)


class ReadBack:
    """The mlp protocol (forward, gradients, train) for code that updates its parameters itself: a subclass says
    how to build it (new), set and get its parameters (put, take, as [(W, b)] in the user's layout), run its forward
    (output) and take one step (step), all with X and y in the user's layout."""

    def __init__(self, name, layout, bias_shape="2d"):
        _check_layout(layout)
        if bias_shape is not None:
            _check_biases(bias_shape)
        self.name, self.layout, self.biases = name, layout, bias_shape or "2d"

    # -- what a subclass provides
    def new(self, config):
        raise NotImplementedError

    def put(self, state, arrays):
        raise NotImplementedError

    def take(self, state):
        raise NotImplementedError

    def output(self, state, X):
        raise NotImplementedError

    def step(self, state, X, y, lr):
        raise NotImplementedError

    # -- the protocol
    FUNCTIONS = {"the forward pass": "", "the training step": ""}  # what each calls of the user's code, by name

    def _call(self, what, fn, state, X, *rest):
        """fn(state, X, *rest), a crash explained with the user's function it ran in and the shapes the declared layout
        handed the code (a forgotten layout= shows as a shape error in the user's own file)."""
        named = self.FUNCTIONS.get(what, "")
        what = f"{what} ({named})" if named else what
        try:
            return fn(state, X, *rest)
        except (AdapterError, Unsupported, Disagreement):
            raise
        except Exception as exc:
            arrays = self.take(state)
            shapes = ", ".join(f"{w} {np.shape(W)}, {b} {np.shape(B)}"
                               for (w, b), (W, B) in zip(self.names(len(arrays)), arrays))
            y = f", y {np.shape(rest[0])}" if rest else ""
            raise AdapterError(f"{self.name}: {what} raised {type(exc).__name__}: {exc}; it was called with layout "
                               f"{self.layout!r} ({LAYOUTS[self.layout]}): X {np.shape(X)}{y}, {shapes}") from exc

    def _x(self, X):
        return X if self.layout == "rows" else X.T

    def _from_x(self, out):
        out = np.asarray(out)
        return out if self.layout == "rows" else out.T

    def _state(self, params, config):
        state = self.new(config)
        self.put(state, _to_layout(params, self.layout, self.biases))
        return state

    def _params(self, state, like):
        arrays = self.take(state)
        _check_shapes(self.name, self.names(len(like)), arrays, like, self.layout, "after the step", self.biases)
        return _from_layout(arrays, self.layout, self.biases)

    def names(self, n_layers):
        return [(f"W{l + 1}", f"b{l + 1}") for l in range(n_layers)]

    def forward(self, params, X, config):
        return [(None, self._from_x(self._call("the forward pass", self.output, self._state(params, config),
                                                 self._x(X))))]

    def loss_output(self, state, like, X, config):
        """The output a step's loss is computed from, for X (samples as rows) at state's parameters (like: params
        of the same shapes): the code's own forward pass."""
        return self._from_x(self._call("the forward pass", self.output, state, self._x(X)))

    def _stepped(self, params, X, y, config, lr):
        state = self._state(params, config)
        self._call("the training step", self.step, state, self._x(X), self._x(y), lr)
        return self._params(state, params)

    def gradients(self, params, X, y, config):
        a = self.loss_output(self._state(params, config), params, X, config)
        loss = loss_forward(config.loss, None, a, y)  # no logits: seeds' loss
        full = self._stepped(params, X, y, config, IMPLIED_LR)
        _check_update_rule(self.name, params, full, self._stepped(params, X, y, config, HALF_LR))
        return loss, [((W0 - W1) / IMPLIED_LR, (b0 - b1) / IMPLIED_LR) for (W0, b0), (W1, b1) in zip(params, full)]

    def train(self, params, X, y, config, orders=None, checkpoints=()):
        state = self._state(params, config)
        steps = batches(len(X), config.batch_size)
        losses = np.empty((config.epochs, len(steps)), dtype=config.dtype)
        saved = {}
        for epoch in range(config.epochs):
            for s, (start, stop) in enumerate(steps):
                idx = slice(None) if orders is None else orders[epoch, start:stop]
                a = self.loss_output(state, params, X[idx], config)
                losses[epoch, s] = loss_forward(config.loss, None, a, y[idx])
                self._call("the training step", self.step, state, self._x(X[idx]), self._x(y[idx]), config.lr)
            if epoch + 1 in checkpoints:
                saved[epoch + 1] = self._params(state, params)
        return Run(losses=losses, checkpoints=saved, params=self._params(state, params))


def _driver(name, mlp, capability, version):
    return Driver(name=name, version=version, devices=("cpu",), mlp=mlp, to_native=lambda arr, device: arr,
                  to_numpy=np.asarray, supports=capability.reason, capability=capability)


# -- the first seed's class -------------------------------------------------------------------------------------

class SeedStyle(ReadBack):
    """A seed-style object: weights and biases as attributes, feedforward(X), backward(X, y, learning_rate)."""

    FUNCTIONS = {"the forward pass": "feedforward()", "the training step": "feedforward() then backward()"}

    def __init__(self, name, factory, layout, weights, biases, bias_shape=None):
        super().__init__(name, layout, bias_shape)
        if len(weights) != len(biases):
            raise ValueError("give one bias attribute per weight attribute")
        self.factory, self.weights, self.bias_names = factory, tuple(weights), tuple(biases)
        self.declared = bias_shape  # None: as the class builds its biases, (out,) or 2-D

    def names(self, n_layers):
        return list(zip(self.weights, self.bias_names))

    def new(self, config):
        net = self.factory(config.layers)
        missing = [a for a in (*self.weights, *self.bias_names) if not hasattr(net, a)]
        if missing:
            arrays = sorted(k for k, v in vars(net).items() if isinstance(v, np.ndarray)) if hasattr(net, "__dict__") \
                else []
            raise AdapterError(f"{self.name}: {type(net).__name__} has no attribute {', '.join(map(repr, missing))} "
                               f"(its arrays: {', '.join(arrays) or 'none'}); declare its names with weights=(...) "
                               f"and biases=(...), input layer first")
        ours = [(getattr(net, w), getattr(net, b)) for w, b in zip(self.weights, self.bias_names)]
        if self.declared is None:  # the class's own convention, read off the biases it builds (all 1-D: flat)
            self.biases = "flat" if all(np.ndim(b) == 1 for _, b in ours) else "2d"
        like = [(np.empty((a, b)), np.empty(b)) for a, b in zip(config.layers[:-1], config.layers[1:])]
        _check_shapes(self.name, self.names(len(like)), ours, like, self.layout, "as the class builds it",
                      self.biases)
        return net

    def put(self, net, arrays):
        for (W, b), w_name, b_name in zip(arrays, self.weights, self.bias_names):
            setattr(net, w_name, W)
            setattr(net, b_name, b)

    def take(self, net):
        return [(getattr(net, w), getattr(net, b)) for w, b in zip(self.weights, self.bias_names)]

    def output(self, net, X):
        return net.feedforward(X)

    def step(self, net, X, y, lr):
        net.feedforward(X)  # backward reads what the forward pass kept
        net.backward(X, y, lr)


def seed_style(factory, *, name="seed-style", layout="rows",
               weights=("weights_input_hidden", "weights_hidden_output"), biases=("bias_hidden", "bias_output"),
               activation="sigmoid", loss="half_sse", dtypes=("float64",), version="-", bias_shape=None):
    """A Driver around a seed-style class; factory(layers) builds one for layers, e.g. (2, 4, 1). bias_shape: '2d',
    'flat' ((out,)), or None to take the class's own (flat where every bias it builds is 1-D).

    It declares what it supports: len(weights) layers, `activation` everywhere, `loss` (the seeds' backward is
    descent on half_sse), full batch, `dtypes`. Every other configuration is skipped with the reason.
    """
    return _driver(name, SeedStyle(name, factory, layout, weights, biases, bias_shape),
                   _capability(len(weights), activation, loss, dtypes, minibatch=False), version)


# -- the second seed's loop body, as a function ------------------------------------------------------------------

def _parse_order(params):
    """'w1 b1 w2 b2' -> [(0, 0), (0, 1), (1, 0), (1, 1)]: each of step's leading arguments as (layer, leaf)."""
    names = params.replace(",", " ").split() if isinstance(params, str) else list(params)
    order = []
    for token in names:
        match = re.fullmatch(r"([wWbB])_?(\d+)", token)
        if not match:
            raise ValueError(f"params: {token!r} is not a weight or bias name like w1, W2, b1 (the layer's number "
                             f"after w or b)")
        order.append((int(match.group(2)) - 1, 0 if match.group(1) in "wW" else 1))
    n_layers = max(l for l, _ in order) + 1 if order else 0
    if sorted(order) != [(l, leaf) for l in range(n_layers) for leaf in range(2)]:
        raise ValueError(f"params: {' '.join(names)} must name one weight and one bias for each layer, 1 to "
                         f"{n_layers}, each once")
    return names, order


class StepFunction(ReadBack):
    """step(*params, X, y, lr) in the declared order: new arrays returned, or the ones handed in updated in place."""

    def __init__(self, name, fn, params, layout, targets, forward, bias_shape="2d"):
        super().__init__(name, layout, bias_shape)
        if targets not in ("2d", "flat"):
            raise ValueError(f"targets must be '2d' (y as (N, out) or (out, N), as the layout) or 'flat' (y as (N,), "
                             f"one output), got {targets!r}")
        self.fn, self.targets, self.fwd = fn, targets, forward
        self.FUNCTIONS = {"the forward pass": _named(forward) if forward is not None else "", "the training step":
                          _named(fn)}
        self.arg_names, self.order = _parse_order(params)
        self.n_layers = len(self.order) // 2
        self._check_signature(fn, "step", len(self.order) + 3)
        if forward is not None:
            self._check_signature(forward, "forward", len(self.order) + 1)

    def _check_signature(self, fn, what, n_args):
        """fn takes n_args positional arguments, and where its leading ones are named like weights and biases
        (w1, b1, ...), in the declared order."""
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return  # a builtin or a C function: nothing to read
        kinds = [p.kind for p in signature.parameters.values()]
        if inspect.Parameter.VAR_POSITIONAL in kinds:
            return
        positional = [p.name for p in signature.parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        calls = " ".join(self.arg_names) + (" X y lr" if what == "step" else " X")
        if len(positional) != n_args:
            raise AdapterError(f"{self.name}: {what}{signature} takes {len(positional)} arguments; the adapter calls "
                               f"it with {n_args}: {calls}")
        leading = positional[:len(self.arg_names)]
        if all(re.fullmatch(r"[wWbB]_?\d+", p) for p in leading) and _parse_order(leading)[1] != self.order:
            raise AdapterError(f"{self.name}: {what}{signature} takes its parameters as {' '.join(leading)}, but "
                               f"params= declares {' '.join(self.arg_names)}; declare params={' '.join(leading)!r}")

    def names(self, n_layers):
        pair: dict[int, list[str]] = {}
        for name, (l, leaf) in zip(self.arg_names, self.order):
            pair.setdefault(l, ["", ""])[leaf] = name
        return [tuple(pair[l]) for l in range(n_layers)]

    def new(self, config):
        if len(config.layers) - 1 != self.n_layers:
            raise Unsupported(f"{self.name} does not support this configuration: {self.n_layers} layers only")
        return {"arrays": None}

    def put(self, state, arrays):
        state["arrays"] = [arrays[l][leaf] for l, leaf in self.order]

    def take(self, state):
        by_leaf = dict(zip(self.order, state["arrays"]))
        return [(by_leaf[(l, 0)], by_leaf[(l, 1)]) for l in range(self.n_layers)]

    def _y(self, y):
        if self.targets == "2d":
            return y
        return np.ravel(y)

    def output(self, state, X):
        if self.fwd is None:
            raise Unsupported(f"{self.name} does not support this check: no forward function declared "
                              f"(step_function(..., forward=f) with f(*params, X) -> output)")
        return self.fwd(*state["arrays"], X)

    def step(self, state, X, y, lr):
        out = self.fn(*state["arrays"], X, self._y(y), lr)
        if out is not None:
            if not isinstance(out, (tuple, list)) or len(out) != len(self.order):
                raise AdapterError(f"{self.name}: step returned {type(out).__name__}"
                                   f"{f' of {len(out)}' if isinstance(out, (tuple, list)) else ''}; declared: "
                                   f"{len(self.order)} arrays ({' '.join(self.arg_names)}), or None when it "
                                   f"updates them in place")
            state["arrays"] = list(out)

    def loss_output(self, state, like, X, config):
        """Without a forward function, the reference's output at the parameters the step starts from."""
        if self.fwd is not None:
            return super().loss_output(state, like, X, config)
        from reference.mlp import forward as reference_forward

        return reference_forward(self._params(state, like), X, config)[-1][1]


def step_function(step, *, name="step", params="w1 b1 w2 b2", layout="columns", targets="2d", forward=None,
                  activation="sigmoid", loss="half_sse", minibatch=True, dtypes=("float64",), version="-",
                  bias_shape="2d"):
    """A Driver around a training step written as a function of arrays, the second seed's loop body as it stands:
    step(w1, b1, w2, b2, X, d, lr) -> (w1, b1, w2, b2), or returning None after updating them in place.

    params: the order of step's leading arguments (w<layer> and b<layer>, layer 1 nearest the input); layout:
    'columns' (the second seed's: X (in, N), W (out, in), b (out, 1)) or 'rows'; targets: '2d' (y (out, N) in
    columns, (N, out) in rows) or 'flat' (y (N,), one output: the second seed's d). forward(*params, X) -> output,
    optional: without it, the output is not checked and each step's loss is computed by the reference from the
    parameters the step starts at (the parameters themselves are compared all the same). bias_shape: '2d' (as the
    layout says) or 'flat' ((out,)).
    """
    mlp = StepFunction(name, step, params, layout, targets, forward, bias_shape)
    return _driver(name, mlp, _capability(mlp.n_layers, activation, loss, dtypes, minibatch,
                                          outputs=1 if targets == "flat" else None), version)


# -- Nielsen's Network ------------------------------------------------------------------------------------------

class Nielsen(ReadBack):
    """Nielsen's Network (neuralnetworksanddeeplearning.com, network.py): biases [(n, 1)], weights [(n_out, n_in)],
    feedforward(a), backprop(x, y) -> (nabla_b, nabla_w) for one sample, update_mini_batch(mini_batch, eta).

    Its update is descent at eta on the quadratic cost averaged over the mini-batch, (1/2m) sum ||a - y||^2; the
    adapter hands it eta = lr * m, which makes each step descent at lr on half the summed squared error (half_sse,
    the seeds' loss). Its gradients are its own backprop's, summed over the samples; the update rule is checked
    against them (and at two learning rates)."""

    FUNCTIONS = {"the forward pass": "feedforward()", "the training step": "update_mini_batch()"}

    def __init__(self, name, factory):
        super().__init__(name, "columns")
        self.factory = factory

    def names(self, n_layers):
        return [(f"weights[{l}]", f"biases[{l}]") for l in range(n_layers)]

    def new(self, config):
        net = self.factory(list(config.layers))
        for attribute in ("weights", "biases", "backprop", "update_mini_batch", "feedforward"):
            if not hasattr(net, attribute):
                raise AdapterError(f"{self.name}: {type(net).__name__} has no {attribute!r}: Nielsen's Network keeps "
                                   f"weights and biases as lists and has feedforward, backprop and update_mini_batch")
        return net

    def put(self, net, arrays):
        net.weights = [W for W, _ in arrays]
        net.biases = [b for _, b in arrays]

    def take(self, net):
        return list(zip(net.weights, net.biases))

    def output(self, net, X):
        return net.feedforward(X)

    def step(self, net, X, y, lr):
        batch = [(X[:, [n]], y[:, [n]]) for n in range(X.shape[1])]
        net.update_mini_batch(batch, lr * len(batch))

    def gradients(self, params, X, y, config):
        net = self._state(params, config)
        loss = loss_forward(config.loss, None, self._from_x(self._call("feedforward", self.output, net, self._x(X))), y)
        grads = [(np.zeros_like(W), np.zeros_like(b)) for W, b in _to_layout(params, "columns")]
        for n in range(len(X)):
            nabla_b, nabla_w = net.backprop(X[n][:, None], y[n][:, None])
            grads = [(gW + dW, gb + db) for (gW, gb), dW, db in zip(grads, nabla_w, nabla_b)]
        _check_shapes(self.name, [(f"nabla_w[{l}]", f"nabla_b[{l}]") for l in range(len(params))], grads, params,
                      "columns", "as backprop returns it")
        ours = _from_layout(grads, "columns")
        full = self._stepped(params, X, y, config, IMPLIED_LR)
        _check_update_rule(self.name, params, full, self._stepped(params, X, y, config, HALF_LR))
        implied = [(W0 - W1, b0 - b1) for (W0, b0), (W1, b1) in zip(params, full)]
        for l, ((gW, gb), (iW, ib)) in enumerate(zip(ours, implied)):
            for leaf, (g, i) in enumerate(((gW, iW), (gb, ib))):
                scale = max(np.max(np.abs(params[l][leaf])), np.max(np.abs(g)), 1e-300)
                if not np.all(np.abs(g - i) <= 1e-9 * scale):
                    raise Disagreement(f"{self.name}: update_mini_batch's step of the {_leaf_name(l, leaf)} is not "
                                       f"−lr × the gradient backprop gives (summed over the batch): largest "
                                       f"difference {np.max(np.abs(g - i)):.3e} at lr 1")
        return loss, ours


def nielsen(factory, *, name="nielsen", dtypes=("float64",), version="-"):
    """A Driver around Nielsen's Network; factory(sizes) builds one, e.g. Network([2, 4, 1]). Sigmoid throughout,
    the quadratic cost (half_sse here: see Nielsen), any depth, full batch or mini-batches."""
    return _driver(name, Nielsen(name, factory), _capability(None, "sigmoid", "half_sse", dtypes, minibatch=True),
                   version)


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


def _named(fn):
    return f"{getattr(fn, '__name__', type(fn).__name__)}()"


def _reference_gradients(params, X, y, config, layout, biases):
    """The reference's gradients in the user's layout, computed when called (only to explain a shape mismatch)."""
    from reference.mlp import gradients

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
            raise AdapterError(f"{self.name}: {what} raised {type(exc).__name__}: {exc}; it was called with "
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

    def train(self, params, X, y, config, orders=None, checkpoints=(), opt_state=None, step=0, buffers=None):
        from common.driver import TrainState
        from reference import optimizers
        from reference.mlp import update

        steps = batches(len(X), config.batch_size)
        losses = np.empty((config.epochs, len(steps)), dtype=config.dtype)
        opt_state = optimizers.init(params, config) if opt_state is None else opt_state
        buffers = self._buffers(params, config, buffers)
        saved = {}
        for epoch in range(config.epochs):
            for s, (start, stop) in enumerate(steps):
                idx = slice(None) if orders is None else orders[epoch, start:stop]
                step += 1
                losses[epoch, s], grads, buffers = self._step(params, buffers, X[idx], y[idx], config)
                params, opt_state = update(params, grads, opt_state, step, config)
            if epoch + 1 in checkpoints:
                saved[epoch + 1] = TrainState(params, opt_state, step, buffers)
        return Run(losses=losses, checkpoints=saved, params=params, state=TrainState(params, opt_state, step, buffers))


def gradient_function(grads, *, name="grads", layout="rows", framework="numpy", forward=None,
                      activations=("sigmoid",), losses=("half_sse",), layers=None, dtypes=("float64",),
                      optimizers=None, version=None, bias_shape="2d"):
    """A Driver around manual backprop written as a function, in NumPy, PyTorch or JAX tensors (tensors in, tensors
    out, as makemore's "backprop ninja"): grads(params, X, y) -> (loss, [(dW, db), ...]) with params
    [(W, b), ...] in layout ('rows': W (in, out), b (1, out); 'columns': W (out, in), b (out, 1)).

    activations, losses, layers, dtypes: what it implements (the capability the tests draw from). Training
    applies the reference's optimizer to its gradients, so every registered optimizer is supported unless
    optimizers names fewer. forward(params, X) -> output, optional: without it the output is not checked.
    bias_shape: '2d' (as layout says) or 'flat' ((out,), as makemore's b1 = torch.randn(n_hidden)).
    """
    mlp = GradientFunction(name, grads, layout, framework, forward, bias_shape)
    return _driver(name, mlp, _trained_by_the_reference(activations, losses, layers, dtypes, optimizers),
                   version or f"{framework} {mlp.version}")


def _trained_by_the_reference(activations, losses, layers, dtypes, optimizers, kinds=()):
    """The capability of a gradient function: what it implements, trained in mini-batches by the reference's own
    optimizer (every registered one unless optimizers names fewer), which is not the plug-in's own code."""
    from common import registry

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
        from reference.mlp import init_buffers

        return buffers if buffers and any(buffers) else init_buffers(params, config)


def named_gradients(grads, *, params, name="grads", buffers=(), row_vectors=(), labels="one_hot", framework="numpy",
                    forward=None, kinds=(), activations=("tanh",), losses=("softmax_cross_entropy",),
                    dtypes=("float64",), optimizers=None, version=None):
    """A Driver around manual backprop of any model the registry builds, by leaf name, in NumPy, PyTorch or JAX
    tensors (makemore part 4's "backprop ninja", batch norm and all):

        grads(params, X, y) -> (loss, {name: gradient}) or (loss, {name: gradient}, {statistic: new value})

    params: the names of the model's parameters in its leaf order (e.g. "C W1 b1 bngain bnbias W2 b2" for embedding,
    flatten, dense, batch norm, tanh, dense); buffers: its running statistics' names (e.g. "bnmean bnvar"), handed in
    params too, their values after the step returned; row_vectors: names handed as (1, D) rather than (D,) (makemore's
    bngain and bnbias); labels: 'one_hot' or 'index' (class ids, as F.cross_entropy takes them); kinds: the layer kinds
    besides dense and the activations it implements. forward(params, X[, training]) -> output, optional; with a
    training argument, the network in evaluation mode (training=False, the running statistics in params) is checked
    too. Training applies the reference's optimizer to the gradients it returns.
    """
    mlp = NamedGradients(name, grads, params, buffers, row_vectors, labels, framework, forward)
    return _driver(name, mlp, _trained_by_the_reference(activations, losses, None, dtypes, optimizers, kinds),
                   version or f"{framework} {mlp.version}")
