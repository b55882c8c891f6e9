"""CS231n-style layer functions as a plug-in: checked op by op, then assembled into the registry's models.

The form of Stanford CS231n's assignment 2 (layers.py and optim.py): each layer a pair of functions, affine_forward(x,
w, b) -> (out, cache) and affine_backward(dout, cache) -> (dx, dw, db); relu_*; batchnorm_forward(x, gamma, beta,
bn_param) and its backward -> (dx, dgamma, dbeta); dropout_* with dropout_param; conv_*_naive and max_pool_*_naive;
the losses softmax_loss(x, y) and svm_loss(x, y) -> (loss, dx) with integer labels y; and the update rules sgd,
sgd_momentum, rmsprop and adam(w, dw, config) -> (next_w, config), their state kept in the config dict.

cs231n(layers, optim) builds a Driver from whichever of these the modules (or any objects with those attributes)
provide: the layer kinds, losses and optimizers it can assemble are its capability, and every other configuration
is skipped with the reason. check_ops(layers) (layer_pair_ops.py) compares each function with the reference's op.

Conventions, where CS231n's and the reference's (PyTorch's) differ, are declared (CONVENTIONS), so the reference
computes them too: bn_param's momentum 0.9 keeps that share of the old running statistics, the running variance is
the biased batch variance (PyTorch keeps the unbiased one), and sgd_momentum keeps a velocity, v = mu v - lr dw (PyTorch
a buffer, b = mu b + dw, -v / lr of it under a constant lr). cs231n(..., conventions=...) declares otherwise; declared
otherwise for momentum, the velocity is read back as -v / lr.

Dropout draws its own mask, mask = (np.random.rand(*x.shape) < p) / p with p the probability of keeping a unit (the
assignment's convention since 2017). The reference hands every backend the same masks (crosscheck.common.initializers),
so while dropout_forward runs the adapter answers np.random.rand (and random/random_sample) with draws below p exactly
where the reference's mask keeps a unit; a dropout_forward whose zeros then differ from that mask (a mask drawn another
way, or p taken as the probability of dropping, the 2016 convention) is an error that says so.
"""

import inspect
from contextlib import contextmanager

import numpy as np

from crosscheck.common.conventions import check as check_conventions
from crosscheck.common.conventions import running_weights, value
from crosscheck.common.driver import Capability, Driver, Run, TrainState, Unsupported
from crosscheck.common.errors import AdapterError, CodeRaised
from crosscheck.common.problem import batches, schedule
from crosscheck.reference import layers as ref_layers
from crosscheck.verdict import tolerances

LAYERS = {"dense": ("affine_forward", "affine_backward"), "relu": ("relu_forward", "relu_backward"),
          "batchnorm": ("batchnorm_forward", "batchnorm_backward"),
          "conv2d": ("conv_forward_naive", "conv_backward_naive"),
          "maxpool2d": ("max_pool_forward_naive", "max_pool_backward_naive"),
          "dropout": ("dropout_forward", "dropout_backward")}
LOSSES = {"softmax_cross_entropy": ("softmax_loss", "softmax"), "hinge": ("svm_loss", "identity")}
UPDATES = {"sgd": "sgd", "momentum": "sgd_momentum", "rmsprop": "rmsprop", "adam": "adam"}
VELOCITY = "cs231n velocity"  # sgd_momentum's own state, kept beside the reference's momentum buffer


def _has(module, names):
    return all(callable(getattr(module, n, None)) for n in names)


class DropoutMaskError(AdapterError):
    """dropout_forward did not keep the units the adapter's draws tell it to: its mask cannot be the reference's."""


