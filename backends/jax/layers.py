"""Layer kinds in JAX, mirroring reference/layers.py function for function."""

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from crosscheck.common import walk
from crosscheck.common.registry import ACTIVATIONS

# one definition: the reference's
from crosscheck.reference.layers import (
    ALIASES,
    BATCHNORM_EPS,
    BATCHNORM_MOMENTUM,
    LAYERNORM_EPS,
    RMSNORM_EPS,
    ROPE_BASE,
)

from . import activations

TINY = 64  # products with at most this many multiply-adds are written out (see dot)


def dot(a, b):
    """a @ b, as np.dot in the reference.

    JAX quirk: on the CPU, XLA calls a library routine for every dot, tens of nanoseconds
    each, which dominates XOR's epoch; a product this small is written as a broadcast
    multiply and a sum instead, which XLA fuses with its neighbours. Broadcasting would
    quietly accept mismatched shapes, so they are checked first (at trace time: free).
    """
    if a.shape[-1] != b.shape[0]:
        raise ValueError(f"dot: shapes {a.shape} and {b.shape} not aligned")
    if a.ndim == 2 and a.shape[0] * a.shape[1] * b.shape[1] <= TINY:
        return (a[:, :, None] * b[None, :, :]).sum(axis=1)
    return a @ b


def dense_forward(layer, p, x):
    """z = x W + b"""
    W, b = p
    z = dot(x, W) + b
    return z, (x, z)


def dense_backward(layer, p, cache, dz):
    """dW = x^T dz, db = sum_n dz, dx = dz W^T"""
    W, _ = p
    x, _ = cache
    dx = dot(dz, W.T) if layer.input_grad else None
    if x.ndim > 2:  # on a sequence (N, T, n), every step is one more sample to W and b
        x, dz = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])
    return dx, (dot(x.T, dz), dz.sum(axis=0))


def linear_forward(layer, p, x):
    """z = x W"""
    (W,) = p
    z = dot(x, W)
    return z, (x, z)


def linear_backward(layer, p, cache, dz):
    """dW = x^T dz, dx = dz W^T"""
    (W,) = p
    x = cache[0]
    dx = None if not layer.input_grad else dot(dz, W.T)
    x, dz = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])
    return dx, (dot(x.T, dz),)


def layernorm_forward(layer, p, x):
    """y = g x^ + b, x^ = (x - mu) / sqrt(var + eps), mu and var (biased) over each sample's features"""
    g, b = p
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    inv_std = 1.0 / jnp.sqrt(var + LAYERNORM_EPS)
    x_hat = (x - mu) * inv_std
    y = g * x_hat + b
    return y, (x, y, x_hat, inv_std)


def layernorm_backward(layer, p, cache, dy):
    """dg = sum_n dy x^, db = sum_n dy; dx = (dx^ - mean(dx^) - x^ mean(dx^ x^)) / sqrt(var + eps), dx^ = dy g,
    the means over each sample's features: the terms through mu and var."""
    g, _ = p
    _, _, x_hat, inv_std = cache
    dx_hat = dy * g
    dx = inv_std * (dx_hat - dx_hat.mean(axis=-1, keepdims=True)
                    - x_hat * (dx_hat * x_hat).mean(axis=-1, keepdims=True))
    leading = tuple(range(dy.ndim - 1))
    return dx, ((dy * x_hat).sum(axis=leading), dy.sum(axis=leading))


def rmsnorm_forward(layer, p, x):
    """y = g x^, x^ = x / sqrt(mean(x^2) + eps), the mean over each sample's features (the last axis)"""
    (g,) = p
    inv_rms = 1.0 / jnp.sqrt((x * x).mean(axis=-1, keepdims=True) + RMSNORM_EPS)
    x_hat = x * inv_rms
    y = g * x_hat
    return y, (x, y, x_hat, inv_rms)


def rmsnorm_backward(layer, p, cache, dy):
    """dg = sum over samples (and steps) of dy x^; dx = (dx^ - x^ mean(dx^ x^)) / rms, dx^ = dy g"""
    (g,) = p
    _, _, x_hat, inv_rms = cache
    dx_hat = dy * g
    dx = inv_rms * (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=-1, keepdims=True))
    return dx, ((dy * x_hat).sum(axis=tuple(range(dy.ndim - 1))),)


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


