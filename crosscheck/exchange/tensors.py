"""The exchange format with code in any language: a problem and its results as safetensors files.

safetensors (github.com/huggingface/safetensors) is 8 bytes of little-endian header length, a JSON header naming
each tensor's dtype, shape and byte range, then the raw little-endian bytes, C order; the header's "__metadata__"
maps strings to strings. A reader in any language is a page of code (docs/other-languages.md describes one).

A problem file holds, samples as rows (the reference's layout: X (N, in), W (in, out), b (out,)):

    X, y                    the data; y is (N, outputs), absent where only the forward pass is asked
    layer1.weight, ...      the initial parameters, by leaf name (Config.leaf_names: "layer 1 weight" -> layer1.weight)
    orders                  (epochs, N) int64, the minibatch order of every epoch (a minibatch run only)
    masks.1, ...            each dropout layer's keep masks, (epochs, steps, batch, width) (a model with dropout only)
    buffer.layer2.running_mean, ...   the running statistics to read, where the evaluation-mode forward is asked

and in its metadata the run (problem_metadata): protocol, tasks (what to compute: forward, gradients, train), model
(spelled as --model takes it), loss, optimizer and the hyperparameters it reads, lr, epochs, batch_size (0: full
batch), dtype, checkpoints (the epochs after which to save the parameters), layout, conventions (every convention in
force on the model, KEY=VALUE comma-separated, declared or default: a program that computes another answers
"unsupported"), and config (all of it as JSON).

A result file holds, by task (result_shapes):

    forward     output (the network's output for X); forward.1, ... each layer's output, optional
    evaluate    evaluation.output: the output in evaluation mode, batch norm reading the buffers given
    gradients   loss (a scalar, before any update), grad.layer1.weight, ...
    train       losses (epochs, steps: each step's loss before its update), final.layer1.weight, ...,
                epoch<E>.layer1.weight, ... after each epoch E of checkpoints, and for an optimizer with state
                epoch<E>.state.<name>.layer1.weight, ... (name: momentum_buffer, first_moment, ...: the registry's),
                and for a model with buffers epoch<E>.buffer.layer2.running_mean, ... (batch norm's statistics)

in the problem's dtype, and in its metadata "supports" (the tasks the program implements, comma-separated) or
"unsupported" (why it cannot run this problem, which skips the problem's checks with that reason).
"""

import json
import os

import numpy as np

from crosscheck.common import registry
from crosscheck.common.conventions import in_force
from crosscheck.common.driver import Unsupported
from crosscheck.verdict.compare import Disagreement

PROTOCOL = "1"
TASKS = ("forward", "gradients", "train", "evaluate")
DTYPES = {"float64": "F64", "float32": "F32"}  # the dtypes a problem is exchanged in (safetensors' names)
LAYOUT = "rows"  # samples as rows: X (N, in), W (in, out), b (out,), as the reference keeps them


class BadResult(Disagreement):
    """A program's result that cannot be compared: it did not run to the end, or its file does not fit the problem
    (unreadable, a tensor missing, extra, of the wrong dtype or shape, or not finite). One line naming what; never a
    diagnosis (there are no values to diagnose)."""

    diagnosable = False


class BadFile(ValueError):
    """A file given on the command line (verify's) that is not what it should be: exit 2, with the reason."""


def _safetensors():
    try:
        import safetensors.numpy as st
        from safetensors import safe_open
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError("tensor files need the safetensors package (pip install safetensors)") from exc
    return st, safe_open


def leaf_key(name):
    """'layer 1 weight' -> 'layer1.weight'; 'layer 3 input weight' -> 'layer3.input_weight'."""
    _, number, *rest = name.split(" ")
    return f"layer{number}.{'_'.join(rest)}"


def leaf_keys(config):
    return [leaf_key(name) for name in config.leaf_names()]


def spell_model(config):
    """config.model as --model spells it: dense:2:2,sigmoid,dense:2:1,sigmoid."""
    return ",".join(":".join([layer.kind, *map(_spell, layer.shape)]) for layer in config.model)


def _spell(value):
    return repr(value) if isinstance(value, float) else str(value)


def _config_json(config):
    fields = ("layers", "hidden", "output", "loss", "init", "lr", "epochs", "batch_size", "dtype", "seed", "optimizer",
              "momentum", "betas", "alpha", "eps", "weight_decay", "decay_biases", "clip", "schedule", "warmup_steps",
              "decay_steps", "end_lr", "accumulate", "input_shape", "compute", "loss_scale")
    return json.dumps({"model": spell_model(config), **{f: getattr(config, f) for f in fields},
                       "conventions": in_force(config)})