@contextmanager
def _draws(mask, keep):
    """np.random.rand/random/random_sample answer with a uniform draw below keep exactly where mask keeps a unit."""
    u = np.where(mask > 0, keep / 2, (1 + keep) / 2)

    def draw(shape, how):
        if tuple(shape) != u.shape:
            raise DropoutMaskError(f"dropout_forward drew {how} of shape {tuple(shape)} for an input of shape "
                                   f"{u.shape}: its mask must be one draw per unit, np.random.rand(*x.shape) < p")
        return u.copy()

    saved = {name: getattr(np.random, name) for name in ("rand", "random", "random_sample")}
    np.random.rand = lambda *shape: draw(shape, "np.random.rand")
    np.random.random = np.random.random_sample = lambda size=None: draw(np.atleast_1d(size or ()), "np.random.random")
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(np.random, name, fn)


def dropout_train(fn, x, rate, mask):
    """fn (a CS231n dropout_forward) on x in training mode, its mask the reference's (keep mask, 1 keeps)."""
    keep = 1.0 - rate
    with _draws(mask, keep):
        out, cache = fn(x, {"p": keep, "mode": "train"})
    kept = np.asarray(out) != 0
    if np.any(kept & (mask == 0)) or np.any(~kept & (mask > 0) & (x != 0)):
        flipped = bool(np.all(kept[x != 0] == (mask == 0)[x != 0]))
        why = ("it keeps exactly the units whose draw is >= p: p taken as the probability of dropping (CS231n's 2016 "
               "convention), where the assignment's p is the probability of keeping" if flipped
               else "its zeros are not where np.random.rand(*x.shape) < p puts them")
        raise DropoutMaskError(f"dropout_forward did not keep the units whose uniform draw is below p = {keep:g}: "
                               f"{why}; the suite hands it the reference's masks through np.random.rand")
    return out, cache


def _conv_param(layer):  # a conv2d layer's (c_in, c_out, kernel, stride, padding) as the assignment's conv_param
    return {"stride": layer.shape[3], "pad": layer.shape[4]}


