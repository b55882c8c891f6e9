"""The driver protocol: how tests, the report and benchmarks run any backend, NumPy in and NumPy out.

Each backend package builds one Driver from its own mlp module and array
conversions; nothing here knows which framework sits behind it.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .errors import AdapterError, refusal
from .problem import Problem
from .registry import ACTIVATIONS
from .validate import check_inputs, check_params

DEVICES = ("cpu", "cuda")


class TrainState(NamedTuple):
    """What training carries from one step to the next (and what JAX's scan carries): the parameters, the
    optimizer's state ({state name: [(leaf of W, leaf of b)] per layer}), the number of updates made, and the
    layers' buffers (one tuple per layer with parameters, () for most; batch norm's running statistics)."""

    params: list
    opt_state: dict
    step: Any  # an int; in JAX's scan, a traced integer
    buffers: Any = ()  # () when no layer keeps any


@dataclass
class Run:
    """What train returns. losses[e, s] is the loss of step s of epoch e, before its update."""

    losses: Any  # (epochs, steps), in the backend's own array type until the driver converts it
    checkpoints: dict  # epochs done -> the TrainState after them (a plug-in's train may give params alone)
    params: list
    state: TrainState | None = None  # where training stopped: train(..., opt_state, step) continues from it


def _continues(train):
    """Whether a train function takes opt_state and step, to continue a run (every built-in backend's does)."""
    parameters = inspect.signature(train).parameters
    return "opt_state" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


@dataclass(frozen=True)
class Capability:
    """What a plug-in implements, as data (the property tests draw only configurations inside it): dense layers
    (`layers` of them, or any number for None) with one of `activations` between and after them, one of `losses`,
    full batch or (minibatch) mini-batches, one of `optimizers`, one of `dtypes`, `outputs` outputs (or any)."""

    activations: tuple
    losses: tuple
    layers: int | None = None
    minibatch: bool = False
    optimizers: tuple = ("sgd",)
    dtypes: tuple = ("float64",)
    outputs: int | None = None  # a fixed number of outputs (flat targets: 1), or any
    weight_decay: bool = False
    kinds: tuple = ()  # layer kinds besides dense and the activations (batchnorm, ...)
    own_updates: bool = True  # False where training applies the reference's optimizer to the plug-in's gradients
    computes: tuple = ()  # the mixed-precision compute dtypes it implements (its forward and backward in bfloat16...)

    def provides(self):
        """What the plug-in's own code implements, by name: dense, its layer kinds, activations and losses, and its
        update rules (and weight decay) where they are its own (what the suite must exercise: tests/conftest.py's
        summary)."""
        own = (*self.optimizers, *(("weight decay",) if self.weight_decay else ())) if self.own_updates else ()
        return {"dense", *self.kinds, *self.activations, *self.losses, *own}

    def reason(self, config):
        """None if config is inside the capability, else why not (a Driver's supports)."""
        if self.layers is not None and len(config.layers) != self.layers + 1:
            return f"{self.layers} layers only, not {len(config.layers) - 1}"
        if self.outputs is not None and config.layers[-1] != self.outputs:
            return f"{self.outputs} output{'s' if self.outputs > 1 else ''} only, not {config.layers[-1]}"
        others = [layer.kind for layer in config.model
                  if layer.kind != "dense" and layer.kind not in self.activations and layer.kind not in self.kinds]
        if others and all(kind in ACTIVATIONS for kind in others):
            return f"{'/'.join(self.activations)} activations only, not {config.hidden}/{config.output}"
        if others:
            return (f"dense layers, {'/'.join(self.kinds) + ' and ' if self.kinds else ''}"
                    f"{'/'.join(self.activations)} only, not "
                    f"{', '.join(layer.kind for layer in config.model)}")
        if config.loss not in self.losses:
            return f"loss {'/'.join(self.losses)} only, not {config.loss}"
        if config.batch_size is not None and not self.minibatch:
            return "full batch only"
        if config.optimizer not in self.optimizers or (config.weight_decay and not self.weight_decay):
            return f"{'/'.join(self.optimizers)} only, not {config.optimizer}" + (
                " with weight decay" if config.weight_decay else "")
        if config.dtype not in self.dtypes:
            return f"dtypes {', '.join(self.dtypes)} only, not {config.dtype}"
        if config.compute is not None and config.compute not in self.computes:
            return f"no mixed precision: not {config.dtype} computed in {config.compute}"
        return None


@dataclass(frozen=True)
class Sharded:
    """A backend's data- or tensor-parallel run, as its driver calls it (config.parallel): its mlp's own gradients and
    train on config.world ranks (processes, devices, or the reference's threads), and ready(world), which raises in one
    line where the world cannot start, before anything trains."""

    run_gradients: Callable  # (params, X, y, config) -> (loss, grads) of the whole batch and parameters
    train: Callable  # mlp.train's signature
    ready: Callable = lambda world: None


class Unsupported(Exception):
    """The backend declares that it does not implement this configuration (tests skip, with the reason)."""


@dataclass(frozen=True)
class Driver:
    name: str
    version: str
    devices: tuple  # the devices this machine offers the backend, e.g. ("cpu", "cuda")
    mlp: Any  # the backend's mlp module: forward, backward, update, gradients, train_step, train
    to_native: Callable  # (numpy array, device) -> the framework's array
    to_numpy: Callable
    synchronize: Callable = lambda tree: None  # blocks until the device has finished tree's work
    autodiff_gradients: Callable | None = None  # (params, X, y, config) -> (loss, grads) by the framework's autodiff
    supports: Callable | None = None  # config -> None if supported, else the reason it is not (plug-ins)
    capability: Capability | None = None  # what supports admits, as data, where a plug-in declares it (adapters)
    # config.parallel's sharded run (a Sharded); None: the backend has none (a plug-in's: refused), or it is the
    # reference, which runs every problem on one device.
    parallel: Any = None
    reference: bool = False
    # An op plug-in's own tables (crosscheck/adapters/custom_ops.py): {"layers" | "activations" | "losses": a namespace
    # whose FORWARD and BACKWARD hold its one op}; None for a backend of whole models
    ops: dict | None = None
    # The conventions its code follows where they differ from PyTorch's (common/conventions.py: (key, value) pairs, as
    # Config.conventions holds them): every check of it runs the reference under them. An adapter declares its source's.
    conventions: tuple = ()
    # An op's functions as the op checks run them (crosscheck/verdict/ops.py): fn itself, or compiled whole where
    # running each small op on its own costs more than the op (JAX: jax.jit, one program per function and shape
    # instead of one per primitive, as its training runs them)
    compiled: Callable = lambda fn: fn

    def check_support(self, config):
        reason = self.supports(config) if self.supports is not None else None
        if reason:
            raise Unsupported(f"{self.name} does not support this configuration: {reason}")
        if config.world > 1 and self.parallel is None and not self.reference:
            raise Unsupported(f"{self.name} does not support this configuration: no parallel run "
                              f"(parallel {config.parallel!r})")

    def _placed(self, config):
        """(config, gradients, train) that run it: the mlp's own on one device, and for the reference whatever
        config.parallel says (what sharded runs are compared with); a sharded run's, the backend's Sharded."""
        if config.world == 1:
            return config, self.mlp.gradients, self.mlp.train
        if self.reference:
            return config.replace(parallel=None), self.mlp.gradients, self.mlp.train
        return config, self.parallel.run_gradients, self.parallel.train

    def misfit(self, problem, device="cpu"):
        """Why its code does not fit its adapter (the adapter's one line), from one gradient step on problem, or None:
        a refusal said before anything trains. Unsupported, a crash or a wrong value is None here: the checks report
        those."""
        try:
            self.check_support(problem.config)
            self.run_gradients(problem.params, problem.X, problem.y, problem.config, device)
            fits = getattr(self.mlp, "fits", None)  # an adapter's own probe of the rest of its interface
            if fits is not None:
                fits(problem.config, problem.params)
        except AdapterError as exc:
            return str(exc) if refusal(exc) else None
        except Exception:  # noqa: BLE001  (a missing framework, Unsupported, a crash: not a refusal)
            return None
        return None

    def check_device(self, device):
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r} for backend {self.name!r}; choose 'cpu' or 'cuda'")
        if device not in self.devices:
            raise ValueError(f"device {device!r} was asked for, but backend {self.name!r} has only {self.devices}")

    def native_params(self, params, device):
        return [tuple(self.to_native(p, device) for p in leaves) for leaves in params]

    def numpy_params(self, params):
        return [tuple(self.to_numpy(p) for p in leaves) for leaves in params]

    def _check(self, config, device):
        self.check_support(config)
        self.check_device(device)

    def _native(self, params, X, y, device):
        return self.native_params(params, device), self.to_native(X, device), self.to_native(y, device)

    def _prepare(self, params, X, y, config, device):
        self._check(config, device)
        check_params(params, config)
        return self._native(params, X, y, device)

    def run_forward(self, params, X, config, device="cpu", buffers=None):
        """The network's output a_L for X; with buffers (a run's), in evaluation mode (batch norm reads them)."""
        params, X, _ = self._prepare(params, X, X[:0], config, device)
        if buffers is None:
            return self.to_numpy(self.mlp.forward(params, X, config)[-1][1])
        return self.to_numpy(self.mlp.forward(params, X, config, self.native_params(buffers, device))[-1][1])

    def run_layers(self, params, X, config, device="cpu"):
        """The output of each cache the backend's forward gives for X, as NumPy (each cache begins (x, y), as the
        reference's do): [y_1, ..., y_L], one per layer of config.model, for a backend that gives a cache per layer;
        [a_L] alone, the network's output, for one that gives only that (an adapter)."""
        params, X, _ = self._prepare(params, X, X[:0], config, device)
        return [self.to_numpy(cache[1]) for cache in self.mlp.forward(params, X, config)]

    def run_gradients(self, params, X, y, config, device="cpu"):
        """(loss, [(dW, db)]) by the backend's manual backprop."""
        native = self._prepare(params, X, y, config, device)
        config, gradients, _ = self._placed(config)
        loss, grads = gradients(*native, config)
        return np.asarray(self.to_numpy(loss))[()], self.numpy_params(grads)

    def run_autodiff_gradients(self, params, X, y, config, device="cpu"):
        """(loss, [(dW, db)]) by the framework's autodiff of the same loss: the independent oracle."""
        if self.autodiff_gradients is None:
            raise NotImplementedError(f"backend {self.name!r} has no autodiff")
        loss, grads = self.autodiff_gradients(*self._prepare(params, X, y, config, device), config)
        return np.asarray(self.to_numpy(loss))[()], self.numpy_params(grads)

    def run_train(self, params, X, y, config, orders=None, checkpoints=(), device="cpu", state=None, masks=None):
        """train on the Problem these arrays make (masks None: drawn from config.seed where the model has dropout)."""
        return self.train(Problem(config, params, X, y, orders, masks), checkpoints, device, state)

    def train(self, problem, checkpoints=(), device="cpu", state=None):
        """mlp.train on problem after the input checks: a Run, its losses (epochs, steps), parameters, optimizer state
        and buffers as NumPy. state (a previous Run's, its params included) continues a run; None starts from the
        problem's parameters. A train that cannot continue a run (a plug-in's) is refused a state that holds
        optimizer state or buffers."""
        config, X = problem.config, problem.X
        params = problem.params if state is None else state.params
        self._check(config, device)
        check_inputs(params, X, problem.y, config, problem.orders)  # check_params included
        native = self._native(params, X, problem.y, device)
        native_orders = None if problem.orders is None else self.to_native(problem.orders, device)
        noise = {} if problem.noise is None else {"masks": [self.to_native(m, device) for m in problem.noise]}
        step = 0 if state is None else state.step
        buffers = state is not None and bool(state.buffers) and any(state.buffers)
        carried = buffers or (state is not None and any(map(any, state.opt_state.values())))
        if carried and not self.continues():
            raise ValueError(f"backend {self.name!r}: its train takes no opt_state, step or buffers, so a run cannot "
                             f"continue from a state that holds optimizer state or buffers; train it at once")
        config, _, training = self._placed(config)
        if state is None or not self.continues():
            # A plug-in's train may know nothing of optimizer state: it supports plain descent alone, which has none.
            run = training(*native, config, native_orders, checkpoints, **noise)
        else:
            kept = {"buffers": self.native_params(state.buffers, device)} if buffers else {}
            run = training(*native, config, native_orders, checkpoints,
                           opt_state=self.numpy_tree(state.opt_state, lambda a: self.to_native(a, device)),
                           step=step, **kept, **noise)
        return self._finished(run, problem, step)

    def _finished(self, run, problem, step):
        """The backend's Run as NumPy, its checkpoints and final state as TrainStates."""
        self.synchronize(run.params)
        params = self.numpy_params(run.params)
        per_epoch = len(problem.steps)
        if run.state is None:  # plain descent without state (a plug-in): count the steps it made
            state = TrainState(params, {}, step + problem.config.epochs * per_epoch)
        else:
            state = TrainState(params, self.numpy_tree(run.state.opt_state), int(np.asarray(run.state.step)),
                               self.numpy_params(run.state.buffers))
        return Run(losses=self.to_numpy(run.losses), params=params, state=state,
                   checkpoints={epoch: self.numpy_state(saved, step + epoch * per_epoch)
                                for epoch, saved in run.checkpoints.items()})

    def continues(self):
        """Whether the backend's train continues a run from a TrainState (opt_state, step, buffers)."""
        return _continues(self.mlp.train)

    def numpy_state(self, state, step):
        """A checkpoint as a NumPy TrainState; a plug-in's bare parameters get no optimizer state and the step
        count they imply."""
        if isinstance(state, TrainState):
            return TrainState(self.numpy_params(state.params), self.numpy_tree(state.opt_state),
                              int(np.asarray(state.step)), self.numpy_params(state.buffers))
        return TrainState(self.numpy_params(state), {}, step)

    def numpy_tree(self, tree, convert=None):
        """An optimizer state ({name: [(leaf, leaf)] per layer}) with every array converted (to NumPy by default)."""
        convert = convert or self.to_numpy
        return {name: [tuple(convert(t) for t in layer) for layer in layers] for name, layers in tree.items()}
