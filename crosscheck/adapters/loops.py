"""The adapters for code that trains itself (crosscheck.adapters says which is which): seed_style (a class in the
first seed's style), step_function (the second seed's loop body) and nielsen (Michael Nielsen's Network). Each reads
the gradients back from the code's own updates (crosscheck/adapters/readback.py)."""

import inspect
import re
from dataclasses import replace

import numpy as np

from crosscheck.adapters.readback import (
    HALF_LR,
    IMPLIED_LR,
    AdapterError,
    ReadBack,
    _callable_as,
    _capability,
    _check_shapes,
    _check_update_rule,
    _driver,
    _from_layout,
    _leaf_name,
    _named,
    _to_layout,
)
from crosscheck.common.driver import Unsupported
from crosscheck.reference.losses import bce_forward
from crosscheck.reference.mlp import forward as reference_forward
from crosscheck.verdict.compare import Disagreement

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
        for method, handed in (("feedforward", ("X",)), ("backward", ("X", "y", "learning_rate"))):
            _callable_as(self.name, net, method, handed)
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
               activation="sigmoid", loss="half_sse", dtypes=("float64",), version="-", bias_shape=None,
               conventions=None):
    """A Driver around a seed-style class; factory(layers) builds one for layers, e.g. (2, 4, 1). bias_shape: '2d',
    'flat' ((out,)), or None to take the class's own (flat where every bias it builds is 1-D). conventions: {key:
    value} the code follows where PyTorch's differ, e.g. {"loss.reduction": "sum"} for an mse whose backward is a - y
    (crosscheck --conventions lists them).

    It declares what it supports: len(weights) layers, `activation` everywhere, `loss` (the seeds' backward is
    descent on half_sse), full batch, `dtypes`. Every other configuration is skipped with the reason.
    """
    return _driver(name, SeedStyle(name, factory, layout, weights, biases, bias_shape),
                   _capability(len(weights), activation, loss, dtypes, minibatch=False), version,
                   conventions=conventions)


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
        return reference_forward(self._params(state, like), X, config)[-1][1]


def step_function(step, *, name="step", params="w1 b1 w2 b2", layout="columns", targets="2d", forward=None,
                  activation="sigmoid", loss="half_sse", minibatch=True, dtypes=("float64",), version="-",
                  bias_shape="2d", conventions=None):
    """A Driver around a training step written as a function of arrays, the second seed's loop body as it stands:
    step(w1, b1, w2, b2, X, d, lr) -> (w1, b1, w2, b2), or returning None after updating them in place.

    params: the order of step's leading arguments (w<layer> and b<layer>, layer 1 nearest the input); layout:
    'columns' (the second seed's: X (in, N), W (out, in), b (out, 1)) or 'rows'; targets: '2d' (y (out, N) in
    columns, (N, out) in rows) or 'flat' (y (N,), one output: the second seed's d). forward(*params, X) -> output,
    optional: without it, the output is not checked and each step's loss is computed by the reference from the
    parameters the step starts at (the parameters themselves are compared all the same). bias_shape: '2d' (as the
    layout says) or 'flat' ((out,)). conventions: {key: value} the code follows where PyTorch's differ, as
    seed_style's.
    """
    mlp = StepFunction(name, step, params, layout, targets, forward, bias_shape)
    return _driver(name, mlp, _capability(mlp.n_layers, activation, loss, dtypes, minibatch,
                                          outputs=1 if targets == "flat" else None), version, conventions=conventions)


# -- Nielsen's Network ------------------------------------------------------------------------------------------