def _pool_param(layer):  # a maxpool2d layer's (kernel, stride) as pool_param: square windows
    return {"pool_height": layer.shape[0], "pool_width": layer.shape[0], "stride": layer.shape[1]}


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Assembled:
    """The mlp protocol walking config.model with the CS231n functions (plus flatten's reshape, identity's pass)."""

    def __init__(self, name, layers, optim, keepdims=False):
        self.name, self.layers, self.optim, self.keepdims = name, layers, optim, keepdims

    def _fn(self, name, module=None):
        """The user's function name, a crash inside it named with the function and the shapes it was handed."""
        fn = getattr(self.layers if module is None else module, name)

        def called(*args):
            try:
                return fn(*args)
            except (AdapterError, Unsupported):
                raise
            except Exception as exc:
                raise CodeRaised(f"{self.name}: {name} raised {type(exc).__name__}: {exc}; it was called with "
                                   f"{_shapes(args)}") from exc

        return called

    def _shaped(self, who, what, array, like):
        return _shaped(self.name, self.keepdims, who, what, array, like)

    @staticmethod
    def _bn_param(buffers, layer, mode, keepdims=False):
        """bn_param with the running statistics (copies; (1, D) where keepdims is declared), its momentum the share of
        the running statistics the layer's convention keeps."""
        mean, var = buffers[layer.slot] if buffers is not None and buffers[layer.slot] else (None, None)
        param = {"mode": mode, "eps": ref_layers.norms.BATCHNORM_EPS, "momentum": running_weights(layer)[0]}
        if mean is not None:
            shaped = (lambda a: np.array(a, copy=True)[None, :]) if keepdims else (lambda a: np.array(a, copy=True))
            param.update(running_mean=shaped(mean), running_var=shaped(var))
        return param

    def scores(self, params, X, config, buffers=None, mode="train", noise=None):
        """(the last layer's output before the output activation, [(kind, cache)], buffers after the pass); noise:
        this step's dropout masks (without them dropout passes its input on, as in evaluation)."""
        x, caches, new = X, [], None if buffers is None else list(buffers)
        for layer in config.model[:-1]:
            p = () if layer.slot is None else params[layer.slot]
            if layer.kind == "dense":
                x, cache = self._fn("affine_forward")(x, *p)
            elif layer.kind == "batchnorm":
                bn_param = self._bn_param(buffers, layer, mode, self.keepdims)
                x, cache = self._fn("batchnorm_forward")(x, *p, bn_param)
                if new is not None:
                    new[layer.slot] = tuple(self._shaped("batchnorm_forward", f"bn_param[{key!r}]", bn_param[key],
                                                          params[layer.slot][0])
                                            for key in ("running_mean", "running_var"))
            elif layer.kind == "relu":
                x, cache = self._fn("relu_forward")(x)
            elif layer.kind == "conv2d":
                x, cache = self._fn("conv_forward_naive")(x, *p, _conv_param(layer))
            elif layer.kind == "maxpool2d":
                x, cache = self._fn("max_pool_forward_naive")(x, _pool_param(layer))
            elif layer.kind == "dropout":
                if noise is None:
                    x, cache = self._fn("dropout_forward")(x, {"p": 1.0 - layer.shape[0], "mode": "test"})
                else:
                    x, cache = dropout_train(self._fn("dropout_forward"), x, layer.shape[0], noise[layer.mask])
            elif layer.kind in ("flatten", "identity"):
                cache = x.shape
                x = x.reshape(x.shape[0], -1) if layer.kind == "flatten" else x
            else:
                raise Unsupported(f"{self.name} does not support this configuration: no {layer.kind} functions")
            caches.append((layer, cache))
        return x, caches, new

    def forward(self, params, X, config, buffers=None):
        mode = "train" if buffers is None else "test"
        z, _, _ = self.scores(params, X, config, buffers, mode)
        return [(z, _softmax(z) if config.output == "softmax" else z)]  # the output activation: the loss's own

    def _backward(self, params, caches, dscores):
        grads = [()] * len(params)
        dx = dscores
        for layer, cache in reversed(caches):
            if layer.kind == "dense":
                dx, dw, db = self._fn("affine_backward")(dx, cache)
                grads[layer.slot] = (dw, db)
            elif layer.kind == "batchnorm":
                dx, dgamma, dbeta = self._fn("batchnorm_backward")(dx, cache)
                gamma, beta = params[layer.slot]
                grads[layer.slot] = (self._shaped("batchnorm_backward", "dgamma", dgamma, gamma),
                                     self._shaped("batchnorm_backward", "dbeta", dbeta, beta))
            elif layer.kind == "relu":
                dx = self._fn("relu_backward")(dx, cache)
            elif layer.kind == "conv2d":
                dx, dw, db = self._fn("conv_backward_naive")(dx, cache)
                grads[layer.slot] = (dw, db)
            elif layer.kind == "maxpool2d":
                dx = self._fn("max_pool_backward_naive")(dx, cache)
            elif layer.kind == "dropout":
                dx = self._fn("dropout_backward")(dx, cache)
            elif layer.kind == "flatten":
                dx = dx.reshape(cache)
        return grads

    def _step(self, params, X, y, config, buffers, noise=None):
        z, caches, new = self.scores(params, X, config, buffers, "train", noise)
        loss, dscores = self._fn(LOSSES[config.loss][0])(z, y.argmax(axis=1))
        return loss, self._backward(params, caches, dscores), new

    def gradients(self, params, X, y, config):
        buffers = [self._initial(layer) for layer in config.parametrized] if self._keeps(config) else None
        loss, grads, _ = self._step(params, X, y, config, buffers)
        return loss, grads

    @staticmethod
    def _keeps(config):
        return any(layer.kind == "batchnorm" for layer in config.model)

    @staticmethod
    def _initial(layer):
        """A layer's running statistics before training: batch norm's mean 0 and variance 1; () for the others."""
        return (np.zeros(layer.shape[0]), np.ones(layer.shape[0])) if layer.kind == "batchnorm" else ()

    # -- the update rules, each leaf with its own config dict, read back as the reference's optimizer state
    def _config(self, config, leaf):
        c = {"learning_rate": config.lr}
        if config.optimizer == "momentum":
            c.update(momentum=config.momentum, velocity=np.zeros_like(leaf))
        elif config.optimizer == "rmsprop":
            c.update(decay_rate=config.alpha, epsilon=config.eps, cache=np.zeros_like(leaf))
        elif config.optimizer == "adam":
            c.update(beta1=config.betas[0], beta2=config.betas[1], epsilon=config.eps, m=np.zeros_like(leaf),
                     v=np.zeros_like(leaf), t=0)
        return c

    @staticmethod
    def _state(config, configs):
        """The reference's optimizer state ({name: [(W leaf, b leaf)] per layer}) from the config dicts."""
        def per_layer(read):
            return [tuple(read(c) for c in pair) for pair in configs]

        if config.optimizer == "momentum" and value(config, "momentum.form") == "velocity":  # the assignment's form,
            return {"momentum buffer": per_layer(lambda c: c["velocity"])}  # declared: the reference keeps v too
        if config.optimizer == "momentum":  # the velocity itself too, under its own name: a continued run takes it
            # back exactly (-lr * (-v / lr) can be an ulp off v); the comparisons read the registry's names alone
            return {"momentum buffer": per_layer(lambda c: -c["velocity"] / c["learning_rate"]),
                    VELOCITY: per_layer(lambda c: c["velocity"])}
        if config.optimizer == "rmsprop":
            return {"square average": per_layer(lambda c: c["cache"])}
        if config.optimizer == "adam":
            return {"first moment": per_layer(lambda c: c["m"]), "second moment": per_layer(lambda c: c["v"])}
        return {}

    def _configs(self, config, params, opt_state, step):
        """Each leaf's config dict: fresh, or carrying a run's optimizer state on (the inverse of _state), so that a
        run trained in stretches (the report's, between checkpoints) is the run trained at once."""
        configs = [[self._config(config, leaf) for leaf in pair] for pair in params]
        for l, pair in enumerate(configs):
            for i, c in enumerate(pair):
                if config.optimizer == "momentum" and opt_state and value(config, "momentum.form") == "velocity":
                    c["velocity"] = np.array(opt_state["momentum buffer"][l][i], copy=True)
                elif config.optimizer == "momentum" and opt_state:
                    c["velocity"] = np.array(opt_state[VELOCITY][l][i], copy=True) if VELOCITY in opt_state else \
                        -c["learning_rate"] * np.array(opt_state["momentum buffer"][l][i], copy=True)
                elif config.optimizer == "rmsprop" and opt_state:
                    c["cache"] = np.array(opt_state["square average"][l][i], copy=True)
                elif config.optimizer == "adam":
                    c["t"] = int(step)
                    if opt_state:
                        c["m"] = np.array(opt_state["first moment"][l][i], copy=True)
                        c["v"] = np.array(opt_state["second moment"][l][i], copy=True)
        return configs

    def train(self, params, X, y, config, orders=None, checkpoints=(), masks=None, opt_state=None, step=0,
              buffers=None):
        """Trains with the functions' own update rules; opt_state, step and buffers continue a run (every piece of
        the training state crosses a stretch boundary, as in the built-in backends). What is saved is copied: an
        update rule that changes its array in place (w -= lr * dw; return w, config) cannot rewrite a checkpoint."""
        update = self._fn(UPDATES[config.optimizer], self.optim)
        configs = self._configs(config, params, opt_state, step)
        if self._keeps(config):
            fresh = [self._initial(layer) for layer in config.parametrized]
            buffers = [_copy(b) if b else f for b, f in zip(buffers or fresh, fresh)]
        else:
            buffers = None
        steps = batches(len(X), config.batch_size)
        losses = np.empty((config.epochs, len(steps)), dtype=config.dtype)
        saved, step = {}, int(step)
        params = [_copy(pair) for pair in params]
        for epoch, s, idx, noise, done in schedule(config, len(X), orders, masks):
            losses[epoch, s], grads, buffers = self._step(params, X[idx], y[idx], config, buffers, noise)
            step += 1
            new = []
            for pair, gpair, cpair in zip(params, grads, configs):
                leaves = []
                for i, (leaf, g) in enumerate(zip(pair, gpair)):
                    leaf, cpair[i] = update(leaf, g, cpair[i])
                    leaves.append(leaf)
                new.append(tuple(leaves))
            params = new
            if done in checkpoints:
                saved[done] = self._snapshot(config, params, configs, step, buffers)
        state = self._snapshot(config, params, configs, step, buffers)
        return Run(losses=losses, checkpoints=saved, params=state.params, state=state)

    def _snapshot(self, config, params, configs, step, buffers):
        """The training state as it is now, every array copied (the functions may change theirs in place later)."""
        state = {name: [_copy(pair) for pair in layers] for name, layers in self._state(config, configs).items()}
        return TrainState([_copy(pair) for pair in params], state, step,
                          [_copy(b) for b in buffers] if buffers is not None else [() for _ in params])


