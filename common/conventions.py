"""Conventions: the choices that correct code makes differently from one framework, course or book to the next,
named and registered, each value with where it comes from. A convention is not a mistake: declared, the reference
and both mirrors compute it, and an implementation that follows it agrees (docs/conventions.md).

Declared on a Config as conventions={"batchnorm.running_variance": "biased"} (the CLI's --convention KEY=VALUE, a
model file's [conventions] table, an adapter's conventions= keyword); what is not declared takes its default, which is
PyTorch's. A layer's conventions travel on its Layer (common/model.py), so that the layer functions read them there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from . import registry


@dataclass(frozen=True)
class Convention:
    key: str  # "<scope>.<what>": the scope is the layer kind, the optimizer or "loss" it applies to (applies)
    doc: str
    values: dict  # {value: where it comes from}; a "form:number" key takes any number in the form's range
    default: str
    tried: tuple = ()  # a number's values the diagnosis tries: those its sources use
    losses: tuple = ()  # the losses it is about, where its scope is "loss" or a loss's name
    when: Callable | None = None  # for a training option: whether config trains with it (clipping, weight decay)

    @property
    def scope(self) -> str:
        return self.key.split(".", 1)[0]

    def applies(self, config) -> bool:
        """Whether config's model, optimizer, loss or training holds what it is about (a layer kind, an optimizer, a
        loss, or an option its when says)."""
        return (any(layer.kind == self.scope for layer in config.model)
                or config.optimizer in SHARED.get(self.scope, (self.scope,))
                or config.loss in self.losses
                or (self.when is not None and bool(self.when(config))))


CONVENTIONS = {c.key: c for c in (
    Convention("batchnorm.variance", "the batch variance that normalises in training",
               {"biased": "PyTorch, TensorFlow/Keras, CS231n, Ioffe & Szegedy (2015): the mean of squared deviations",
                "unbiased": "makemore part 4 (torch.var's default): Bessel's correction, n / (n - 1)"}, "biased"),
    Convention("batchnorm.running_variance", "the batch variance that moves the running variance",
               {"unbiased": "PyTorch (torch.nn.BatchNorm): the batch variance times n / (n - 1)",
                "biased": "CS231n's assignment 2 and TensorFlow/Keras: the batch variance as it normalised"},
               "unbiased"),
    Convention("batchnorm.running_average", "how a step moves the running statistics r toward the batch's s",
               {"take:M": "PyTorch's momentum M (default 0.1): r = (1 - M) r + M s",
                "keep:K": "CS231n's momentum K (0.9) and Keras's (0.99): r = K r + (1 - K) s; makemore part 4 "
                          "writes keep:0.999"},
               "take:0.1", ("take:0.1", "keep:0.9", "keep:0.99", "keep:0.999")),
    Convention("rmsprop.eps", "where RMSprop's epsilon sits",
               {"outside": "PyTorch (torch.optim.RMSprop) and Keras: g / (sqrt(v) + eps)",
                "inside": "TensorFlow 1's RMSPropOptimizer and optax.rmsprop's default (eps_in_sqrt=True): "
                          "g / sqrt(v + eps)"}, "outside"),
    Convention("adam.eps", "where Adam's epsilon sits against the bias correction",
               {"outside": "PyTorch (torch.optim.Adam), optax and Keras: m^ / (sqrt(v^) + eps), after the correction",
                "efficient": "Kingma & Ba's efficient form (section 2), TensorFlow 1's AdamOptimizer: "
                             "lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps), before it"}, "outside"),
    Convention("momentum.form", "what momentum keeps, and so how a changing lr enters it",
               {"buffer": "PyTorch (torch.optim.SGD), TensorFlow 1's MomentumOptimizer and optax.sgd: b = mu b + g, "
                          "p -= lr b (lr applied to the whole buffer)",
                "velocity": "Keras's SGD, CS231n's sgd_momentum, Sutskever et al. (2013): v = mu v - lr g, p += v "
                            "(each step's lr kept in v); the same under a constant lr"}, "buffer"),
    Convention("nesterov.form", "what Nesterov's momentum keeps, and so how a changing lr enters it",
               {"buffer": "PyTorch (SGD(nesterov=True)) and optax.sgd(nesterov=True): b = mu b + g, "
                          "p -= lr (g + mu b)",
                "velocity": "Bengio et al. (2013)'s form, CS231n's notes and Keras's SGD(nesterov=True): "
                            "v = mu v - lr g, p += -mu v_old + (1 + mu) v; the same under a constant lr"}, "buffer"),
    Convention("loss.log_guard", "how the loss value guards its log against log(0) (the backward stays exact)",
               {"none": "PyTorch, optax and Keras from logits: the exact log, through log-sum-exp",
                "add:E": "-log(p + E): textbooks and course code (E = 1e-7, 1e-8, 1e-12, ...)",
                "clip:E": "Keras on probabilities: p clipped to [E, 1 - E] before the log (its epsilon, 1e-7)"},
               "none", ("none", "add:1e-7", "add:1e-8", "add:1e-9", "add:1e-10", "add:1e-12", "add:1e-15",
                        "clip:1e-7"), losses=("softmax_cross_entropy", "bce")),
    Convention("loss.reduction", "whether the loss averages its terms over the batch or adds them up",
               {"mean": "PyTorch's reduction='mean' (the default), optax's losses averaged, Keras and CS231n: mse and "
                        "bce over samples x outputs, cross-entropy and hinge over samples",
                "sum": "PyTorch's reduction='sum', and code whose dL/dz is a - y without the 1/N: the sum over the "
                       "batch, N (mse, bce: N K) times the mean, and so its gradient"}, "mean",
               losses=("mse", "bce", "softmax_cross_entropy", "hinge")),
    Convention("weight_decay.form", "how weight decay enters the step (adamw's is decoupled, whatever is declared)",
               {"coupled": "PyTorch's weight_decay on SGD, RMSprop, Adagrad and Adam, optax.add_decayed_weights before "
                           "the step, Nielsen's L2 (lmbda / n) and CS231n's reg: wd p added to the gradient",
                "decoupled": "Loshchilov & Hutter's SGDW (AdamW's form for any optimizer) and Keras 3's weight_decay: "
                             "p shrunk by (1 - lr wd) apart from the gradient's step"}, "coupled",
               when=lambda c: c.weight_decay and c.optimizer != "adamw"),
    Convention("clip.norm", "what gradient clipping by norm measures",
               {"global": "PyTorch's clip_grad_norm_, optax.clip_by_global_norm and Keras's global_clipnorm: one norm "
                          "over every parameter's gradient",
                "per_tensor": "Keras's clipnorm (each weight's gradient clipped on its own) and tf.clip_by_norm "
                              "applied to each variable: each leaf scaled by min(1, c / (|g| + 1e-6)), |g| its own"},
               "global", when=lambda c: c.clip is not None),
    Convention("mse.average", "what mse's mean divides its squared errors by",
               {"elements": "PyTorch (F.mse_loss), Keras's MeanSquaredError and optax's l2 averaged: N K, every "
                            "sample's every output",
                "samples": "the textbooks' 1/N sum_n ||a_n - y_n||^2: the squared error summed over the K outputs, "
                           "averaged over the N samples (K times PyTorch's)"}, "elements", losses=("mse",)),
)}
# A scope names a layer kind, an optimizer, "loss" or a loss; these names hold more than one (adamw takes adam's step).
SHARED = {"adam": ("adam", "adamw")}


def check(declared, keep_defaults=False) -> tuple:
    """The declared conventions, validated, as a sorted tuple of (key, value) pairs, defaults dropped (declaring a
    default changes nothing; kept where keep_defaults: a declaration laid over another's). declared: a mapping, or
    (key, value) pairs, or "KEY=VALUE" strings."""
    if declared is None:
        return ()
    pairs: list
    if isinstance(declared, Mapping):
        pairs = list(declared.items())
    elif isinstance(declared, (tuple, list)):
        pairs = [tuple(d.split("=", 1)) if isinstance(d, str) and "=" in d else d for d in declared]
    else:
        raise TypeError(f"conventions must be a mapping of key to value, got {type(declared).__name__}")
    chosen: dict[str, str] = {}
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise ValueError(f"a convention is KEY=VALUE, got {pair!r}")
        key, value = pair[0].strip(), normal(pair[0].strip(), pair[1])
        if key in chosen and chosen[key] != value:
            raise ValueError(f"convention {key} declared twice: {chosen[key]} and {value}")
        chosen[key] = value
    return tuple(sorted((k, v) for k, v in chosen.items() if keep_defaults or v != CONVENTIONS[k].default))


def normal(key, value) -> str:
    """value of convention key, checked and written as the registry writes it ("keep:0.90" -> "keep:0.9")."""
    if key not in CONVENTIONS:
        raise ValueError(f"unknown convention {key!r}; choose one of {', '.join(CONVENTIONS)} "
                         f"(crosscheck --conventions lists them)")
    convention = CONVENTIONS[key]
    text = str(value).strip().lower()
    if text in convention.values:
        return text
    forms = {k.split(":")[0]: k for k in convention.values if ":" in k}
    form, _, number = text.partition(":")
    if form in forms:
        try:
            rate = float(number)
        except ValueError:
            rate = math.nan
        if 0 < rate < 1:
            number = re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(rate))  # 1e-07 written 1e-7
            return f"{form}:{number}"
    raise ValueError(f"convention {key}: unknown value {value!r}; choose one of {', '.join(convention.values)}"
                     + (" (M, K a number between 0 and 1)" if forms else ""))


def value(holder, key) -> str:
    """The value of convention key in force on holder (a Layer or a Config): declared, or the default. Read in the
    training loop's hot path (every leaf's update, every step): the few declared pairs are scanned, not mapped."""
    return next((v for k, v in getattr(holder, "conventions", ()) or () if k == key), CONVENTIONS[key].default)


def for_kind(kind, declared) -> tuple:
    """The declared (key, value) pairs whose scope is layer kind."""
    return tuple((k, v) for k, v in declared if CONVENTIONS[k].scope == kind)


def with_conventions(model, declared) -> tuple:
    """model's Layers, each given the declared conventions of its kind."""
    return tuple(replace(layer, conventions=for_kind(layer.kind, declared)) for layer in model)


