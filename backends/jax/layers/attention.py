"""Attention and the transformer's other pieces in JAX, mirroring reference/layers/attention.py function for
function."""

import math

import jax.numpy as jnp
import numpy as np

from crosscheck.reference.layers.attention import ROPE_BASE  # one definition: the reference's

from .. import activations
from .dense import dot


def swiglu_forward(layer, p, x):
    """y = h W_d, h = silu(g) u, g = x W_g, u = x W_u"""
    W_g, W_u, W_d = p
    g, u = dot(x, W_g), dot(x, W_u)
    h = activations.silu_forward(g) * u
    y = dot(h, W_d)
    return y, (x, y, g, u, h)


def swiglu_backward(layer, p, cache, dy):
    """dW_d = h^T dy, dh = dy W_d^T; dg = dh u silu'(g), du = dh silu(g); dW_g = x^T dg, dW_u = x^T du;
    dx = dg W_g^T + du W_u^T"""
    W_g, W_u, W_d = p
    x, _, g, u, h = cache
    dh = dot(dy, W_d.T)
    s = activations.silu_forward(g)
    dg, du = activations.silu_backward(dh * u, g, s), dh * s
    dx = dot(dg, W_g.T) + dot(du, W_u.T) if layer.input_grad else None
    x, dy, dg, du, h = (t.reshape(-1, t.shape[-1]) for t in (x, dy, dg, du, h))
    return dx, (dot(x.T, dg), dot(x.T, du), dot(h.T, dy))


def attention_heads(layer):
    """(width, heads, key-value heads)"""
    width, heads, *kv = layer.shape
    return width, heads, kv[0] if kv else heads


def split_heads(x, heads):
    """(N, T, H d) -> (N, H, T, d)"""
    n, t, w = x.shape
    return x.reshape(n, t, heads, w // heads).transpose(0, 2, 1, 3)


def merge_heads(x):
    """(N, H, T, d) -> (N, T, H d)"""
    n, h, t, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(n, t, h * d)


def shared_heads(dk, kv):
    """(N, H, T, d) -> (N, KV, T, d): the query heads' gradients added up per shared head"""
    n, h, t, d = dk.shape
    return dk.reshape(n, kv, h // kv, t, d).sum(axis=2)


def rotary(x, sign):
    """x (N, H, T, d) turned by sign t theta_i at position t, features i and i + d/2 a pair; angles in float64 (NumPy:
    constants at trace time)"""
    t, d = x.shape[2], x.shape[3]
    angle = np.arange(t)[:, None] * ROPE_BASE ** (-np.arange(0, d, 2) / d)
    cos, sin = jnp.asarray(np.cos(angle), x.dtype), jnp.asarray(sign * np.sin(angle), x.dtype)
    x1, x2 = x[..., :d // 2], x[..., d // 2:]
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def projections(p):
    """(W_qkv, b_qkv, W_o, b_o): biased_attention's four leaves (GPT-2's c_attn and c_proj biases), or attention's
    two, their biases None"""
    return tuple(p) if len(p) == 4 else (p[0], None, p[1], None)


def biased(t, b):
    """t + b, or t where the projection has no bias"""
    return t if b is None else t + b


def attention_forward(layer, p, x):
    """y = merge(a v) W_o, a = softmax(q k^T / sqrt(d)) causally masked, [q, k, v] = x W_qkv"""
    W_qkv, b_qkv, W_o, b_o = projections(p)
    width, heads, kv = attention_heads(layer)
    d = width // heads
    qkv = biased(dot(x, W_qkv), b_qkv)
    q = split_heads(qkv[..., :width], heads)
    k, v = split_heads(qkv[..., width:width + kv * d], kv), split_heads(qkv[..., width + kv * d:], kv)
    if layer.kind == "rope_attention":  # positions by rotation: q and k turned by t theta_i at position t
        q, k = rotary(q, 1.0), rotary(k, 1.0)
    k, v = jnp.repeat(k, heads // kv, axis=1), jnp.repeat(v, heads // kv, axis=1)
    s = jnp.matmul(q, k.transpose(0, 1, 3, 2)) / math.sqrt(d)
    a = activations.softmax_forward(jnp.where(jnp.tri(x.shape[1], dtype=bool), s, -jnp.inf))
    o = merge_heads(jnp.matmul(a, v))
    y = biased(dot(o, W_o), b_o)
    return y, (x, y, q, k, v, a, o)


def attention_backward(layer, p, cache, dy):
    """dW_o = o^T dy, do = dy W_o^T; dv = a^T do, da = do v^T, ds = a (da - sum_j da a), dq = ds k / sqrt(d),
    dk = ds^T q / sqrt(d); dW_qkv = x^T dqkv, dx = dqkv W_qkv^T"""
    W_qkv, b_qkv, W_o, _ = projections(p)
    x, _, q, k, v, a, o = cache
    width, heads, kv = attention_heads(layer)
    d = width // heads
    do = split_heads(dot(dy, W_o.T), heads)
    dv = jnp.matmul(a.transpose(0, 1, 3, 2), do)
    da = jnp.matmul(do, v.transpose(0, 1, 3, 2))
    ds = a * (da - (da * a).sum(axis=-1, keepdims=True))
    dq, dk = jnp.matmul(ds, k) / math.sqrt(d), jnp.matmul(ds.transpose(0, 1, 3, 2), q) / math.sqrt(d)
    dk, dv = shared_heads(dk, kv), shared_heads(dv, kv)
    if layer.kind == "rope_attention":  # a rotation's transpose turns back: by -t theta_i
        dq, dk = rotary(dq, -1.0), rotary(dk, -1.0)
    dqkv = jnp.concatenate([merge_heads(dq), merge_heads(dk), merge_heads(dv)], axis=-1)
    dx = dot(dqkv, W_qkv.T) if layer.input_grad else None
    x, dy, o, dqkv = (t.reshape(-1, t.shape[-1]) for t in (x, dy, o, dqkv))
    if b_qkv is None:
        return dx, (dot(x.T, dqkv), dot(o.T, dy))
    return dx, (dot(x.T, dqkv), dqkv.sum(axis=0), dot(o.T, dy), dy.sum(axis=0))


def unembed_forward(layer, p, x):
    """y = x E^T"""
    (E,) = p
    y = dot(x, E.T)
    return y, (x, y)


def unembed_backward(layer, p, cache, dy):
    """dx = dy E; dE = dy^T x"""
    (E,) = p
    x = cache[0]
    dx = dot(dy, E)
    x, dy = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    return dx, (dot(dy.T, x),)


def vocabulary_forward(layer, p, x):
    """y = x[..., :V]: the V tokens' scores, the padded ones dropped"""
    (V,) = layer.shape
    y = x[..., :V]
    return y, (x, y)


def vocabulary_backward(layer, p, cache, dy):
    """dx = dy on the V tokens, 0 on the padded ones"""
    x = cache[0]
    dx = jnp.zeros_like(x).at[..., :dy.shape[-1]].set(dy)
    return dx, ()


def positions_forward(layer, p, x):
    """y[n, t] = x[n, t] + P[t]"""
    (P,) = p
    y = x + P[:x.shape[1]]
    return y, (x, y)


def positions_backward(layer, p, cache, dy):
    """dx = dy; dP[t] = sum_n dy[n, t] for the sequence's T positions, 0 for those past it"""
    (P,) = p
    dP = jnp.zeros_like(P).at[:dy.shape[1]].set(dy.sum(axis=0))
    return dy, (dP,)