def _shaped(name, keepdims, who, what, array, like):
    """array (a gradient or running statistic of batch norm, as the user's function who gives it) in like's shape: as
    it is, or from CS231n's keepdims (1, D) where cs231n(..., keepdims=True) declares it; otherwise refused, saying
    what fits."""
    got = np.shape(array)
    if got == np.shape(like):
        return array
    if keepdims and got == (1, *np.shape(like)):
        return np.reshape(array, np.shape(like))
    hint = ("CS231n's keepdims convention (a sum or mean with keepdims=True)? declare cs231n(..., keepdims=True)"
            if got == (1, *np.shape(like)) else "its shape must be the parameter's")
    raise AdapterError(f"{name}: {who} gives {what} as {got}, for a parameter of shape {np.shape(like)}: {hint}")


def _copy(leaves):
    """A tuple of copies of leaves' arrays."""
    return tuple(np.array(leaf, copy=True) for leaf in leaves)


def _tie(x, layer, got, ref):
    """' at an exact tie ...' where every entry of a max-pool's input gradient that differs from the reference's lies
    in a window whose maximum is held by more than one entry (the convention: the first of them, row-major, gets it)."""
    if np.shape(got) != np.shape(ref):
        return ""
    tol = tolerances.float64("gradient")  # the op check's own, so that a tie is said where that check fails
    differs = ~np.isclose(np.asarray(got, dtype=np.float64), ref, rtol=tol.rtol, atol=tol.atol)
    if not differs.any():
        return ""
    k, stride = layer.shape
    tied = np.zeros(x.shape, dtype=bool)
    for i in range(0, x.shape[2] - k + 1, stride):
        for j in range(0, x.shape[3] - k + 1, stride):
            window = x[:, :, i:i + k, j:j + k]
            top = window == window.max(axis=(2, 3), keepdims=True)
            tied[:, :, i:i + k, j:j + k] |= top & (top.sum(axis=(2, 3), keepdims=True) > 1)
    if not tied[differs].all():
        return ""
    return (" (only at an exact tie, where several entries hold the window's maximum: PyTorch, and the reference, "
            "send the gradient to the first of them, row-major)")


