"""What every adapter shares (crosscheck/adapters/loops.py, crosscheck/adapters/gradients.py): the layouts a user's
arrays come in, their shapes checked as declared, the update rule read back from two steps, and ReadBack, the driver
machinery for code that updates its own arrays."""

import inspect

import numpy as np

from crosscheck.common.conventions import check as check_conventions
from crosscheck.common.conventions import log_guard, reduced
from crosscheck.common.driver import Capability, Driver, Run, Unsupported
from crosscheck.common.errors import AdapterError, CodeRaised
from crosscheck.common.problem import batches, schedule
from crosscheck.reference.losses import loss_forward
from crosscheck.verdict.compare import Disagreement

IMPLIED_LR = 1.0  # the step whose effect is read back as a gradient: exact in binary, so only W's rounding remains
HALF_LR = 0.5  # the second step: a right update rule moves exactly half as far
LAYOUTS = {"rows": "samples as rows: X (N, in), W (in, out), b (1, out), y (N, out)",
           "columns": "samples as columns: X (in, N), W (out, in), b (out, 1), y (out, N)"}


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

    BORROWS_LOSS = True  # its loss is the suite's, of its output under the config's conventions (loss_value)

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
            raise CodeRaised(f"{self.name}: {what} raised {type(exc).__name__}: {exc}; it was called with layout "
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

    def loss_value(self, config, a, y):
        """The loss of the code's output a (no logits: the seeds' losses, read off the probabilities)."""
        return loss_forward(config.loss, None, a, y, log_guard(config), reduced(config, a))

    def gradients(self, params, X, y, config):
        a = self.loss_output(self._state(params, config), params, X, config)
        loss = self.loss_value(config, a, y)
        full = self._stepped(params, X, y, config, IMPLIED_LR)
        _check_update_rule(self.name, params, full, self._stepped(params, X, y, config, HALF_LR))
        return loss, [((W0 - W1) / IMPLIED_LR, (b0 - b1) / IMPLIED_LR) for (W0, b0), (W1, b1) in zip(params, full)]

    def train(self, params, X, y, config, orders=None, checkpoints=()):
        state = self._state(params, config)
        steps = batches(len(X), config.batch_size)
        losses = np.empty((config.epochs, len(steps)), dtype=config.dtype)
        saved = {}
        for epoch, s, idx, _, done in schedule(config, len(X), orders):
            a = self.loss_output(state, params, X[idx], config)
            losses[epoch, s] = self.loss_value(config, a, y[idx])
            self._call("the training step", self.step, state, self._x(X[idx]), self._x(y[idx]), config.lr)
            if done in checkpoints:
                saved[done] = self._params(state, params)
        return Run(losses=losses, checkpoints=saved, params=self._params(state, params))


def _callable_as(name, net, method, handed):
    """Refuses (AdapterError) a net whose method the adapter calls is missing or cannot take what it is handed."""
    fn = getattr(net, method, None)
    if not callable(fn):
        methods = sorted(m for m in dir(net) if not m.startswith("_") and callable(getattr(net, m, None)))
        raise AdapterError(f"{name}: {type(net).__name__} has no method {method}({', '.join(handed)}), which the "
                           f"adapter calls; its methods: {', '.join(methods) or 'none'}")
    try:
        inspect.signature(fn).bind(*handed)
    except TypeError as exc:
        raise AdapterError(f"{name}: {type(net).__name__}.{method}{inspect.signature(fn)} cannot be called as the "
                           f"adapter calls it, {method}({', '.join(handed)}): {exc}") from None
    except ValueError:  # no signature to read (a builtin): called and seen
        pass


def _driver(name, mlp, capability, version, supports=None, conventions=None):
    """A NumPy-in, NumPy-out Driver on the CPU around mlp; supports: capability's reason, or a function of its own
    where there is no Capability to declare (a command's, which asks its program); conventions: those its code
    follows where PyTorch's differ ({key: value}, checked: common/conventions.py)."""
    return Driver(name=name, version=version, devices=("cpu",), mlp=mlp, to_native=lambda arr, device: arr,
                  to_numpy=np.asarray, supports=supports or (capability and capability.reason), capability=capability,
                  conventions=check_conventions(conventions))


def _named(fn):
    """How a message names a user's function: 'step()'."""
    return f"{getattr(fn, '__name__', type(fn).__name__)}()"
