"""Recurrent layers over sequences (N, T, D), by backpropagation through time in PyTorch, mirroring
reference/layers/recurrent.py function for function."""

import torch


def rnn_forward(layer, p, x):
    """h_t = tanh(x_t W_x + h_(t-1) W_h + b) for t = 1..T from the initial state h_0; y = (h_1, ..., h_T)"""
    W_x, W_h, b, h0 = p
    hs = [h0.expand(len(x), len(h0))]
    for t in range(x.shape[1]):
        hs.append(torch.tanh(x[:, t] @ W_x + hs[-1] @ W_h + b))
    y = torch.stack(hs[1:], dim=1)
    return y, (x, y, hs)


def rnn_backward(layer, p, cache, dy):
    """Backprop through time: at each step t = T..1, dh_t = dy_t + what step t+1 carried back, dz = dh_t (1 - h_t^2);
    dW_x += x_t^T dz, dW_h += h_(t-1)^T dz, db += sum_n dz, dx_t = dz W_x^T, and dz W_h^T is carried to the step before;
    dh_0 sums over the batch (every sample starts from the one initial state)."""
    W_x, W_h, b, _ = p
    x, _, hs = cache
    dW_x, dW_h, db, dx = torch.zeros_like(W_x), torch.zeros_like(W_h), torch.zeros_like(b), torch.zeros_like(x)
    dh = torch.zeros_like(dy[:, 0])
    for t in reversed(range(x.shape[1])):
        dh = dh + dy[:, t]  # the step's own output gradient, and the later steps' carried back to it
        dz = dh * (1.0 - hs[t + 1] ** 2)
        dW_x += x[:, t].T @ dz
        dW_h += hs[t].T @ dz
        db += dz.sum(dim=0)
        dx[:, t] = dz @ W_x.T
        dh = dz @ W_h.T
    return dx if layer.input_grad else None, (dW_x, dW_h, db, dh.sum(dim=0))


def lstm_forward(layer, p, x):
    """z = x_t W_x + h_(t-1) W_h + b split into gates [i, f, g, o] (torch's order); c_t = s(f) c_(t-1) + s(i) tanh(g),
    h_t = s(o) tanh(c_t), s the sigmoid, for t = 1..T from (h_0, c_0); y = (h_1, ..., h_T)"""
    W_x, W_h, b, h0, c0 = p
    n = len(h0)
    hs, cs, gates = [h0.expand(len(x), n)], [c0.expand(len(x), n)], []
    for t in range(x.shape[1]):
        z = x[:, t] @ W_x + hs[-1] @ W_h + b
        i, f, o = (1.0 / (1.0 + torch.exp(-z[:, k * n:(k + 1) * n])) for k in (0, 1, 3))
        g = torch.tanh(z[:, 2 * n:3 * n])
        cs.append(f * cs[-1] + i * g)
        hs.append(o * torch.tanh(cs[-1]))
        gates.append((z, i, f, g, o))
    y = torch.stack(hs[1:], dim=1)
    return y, (x, y, hs, cs, gates)


def lstm_backward(layer, p, cache, dy):
    """Backprop through time from dc_T = 0: at each step t = T..1, dh_t = dy_t + what step t+1 carried back,
    dc_t += dh_t s(o) (1 - tanh^2 c_t), and
    the gates' pre-activations get di = dc g i (1 - i), df = dc c_(t-1) f (1 - f), dg = dc i (1 - g^2),
    do = dh tanh(c_t) o (1 - o) (i, f, o after the sigmoid, g after tanh); then dW_x, dW_h, db and dx_t as the RNN's,
    dh_(t-1) = dz W_h^T and dc_(t-1) = dc_t f."""
    W_x, W_h, b, _, _ = p
    x, _, hs, cs, gates = cache
    dW_x, dW_h, db, dx = torch.zeros_like(W_x), torch.zeros_like(W_h), torch.zeros_like(b), torch.zeros_like(x)
    dh, dc = torch.zeros_like(dy[:, 0]), torch.zeros_like(dy[:, 0])
    steps = x.shape[1]
    for t in reversed(range(steps)):
        dh = dh + dy[:, t]  # as the RNN's: this step's output gradient, and the one carried back
        z, i, f, g, o = gates[t]
        tanh_c = torch.tanh(cs[t + 1])
        dc = dc + dh * o * (1.0 - tanh_c ** 2)
        dz = torch.cat([dc * g * i * (1.0 - i), dc * cs[t] * f * (1.0 - f), dc * i * (1.0 - g ** 2),
                      dh * tanh_c * o * (1.0 - o)], dim=1)
        dW_x += x[:, t].T @ dz
        dW_h += hs[t].T @ dz
        db += dz.sum(dim=0)
        dx[:, t] = dz @ W_x.T
        dh, dc = dz @ W_h.T, dc * f
    return dx if layer.input_grad else None, (dW_x, dW_h, db, dh.sum(dim=0), dc.sum(dim=0))