def _shapes(args):
    """The arguments a function was handed, arrays by their shapes."""
    def one(a):
        if isinstance(a, np.ndarray):
            return f"an array {a.shape}"
        if isinstance(a, dict):
            return "{" + ", ".join(f"{k!r}: {one(v)}" for k, v in a.items()) + "}"
        if isinstance(a, tuple):
            return "(" + ", ".join(one(v) for v in a) + ")"
        return repr(a)

    return ", ".join(one(a) for a in args)


# How the adapter calls each function, as the assignment does: a function that cannot be called so is refused when the
# driver is built (AdapterError), before anything trains, naming what it takes and what it is handed.
CALLS = {"affine_forward": "x, w, b", "relu_forward": "x", "batchnorm_forward": "x, gamma, beta, bn_param",
         "conv_forward_naive": "x, w, b, conv_param", "max_pool_forward_naive": "x, pool_param",
         "dropout_forward": "x, dropout_param", "softmax_loss": "x, y", "svm_loss": "x, y",
         **{backward: "dout, cache" for _, backward in LAYERS.values()},
         **{rule: "w, dw, config" for rule in UPDATES.values()}}


def _callable_as_the_assignment_calls(module, name):
    fn = getattr(module, name, None)
    try:
        signature = inspect.signature(fn) if fn is not None else None
    except (TypeError, ValueError):  # a builtin without a signature: called and seen
        return
    if signature is not None:
        try:
            signature.bind(*CALLS[name].split(", "))
        except TypeError as exc:
            raise AdapterError(f"cs231n: {name}{signature} cannot be called as the assignment calls it, "
                               f"{name}({CALLS[name]}): {exc}") from None