def attention_forward(layer, p, x):
    """y = merge(a v) W_o, a = softmax(q k^T / sqrt(d)) causally masked, [q, k, v] = x W_qkv"""
    W_qkv, W_o = p
    width, heads, kv = attention_heads(layer)
    d = width // heads
    qkv = dot(x, W_qkv)
    q = split_heads(qkv[..., :width], heads)
    k, v = split_heads(qkv[..., width:width + kv * d], kv), split_heads(qkv[..., width + kv * d:], kv)
    if layer.kind == "rope_attention":  # positions by rotation: q and k turned by t theta_i at position t
        q, k = rotary(q, 1.0), rotary(k, 1.0)
    k, v = jnp.repeat(k, heads // kv, axis=1), jnp.repeat(v, heads // kv, axis=1)
    s = jnp.matmul(q, k.transpose(0, 1, 3, 2)) / math.sqrt(d)
    a = activations.softmax_forward(jnp.where(jnp.tri(x.shape[1], dtype=bool), s, -jnp.inf))
    o = merge_heads(jnp.matmul(a, v))
    y = dot(o, W_o)
    return y, (x, y, q, k, v, a, o)


def attention_backward(layer, p, cache, dy):
    """dW_o = o^T dy, do = dy W_o^T; dv = a^T do, da = do v^T, ds = a (da - sum_j da a), dq = ds k / sqrt(d),
    dk = ds^T q / sqrt(d); dW_qkv = x^T dqkv, dx = dqkv W_qkv^T"""
    W_qkv, W_o = p
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
    return dx, (dot(x.T, dqkv), dot(o.T, dy))


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


def batchnorm_forward(layer, p, x):
    """y = g x^ + b, x^ = (x - mu) / sqrt(var + eps), mu and var (biased) over the batch, per feature: training mode"""
    g, b = p
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)
    inv_std = 1.0 / jnp.sqrt(var + BATCHNORM_EPS)
    x_hat = (x - mu) * inv_std
    y = g * x_hat + b
    return y, (x, y, x_hat, inv_std, mu, var)


def batchnorm_backward(layer, p, cache, dy):
    """dg = sum_n dy x^, db = sum_n dy; dx = (dx^ - mean(dx^) - x^ mean(dx^ x^)) / sqrt(var + eps), dx^ = dy g,
    the means over the batch: the terms through the batch's mean and variance."""
    g, _ = p
    _, _, x_hat, inv_std, _, _ = cache
    dx_hat = dy * g
    dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0))
    return dx, ((dy * x_hat).sum(axis=0), dy.sum(axis=0))


def batchnorm_evaluate(layer, p, r, x):
    """y = g (x - running mean) / sqrt(running variance + eps) + b: evaluation mode, no batch statistics"""
    g, b = p
    running_mean, running_var = r
    y = g * (x - running_mean) / jnp.sqrt(running_var + BATCHNORM_EPS) + b
    return y, (x, y)


def batchnorm_running(layer, r, cache):
    """The running statistics after a training step: r <- (1 - m) r + m s, s the batch's mean and its variance
    made unbiased, var n / (n - 1) (the biased one normalises; torch keeps the unbiased one)."""
    mean, var = r
    x, _, _, _, mu, batch_var = cache
    n = x.shape[0]
    return ((1.0 - BATCHNORM_MOMENTUM) * mean + BATCHNORM_MOMENTUM * mu,
            (1.0 - BATCHNORM_MOMENTUM) * var + BATCHNORM_MOMENTUM * batch_var * n / (n - 1))


def batchnorm_buffers(layer, p):
    """The running statistics before training: mean 0, variance 1"""
    g, _ = p
    return jnp.zeros_like(g), jnp.ones_like(g)


def dropout_forward(layer, p, x, mask=None):
    """y = x m / (1 - r): inverted dropout, m this step's keep mask (drawn by the reference); y = x without one
    (evaluation)"""
    if mask is None:
        return x, (x, x, None)
    y = x * mask / (1.0 - layer.shape[0])
    return y, (x, y, mask)


def dropout_backward(layer, p, cache, dy):
    """dx = dy m / (1 - r), with the forward's own mask"""
    _, _, mask = cache
    if mask is None:
        return dy, ()
    return dy * mask / (1.0 - layer.shape[0]), ()


