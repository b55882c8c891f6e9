"""Causal multi-head self-attention with its backward written by hand in NumPy: checked as an op, on its own.

    crosscheck op attention=examples.attention_numpy_op:OP

Two heads over a width of 8 (shape=(8, 2)), GPT-2's layout without biases: [q, k, v] = x W_qkv, each split into the
heads; a = softmax(q k^T / sqrt(d)) with position i attending to j <= i; y = merge(a v) W_o. The backward goes the
same way back: through W_o, a v, the softmax row by row, the scaled scores, and W_qkv.
"""

import math

import numpy as np

from crosscheck.adapters import numpy_pair

HEADS = 2


def heads(t):
    """(N, T, H d) -> (N, H, T, d)"""
    n, length, width = t.shape
    return t.reshape(n, length, HEADS, width // HEADS).transpose(0, 2, 1, 3)


def merged(t):
    """(N, H, T, d) -> (N, T, H d)"""
    n, h, length, d = t.shape
    return t.transpose(0, 2, 1, 3).reshape(n, length, h * d)


def attention_forward(x, w_qkv, w_o):
    width = x.shape[-1]
    q, k, v = (heads(part) for part in np.split(x @ w_qkv, 3, axis=-1))
    scale = 1.0 / math.sqrt(width // HEADS)  # a Python float: float32 stays float32
    scores = q @ k.transpose(0, 1, 3, 2) * scale
    causal = np.tril(np.ones(scores.shape[-2:], dtype=bool))
    scores = np.where(causal, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    out = merged(weights @ v)
    return out @ w_o, (x, q, k, v, weights, out, scale, w_qkv, w_o)


def attention_backward(dy, cache):
    x, q, k, v, weights, out, scale, w_qkv, w_o = cache
    d_out = heads(dy @ w_o.T)
    dv = weights.transpose(0, 1, 3, 2) @ d_out
    d_weights = d_out @ v.transpose(0, 1, 3, 2)
    d_scores = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True))
    dq = d_scores @ k * scale
    dk = d_scores.transpose(0, 1, 3, 2) @ q * scale
    d_qkv = np.concatenate([merged(dq), merged(dk), merged(dv)], axis=-1)
    flat = x.reshape(-1, x.shape[-1])
    dw_qkv = flat.T @ d_qkv.reshape(-1, d_qkv.shape[-1])
    dw_o = out.reshape(-1, out.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])
    return d_qkv @ w_qkv.T, dw_qkv, dw_o


OP = numpy_pair(attention_forward, attention_backward, kind="attention", shape=(8, HEADS), name="attention-by-hand")
