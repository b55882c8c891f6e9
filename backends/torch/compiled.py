"""PyTorch's fastest honest path on tiny problems: the mirror's own gradients(), compiled.

Eager PyTorch pays microseconds of dispatch per op, and XOR's step is ~40 tiny ops,
so eager training is slower than the seeds' NumPy loop. torch.compile fuses
EPOCHS_PER_CALL whole epochs of the same manual backprop (mlp.gradients, then plain
gradient descent) into one generated kernel, called once per block of epochs.
Compiling takes tens of seconds, once per configuration and shape, so this path
is for long runs and benchmarks; full batch only.
"""

import torch

from .mlp import Run, TrainState, gradients, train_step

EPOCHS_PER_CALL = 32
_cache: dict[tuple, object] = {}


def _epochs(params, X, y, config, k: int):
    """k full-batch epochs of manual backprop: (params after them, their k losses)."""
    losses = []
    for _ in range(k):
        loss, grads = gradients(params, X, y, config)
        params = [tuple(p - config.lr * g for p, g in zip(leaves, dleaves)) for leaves, dleaves in zip(params, grads)]
        losses.append(loss)
    return params, torch.stack(losses)


def compiled_epochs(config, k):
    """The compiled block of k epochs for config (compiled on first use, then cached).

    One torch.compile wrapper per (config, k), rather than one shared: a shared one would
    recompile for every new configuration and, past dynamo's recompile limit, quietly run eagerly.
    """
    key = (config, k)
    if key not in _cache:
        _cache[key] = torch.compile(_epochs, fullgraph=True, dynamic=False)
    return _cache[key]


def train(params, X, y, config, orders=None, checkpoints=(), epochs_per_call=EPOCHS_PER_CALL):
    """mlp.train's contract for full batch and no checkpoints but the last; the remainder runs eagerly."""
    if orders is not None or config.batch_size is not None or config.optimizer != "sgd" or config.weight_decay:
        raise ValueError("the compiled PyTorch path trains full batch, by plain gradient descent, only")
    if set(checkpoints) - {config.epochs}:
        raise ValueError("the compiled PyTorch path keeps no checkpoints but the last epoch")
    block = compiled_epochs(config, epochs_per_call)
    losses = []
    with torch.inference_mode():
        params = [tuple(p.clone() for p in leaves) for leaves in params]
        for _ in range(config.epochs // epochs_per_call):
            params, block_losses = block(params, X, y, config, epochs_per_call)
            losses.append(block_losses)
        for _ in range(config.epochs % epochs_per_call):
            loss, params, _ = train_step(params, {}, 0, X, y, config)  # plain descent keeps no state
            losses.append(loss.reshape(1))
    state = TrainState(params, {}, config.epochs)  # plain descent keeps no state; one step per epoch
    saved = {config.epochs: state} if config.epochs in checkpoints else {}
    return Run(losses=torch.cat(losses).reshape(config.epochs, 1), checkpoints=saved, params=params, state=state)