def windows(x, k, stride):
    """(N, C, k k, H_out, W_out): each k x k window of x (N, C, H, W) at the stride, its entries row-major: per sample,
    im2col's (C k k, H_out W_out) matrix, one column per window."""
    n, c, h, w = x.shape
    h_out, w_out = (h - k) // stride + 1, (w - k) // stride + 1
    cols = jnp.empty((n, c, k * k, h_out, w_out), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols = cols.at[:, :, i * k + j].set(x[:, :, i:i + stride * h_out:stride, j:j + stride * w_out:stride])
    return cols


def unwindows(dcols, shape, k, stride):
    """dx (N, C, H, W) = shape's: each entry of dcols (windows' layout) added back to the input it was read from
    (col2im). Windows that overlap add up where they share an input."""
    h_out, w_out = dcols.shape[3:]
    dx = jnp.zeros(shape, dtype=dcols.dtype)
    for i in range(k):
        for j in range(k):
            dx = dx.at[:, :, i:i + stride * h_out:stride, j:j + stride * w_out:stride].add(dcols[:, :, i * k + j])
    return dx


def conv2d_forward(layer, p, x):
    """z_n = W cols_n + b for each sample n, cols_n its windows of the zero-padded input (a correlation at the stride):
    im2col, then one (batched) matrix product"""
    W, b = p
    _, _, k, stride, pad = layer.shape
    cols = windows(jnp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))), k, stride)  # (N, C, k k, H_out, W_out)
    n, _, _, h_out, w_out = cols.shape
    z = jnp.matmul(W.reshape(len(W), -1), cols.reshape(n, -1, h_out * w_out)) + b[:, None]
    return z.reshape(n, len(W), h_out, w_out), (x, z, cols)


def conv2d_backward(layer, p, cache, dz):
    """dW = sum_n dz_n cols_n^T, db = sum dz, dcols_n = W^T dz_n; dx = col2im(dcols), the padding cut off"""
    W, _ = p
    x, _, cols = cache
    _, _, k, stride, pad = layer.shape
    dz = dz.reshape(len(dz), len(W), -1)  # (N, c_out, H_out W_out): one column per window
    dW = jnp.matmul(dz, cols.reshape(len(dz), W[0].size, -1).transpose(0, 2, 1)).sum(axis=0).reshape(W.shape)
    db = dz.sum(axis=(0, 2))
    if not layer.input_grad:
        return None, (dW, db)
    dcols = jnp.matmul(W.reshape(len(W), -1).T, dz).reshape(cols.shape)
    n, c, h, w = x.shape
    dx = unwindows(dcols, (n, c, h + 2 * pad, w + 2 * pad), k, stride)
    return dx[:, :, pad:pad + h, pad:pad + w], (dW, db)


def maxpool2d_forward(layer, p, x):
    """y = the max of each k x k window; the cache keeps which entry gave it (the first maximum, row-major)"""
    k, stride = layer.shape
    cols = windows(x, k, stride)
    arg = cols.argmax(axis=2)
    y = jnp.take_along_axis(cols, arg[:, :, None], axis=2)[:, :, 0]  # autodiff: the first maximum too
    return y, (x, y, arg)


def maxpool2d_backward(layer, p, cache, dy):
    """dx = dy sent to each window's maximum alone (a one-hot over the window), added up where windows overlap"""
    x, _, arg = cache
    k, stride = layer.shape
    dcols = jnp.zeros((*dy.shape[:2], k * k, *dy.shape[2:]), dtype=dy.dtype)
    dcols = jnp.put_along_axis(dcols, arg[:, :, None], dy[:, :, None], axis=2,
                               inplace=False)  # each window's gradient at its maximum
    return unwindows(dcols, x.shape, k, stride), ()


def avgpool2d_forward(layer, p, x):
    """y = the mean of each k x k window"""
    k, stride = layer.shape
    y = windows(x, k, stride).mean(axis=2)
    return y, (x, y)


def avgpool2d_backward(layer, p, cache, dy):
    """dx = dy / k^2 sent to every entry of its window, added up where windows overlap"""
    x = cache[0]
    k, stride = layer.shape
    dcols = jnp.repeat(dy[:, :, None] / (k * k), k * k, axis=2)
    return unwindows(dcols, x.shape, k, stride), ()


