"""What to train: one frozen, validated description shared by every backend.

Validation happens here, when the configuration is built, so that a typo in an
activation name or a zero width fails before any backend starts training. The model's
own layers and shapes are built by common/model.py; the options around it (loss,
optimizer, schedule, precision, sharding) are checked here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

from . import registry
from .conventions import check as check_conventions
from .conventions import with_conventions
from .model import expand, implied_by, is_int, placed


@dataclass(frozen=True)
class Config:
    """A model, its loss and how to train it.

    The model is either the seeds' shorthand, layers (widths from input to output: (2, 4, 1) is
    2 inputs, 4 hidden, 1 output) with one hidden and one output activation, or an explicit
    sequence of layers, model=(("dense", 4, 6), "tanh", ("dense", 6, 2), "identity"); either
    way config.model is the sequence the backends walk, and layers/hidden/output describe it
    (hidden lists the kinds of the inner activations, "tanh,relu", where they differ).
    batch_size: None trains full-batch (as the seeds do); otherwise minibatches in an
    order drawn once from the seed (see crosscheck.common.initializers.batch_orders).
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
    # The optimizer (common/registry.py) and its hyperparameters, as torch.optim names them. Each optimizer reads
    # those its registry entry gives defaults for: None takes that default; one it does not read stays None, and
    # giving it is refused. weight_decay is L2 coupled into the gradient, or decoupled for adamw;
    # decay_biases=False leaves the biases undecayed.
    optimizer: str = "sgd"
    momentum: float | None = None
    betas: tuple[float, float] | None = None
    alpha: float | None = None
    eps: float | None = None
    weight_decay: float = 0.0
    decay_biases: bool = True
    # Gradient clipping by global norm, torch.nn.utils.clip_grad_norm_'s definition: every gradient times
    # min(1, clip / (|g| + 1e-6)), |g| the 2-norm of all leaves' entries together; None: no clipping.
    clip: float | None = None
    # A learning-rate schedule: None keeps lr; "warmup_cosine" is optax.warmup_cosine_decay_schedule at the optimizer's
    # count c of updates made (0 for the first): lr c / warmup_steps during the warmup, then a cosine decay from lr
    # to end_lr at c = decay_steps, and end_lr after (reference/optimizers.py scheduled_lr).
    schedule: str | None = None
    warmup_steps: int = 0
    decay_steps: int | None = None
    end_lr: float = 0.0
    # Gradient accumulation: each step's batch in micro-batches of ceil(n / accumulate) consecutive rows (the last
    # smaller: at most accumulate of them), their losses and gradients added up weighted by their share of the batch
    # (n_i / n; 1 for a summed loss): the whole batch's, to rounding.
    accumulate: int = 1
    model: tuple | None = None  # None: expanded from the shorthand (layers, hidden, output)
    # The per-sample shape of X, (channels, height, width) for images: needed where the model begins with a layer
    # that does not say it (conv2d); None: the first dense layer's fan_in, (layers[0],).
    input_shape: tuple | None = None
    # Mixed precision: compute ("bfloat16" or "float16") is where the forward and backward run, on a copy of the
    # parameters cast each step; dtype (float32) keeps the master weights, the optimizer's state and the update.
    # loss_scale: None, a number (static: the loss gradient times it, the gradients divided by it before the update),
    # or "dynamic" (from 2^16, halved and the step skipped when a gradient overflows, doubled after scale_window
    # steps without one: torch.amp.GradScaler's defaults). docs/precision.md, "Mixed precision".
    compute: str | None = None
    loss_scale: float | str | None = None
    scale_window: int = 2000
    # Data parallelism: "data:N" trains each step's batch on N shards of consecutive rows (a process or a device each):
    # each shard's loss and gradients weighted by its share of the batch (n / N / n; 1 for a summed loss), summed over
    # the world (an all-reduce), and the same update taken on every shard. Tensor parallelism: "tensor:N" splits each
    # pair of dense layers over N ranks (Megatron's MLP: the first by columns, the second by rows), each attention
    # layer by its heads and each SwiGLU by its hidden units, every rank on the whole batch. None: one device. The
    # reference runs on one device whatever this says: every sharded run is compared with it (docs/parallel.md).
    parallel: str | None = None
    # Conventions declared where the model's code follows another framework's or course's choice than PyTorch's
    # (batch norm's variances and running average: common/conventions.py, docs/conventions.md): {key: value}.
    conventions: tuple = ()
    _shorthand: bool = field(init=False, repr=False, compare=False, default=True)

    def __post_init__(self) -> None:
        if self.model is not None:
            self._take_model()
        layers = self.layers
        if isinstance(layers, list):
            layers = tuple(layers)
            object.__setattr__(self, "layers", layers)
        if not isinstance(layers, tuple) or len(layers) < 2:
            raise ValueError(f"layers must list at least an input and an output width, got {self.layers!r}")
        for i, width in enumerate(layers):
            if not is_int(width) or width <= 0:
                raise ValueError(f"layers[{i}] must be a positive integer width, got {width!r}")
        hidden = registry.hidden_activations()
        if self._shorthand and self.hidden not in hidden:
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
        if not is_int(self.epochs) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.batch_size is not None and (not is_int(self.batch_size) or self.batch_size <= 0):
            raise ValueError(f"batch_size must be None (full batch) or a positive integer, got {self.batch_size!r}")
        if self.dtype not in registry.DTYPES:
            raise ValueError(f"unsupported dtype {self.dtype!r}; choose one of {registry.DTYPES}")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        self._check_optimizer()
        self._check_mixed()
        if self._shorthand:
            object.__setattr__(self, "model", expand(layers, self.hidden, self.output))
            if self.input_shape not in (None, layers[:1]):
                raise ValueError(f"input_shape {self.input_shape!r} contradicts layers[0] = {layers[0]}")
        self._check_parallel()
        declared = check_conventions(self.conventions)
        object.__setattr__(self, "conventions", declared)
        object.__setattr__(self, "model", with_conventions(self.model, declared))

    def _check_parallel(self) -> None:
        if self.parallel is None:
            return
        kind, _, world = str(self.parallel).partition(":")
        if kind not in ("data", "tensor") or not world.isdigit():
            raise ValueError(f"parallel must be None, 'data:N' (N shards of each batch) or 'tensor:N' (each pair of "
                             f"dense layers, each attention layer by its heads and each SwiGLU by its hidden "
                             f"units split over N ranks), got {self.parallel!r}")
        if int(world) < 2:
            raise ValueError(f"parallel {self.parallel!r}: a world of {world} is one device; leave parallel out")
        if kind == "tensor":
            self._check_tensor(int(world))
        refused = [(any(registry.LAYERS[layer.kind].min_batch > 1 for layer in self.model or ()),
                    "batch norm's statistics would be each shard's, not the batch's (SyncBatchNorm is another model)"),
                   (self.accumulate > 1, "gradient accumulation inside each shard is not built yet"),
                   (self.compute is not None, "mixed precision across shards is not built yet")]
        for refuse, why in refused:
            if refuse:
                raise ValueError(f"parallel {self.parallel!r}: {why}")

    def _check_tensor(self, world: int) -> None:
        """Tensor parallelism splits each pair of dense layers (column, then row), each attention layer by its heads
        and each SwiGLU by its hidden units; every other layer runs whole on every rank. At least one layer must be
        split, each column layer's width, each attention layer's heads (and key-value heads) and each SwiGLU's hidden
        width a multiple of the world; dropout inside the ranks is not built."""
        noisy = sorted({layer.kind for layer in self.model or () if layer.mask is not None})
        if noisy:
            raise ValueError(f"parallel {self.parallel!r}: tensor parallelism over {', '.join(noisy)} is not built "
                             f"yet (each rank's masks of its blocks)")
        roles = self.tensor_roles
        if not {"row", "heads", "hidden"} & set(roles):
            raise ValueError(f"parallel {self.parallel!r}: tensor parallelism splits a pair of dense layers (a column "
                             f"layer, then a row layer, only activations between), an attention layer by its heads or "
                             f"a SwiGLU layer by its hidden units; this model has none")
        for layer in self.parametrized:
            if roles[layer.slot] == "column" and layer.shape[1] % world:
                raise ValueError(f"parallel {self.parallel!r}: dense layer {layer.slot + 1} ({layer.shape[0]} -> "
                                 f"{layer.shape[1]}) is split by its {layer.shape[1]} columns, not a multiple of "
                                 f"{world}")
            if roles[layer.slot] == "hidden" and layer.shape[1] % world:
                raise ValueError(f"parallel {self.parallel!r}: swiglu layer {layer.slot + 1} is split by its "
                                 f"{layer.shape[1]} hidden units, not a multiple of {world}")
            if roles[layer.slot] == "heads":
                width, heads, *kv = layer.shape
                if heads % world or (kv and kv[0] % world):
                    raise ValueError(f"parallel {self.parallel!r}: {layer.kind} layer {layer.slot + 1} is split by "
                                     f"its heads, {heads}{f' (and {kv[0]} key-value heads)' if kv else ''}, not a "
                                     f"multiple of {world}")

    @cached_property
    def tensor_roles(self) -> tuple:
        """Each parametrized layer's part under tensor parallelism, by slot: a dense layer followed (through
        activations alone, elementwise as hidden ones are, no residual block ending) by another dense layer "column",
        that one "row"; an attention layer "heads" (its fused projection by columns, each of q, k and v by blocks of
        heads, its output projection by rows); a SwiGLU layer "hidden" (its gate and up projections by columns, its
        down projection by rows: Megatron's MLP inside one layer); every other one "whole" (the same on every
        rank)."""
        model = list(self.model or ())
        roles = {}
        for i, layer in enumerate(model):
            if layer.slot is None or layer.tied or layer.slot in roles:
                continue
            roles[layer.slot] = ("heads" if layer.kind in ("attention", "rope_attention") else
                                 "hidden" if layer.kind == "swiglu" else "whole")
            if layer.kind != "dense":
                continue
            j = i + 1
            while j < len(model) and not model[j - 1].closes and model[j].kind in registry.ACTIVATIONS:
                j += 1
            if j < len(model) and not model[j - 1].closes and model[j].kind == "dense":
                roles[layer.slot], roles[model[j].slot] = "column", "row"
        return tuple(roles[slot] for slot in range(len(self.parametrized)))

    @cached_property
    def parallel_kind(self) -> str | None:
        """"data" or "tensor" (config.parallel's kind); None on one device."""
        return None if self.parallel is None else self.parallel.partition(":")[0]

    @cached_property
    def world(self) -> int:
        """How many shards (processes, devices) train each step: parallel's N, 1 on one device."""
        return 1 if self.parallel is None else int(self.parallel.partition(":")[2])

    def _take_model(self) -> None:
        """An explicit model: placed, validated, and described by layers/hidden/output (which it overrides,
        unless they were set to something else: then the two disagree, and that is an error)."""
        model = self.model if isinstance(self.model, (tuple, list)) else None
        if model is None:
            raise ValueError(f"model must be a sequence of layers, got {self.model!r}")
        model = placed(model)
        if isinstance(self.input_shape, list):
            object.__setattr__(self, "input_shape", tuple(self.input_shape))
        implied = implied_by(model, self.input_shape)
        for name, value in zip(("layers", "hidden", "output"), implied):
            given = getattr(self, name)
            given = tuple(given) if isinstance(given, list) else given
            if given not in (value, _DEFAULTS[name]):
                raise ValueError(f"{name}={given!r} contradicts the model given, which implies {value!r}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "_shorthand", False)

    def _check_optimizer(self) -> None:
        if self.optimizer not in registry.OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {tuple(registry.OPTIMIZERS)}")
        spec = registry.OPTIMIZERS[self.optimizer]
        if isinstance(self.betas, list):
            object.__setattr__(self, "betas", tuple(self.betas))
        for name in registry.HYPERPARAMETERS:
            if name in spec.defaults and getattr(self, name) is None:
                object.__setattr__(self, name, spec.defaults[name])
            elif name not in spec.defaults and getattr(self, name) is not None:
                reads = ", ".join(spec.hyper)
                raise ValueError(f"{self.optimizer} does not read {name} (it reads {reads}); got {name}="
                                 f"{getattr(self, name)!r}")
        if self.betas is not None and (not isinstance(self.betas, tuple) or len(self.betas) != 2):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        fractions = (("momentum", self.momentum), ("alpha", self.alpha),
                     *((("betas[0]", self.betas[0]), ("betas[1]", self.betas[-1])) if self.betas else ()))
        for name, value in fractions:
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 <= value < 1):
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        if self.eps is not None and (isinstance(self.eps, bool) or not isinstance(self.eps, (int, float))
                                     or not math.isfinite(self.eps) or self.eps <= 0):
            raise ValueError(f"eps must be a positive finite number, got {self.eps!r}")
        if (isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float))
                or not math.isfinite(self.weight_decay) or self.weight_decay < 0):
            raise ValueError(f"weight_decay must be a non-negative finite number, got {self.weight_decay!r}")
        if not isinstance(self.decay_biases, bool):
            raise TypeError(f"decay_biases must be True or False, got {self.decay_biases!r}")
        self._check_schedule()
        if not is_int(self.accumulate) or self.accumulate < 1:
            raise ValueError(f"accumulate (micro-batches per step) must be a positive integer, got {self.accumulate!r}")
        if self.accumulate > 1 and any(registry.LAYERS[layer.kind].min_batch > 1 for layer in self.model or ()):
            raise ValueError("gradient accumulation with batch norm is another model: its statistics would be each "
                             "micro-batch's, not the batch's")
        if self.accumulate > 1 and self.compute is not None:
            raise ValueError("gradient accumulation is not supported in mixed precision (compute); use float32 or "
                             "float64")
        if self.clip is not None and (isinstance(self.clip, bool) or not isinstance(self.clip, (int, float))
                                      or not math.isfinite(self.clip) or self.clip <= 0):
            raise ValueError(f"clip (the largest gradient norm) must be None or a positive finite number, "
                             f"got {self.clip!r}")

    def _check_schedule(self) -> None:
        if self.schedule is None:
            if self.warmup_steps or self.decay_steps is not None or self.end_lr:
                raise ValueError("warmup_steps, decay_steps and end_lr belong to a schedule: give "
                                 "schedule='warmup_cosine' too")
            return
        if self.schedule != "warmup_cosine":
            raise ValueError(f"unknown schedule {self.schedule!r}; choose None or 'warmup_cosine'")
        if not is_int(self.warmup_steps) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be a non-negative integer, got {self.warmup_steps!r}")
        if not isinstance(self.decay_steps, int) or isinstance(self.decay_steps, bool) \
                or self.decay_steps <= self.warmup_steps:
            raise ValueError(f"decay_steps (the update at which the cosine reaches end_lr) must be an integer past "
                             f"warmup_steps ({self.warmup_steps}), got {self.decay_steps!r}")
        if (isinstance(self.end_lr, bool) or not isinstance(self.end_lr, (int, float)) or not math.isfinite(self.end_lr)
                or not 0 <= self.end_lr <= self.lr):
            raise ValueError(f"end_lr must be a number in [0, lr = {self.lr}], got {self.end_lr!r}")

    def _check_mixed(self) -> None:
        if self.compute is not None and self.compute not in ("bfloat16", "float16"):
            raise ValueError(f"compute must be None, 'bfloat16' or 'float16' (mixed precision), got {self.compute!r}")
        if self.compute is not None and self.dtype != "float32":
            raise ValueError(f"mixed precision keeps float32 master weights: dtype must be 'float32' with compute "
                             f"{self.compute!r}, got {self.dtype!r}")
        scale = self.loss_scale
        if scale is not None and self.compute is None:
            raise ValueError("loss_scale needs mixed precision (compute='float16' or 'bfloat16')")
        if isinstance(scale, str) and scale != "dynamic":
            raise ValueError(f"loss_scale must be None, a positive number or 'dynamic', got {scale!r}")
        if scale is not None and not isinstance(scale, str) and (
                isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale)
                or scale <= 0):
            raise ValueError(f"loss_scale must be None, a positive finite number or 'dynamic', got {scale!r}")
        if not is_int(self.scale_window) or self.scale_window < 1:
            raise ValueError(f"scale_window must be a positive integer, got {self.scale_window!r}")

    @property
    def dynamic(self) -> bool:
        """Whether the loss scale is dynamic: then the optimizer's state carries the scaler's (registry.SCALER)."""
        return self.loss_scale == "dynamic"

    def computing(self) -> Config:
        """The configuration a mixed-precision step's forward and backward run under: compute as the dtype."""
        return self.replace(dtype=self.compute, compute=None, loss_scale=None)

    def describe_optimizer(self) -> str:
        """'adam (betas (0.9, 0.999), eps 1e-08)': the optimizer and the hyperparameters it reads, lr aside."""
        spec = registry.OPTIMIZERS[self.optimizer]
        parts = [f"{name} {getattr(self, name)}" for name in spec.hyper if name not in ("lr", "weight_decay")]
        if self.weight_decay:
            parts.append(f"weight decay {self.weight_decay:g}{'' if self.decay_biases else ', not on biases'}")
        if self.clip is not None:
            parts.append(f"gradients clipped to norm {self.clip:g}")
        if self.accumulate > 1:
            parts.append(f"each step in {self.accumulate} accumulated micro-batches")
        if self.parallel is not None:
            parts.append(f"data parallel over {self.world} shards" if self.parallel_kind == "data" else
                         f"tensor parallel over {self.world} ranks")
        if self.schedule is not None:
            parts.append(f"lr warmed up over {self.warmup_steps} updates, then cosine to {self.end_lr:g} at update "
                         f"{self.decay_steps}")
        return self.optimizer + (f" ({', '.join(parts)})" if parts else "")

    @cached_property
    def parametrized(self) -> tuple:
        """The layers that hold parameters, in params' order (slot 0, 1, ...). Cached: the optimizers ask for it
        for every leaf at every step (Config.decays), and the model never changes."""
        return tuple(layer for layer in self.model or () if layer.slot is not None and not layer.tied)

    @cached_property
    def pairs(self) -> bool:
        """Whether every layer with parameters holds two, (W, b)-style: plain descent's spelled-out fast path."""
        return all(len(registry.LAYERS[layer.kind].params) == 2 for layer in self.parametrized)

    def leaf_names(self) -> list:
        """['layer 1 weight', 'layer 1 bias', ...]: every parameter leaf, in params' order, by the registry's names."""
        return [f"layer {l} {name}" for l, layer in enumerate(self.parametrized, start=1)
                for name in registry.LAYERS[layer.kind].params]

    @cached_property
    def shapes(self) -> tuple:
        """The per-sample shape reaching each layer of the model, then the output's: ((2,), (4,), (4,), (1,), (1,))
        for XOR's 2-4-1; (1, 8, 8) for a conv2d layer reading 8x8 single-channel images."""
        return implied_by(self.model, self.input_shape)[3]

    @property
    def sample_shape(self) -> tuple:
        """The per-sample shape of X: input_shape, or (layers[0],) for a model that begins with a dense layer."""
        return self.shapes[0]

    @property
    def output_shape(self) -> tuple:
        """The per-sample shape of the output, and of y: (K,), or (T, K) for a score per class at every step."""
        return self.shapes[-1]

    def noise_widths(self) -> list:
        """The per-sample shape of the input of each noisy layer (dropout), in order: the shape of its masks' rows."""
        return [shape for layer, shape in zip(self.model or (), self.shapes) if layer.mask is not None]

    def buffer_names(self) -> list:
        """['layer 2 running mean', ...]: every buffer leaf (TrainState.buffers), in order, by the registry's names."""
        return [f"layer {l} {name}" for l, layer in enumerate(self.parametrized, start=1)
                for name in registry.LAYERS[layer.kind].buffers]

    def decays(self, l, which) -> bool:
        """Whether weight decay applies to leaf which of parametrized layer l (0-based): to the leaves the registry
        names as decayed (a dense layer's weight), and to the others too with decay_biases."""
        kind = registry.LAYERS[self.parametrized[l].kind]
        return kind.params[which] in kind.decayed or self.decay_biases

    def replace(self, **changes) -> Config:
        """A copy with changes. A shorthand model is expanded afresh; an explicit one is changed through model=.
        A new optimizer gets its own defaults for the hyperparameters not given: those it does not read are dropped,
        and those still at the old optimizer's defaults take the new one's."""
        if self._shorthand and "model" not in changes:
            changes["model"] = None
        elif not self._shorthand and {"layers", "hidden", "output"} & changes.keys() and "model" not in changes:
            raise ValueError("this configuration's model was given explicitly: change it through model=, not the "
                             "shorthand (layers, hidden, output)")
        if "optimizer" in changes:
            old, new = registry.OPTIMIZERS[self.optimizer].defaults, registry.OPTIMIZERS[changes["optimizer"]].defaults
            for name in registry.HYPERPARAMETERS:
                if name not in changes and (name not in new or getattr(self, name) == old.get(name)):
                    changes[name] = None
        return replace(self, **changes)


# The two notebooks the project grew from (../shared/seeds/), as configurations.
SEED1_XOR = Config(layers=(2, 4, 1), init="standard_normal", epochs=10_000)
SEED2_XOR = Config(layers=(2, 2, 1), init="uniform_pm1", epochs=180_000)


_DEFAULTS = {name: Config.__dataclass_fields__[name].default for name in ("layers", "hidden", "output")}
