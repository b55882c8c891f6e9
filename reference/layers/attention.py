"""Attention and the transformer's other pieces: swiglu (Llama's MLP), multi-head causal self-attention (grouped heads
and RoPE among its options), the tied unembedding, learned positions."""

import math

import numpy as np

from .. import activations
from ..precision import total
from .dense import dot

ROPE_BASE = 10000.0  # RoPE's theta_i = base^(-2i/d), Llama's and GPT-NeoX's


def swiglu_forward(layer, p, x):
    """y = h W_d, h = silu(g) u, g = x W_g, u = x W_u: each position's width to hidden and back (Llama's MLP)"""
    W_g, W_u, W_d = p
    g, u = dot(x, W_g), dot(x, W_u)
    h = activations.silu_forward(g) * u
    y = dot(h, W_d)
    return y, (x, y, g, u, h)


def swiglu_backward(layer, p, cache, dy):
    """dW_d = h^T dy, dh = dy W_d^T; dg = dh u silu'(g), du = dh silu(g); dW_g = x^T dg, dW_u = x^T du;
    dx = dg W_g^T + du W_u^T (every position one more sample to the weights)"""
    W_g, W_u, W_d = p
    x, _, g, u, h = cache
    dh = dot(dy, W_d.T)
    s = activations.silu_forward(g)
    dg, du = activations.silu_backward(dh * u, g, s), dh * s
    dx = dot(dg, W_g.T) + dot(du, W_u.T) if layer.input_grad else None
    x, dy, dg, du, h = (t.reshape(-1, t.shape[-1]) for t in (x, dy, dg, du, h))
    return dx, (np.dot(x.T, dg), np.dot(x.T, du), np.dot(h.T, dy))


def attention_heads(layer):
    """(width, heads, key-value heads) of an attention layer's shape (width, heads[, kv_heads]): as many key-value heads
    as query heads unless grouped"""
    width, heads, *kv = layer.shape
    return width, heads, kv[0] if kv else heads