class Nielsen(ReadBack):
    """Nielsen's Network (neuralnetworksanddeeplearning.com, network.py and network2.py): biases [(n, 1)], weights
    [(n_out, n_in)], feedforward(a), backprop(x, y) -> (nabla_b, nabla_w) for one sample, and update_mini_batch(
    mini_batch, eta), or network2's update_mini_batch(mini_batch, eta, lmbda, n) with L2 regularization.

    Its update is descent at eta on its cost averaged over the mini-batch of m samples: the quadratic cost, (1/2m) sum
    ||a - y||^2, where the adapter hands it eta = lr m (descent at lr on half the summed squared error: half_sse, the
    seeds' loss); network2's cross-entropy, (1/m) sum over samples and outputs of -[y ln a + (1 - y) ln(1 - a)], where
    it hands eta = lr / K for K outputs (descent at lr on bce, the mean over samples and outputs). network2's L2 shrinks
    each weight by (1 - eta lmbda / n) and no bias: coupled weight decay wd = lmbda / n on the weights alone, handed as
    lmbda = wd lr n / eta with n the training set's size. Its gradients are its own backprop's, summed over the
    samples and scaled as the loss is; the update rule is checked against them (and at two learning rates)."""

    FUNCTIONS = {"the forward pass": "feedforward()", "the training step": "update_mini_batch()"}

    def __init__(self, name, factory, cost):
        super().__init__(name, "columns")
        self.factory, self.cost = factory, cost
        self.run: tuple = (None, 1)  # (the config, the training set's size) of the run in progress: a step's rate

    def names(self, n_layers):
        return [(f"weights[{l}]", f"biases[{l}]") for l in range(n_layers)]

    def new(self, config):
        net = self.factory(list(config.layers))
        for attribute in ("weights", "biases", "backprop", "update_mini_batch", "feedforward"):
            if not hasattr(net, attribute):
                raise AdapterError(f"{self.name}: {type(net).__name__} has no {attribute!r}: Nielsen's Network keeps "
                                   f"weights and biases as lists and has feedforward, backprop and update_mini_batch")
        self.run = (config, self.run[1])
        self.regularized = _takes(net.update_mini_batch) == 4
        if config.weight_decay and not self.regularized:
            raise AdapterError(f"{self.name}: weight decay asks for network2's update_mini_batch(mini_batch, eta, "
                               f"lmbda, n); {type(net).__name__}'s takes {_takes(net.update_mini_batch)} arguments")
        return net

    def put(self, net, arrays):
        net.weights = [W for W, _ in arrays]
        net.biases = [b for _, b in arrays]

    def take(self, net):
        return list(zip(net.weights, net.biases))

    def output(self, net, X):
        return net.feedforward(X)

    def loss_value(self, config, a, y):
        return bce_forward(a, y) if self.cost == "cross_entropy" else super().loss_value(config, a, y)

    def step(self, net, X, y, lr):
        batch = [(X[:, [n]], y[:, [n]]) for n in range(X.shape[1])]
        eta = lr * len(batch) if self.cost == "quadratic" else lr / y.shape[0]
        config, n = self.run
        if self.regularized:
            net.update_mini_batch(batch, eta, config.weight_decay * lr * n / eta, n)
        else:
            net.update_mini_batch(batch, eta)

    def train(self, params, X, y, config, orders=None, checkpoints=()):
        self.run = (config, len(X))
        return super().train(params, X, y, config, orders, checkpoints)

    def gradients(self, params, X, y, config):
        self.run = (config, len(X))
        net = self._state(params, config)
        a = self._from_x(self._call("feedforward", self.output, net, self._x(X)))
        loss = self.loss_value(config, a, y)
        scale = 1.0 if self.cost == "quadratic" else 1.0 / y.size  # the loss's: a sum, or bce's mean over N K
        grads = [(np.zeros_like(W), np.zeros_like(b)) for W, b in _to_layout(params, "columns")]
        for n in range(len(X)):
            nabla_b, nabla_w = net.backprop(X[n][:, None], y[n][:, None])
            grads = [(gW + dW, gb + db) for (gW, gb), dW, db in zip(grads, nabla_w, nabla_b)]
        _check_shapes(self.name, [(f"nabla_w[{l}]", f"nabla_b[{l}]") for l in range(len(params))], grads, params,
                      "columns", "as backprop returns it")
        ours = [(gW * scale, gb * scale) for gW, gb in _from_layout(grads, "columns")]
        bare = config.replace(weight_decay=0.0)  # the step read back without decay: its gradient alone
        self.run = (bare, len(X))
        full = self._stepped(params, X, y, bare, IMPLIED_LR)
        _check_update_rule(self.name, params, full, self._stepped(params, X, y, bare, HALF_LR))
        self.run = (config, len(X))
        implied = [(W0 - W1, b0 - b1) for (W0, b0), (W1, b1) in zip(params, full)]
        for l, ((gW, gb), (iW, ib)) in enumerate(zip(ours, implied)):
            for leaf, (g, i) in enumerate(((gW, iW), (gb, ib))):
                scale = max(np.max(np.abs(params[l][leaf])), np.max(np.abs(g)), 1e-300)
                if not np.all(np.abs(g - i) <= 1e-9 * scale):
                    raise Disagreement(f"{self.name}: update_mini_batch's step of the {_leaf_name(l, leaf)} is not "
                                       f"−lr × the gradient backprop gives (summed over the batch): largest "
                                       f"difference {np.max(np.abs(g - i)):.3e} at lr 1")
        return loss, ours


def _takes(fn):
    """How many arguments fn takes (its positional parameters)."""
    try:
        return len([p for p in inspect.signature(fn).parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
    except (TypeError, ValueError):
        return 2


def nielsen(factory, *, name="nielsen", cost="quadratic", l2=None, dtypes=("float64",), version="-", conventions=None):
    """A Driver around Nielsen's Network; factory(sizes) builds one, e.g. Network([2, 4, 1]). Sigmoid throughout, any
    depth, full batch or mini-batches. cost: "quadratic" (network.py's, half_sse here: see Nielsen) or
    "cross_entropy" (network2.py's CrossEntropyCost, bce here). l2: whether its update_mini_batch(mini_batch, eta,
    lmbda, n) regularizes, as network2's does (default: with the cross-entropy cost, network2's), checked as weight
    decay on the weights alone (decay_biases=False). The book's conventions are PyTorch's where a registered one
    applies (bce averaged over samples and outputs, by the eta handed in); conventions: {key: value} over them."""
    if cost not in ("quadratic", "cross_entropy"):
        raise ValueError(f"nielsen: cost is 'quadratic' or 'cross_entropy' (network2's CrossEntropyCost), got {cost!r}")
    loss = "half_sse" if cost == "quadratic" else "bce"
    l2 = cost == "cross_entropy" if l2 is None else l2
    capability = replace(_capability(None, "sigmoid", loss, dtypes, minibatch=True), weight_decay=l2)

    def supports(config):
        if config.weight_decay and config.decay_biases:
            return "weight decay on the weights alone (Nielsen's L2 leaves the biases), not on the biases too"
        return capability.reason(config)

    return _driver(name, Nielsen(name, factory, cost), capability, version, supports=supports,
                   conventions=conventions)
