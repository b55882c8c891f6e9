"""Layer kinds, each a forward and a backward, in NumPy; the model (mlp.py) walks them in order.

forward(layer, p, x) -> (y, cache): the layer's output, and what its backward needs. Every cache
begins with (input, output).
backward(layer, p, cache, dy) -> (dx, dp): the gradient for the layer's input, and for its own
parameters p (a tuple shaped like p; () for a layer without parameters). The first layer's input is the
data, whose gradient nobody needs: there (layer.input_grad False) dx may be None.

A new layer kind is a pair here, the same pair in each backend's layers.py, and an entry in
common/registry.py LAYERS; the walk does not change.
"""

import math

import numpy as np

from crosscheck.common import walk
from crosscheck.common.registry import ACTIVATIONS

from . import activations
from .precision import average, total

LAYERNORM_EPS = 1e-5  # torch.nn.functional.layer_norm's default
RMSNORM_EPS = 1e-6  # Llama's (torch.nn.functional.rms_norm's default is the dtype's machine epsilon)
BATCHNORM_EPS, BATCHNORM_MOMENTUM = 1e-5, 0.1  # torch.nn.functional.batch_norm's defaults
ROPE_BASE = 10000.0  # RoPE's theta_i = base^(-2i/d), Llama's and GPT-NeoX's


def dot(a, b):
    """a b over a's last axis and b's first: np.dot (on XOR's rows, faster than @), but an N-D a (a sequence,
    (N, T, n)) as one 2-D product: np.dot of an N-D array does not call BLAS (116 times slower at GPT-2's size)"""
    if a.ndim <= 2:
        return np.dot(a, b)
    return np.dot(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[-1])


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
    return dx, (np.dot(x.T, dz), total(dz, axis=0))


def linear_forward(layer, p, x):
    """z = x W: dense without a bias (Llama's projections)"""
    (W,) = p
    z = dot(x, W)
    return z, (x, z)


def linear_backward(layer, p, cache, dz):
    """dW = x^T dz, dx = dz W^T"""
    (W,) = p
    x = cache[0]
    dx = None if not layer.input_grad else dot(dz, W.T)
    x, dz = x.reshape(-1, x.shape[-1]), dz.reshape(-1, dz.shape[-1])
    return dx, (np.dot(x.T, dz),)


def layernorm_forward(layer, p, x):
    """y = g x^ + b, x^ = (x - mu) / sqrt(var + eps), mu and var (biased) over each sample's (or position's) features"""
    g, b = p
    mu = average(x, axis=-1, keepdims=True)
    var = average((x - mu) ** 2, axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + LAYERNORM_EPS)
    x_hat = (x - mu) * inv_std
    y = g * x_hat + b
    return y, (x, y, x_hat, inv_std)


def layernorm_backward(layer, p, cache, dy):
    """dg = sum_n dy x^, db = sum_n dy; dx = (dx^ - mean(dx^) - x^ mean(dx^ x^)) / sqrt(var + eps), dx^ = dy g,
    the means over each sample's features: the terms through mu and var."""
    g, _ = p
    _, _, x_hat, inv_std = cache
    dx_hat = dy * g
    dx = inv_std * (dx_hat - average(dx_hat, axis=-1, keepdims=True)
                    - x_hat * average(dx_hat * x_hat, axis=-1, keepdims=True))
    leading = tuple(range(dy.ndim - 1))  # the samples, and the positions of a sequence
    return dx, (total(dy * x_hat, axis=leading), total(dy, axis=leading))


def rmsnorm_forward(layer, p, x):
    """y = g x^, x^ = x / sqrt(mean(x^2) + eps), the mean over each sample's features (the last axis)"""
    (g,) = p
    inv_rms = 1.0 / np.sqrt(average(x * x, axis=-1, keepdims=True) + RMSNORM_EPS)
    x_hat = x * inv_rms
    y = g * x_hat
    return y, (x, y, x_hat, inv_rms)


def rmsnorm_backward(layer, p, cache, dy):
    """dg = sum over samples (and steps) of dy x^; dx = (dx^ - x^ mean(dx^ x^)) / rms, dx^ = dy g, the mean over
    the features: the term through the mean of squares."""
    (g,) = p
    _, _, x_hat, inv_rms = cache
    dx_hat = dy * g
    dx = inv_rms * (dx_hat - x_hat * average(dx_hat * x_hat, axis=-1, keepdims=True))
    return dx, (total(dy * x_hat, axis=tuple(range(dy.ndim - 1))),)


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