def split_heads(x, heads):
    """(N, T, H d) -> (N, H, T, d): each head's slice of the width, a sequence of its own"""
    n, t, w = x.shape
    return x.reshape(n, t, heads, w // heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """(N, H, T, d) -> (N, T, H d): the heads side by side, head 0 first (split_heads undone)"""
    n, h, t, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(n, t, h * d)


def shared_heads(dk, kv):
    """(N, H, T, d) -> (N, KV, T, d): the gradients of the query heads that share a key (or value) head, added up"""
    n, h, t, d = dk.shape
    return total(dk.reshape(n, kv, h // kv, t, d), axis=2)


def rotary(x, sign):
    """x (N, H, T, d) turned by sign t theta_i at position t, features i and i + d/2 a pair (rotate-half, as GPT-NeoX
    and Hugging Face's Llama write it), theta_i = ROPE_BASE^(-2i/d); the angles in float64, cast to x's dtype"""
    t, d = x.shape[2], x.shape[3]
    angle = np.arange(t)[:, None] * ROPE_BASE ** (-np.arange(0, d, 2) / d)  # (T, d/2)
    cos, sin = np.cos(angle).astype(x.dtype), (sign * np.sin(angle)).astype(x.dtype)
    x1, x2 = x[..., :d // 2], x[..., d // 2:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def projections(p):
    """(W_qkv, b_qkv, W_o, b_o): biased_attention's four leaves (GPT-2's c_attn and c_proj biases), or attention's
    two, their biases None"""
    return tuple(p) if len(p) == 4 else (p[0], None, p[1], None)


def biased(t, b):
    """t + b, or t where the projection has no bias"""
    return t if b is None else t + b


def attention_forward(layer, p, x):
    """y = merge(a v) W_o, a = softmax(q k^T / sqrt(d)) row by row with position i attending to j <= i only,
    [q, k, v] = x W_qkv split into heads of width d (each key and value head shared by heads / kv_heads query heads)"""
    W_qkv, b_qkv, W_o, b_o = projections(p)
    width, heads, kv = attention_heads(layer)
    d = width // heads
    qkv = biased(dot(x, W_qkv), b_qkv)
    q = split_heads(qkv[..., :width], heads)
    k, v = split_heads(qkv[..., width:width + kv * d], kv), split_heads(qkv[..., width + kv * d:], kv)
    if layer.kind == "rope_attention":  # positions by rotation: q and k turned by t theta_i at position t
        q, k = rotary(q, 1.0), rotary(k, 1.0)
    k, v = np.repeat(k, heads // kv, axis=1), np.repeat(v, heads // kv, axis=1)
    s = np.matmul(q, k.transpose(0, 1, 3, 2)) / math.sqrt(d)
    a = activations.softmax_forward(np.where(np.tri(x.shape[1], dtype=bool), s, -np.inf))  # masked: j > i gets 0
    o = merge_heads(np.matmul(a, v))
    y = biased(dot(o, W_o), b_o)
    return y, (x, y, q, k, v, a, o)


def attention_backward(layer, p, cache, dy):
    """dW_o = o^T dy, do = dy W_o^T; per head dv = a^T do, da = do v^T, ds = a (da - sum_j da a) (softmax's, row by
    row: a masked entry's a is 0, so is its ds), dq = ds k / sqrt(d), dk = ds^T q / sqrt(d); a shared key or value
    head sums its query heads'; dW_qkv = x^T dqkv, dx = dqkv W_qkv^T"""
    W_qkv, b_qkv, W_o, _ = projections(p)
    x, _, q, k, v, a, o = cache
    width, heads, kv = attention_heads(layer)
    d = width // heads
    do = split_heads(dot(dy, W_o.T), heads)
    dv = np.matmul(a.transpose(0, 1, 3, 2), do)
    da = np.matmul(do, v.transpose(0, 1, 3, 2))
    ds = a * (da - total(da * a, axis=-1, keepdims=True))
    dq, dk = np.matmul(ds, k) / math.sqrt(d), np.matmul(ds.transpose(0, 1, 3, 2), q) / math.sqrt(d)
    dk, dv = shared_heads(dk, kv), shared_heads(dv, kv)
    if layer.kind == "rope_attention":  # a rotation's transpose turns back: by -t theta_i
        dq, dk = rotary(dq, -1.0), rotary(dk, -1.0)
    dqkv = np.concatenate([merge_heads(dq), merge_heads(dk), merge_heads(dv)], axis=-1)
    dx = dot(dqkv, W_qkv.T) if layer.input_grad else None
    x, dy, o, dqkv = (t.reshape(-1, t.shape[-1]) for t in (x, dy, o, dqkv))  # every position one more sample
    if b_qkv is None:
        return dx, (np.dot(x.T, dqkv), np.dot(o.T, dy))
    return dx, (np.dot(x.T, dqkv), total(dqkv, axis=0), np.dot(o.T, dy), total(dy, axis=0))


def unembed_forward(layer, p, x):
    """y = x E^T: each position's scores over the vocabulary, E the embedding's matrix (vocabulary, dim)"""
    (E,) = p
    y = dot(x, E.T)
    return y, (x, y)


def unembed_backward(layer, p, cache, dy):
    """dx = dy E; dE = dy^T x over every sample and position (the walk adds the embedding's own use to it)"""
    (E,) = p
    x = cache[0]
    dx = dot(dy, E)
    x, dy = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    return dx, (np.dot(dy.T, x),)


def vocabulary_forward(layer, p, x):
    """y = x[..., :V]: the scores of the vocabulary's V tokens, those of the padded rows past it dropped (llm.c pads
    50257 to 50304): they take no probability"""
    (V,) = layer.shape
    y = x[..., :V]
    return y, (x, y)


def vocabulary_backward(layer, p, cache, dy):
    """dx = dy on the V tokens, 0 on the padded ones: their rows of the tied matrix get no gradient through it"""
    x = cache[0]
    dx = np.zeros_like(x)
    dx[..., :dy.shape[-1]] = dy
    return dx, ()


def positions_forward(layer, p, x):
    """y[n, t] = x[n, t] + P[t]: each position's learned vector added (GPT-2's position embedding)"""
    (P,) = p
    y = x + P[:x.shape[1]]
    return y, (x, y)


def positions_backward(layer, p, cache, dy):
    """dx = dy; dP[t] = sum_n dy[n, t] for the sequence's T positions, 0 for those past it"""
    (P,) = p
    dP = np.zeros_like(P)
    dP[:dy.shape[1]] = total(dy, axis=0)
    return dy, (dP,)
