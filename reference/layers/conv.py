"""Convolution and pooling over images (N, C, H, W): conv2d through windows (im2col) and its adjoint unwindows,
maxpool2d, avgpool2d."""

import numpy as np

from ..precision import average, total


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