def problem_metadata(config, tasks, checkpoints):
    """The problem's metadata: every value a string, as safetensors keeps them."""
    hyper = {name: ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
             for name in registry.OPTIMIZERS[config.optimizer].hyper if name != "lr"
             for v in [getattr(config, name)]}
    return {"protocol": PROTOCOL, "tasks": ",".join(tasks), "model": spell_model(config), "loss": config.loss,
            "optimizer": config.optimizer, **hyper, "lr": repr(float(config.lr)), "epochs": str(config.epochs),
            "batch_size": str(config.batch_size or 0), "accumulate": str(config.accumulate), "dtype": config.dtype,
            "weight_decay": repr(float(config.weight_decay)), "decay_biases": str(config.decay_biases).lower(),
            "clip": "" if config.clip is None else repr(float(config.clip)), "schedule": config.schedule or "",
            **({"warmup_steps": str(config.warmup_steps), "decay_steps": str(config.decay_steps),
                "end_lr": repr(float(config.end_lr))} if config.schedule else {}),
            "compute": config.compute or "", "loss_scale": str(config.loss_scale or ""),
            "checkpoints": ",".join(map(str, checkpoints)), "layout": LAYOUT,
            "conventions": ",".join(f"{k}={v}" for k, v in in_force(config).items()), "config": _config_json(config)}


def check_exchangeable(config):
    """Unsupported unless the problem can be written: its dtype is one safetensors' NumPy side carries."""
    if config.dtype not in DTYPES:
        raise Unsupported(f"the tensor files carry {' and '.join(DTYPES)}, not {config.dtype}")


def problem_tensors(config, params, X, y, orders=None, masks=None, buffers=None):
    """{name: array} of a problem; buffers (a TrainState's) for a forward pass in evaluation mode."""
    tensors = {"X": X} if y is None else {"X": X, "y": y}
    tensors.update(zip(leaf_keys(config), (leaf for layer in params for leaf in layer)))
    if buffers is not None:
        tensors.update(zip((f"buffer.{leaf_key(n)}" for n, _ in _buffers(config)), (b for bs in buffers for b in bs)))
    if orders is not None:
        tensors["orders"] = np.asarray(orders, dtype=np.int64)
    for i, mask in enumerate(masks or (), start=1):
        tensors[f"masks.{i}"] = mask
    return {name: np.asarray(t) for name, t in tensors.items()}


def write(path, tensors, metadata):
    st, _ = _safetensors()
    st.save_file({name: c_order(t) for name, t in tensors.items()}, path, metadata=metadata)


def c_order(t):
    """t as a C-ordered array, a scalar kept 0-d (np.ascontiguousarray makes it 1-d)."""
    return np.asarray(t).copy(order="C")


def read(path):
    """(tensors, metadata) of a safetensors file; BadFile naming what is wrong with it."""
    st, safe_open = _safetensors()
    if not os.path.isfile(path):
        raise BadFile(f"{path}: no such file")
    try:
        tensors = st.load_file(path)
        with safe_open(path, "np") as f:
            metadata = f.metadata() or {}
    except Exception as exc:  # noqa: BLE001  (safetensors' own error says what is wrong with the bytes)
        size = os.path.getsize(path)
        raise BadFile(f"{path} is not a readable safetensors file ({size} bytes): {exc}") from None
    return tensors, metadata


def result_shapes(config, n_samples, steps, tasks, checkpoints):
    """{name: shape} a result must hold for tasks (each layer's output, forward.i, is optional: optional_names)."""
    shapes = {}
    params = [tuple(shape) for layer in config.parametrized
              for shape in registry.LAYERS[layer.kind].shapes(*layer.shape)]
    keys = leaf_keys(config)
    if "forward" in tasks:
        shapes["output"] = (n_samples, *config.output_shape)
    if "evaluate" in tasks:
        shapes["evaluation.output"] = (n_samples, *config.output_shape)
    if "gradients" in tasks:
        shapes["loss"] = ()
        shapes.update({f"grad.{k}": s for k, s in zip(keys, params)})
    if "train" in tasks:
        shapes["losses"] = (config.epochs, steps)
        shapes.update({f"final.{k}": s for k, s in zip(keys, params)})
        shapes.update({f"epoch{e}.{k}": s for e in checkpoints for k, s in zip(keys, params)})
        shapes.update({f"epoch{e}.state.{state_key(name)}.{k}": s for e in checkpoints
                       for name in registry.OPTIMIZERS[config.optimizer].state for k, s in zip(keys, params)})
        buffers = [(leaf_key(name), (layer.shape[0],)) for name, layer in _buffers(config)]
        shapes.update({f"epoch{e}.buffer.{k}": s for e in checkpoints for k, s in buffers})
    return shapes