def in_force(config) -> dict:
    """{key: value} of every convention that applies to config's model (its layers' kinds) or its optimizer, declared
    or default."""
    return {k: value(config, k) for k, c in CONVENTIONS.items() if c.applies(config)}


def log_guard(config):
    """(form, E) of the loss value's guard on its log ("add" or "clip"), or None for the exact log."""
    guard = value(config, "loss.log_guard")
    return None if guard == "none" else (guard.split(":")[0], float(guard.split(":")[1]))


def reduced(config, a) -> float:
    """c in L = c mean(terms), for config's loss at its output a (N, K) or (N, T, K): 1 as PyTorch has it, the count
    the mean divides by under loss.reduction=sum (N K for mse and bce, N positions for cross-entropy and hinge), K
    under mse.average=samples."""
    if config.loss not in CONVENTIONS["loss.reduction"].losses:
        return 1.0
    if value(config, "loss.reduction") == "sum":
        return float(math.prod(a.shape) if config.loss in ("mse", "bce") else math.prod(a.shape[:-1]))
    return float(a.shape[-1]) if config.loss == "mse" and value(config, "mse.average") == "samples" else 1.0


def summed(config) -> bool:
    """Whether config's loss adds its terms up (a loss the registry says is not averaged, or loss.reduction=sum):
    then micro-batches' and ranks' losses add, rather than each weighing by its share."""
    return not registry.LOSSES[config.loss].averaged or (config.loss in CONVENTIONS["loss.reduction"].losses
                                                         and value(config, "loss.reduction") == "sum")


