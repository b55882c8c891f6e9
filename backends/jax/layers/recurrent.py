"""Recurrent layers over sequences (N, T, D), by backpropagation through time in JAX, mirroring
reference/layers/recurrent.py function for function."""

import jax.numpy as jnp
from jax import lax

from .dense import dot


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