def _buffers(config):
    """[(buffer name, its layer)]: every buffer leaf in TrainState.buffers' order (batch norm's running statistics,
    one value per feature)."""
    return [(f"layer {l} {name}", layer) for l, layer in enumerate(config.parametrized, start=1)
            for name in registry.LAYERS[layer.kind].buffers]


def as_buffers(config, tensors, prefix):
    """TrainState.buffers from tensors named prefix + buffer key: a tuple per layer with parameters."""
    return [tuple(tensors[f"{prefix}layer{l}.{state_key(name)}"] for name in registry.LAYERS[layer.kind].buffers)
            for l, layer in enumerate(config.parametrized, start=1)]


def state_key(name):
    """An optimizer state's name in a tensor's: 'first moment' -> first_moment."""
    return name.replace(" ", "_")


def optional_names(config):
    """The names a result may hold besides result_shapes': each layer's output."""
    return {f"forward.{i}" for i in range(1, len(config.model) + 1)}


def check_result(who, path, config, n_samples, steps, tasks, checkpoints):
    """The result file's tensors, checked against the problem: BadResult naming the first thing wrong with it (one
    line), Unsupported where the program says it cannot run the problem or does not implement a task asked."""
    try:
        tensors, metadata = read(path)
    except BadFile as exc:
        raise BadResult(f"{who}: bad result: {exc}") from None
    if metadata.get("unsupported"):
        raise Unsupported(f"{who} does not support this configuration: {metadata['unsupported']}")
    supports = [t.strip() for t in metadata.get("supports", ",".join(TASKS)).split(",") if t.strip()]
    unknown = [t for t in supports if t not in TASKS]
    if unknown:
        raise BadResult(f"{who}: bad result: its metadata declares supports={metadata['supports']!r}; the tasks are "
                        f"{', '.join(TASKS)}")
    missing_tasks = [t for t in tasks if t not in supports]
    if missing_tasks and not [t for t in tasks if t in supports]:
        raise Unsupported(f"{who} does not support this check: it computes {', '.join(supports)}, not "
                          f"{', '.join(missing_tasks)}")
    asked = [t for t in tasks if t in supports]
    wanted = result_shapes(config, n_samples, steps, asked, checkpoints)
    every = result_shapes(config, n_samples, steps, TASKS, sorted({*checkpoints, *_epochs_named(tensors)}))
    extra = sorted(set(tensors) - set(every) - optional_names(config))
    if extra:
        raise BadResult(f"{who}: bad result: extra tensor{'s' if len(extra) > 1 else ''} {', '.join(extra)} (a "
                        f"result holds {_describe(wanted)})")
    missing = [name for name in wanted if name not in tensors]
    if missing:
        raise BadResult(f"{who}: bad result: missing tensor{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} (tasks asked: "
                        f"{', '.join(asked)})")
    dtype = np.dtype(config.dtype)
    for name, t in tensors.items():
        if t.dtype != dtype:
            raise BadResult(f"{who}: bad result: {name} is {t.dtype}, the problem is {config.dtype}")
        if name in wanted and t.shape != wanted[name]:
            raise BadResult(f"{who}: bad result: {name} has shape {t.shape}, expected {wanted[name]}")
    for name in wanted:  # a trajectory that goes non-finite is divergence, said by the trajectory check
        t = tensors[name]
        if not name.startswith(("losses", "final.", "epoch")) and not np.isfinite(t).all():
            at = tuple(int(i) for i in np.argwhere(~np.isfinite(t))[0])
            raise BadResult(f"{who}: bad result: {name} holds {t[at] if t.ndim else t} "
                            f"(first at {list(at) if at else 'the scalar'})")
    return tensors, asked


def _epochs_named(tensors):
    """The epochs E of the epoch<E>.* tensors a result holds."""
    epochs = set()
    for name in tensors:
        head = name.split(".")[0]
        if head.startswith("epoch") and head[5:].isdigit():
            epochs.add(int(head[5:]))
    return epochs


def _describe(shapes):
    names = list(shapes)
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def as_params(config, tensors, prefix):
    """[(leaf, ...)] per layer from tensors named prefix + leaf key."""
    keys = iter(leaf_keys(config))
    return [tuple(tensors[prefix + next(keys)] for _ in registry.LAYERS[layer.kind].params)
            for layer in config.parametrized]