def attention_forward(layer, p, x):
    """y = merge(a v) W_o, a = softmax(q k^T / sqrt(d)) row by row with position i attending to j <= i only,
    [q, k, v] = x W_qkv split into heads of width d (each key and value head shared by heads / kv_heads query heads)"""
    W_qkv, W_o = p
    width, heads, kv = attention_heads(layer)
    d = width // heads
    qkv = dot(x, W_qkv)
    q = split_heads(qkv[..., :width], heads)
    k, v = split_heads(qkv[..., width:width + kv * d], kv), split_heads(qkv[..., width + kv * d:], kv)
    if layer.kind == "rope_attention":  # positions by rotation: q and k turned by t theta_i at position t
        q, k = rotary(q, 1.0), rotary(k, 1.0)
    k, v = np.repeat(k, heads // kv, axis=1), np.repeat(v, heads // kv, axis=1)
    s = np.matmul(q, k.transpose(0, 1, 3, 2)) / math.sqrt(d)
    a = activations.softmax_forward(np.where(np.tri(x.shape[1], dtype=bool), s, -np.inf))  # masked: j > i gets 0
    o = merge_heads(np.matmul(a, v))
    y = dot(o, W_o)
    return y, (x, y, q, k, v, a, o)


def attention_backward(layer, p, cache, dy):
    """dW_o = o^T dy, do = dy W_o^T; per head dv = a^T do, da = do v^T, ds = a (da - sum_j da a) (softmax's, row by
    row: a masked entry's a is 0, so is its ds), dq = ds k / sqrt(d), dk = ds^T q / sqrt(d); a shared key or value
    head sums its query heads'; dW_qkv = x^T dqkv, dx = dqkv W_qkv^T"""
    W_qkv, W_o = p
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
    return dx, (np.dot(x.T, dqkv), np.dot(o.T, dy))


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


def batchnorm_forward(layer, p, x):
    """y = g x^ + b, x^ = (x - mu) / sqrt(var + eps), mu and var (biased) over the batch, per feature: training mode"""
    g, b = p
    mu = average(x, axis=0)
    var = average((x - mu) ** 2, axis=0)
    inv_std = 1.0 / np.sqrt(var + BATCHNORM_EPS)
    x_hat = (x - mu) * inv_std
    y = g * x_hat + b
    return y, (x, y, x_hat, inv_std, mu, var)


def batchnorm_backward(layer, p, cache, dy):
    """dg = sum_n dy x^, db = sum_n dy; dx = (dx^ - mean(dx^) - x^ mean(dx^ x^)) / sqrt(var + eps), dx^ = dy g,
    the means over the batch: the terms through the batch's mean and variance."""
    g, _ = p
    _, _, x_hat, inv_std, _, _ = cache
    dx_hat = dy * g
    dx = inv_std * (dx_hat - average(dx_hat, axis=0) - x_hat * average(dx_hat * x_hat, axis=0))
    return dx, (total(dy * x_hat, axis=0), total(dy, axis=0))


def batchnorm_evaluate(layer, p, r, x):
    """y = g (x - running mean) / sqrt(running variance + eps) + b: evaluation mode, no batch statistics"""
    g, b = p
    running_mean, running_var = r
    y = g * (x - running_mean) / np.sqrt(running_var + BATCHNORM_EPS) + b
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
    return np.zeros_like(g), np.ones_like(g)


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
    cols = np.empty_like(x, shape=(n, c, k * k, h_out, w_out))
    for i in range(k):
        for j in range(k):
            cols[:, :, i * k + j] = x[:, :, i:i + stride * h_out:stride, j:j + stride * w_out:stride]
    return cols


def unwindows(dcols, shape, k, stride):
    """dx (N, C, H, W) = shape's: each entry of dcols (windows' layout) added back to the input it was read from
    (col2im). Windows that overlap add up where they share an input."""
    h_out, w_out = dcols.shape[3:]
    dx = np.zeros_like(dcols, shape=shape)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + stride * h_out:stride, j:j + stride * w_out:stride] += dcols[:, :, i * k + j]
    return dx


def conv2d_forward(layer, p, x):
    """z_n = W cols_n + b for each sample n, cols_n its windows of the zero-padded input (a correlation at the stride):
    im2col, then one (batched) matrix product"""
    W, b = p
    _, _, k, stride, pad = layer.shape
    cols = windows(np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))), k, stride)  # (N, C, k k, H_out, W_out)
    n, _, _, h_out, w_out = cols.shape
    z = np.matmul(W.reshape(len(W), -1), cols.reshape(n, -1, h_out * w_out)) + b[:, None]
    return z.reshape(n, len(W), h_out, w_out), (x, z, cols)