def embedding_forward(layer, p, x):
    """y[n, t] = W[x[n, t]]: each id's row of W"""
    (W,) = p
    y = W[x]
    return y, (x, y)


def embedding_backward(layer, p, cache, dy):
    """dW[v] = the sum of dy over every position holding id v (.at[].add adds repeated ids up); ids have no gradient"""
    (W,) = p
    ids, _ = cache
    dW = jnp.zeros_like(W).at[ids].add(dy)
    return None, (dW,)


def rnn_forward(layer, p, x):
    """h_t = tanh(x_t W_x + h_(t-1) W_h + b) for t = 1..T from the initial state h_0; y = (h_1, ..., h_T)"""
    W_x, W_h, b, h0 = p

    def step(h, x_t):
        h = jnp.tanh(dot(x_t, W_x) + dot(h, W_h) + b)
        return h, h

    # JAX quirk: a Python loop over the steps, as the reference's, is traced once per step into the compiled epoch (an
    # LSTM case took 37 s to compile); lax.scan traces one. hs stacks h_0..h_T, as the reference's list holds them.
    h_0 = jnp.broadcast_to(h0, (len(x), len(h0)))
    _, hs = lax.scan(step, h_0, jnp.swapaxes(x, 0, 1))
    y = jnp.swapaxes(hs, 0, 1)
    hs = jnp.concatenate([h_0[None], hs])
    return y, (x, y, hs)


def rnn_backward(layer, p, cache, dy):
    """Backprop through time: at each step t = T..1, dh_t = dy_t + what step t+1 carried back, dz = dh_t (1 - h_t^2);
    dW_x += x_t^T dz, dW_h += h_(t-1)^T dz, db += sum_n dz, dx_t = dz W_x^T, and dz W_h^T is carried to the step before;
    dh_0 sums over the batch (every sample starts from the one initial state)."""
    W_x, W_h, b, _ = p
    x, _, hs = cache
    steps = x.shape[1]

    def step(i, grads):  # t = T-1-i: from the last step back to the first (lax.fori_loop: see rnn_forward)
        t = steps - 1 - i
        dh, dW_x, dW_h, db, dx = grads
        dh = dh + dy[:, t]  # the step's own output gradient, and the later steps' carried back to it
        dz = dh * (1.0 - hs[t + 1] ** 2)
        return (dot(dz, W_h.T), dW_x + dot(x[:, t].T, dz), dW_h + dot(hs[t].T, dz), db + dz.sum(axis=0),
                dx.at[:, t].set(dot(dz, W_x.T)))

    zeros = (jnp.zeros_like(W_x), jnp.zeros_like(W_h), jnp.zeros_like(b), jnp.zeros_like(x))
    dh, dW_x, dW_h, db, dx = lax.fori_loop(0, steps, step, (jnp.zeros_like(dy[:, 0]), *zeros))
    return dx if layer.input_grad else None, (dW_x, dW_h, db, dh.sum(axis=0))


def lstm_forward(layer, p, x):
    """z = x_t W_x + h_(t-1) W_h + b split into gates [i, f, g, o] (torch's order); c_t = s(f) c_(t-1) + s(i) tanh(g),
    h_t = s(o) tanh(c_t), s the sigmoid, for t = 1..T from (h_0, c_0); y = (h_1, ..., h_T)"""
    W_x, W_h, b, h0, c0 = p
    n = len(h0)

    def step(state, x_t):
        h, c = state
        z = dot(x_t, W_x) + dot(h, W_h) + b
        i, f, o = (1.0 / (1.0 + jnp.exp(-z[:, k * n:(k + 1) * n])) for k in (0, 1, 3))
        g = jnp.tanh(z[:, 2 * n:3 * n])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), (h, c, (z, i, f, g, o))

    # lax.scan, as rnn_forward's; hs and cs stack the states from step 0, gates each step's (z, i, f, g, o).
    start = (jnp.broadcast_to(h0, (len(x), n)), jnp.broadcast_to(c0, (len(x), n)))
    _, (hs, cs, gates) = lax.scan(step, start, jnp.swapaxes(x, 0, 1))
    y = jnp.swapaxes(hs, 0, 1)
    hs, cs = jnp.concatenate([start[0][None], hs]), jnp.concatenate([start[1][None], cs])
    return y, (x, y, hs, cs, gates)


