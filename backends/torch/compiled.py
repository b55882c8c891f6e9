"""PyTorch's fastest honest path on tiny problems: the mirror's own gradients(), compiled.

Eager PyTorch pays microseconds of dispatch per op, and XOR's step is ~40 tiny ops,
so eager training is slower than the seeds' NumPy loop. torch.compile fuses
EPOCHS_PER_CALL whole epochs of the same manual backprop (mlp.gradients, then plain
gradient descent) into one generated kernel, called once per block of epochs.
Compiling takes tens of seconds, once per configuration and shape, so this path
is for long runs and benchmarks; full batch only.

The compiled block is kept on disk (torch's ahead-of-time precompile: dynamo's graph,
its guards and inductor's code), in crosscheck/ beside inductor's own cache
(TORCHINDUCTOR_CACHE_DIR), so that a second process loads it instead of tracing the
unrolled epochs again. The file is named by everything the compiled code depends on:
the configuration, the inputs' shapes and dtypes, the thread count, torch's version
and the source of the code it traces; a file that will not load is compiled again.
"""

import functools
import hashlib
import pathlib

import torch

from .mlp import Run, TrainState, gradients, train_step

EPOCHS_PER_CALL = 32
_cache: dict[pathlib.Path, object] = {}  # the blocks this process has, by the file each is kept in
# The packages whose code the block traces (the mirror, the configuration's properties): their source names the file.
TRACED = tuple(pathlib.Path(__file__).resolve().parents[2] / package for package in ("backends/torch", "common",
                                                                                      "reference"))


def _epochs(params, X, y, config, k: int):
    """k full-batch epochs of manual backprop: (params after them, their k losses)."""
    losses = []
    for _ in range(k):
        loss, grads = gradients(params, X, y, config)
        params = [tuple(p - config.lr * g for p, g in zip(leaves, dleaves)) for leaves, dleaves in zip(params, grads)]
        losses.append(loss)
    return params, torch.stack(losses)


def compiled_epochs(config, k, params, X, y):
    """The compiled block of k epochs for config on inputs shaped as (params, X, y): from memory, else from disk,
    else compiled (and saved). Call this, and the block it returns, in inference mode: the guards were recorded there.

    One compiled function per (config, k, shapes), rather than one shared torch.compile wrapper: a shared one
    would recompile for every new configuration and, past dynamo's recompile limit, quietly run eagerly.
    """
    path = stored(config, k, params, X, y)
    if path not in _cache:
        _cache[path] = loaded(path) or compiled(path, (params, X, y, config, k))
    return _cache[path]


def stored(config, k, params, X, y):
    """Where the compiled block for these inputs is kept: a file named by the hash of what its code depends on."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir  # TORCHINDUCTOR_CACHE_DIR, else torch's default

    digest = hashlib.sha256(repr((config, k, torch.__version__, torch.get_num_threads(), traced_source(),
                                  [(t.shape, t.dtype, t.device) for t in (*(p for ps in params for p in ps), X, y)]))
                            .encode())
    return pathlib.Path(cache_dir()) / "crosscheck" / f"epochs-{digest.hexdigest()[:32]}.pt2"


@functools.cache
def traced_source():
    """The hash of the traced packages' source, read once a process (a training run must not time it)."""
    digest = hashlib.sha256()
    for source in sorted(f for package in TRACED for f in package.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def loaded(path):
    """The compiled block saved at path, or None when there is none or it will not load (torch's precompiled
    format is experimental: a file from another build is compiled again, not trusted)."""
    try:
        with open(path, "rb") as f:
            return torch.compiler.load_compiled_function(f)
    except Exception:  # none saved yet, or one that fails to load: a miss, and compiled() writes it afresh
        return None


def compiled(path, example):
    """The block compiled ahead of time on example's shapes, and saved at path for the next process."""
    block = torch.compile(_epochs, fullgraph=True, dynamic=False).aot_compile((example, {}))  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    block.save_compiled_function(str(path))  # written whole, then renamed into place: workers may race
    return block


def unsupported(config, orders=None):
    """What config asks of training that the compiled block (_epochs: the mirror's gradients, then p - lr * g, with
    no masks, buffers or state) would leave out: each a name, so that nothing is silently trained otherwise."""
    return [name for name, asked in (
        ("minibatches", orders is not None or config.batch_size is not None),
        (f"optimizer {config.optimizer}", config.optimizer != "sgd"), ("weight decay", config.weight_decay),
        ("a learning-rate schedule", config.schedule is not None), ("gradient clipping", config.clip is not None),
        ("gradient accumulation", config.accumulate > 1), ("mixed precision", config.compute is not None),
        ("sharding", config.world > 1), ("dropout", config.noise_widths()),
        ("running statistics", config.buffer_names())) if asked]


def train(params, X, y, config, orders=None, checkpoints=(), epochs_per_call=EPOCHS_PER_CALL):
    """mlp.train's contract for full batch and no checkpoints but the last; the remainder runs eagerly."""
    unbuilt = unsupported(config, orders)
    if unbuilt:
        raise ValueError(f"the compiled PyTorch path trains full batch, by plain gradient descent, only: not "
                         f"{', '.join(unbuilt)}")
    if set(checkpoints) - {config.epochs}:
        raise ValueError("the compiled PyTorch path keeps no checkpoints but the last epoch")
    losses = []
    with torch.inference_mode():
        # contiguous, as the block hands them back: the guards check strides, and one compiled block serves all
        params = [tuple(p.clone(memory_format=torch.contiguous_format) for p in leaves) for leaves in params]
        block = compiled_epochs(config, epochs_per_call, params, X, y)
        for _ in range(config.epochs // epochs_per_call):
            params, block_losses = block(params, X, y, config, epochs_per_call)
            losses.append(block_losses)
        for _ in range(config.epochs % epochs_per_call):
            loss, params, _ = train_step(params, {}, 0, X, y, config)  # plain descent keeps no state
            losses.append(loss.reshape(1))
    state = TrainState(params, {}, config.epochs)  # plain descent keeps no state; one step per epoch
    saved = {config.epochs: state} if config.epochs in checkpoints else {}
    return Run(losses=torch.cat(losses).reshape(config.epochs, 1), checkpoints=saved, params=params, state=state)