def conv2d_backward(layer, p, cache, dz):
    """dW = sum_n dz_n cols_n^T, db = sum dz, dcols_n = W^T dz_n; dx = col2im(dcols), the padding cut off"""
    W, _ = p
    x, _, cols = cache
    _, _, k, stride, pad = layer.shape
    dz = dz.reshape(len(dz), len(W), -1)  # (N, c_out, H_out W_out): one column per window
    dW = total(np.matmul(dz, cols.reshape(len(dz), W[0].size, -1).transpose(0, 2, 1)), axis=0).reshape(W.shape)
    db = total(dz, axis=(0, 2))
    if not layer.input_grad:
        return None, (dW, db)
    dcols = np.matmul(W.reshape(len(W), -1).T, dz).reshape(cols.shape)
    n, c, h, w = x.shape
    dx = unwindows(dcols, (n, c, h + 2 * pad, w + 2 * pad), k, stride)
    return dx[:, :, pad:pad + h, pad:pad + w], (dW, db)


def maxpool2d_forward(layer, p, x):
    """y = the max of each k x k window; the cache keeps which entry gave it (the first maximum, row-major)"""
    k, stride = layer.shape
    cols = windows(x, k, stride)
    arg = cols.argmax(axis=2)
    y = np.take_along_axis(cols, arg[:, :, None], axis=2)[:, :, 0]  # autodiff: the first maximum too
    return y, (x, y, arg)


def maxpool2d_backward(layer, p, cache, dy):
    """dx = dy sent to each window's maximum alone (a one-hot over the window), added up where windows overlap"""
    x, _, arg = cache
    k, stride = layer.shape
    dcols = np.zeros_like(dy, shape=(*dy.shape[:2], k * k, *dy.shape[2:]))
    np.put_along_axis(dcols, arg[:, :, None], dy[:, :, None], axis=2)  # each window's gradient at its maximum
    return unwindows(dcols, x.shape, k, stride), ()


def avgpool2d_forward(layer, p, x):
    """y = the mean of each k x k window"""
    k, stride = layer.shape
    y = average(windows(x, k, stride), axis=2)
    return y, (x, y)


def avgpool2d_backward(layer, p, cache, dy):
    """dx = dy / k^2 sent to every entry of its window, added up where windows overlap"""
    x = cache[0]
    k, stride = layer.shape
    dcols = np.repeat(dy[:, :, None] / (k * k), k * k, axis=2)
    return unwindows(dcols, x.shape, k, stride), ()


def embedding_forward(layer, p, x):
    """y[n, t] = W[x[n, t]]: each id's row of W"""
    (W,) = p
    y = W[x]
    return y, (x, y)


def embedding_backward(layer, p, cache, dy):
    """dW[v] = the sum of dy over every position holding id v (np.add.at adds repeated ids up); ids have no gradient"""
    (W,) = p
    ids, _ = cache
    dW = np.zeros_like(W)
    np.add.at(dW, ids, dy)
    return None, (dW,)


def rnn_forward(layer, p, x):
    """h_t = tanh(x_t W_x + h_(t-1) W_h + b) for t = 1..T from the initial state h_0; y = (h_1, ..., h_T)"""
    W_x, W_h, b, h0 = p
    hs = [np.broadcast_to(h0, (len(x), len(h0)))]
    for t in range(x.shape[1]):
        hs.append(np.tanh(np.dot(x[:, t], W_x) + np.dot(hs[-1], W_h) + b))
    y = np.stack(hs[1:], axis=1)
    return y, (x, y, hs)


def rnn_backward(layer, p, cache, dy):
    """Backprop through time: at each step t = T..1, dh_t = dy_t + what step t+1 carried back, dz = dh_t (1 - h_t^2);
    dW_x += x_t^T dz, dW_h += h_(t-1)^T dz, db += sum_n dz, dx_t = dz W_x^T, and dz W_h^T is carried to the step before;
    dh_0 sums over the batch (every sample starts from the one initial state)."""
    W_x, W_h, b, _ = p
    x, _, hs = cache
    dW_x, dW_h, db, dx = np.zeros_like(W_x), np.zeros_like(W_h), np.zeros_like(b), np.zeros_like(x)
    dh = np.zeros_like(dy[:, 0])
    for t in reversed(range(x.shape[1])):
        dh = dh + dy[:, t]  # the step's own output gradient, and the later steps' carried back to it
        dz = dh * (1.0 - hs[t + 1] ** 2)
        dW_x += np.dot(x[:, t].T, dz)
        dW_h += np.dot(hs[t].T, dz)
        db += total(dz, axis=0)
        dx[:, t] = np.dot(dz, W_x.T)
        dh = np.dot(dz, W_h.T)
    return dx if layer.input_grad else None, (dW_x, dW_h, db, total(dh, axis=0))


