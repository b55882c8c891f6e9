"""The one source of random numbers: initial parameters and minibatch orders, drawn with NumPy.

Every backend is handed these arrays; no backend draws its own. Parameters use
np.random.RandomState, the legacy generator the seed notebooks use through
np.random.*, and draw in the notebooks' order and shapes, so that
`np.random.seed(s)` followed by a notebook's own code starts from exactly the
parameters that `initial_params(config)` returns for seed s.

Layout: layer l maps a (N, fan_in) batch to (N, fan_out) with z = a @ W + b,
W (fan_in, fan_out) and b (fan_out,).
"""

import numpy as np

from . import registry


def standard_normal(rng, fan_in, fan_out):
    """Seed 1: W ~ N(0, 1), b = 0."""
    return rng.randn(fan_in, fan_out), np.zeros(fan_out)


def uniform_pm1(rng, fan_in, fan_out):
    """Seed 2: W, b ~ U[-1, 1), drawn as the notebook does: W as (fan_out, fan_in), then b."""
    W = rng.rand(fan_out, fan_in) * 2 - 1
    b = rng.rand(fan_out, 1) * 2 - 1
    return W.T, b[:, 0]


def glorot_uniform(rng, fan_in, fan_out):
    """W ~ U[-r, r) with r = sqrt(6 / (fan_in + fan_out)), b = 0."""
    r = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, size=(fan_in, fan_out)), np.zeros(fan_out)


def he_normal(rng, fan_in, fan_out):
    """W ~ N(0, 2 / fan_in), b = 0."""
    return rng.randn(fan_in, fan_out) * np.sqrt(2.0 / fan_in), np.zeros(fan_out)


SCHEMES = {
    "standard_normal": standard_normal,
    "uniform_pm1": uniform_pm1,
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
}


def _conv2d(scheme, rng, layer, W, b):
    """W drawn as the (c_in k k, c_out) matrix of the im2col product, laid out (c_out, c_in, k, k)"""
    c_in, c_out, k = layer.shape[:3]
    return W.T.reshape(c_out, c_in, k, k), b


def _recurrent(scheme, rng, layer, W_x, b):
    """W_x and b as the scheme draws them for (inputs, gates), W_h one more draw for (hidden, gates); the initial
    state (and an LSTM's initial cell) 0"""
    _, hidden = layer.shape
    W_h, _ = scheme(rng, hidden, len(b))
    return (W_x, W_h, b, np.zeros(hidden)) + ((np.zeros(hidden),) if layer.kind == "lstm" else ())


def _swiglu(scheme, rng, layer, W_g, b):
    """W_g as the scheme draws it for (width, hidden), then W_u for the same and W_d for (hidden, width); the biases
    the scheme draws are dropped (Llama's MLP has none)"""
    width, hidden = layer.shape
    W_u, _ = scheme(rng, width, hidden)
    W_d, _ = scheme(rng, hidden, width)
    return W_g, W_u, W_d


def _attention(scheme, rng, layer, W_qkv, b):
    """W_qkv as the scheme draws it for (width, the fused projection's width), then W_o for (width, width); the biases
    the scheme draws are dropped (the layer has none)"""
    width = layer.shape[0]
    W_o, _ = scheme(rng, width, width)
    return W_qkv, W_o


def _biased_attention(scheme, rng, layer, W_qkv, b):
    """attention's two matrices, and GPT-2's biases at 0 (its init, and llm.c's)"""
    W_qkv, W_o = _attention(scheme, rng, layer, W_qkv, b)
    return W_qkv, np.zeros(W_qkv.shape[1]), W_o, np.zeros(W_o.shape[1])


# A kind the scheme draws: (scheme, rng, layer, W, b) with W, b drawn for its fans -> its parameter leaves.
DRAWN = {
    "dense": lambda scheme, rng, layer, W, b: (W, b),
    "linear": lambda scheme, rng, layer, W, b: (W,),  # the bias the scheme draws dropped
    "conv2d": _conv2d,
    "embedding": lambda scheme, rng, layer, W, b: (W,),  # b drawn by uniform_pm1, and dropped
    "rnn": _recurrent,
    "lstm": _recurrent,
    "swiglu": _swiglu,
    "attention": _attention,
    "rope_attention": _attention,
    "biased_attention": _biased_attention,
    "positions": lambda scheme, rng, layer, W, b: (W,),  # as embedding's
}


def initial_params(config):
    """[(W1, b1), ...]: each parametrized layer's leaves, in config.dtype, from config.seed.

    The kinds with registered fans (dense, conv2d, embedding, rnn, lstm) are drawn by config.init, in model order,
    for their fans, and DRAWN lays the drawn matrix out as their leaves (conv2d: the dense layer of its im2col
    product, transposed to (c_out, c_in, k, k)). A kind the scheme does not draw starts at its registered fills
    (layernorm: scale 1, shift 0) and draws nothing, so the dense layers' stream is the seeds' whatever else the
    model holds.
    """
    rng = np.random.RandomState(config.seed)
    scheme = SCHEMES[config.init]
    params: list = []
    for layer in config.parametrized:
        kind = registry.LAYERS[layer.kind]
        if kind.fans is not None:  # zero biases draw nothing: seed 1's "weights, then biases"
            params.append(DRAWN[layer.kind](scheme, rng, layer, *scheme(rng, *kind.fans(*layer.shape))))
        else:
            params.append(tuple(np.full(shape, fill) for shape, fill in zip(kind.shapes(*layer.shape), kind.fills)))
    dtype = np.dtype(config.dtype)
    return [tuple(np.ascontiguousarray(p, dtype=dtype) for p in leaves) for leaves in params]


def dropout_masks(config, n_samples):
    """[(epochs, steps, batch, *shape) keep masks, one per dropout layer (shape: its input's, per sample)], or None
    for a model without dropout.

    1 keeps a unit, 0 drops it, each with probability 1 - p and p (p the layer's rate). Drawn from a Generator of
    its own (seeded [seed, 3]), all at once and handed to every backend, like the minibatch orders: no backend
    draws a random number. A partial last batch uses the first rows of its step's mask.
    """
    widths = config.noise_widths()
    if not widths:
        return None
    rng = np.random.default_rng([config.seed, 3])
    batch = config.batch_size or n_samples
    steps = len(range(0, n_samples, batch))  # common/problem.py's batches of an epoch
    rates = [layer.shape[0] for layer in config.model if layer.mask is not None]
    return [(rng.random((config.epochs, steps, batch, *shape)) >= rate).astype(config.dtype)
            for rate, shape in zip(rates, widths)]


def batch_orders(config, n_samples):
    """(epochs, n_samples) sample orders for minibatch training, or None for full batch.

    Drawn from a Generator of its own (seeded with [seed, 1]) so that the orders do
    not shift the parameters' stream, and vice versa.
    """
    if config.batch_size is None:
        return None
    rng = np.random.default_rng([config.seed, 1])
    return np.stack([rng.permutation(n_samples) for _ in range(config.epochs)]).astype(np.int64)

