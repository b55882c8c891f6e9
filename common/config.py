"""What to train: one frozen, validated description shared by every backend.

Validation happens here, when the configuration is built, so that a typo in an
activation name or a zero width fails before any backend starts training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from . import registry


@dataclass(frozen=True)
class Layer:
    """One layer of a model: its kind (registry.LAYERS), its shape, and where its parameters sit in params.

    shape: (fan_in, fan_out) for dense; () for a layer whose shape is its input's.
    slot: the index of its (W, b)-style tuple in params; None for a layer without parameters.
    """

    kind: str
    shape: tuple = ()
    slot: int | None = None
    input_grad: bool = True  # False for the first layer: its input is the data, whose gradient nobody needs


def expand(layers, hidden, output):
    """The seeds' shorthand (widths, a hidden and an output activation) as a sequence of layers:
    (2, 4, 1), sigmoid, sigmoid -> dense 2x4, sigmoid, dense 4x1, sigmoid."""
    model = []
    for l, (fan_in, fan_out) in enumerate(zip(layers, layers[1:])):
        model.append(Layer("dense", (fan_in, fan_out), l, input_grad=l > 0))
        model.append(Layer(output if l == len(layers) - 2 else hidden))
    return tuple(model)


@dataclass(frozen=True)
class Config:
    """An MLP, its loss and how to train it.

    layers: widths from input to output, e.g. (2, 4, 1) is 2 inputs, 4 hidden, 1 output.
    batch_size: None trains full-batch (as the seeds do); otherwise minibatches in an
    order drawn once from the seed (see reference.initializers.batch_orders).
    """

    layers: tuple[int, ...] = (2, 2, 1)
    hidden: str = "sigmoid"
    output: str = "sigmoid"
    loss: str = "half_sse"
    init: str = "uniform_pm1"
    lr: float = 0.1
    epochs: int = 180_000
    batch_size: int | None = None
    dtype: str = "float64"
    seed: int = 0
    # The optimizer (common/registry.py) and its hyperparameters, as torch.optim names and defaults them; each
    # optimizer reads those it needs. weight_decay is L2 coupled into the gradient, or decoupled for adamw;
    # decay_biases=False leaves the biases undecayed.
    optimizer: str = "sgd"
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    alpha: float = 0.99
    eps: float | None = None  # None: the optimizer's own default (registry)
    weight_decay: float = 0.0
    decay_biases: bool = True
    _model: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        layers = self.layers
        if isinstance(layers, list):
            layers = tuple(layers)
            object.__setattr__(self, "layers", layers)
        if not isinstance(layers, tuple) or len(layers) < 2:
            raise ValueError(f"layers must list at least an input and an output width, got {self.layers!r}")
        for i, width in enumerate(layers):
            if not _is_int(width) or width <= 0:
                raise ValueError(f"layers[{i}] must be a positive integer width, got {width!r}")
        hidden = registry.hidden_activations()
        if self.hidden not in hidden:
            raise ValueError(f"unknown hidden activation {self.hidden!r}; choose one of {hidden}")
        if self.output not in registry.ACTIVATIONS:
            raise ValueError(f"unknown output activation {self.output!r}; choose one of {tuple(registry.ACTIVATIONS)}")
        if self.loss not in registry.LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {tuple(registry.LOSSES)}")
        wanted = registry.LOSSES[self.loss].output
        if wanted is not None and self.output != wanted:
            raise ValueError(f"loss {self.loss!r} needs output activation {wanted!r}, got {self.output!r}")
        if wanted is None and self.output not in hidden:
            needs = [name for name, loss in registry.LOSSES.items() if loss.output == self.output]
            raise ValueError(f"a {self.output} output is only supported with loss {' or '.join(map(repr, needs))}")
        if registry.ACTIVATIONS[self.output].outputs == "simplex" and layers[-1] < 2:
            raise ValueError(f"a {self.output} output needs at least 2 classes, got output width {layers[-1]}")
        if self.init not in registry.INITS:
            raise ValueError(f"unknown initialisation {self.init!r}; choose one of {tuple(registry.INITS)}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)):
            raise TypeError(f"lr must be a number, got {type(self.lr).__name__}")
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        if not _is_int(self.epochs) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.batch_size is not None and (not _is_int(self.batch_size) or self.batch_size <= 0):
            raise ValueError(f"batch_size must be None (full batch) or a positive integer, got {self.batch_size!r}")
        if self.dtype not in registry.DTYPES:
            raise ValueError(f"unsupported dtype {self.dtype!r}; choose one of {registry.DTYPES}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        self._check_optimizer()
        # Computed once: it is read on every forward pass. (Not functools.cached_property, whose lock
        # torch.compile cannot trace.)
        object.__setattr__(self, "_model", expand(layers, self.hidden, self.output))

    def _check_optimizer(self) -> None:
        if self.optimizer not in registry.OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {tuple(registry.OPTIMIZERS)}")
        if isinstance(self.betas, list):
            object.__setattr__(self, "betas", tuple(self.betas))
        if self.eps is None:
            object.__setattr__(self, "eps", registry.OPTIMIZERS[self.optimizer].eps)
        if not isinstance(self.betas, tuple) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        for name, value in (("momentum", self.momentum), ("alpha", self.alpha), ("betas[0]", self.betas[0]),
                            ("betas[1]", self.betas[-1])):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        if self.eps is not None and (isinstance(self.eps, bool) or not isinstance(self.eps, (int, float))
                                     or not math.isfinite(self.eps) or self.eps <= 0):
            raise ValueError(f"eps must be a positive finite number, got {self.eps!r}")
        if (isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float))
                or not math.isfinite(self.weight_decay) or self.weight_decay < 0):
            raise ValueError(f"weight_decay must be a non-negative finite number, got {self.weight_decay!r}")
        if not isinstance(self.decay_biases, bool):
            raise TypeError(f"decay_biases must be True or False, got {self.decay_biases!r}")

    def describe_optimizer(self) -> str:
        """'adam (betas (0.9, 0.999), eps 1e-08)': the optimizer and the hyperparameters it reads, lr aside."""
        spec = registry.OPTIMIZERS[self.optimizer]
        parts = [f"{name} {getattr(self, name)}" for name in spec.hyper if name != "lr"]
        if self.weight_decay:
            parts.append(f"weight decay {self.weight_decay:g}{'' if self.decay_biases else ', not on biases'}")
        return self.optimizer + (f" ({', '.join(parts)})" if parts else "")

    @property
    def model(self) -> tuple[Layer, ...]:
        """The layers the backends walk, in order, expanded from the shorthand (layers, hidden, output)."""
        return self._model

    def replace(self, **changes) -> Config:
        return replace(self, **changes)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# The two notebooks the project grew from (../shared/seeds/), as configurations.
SEED1_XOR = Config(layers=(2, 4, 1), init="standard_normal", epochs=10_000)
SEED2_XOR = Config(layers=(2, 2, 1), init="uniform_pm1", epochs=180_000)