def lstm_backward(layer, p, cache, dy):
    """Backprop through time from dc_T = 0: at each step t = T..1, dh_t = dy_t + what step t+1 carried back,
    dc_t += dh_t s(o) (1 - tanh^2 c_t), and
    the gates' pre-activations get di = dc g i (1 - i), df = dc c_(t-1) f (1 - f), dg = dc i (1 - g^2),
    do = dh tanh(c_t) o (1 - o) (i, f, o after the sigmoid, g after tanh); then dW_x, dW_h, db and dx_t as the RNN's,
    dh_(t-1) = dz W_h^T and dc_(t-1) = dc_t f."""
    W_x, W_h, b, _, _ = p
    x, _, hs, cs, gates = cache
    steps = x.shape[1]

    def step(j, grads):  # t = T-1-j: from the last step back to the first (lax.fori_loop: see rnn_forward)
        t = steps - 1 - j
        dh, dc, dW_x, dW_h, db, dx = grads
        dh = dh + dy[:, t]  # as the RNN's: this step's output gradient, and the one carried back
        z, i, f, g, o = (gate[t] for gate in gates)
        tanh_c = jnp.tanh(cs[t + 1])
        dc = dc + dh * o * (1.0 - tanh_c ** 2)
        dz = jnp.concatenate([dc * g * i * (1.0 - i), dc * cs[t] * f * (1.0 - f), dc * i * (1.0 - g ** 2),
                              dh * tanh_c * o * (1.0 - o)], axis=1)
        return (dot(dz, W_h.T), dc * f, dW_x + dot(x[:, t].T, dz), dW_h + dot(hs[t].T, dz), db + dz.sum(axis=0),
                dx.at[:, t].set(dot(dz, W_x.T)))

    zeros = (jnp.zeros_like(W_x), jnp.zeros_like(W_h), jnp.zeros_like(b), jnp.zeros_like(x))
    dh, dc, dW_x, dW_h, db, dx = lax.fori_loop(0, steps, step, (jnp.zeros_like(dy[:, 0]), jnp.zeros_like(dy[:, 0]),
                                                                 *zeros))
    return dx if layer.input_grad else None, (dW_x, dW_h, db, dh.sum(axis=0), dc.sum(axis=0))


def residual_forward(layer, p, x):
    """y = x: the block's input goes on into f (the walk keeps it, and adds it to f's output where the block ends)"""
    return x, (x, x)


def residual_backward(layer, p, cache, dy):
    """dx = dy, the gradient back through f (the walk adds the one that skipped f)"""
    return dy, ()


def last_forward(layer, p, x):
    """y = x_T: a sequence's last step"""
    y = x[:, -1]
    return y, (x, y)


def last_backward(layer, p, cache, dy):
    """dx_T = dy, and 0 at every other step"""
    x = cache[0]
    dx = jnp.zeros_like(x).at[:, -1].set(dy)
    return dx, ()


def flatten_forward(layer, p, x):
    """y = x as (N, C H W), row-major"""
    y = x.reshape(len(x), -1)
    return y, (x, y)


def flatten_backward(layer, p, cache, dy):
    """dx = dy in x's shape"""
    x = cache[0]
    return dy.reshape(x.shape), ()


def activation_layer_forward(layer, p, z):
    """a = f(z), f the layer's kind (activations.py)"""
    a = activations.FORWARD[layer.kind](z)
    return a, (z, a)


def activation_layer_backward(layer, p, cache, da):
    """dz = da * f'(z); an activation has no parameters"""
    z, a = cache
    return activations.BACKWARD[layer.kind](da, z, a), ()


FORWARD: dict = {**walk.table(globals(), walk.KINDS, "forward", aliases=ALIASES),
                 **dict.fromkeys(ACTIVATIONS, activation_layer_forward)}
BACKWARD = {**walk.table(globals(), walk.KINDS, "backward", aliases=ALIASES),
            **dict.fromkeys(ACTIVATIONS, activation_layer_backward)}
# The kinds with buffers (registry LayerKind.buffers): the forward of evaluation mode, which reads them; their
# update after a training step, from the step's cache; their value before training.
EVALUATE = walk.table(globals(), walk.BUFFERED, "evaluate")
RUNNING = walk.table(globals(), walk.BUFFERED, "running")
BUFFERS = walk.table(globals(), walk.BUFFERED, "buffers")