def bessel(layer, key, n) -> float:
    """n / (n - 1) where batch norm's variance convention key is unbiased on layer, else 1."""
    return n / (n - 1) if value(layer, key) == "unbiased" else 1.0


def running_weights(layer) -> tuple[float, float]:
    """(the weight on the running statistic, the weight on the batch's) of a batchnorm layer's running average."""
    form, number = value(layer, "batchnorm.running_average").split(":")
    rate = float(number)
    return (1.0 - rate, rate) if form == "take" else (rate, 1.0 - rate)


def alternatives(config) -> list:
    """Each (key, value) that changes one applicable convention from what config declares; a number's forms at the
    values its sources use (Convention.tried)."""
    return [(key, normal(key, v)) for key, current in in_force(config).items()
            for v in (CONVENTIONS[key].tried or CONVENTIONS[key].values) if normal(key, v) != current]


def describe(config) -> str:
    """The conventions in force on config's model, in words for a report's header ("" where none applies); a declared
    one marked so."""
    declared = dict(config.conventions)
    return ", ".join(f"{k}={v}" + (" (declared)" if k in declared else "") for k, v in in_force(config).items())


def listing() -> str:
    """Every convention: its key, what it is, its values and where each comes from, its default."""
    lines = []
    for c in CONVENTIONS.values():
        lines.append(f"{c.key}: {c.doc} (default {c.default})")
        lines += [f"    {v:<10} {where}" for v, where in c.values.items()]
    return "\n".join(lines)
