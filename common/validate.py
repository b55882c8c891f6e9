"""Input checks run before any training: bad input is named, never coerced."""

import numpy as np

from . import registry
from .problem import batches


def check_inputs(params, X, y, config, orders=None):
    """Raise TypeError or ValueError naming the first thing wrong with (params, X, y, orders)."""
    _check_data(X, y, config)
    check_params(params, config)
    _check_batches(X, config)
    _check_orders(orders, X, config)


def _check_data(X, y, config):
    """X and y: NumPy arrays of the configuration's dtype (X int64 ids before an embedding), finite, shaped as the
    model's input and output, as many samples each, targets the loss can read."""
    dtype = np.dtype(config.dtype)
    sample, out = config.sample_shape, config.output_shape
    first = config.model[0]
    ids = registry.LAYERS[first.kind].ids  # X holds integer ids (an embedding reads them), not values
    for name, arr, ndim in (("X", X, 1 + len(sample)), ("y", y, 1 + len(out))):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(arr).__name__}")
        if name == "X" and ids:
            if arr.dtype != np.int64:
                raise TypeError(f"X has dtype {arr.dtype}, but a model that begins with {first.kind} reads int64 ids")
        elif arr.dtype != dtype:
            raise TypeError(f"{name} has dtype {arr.dtype}, but the configuration trains in {dtype}; "
                            "convert it explicitly")
        if arr.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D with one sample per row, got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} has no samples (shape {arr.shape})")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinity")
    if X.shape[1:] != sample:
        if len(sample) == 1:
            raise ValueError(f"X has {X.shape[1]} features per sample, but layers[0] is {sample[0]}")
        raise ValueError(f"X has per-sample shape {X.shape[1:]}, but the model's input_shape is {sample}")
    if y.shape[1:] != out:
        if len(out) == 1:
            raise ValueError(f"y has {y.shape[1]} targets per sample, but the output width layers[-1] is {out[0]}")
        raise ValueError(f"y has per-sample shape {y.shape[1:]}, but the model scores every step: {out}")
    if ids and (X.min() < 0 or X.max() >= first.shape[0]):
        raise ValueError(f"X holds ids outside [0, {first.shape[0]}), the {first.kind} layer's vocabulary: "
                         f"from {X.min()} to {X.max()}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}")
    targets = registry.LOSSES[config.loss].targets
    if targets == "labels" and np.any((y < 0) | (y > 1)):
        raise ValueError(f"{config.loss} targets must lie in [0, 1]")
    if targets == "one_hot" and not np.allclose(y.sum(axis=-1), 1):
        raise ValueError(f"{config.loss} targets must be distributions: each row of y must sum to 1 (every step's, "
                         "for a sequence)")


def _check_batches(X, config):
    """Every training batch large enough for the model's layers (batch norm's two samples), for accumulate's
    micro-batches, and divisible among a data-parallel world's shards."""
    if config.batch_size is not None and config.batch_size > X.shape[0]:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {X.shape[0]} samples")
    needs = max(((registry.LAYERS[layer.kind].min_batch, layer.kind) for layer in config.model), default=(1, ""))

    n, size = X.shape[0], config.batch_size or X.shape[0]
    smallest = min(stop - start for start, stop in batches(n, config.batch_size))  # the last may be partial
    if smallest < needs[0]:
        raise ValueError(f"a {needs[1]} layer needs at least {needs[0]} samples per training batch, but the last "
                         f"batch of each epoch holds {smallest} ({n} samples in batches of {size})")
    if smallest < config.accumulate:
        raise ValueError(f"accumulate {config.accumulate} splits each batch into that many micro-batches, but the "
                         f"last batch of each epoch holds {smallest} samples ({n} samples in batches of {size})")
    sizes = {stop - start for start, stop in batches(n, config.batch_size)}
    if config.parallel_kind == "data" and any(rows % config.world for rows in sizes):
        raise ValueError(f"parallel {config.parallel!r} splits each batch into {config.world} equal shards, but the "
                         f"batches hold {' and '.join(map(str, sorted(sizes)))} samples ({n} samples in batches of "
                         f"{size}): make every batch a multiple of {config.world}")


def _check_orders(orders, X, config):
    """orders, where minibatches need them: one permutation of the samples per epoch."""
    if orders is not None:
        if orders.shape != (config.epochs, X.shape[0]):
            raise ValueError(f"orders must have shape (epochs, N) = {(config.epochs, X.shape[0])}, got {orders.shape}")
        if not np.all(np.sort(orders, axis=1) == np.arange(X.shape[0])):
            raise ValueError("each row of orders must be a permutation of the sample indices")
    elif config.batch_size is not None:
        raise ValueError("minibatch training (batch_size set) needs orders; see "
                         "crosscheck.common.initializers.batch_orders")


def check_params(params, config):
    """Raise if params do not match config.model and config.dtype, layer by layer (shapes from the registry)."""
    dtype = np.dtype(config.dtype)
    with_params = list(config.parametrized)
    if len(params) != len(with_params):
        raise ValueError(f"params has {len(params)} layers, but the configuration has {len(with_params)}")
    for l, (leaves, layer) in enumerate(zip(params, with_params), start=1):
        kind = registry.LAYERS[layer.kind]
        shapes = kind.shapes(*layer.shape)
        if len(leaves) != len(shapes):
            raise ValueError(f"layer {l} has {len(leaves)} parameter arrays, but a {layer.kind} layer has "
                             f"{len(shapes)} ({', '.join(kind.params)})")
        for what, arr, shape in zip(kind.params, leaves, shapes):
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"layer {l} {what} must be a NumPy array, got {type(arr).__name__}")
            if arr.shape != shape:
                raise ValueError(f"layer {l} {what} has shape {arr.shape}, expected {shape}")
            if arr.dtype != dtype:
                raise TypeError(f"layer {l} {what} has dtype {arr.dtype}, expected {dtype}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"layer {l} {what} contains NaN or infinity")