def lstm_forward(layer, p, x):
    """z = x_t W_x + h_(t-1) W_h + b split into gates [i, f, g, o] (torch's order); c_t = s(f) c_(t-1) + s(i) tanh(g),
    h_t = s(o) tanh(c_t), s the sigmoid, for t = 1..T from (h_0, c_0); y = (h_1, ..., h_T)"""
    W_x, W_h, b, h0, c0 = p
    n = len(h0)
    hs, cs, gates = [np.broadcast_to(h0, (len(x), n))], [np.broadcast_to(c0, (len(x), n))], []
    for t in range(x.shape[1]):
        z = np.dot(x[:, t], W_x) + np.dot(hs[-1], W_h) + b
        i, f, o = (1.0 / (1.0 + np.exp(-z[:, k * n:(k + 1) * n])) for k in (0, 1, 3))
        g = np.tanh(z[:, 2 * n:3 * n])
        cs.append(f * cs[-1] + i * g)
        hs.append(o * np.tanh(cs[-1]))
        gates.append((z, i, f, g, o))
    y = np.stack(hs[1:], axis=1)
    return y, (x, y, hs, cs, gates)


def lstm_backward(layer, p, cache, dy):
    """Backprop through time from dc_T = 0: at each step t = T..1, dh_t = dy_t + what step t+1 carried back,
    dc_t += dh_t s(o) (1 - tanh^2 c_t), and
    the gates' pre-activations get di = dc g i (1 - i), df = dc c_(t-1) f (1 - f), dg = dc i (1 - g^2),
    do = dh tanh(c_t) o (1 - o) (i, f, o after the sigmoid, g after tanh); then dW_x, dW_h, db and dx_t as the RNN's,
    dh_(t-1) = dz W_h^T and dc_(t-1) = dc_t f."""
    W_x, W_h, b, _, _ = p
    x, _, hs, cs, gates = cache
    dW_x, dW_h, db, dx = np.zeros_like(W_x), np.zeros_like(W_h), np.zeros_like(b), np.zeros_like(x)
    dh, dc = np.zeros_like(dy[:, 0]), np.zeros_like(dy[:, 0])
    steps = x.shape[1]
    for t in reversed(range(steps)):
        dh = dh + dy[:, t]  # as the RNN's: this step's output gradient, and the one carried back
        z, i, f, g, o = gates[t]
        tanh_c = np.tanh(cs[t + 1])
        dc = dc + dh * o * (1.0 - tanh_c ** 2)
        dz = np.concatenate([dc * g * i * (1.0 - i), dc * cs[t] * f * (1.0 - f), dc * i * (1.0 - g ** 2),
                             dh * tanh_c * o * (1.0 - o)], axis=1)
        dW_x += np.dot(x[:, t].T, dz)
        dW_h += np.dot(hs[t].T, dz)
        db += total(dz, axis=0)
        dx[:, t] = np.dot(dz, W_x.T)
        dh, dc = np.dot(dz, W_h.T), dc * f
    return dx if layer.input_grad else None, (dW_x, dW_h, db, total(dh, axis=0), total(dc, axis=0))


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
    dx = np.zeros_like(x)
    dx[:, -1] = dy
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
    """a = f(z), f the layer's kind (reference/activations.py)"""
    a = activations.FORWARD[layer.kind](z)
    return a, (z, a)


def activation_layer_backward(layer, p, cache, da):
    """dz = da * f'(z); an activation has no parameters"""
    z, a = cache
    return activations.BACKWARD[layer.kind](da, z, a), ()


ALIASES = {"rope_attention": "attention"}  # one pair serves both: the rotation is a branch of attention's
FORWARD: dict = {**walk.table(globals(), walk.KINDS, "forward", aliases=ALIASES),
                 **dict.fromkeys(ACTIVATIONS, activation_layer_forward)}
BACKWARD = {**walk.table(globals(), walk.KINDS, "backward", aliases=ALIASES),
            **dict.fromkeys(ACTIVATIONS, activation_layer_backward)}
# The kinds with buffers (registry LayerKind.buffers): the forward of evaluation mode, which reads them; their
# update after a training step, from the step's cache; their value before training.
EVALUATE = walk.table(globals(), walk.BUFFERED, "evaluate")
RUNNING = walk.table(globals(), walk.BUFFERED, "running")
BUFFERS = walk.table(globals(), walk.BUFFERED, "buffers")