def capability(layers, optim):
    """What the functions present can assemble, each callable as the assignment calls it."""
    for name in CALLS:
        _callable_as_the_assignment_calls(optim if name in UPDATES.values() else layers, name)
    kinds = tuple(kind for kind, names in LAYERS.items() if kind != "relu" and _has(layers, names))
    losses = tuple(loss for loss, (fn, _) in LOSSES.items() if _has(layers, [fn]))
    relu = ("relu",) if _has(layers, LAYERS["relu"]) else ()
    activations = relu + tuple(dict.fromkeys(LOSSES[loss][1] for loss in losses))  # the outputs the losses imply
    optimizers = tuple(o for o, fn in UPDATES.items() if _has(optim, [fn]))
    if "dense" not in kinds or not losses or not optimizers:
        raise ValueError("CS231n-style functions need at least affine_forward/affine_backward, softmax_loss or "
                         "svm_loss, and an update rule (sgd, sgd_momentum, rmsprop or adam)")
    kinds = tuple(k for k in kinds if k != "dense") + (("flatten",) if "conv2d" in kinds else ())
    return Capability(activations=activations, losses=losses, minibatch=True, optimizers=optimizers, kinds=kinds)


# The assignment's batch norm: bn_param's momentum 0.9 keeps that share of the running statistics, and the running
# variance moves toward the batch variance as it normalised (np.var's, biased).
CONVENTIONS = {"batchnorm.running_average": "keep:0.9", "batchnorm.running_variance": "biased",
               "momentum.form": "velocity"}  # sgd_momentum: v = mu v - lr dw; w += v


def cs231n(layers, optim=None, *, name="cs231n", version="-", keepdims=False, conventions=None):
    """A Driver from CS231n-style layer functions (module layers) and update rules (module optim, default layers).

    keepdims: batch norm's running statistics, and the dgamma and dbeta its backward returns, are (1, D) (sums and
    means taken with keepdims=True, as many solutions write them); bn_param's statistics are handed in as (1, D) and
    all of them read back as the parameters' (D,). Undeclared, a (1, D) is refused, saying so.
    conventions: {key: value} over the assignment's (CONVENTIONS), e.g. {"batchnorm.running_variance": "unbiased"}
    for code that keeps PyTorch's running variance (crosscheck --conventions lists them)."""
    optim = layers if optim is None else optim
    cap = capability(layers, optim)
    declared = check_conventions({**CONVENTIONS, **(conventions or {})})
    return Driver(name=name, version=version, devices=("cpu",), mlp=Assembled(name, layers, optim, keepdims),
                  to_native=lambda arr, device: arr, to_numpy=np.asarray, supports=cap.reason, capability=cap,
                  conventions=declared)
