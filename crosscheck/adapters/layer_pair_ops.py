"""CS231n-style layer functions checked op by op (crosscheck/adapters/layer_pairs.py assembles them into models):
check_ops(layers) compares each function present with the reference's op on the op tests' inputs (crosscheck/verdict/
ops.py, edge values included), forward values and backward gradients for one random upstream gradient."""

import numpy as np

from crosscheck.adapters.layer_pairs import (
    LAYERS,
    LOSSES,
    Assembled,
    _conv_param,
    _has,
    _pool_param,
    _shaped,
    _softmax,
    _tie,
    dropout_train,
)
from crosscheck.reference import layers as ref_layers
from crosscheck.reference import losses as ref_losses
from crosscheck.verdict import ops
from crosscheck.verdict.findings import Findings


def check_ops(layers, name="cs231n", seed=0, keepdims=False):
    """Each CS231n-style function present against the reference's op on the op tests' inputs (crosscheck/verdict/ops.py,
    edge values included): forward values, and backward gradients for one random upstream gradient. Raises one
    Disagreement listing every op that disagrees; returns the names of the ops checked. keepdims: as cs231n's."""
    found, checked, label = Findings(), [], f"{name} op"
    for kind, (fwd, bwd) in LAYERS.items():
        if _has(layers, (fwd, bwd)):
            _check_layer_op(layers, kind, fwd, bwd, found, label, name, seed, keepdims)
            checked.append(kind)
    for loss, (fn, _) in LOSSES.items():
        if _has(layers, [fn]):
            _check_loss_op(layers, loss, fn, found, label, seed)
            checked.append(loss)
    found.result()
    return checked


def _check_layer_op(layers, kind, fwd, bwd, found, label, name, seed, keepdims):
    if kind == "relu":
        z, dz = ops.activation_inputs("relu", seed)
        out, cache = getattr(layers, fwd)(z)
        found.compare(out, np.maximum(z, 0), None, "forward", what=f"{fwd}", backend=label)
        found.compare(getattr(layers, bwd)(dz, cache), dz * (z > 0), None, "gradient", what=f"{bwd}", backend=label)
        return
    layer, p, x, dy, mask = ops.layer_inputs(kind, seed)
    ref_out, ref_cache = ref_layers.FORWARD[kind](layer, p, x, *((mask,) if kind == "dropout" else ()))
    out, cache = _forward_op(getattr(layers, fwd), kind, layer, p, x, mask)
    found.compare(out, ref_out, None, "forward", what=fwd, backend=label)
    got = getattr(layers, bwd)(dy, cache)
    got = (got,) if kind in ("maxpool2d", "dropout") else got  # their backward returns dx alone
    if kind == "batchnorm":  # dgamma and dbeta in gamma's shape: as they are, or from (1, D) if declared
        got = (got[0], *(_shaped(name, keepdims, bwd, what, g, leaf)
                         for what, g, leaf in zip(("dgamma", "dbeta"), got[1:], p)))
    ref_dx, ref_dp = ref_layers.BACKWARD[kind](layer, p, ref_cache, dy)
    for g, r, leaf in zip(got, [ref_dx, *ref_dp], ["input", *("weight", "bias")]):
        tie = _tie(x, layer, g, r) if kind == "maxpool2d" else ""
        found.compare(g, r, None, "gradient", what=f"{bwd}: {leaf} gradient{tie}", backend=label)


def _forward_op(fn, kind, layer, p, x, mask):
    """A CS231n-style forward called as the assignment calls it: its parameters, then its param dict."""
    if kind == "batchnorm":
        return fn(x, *p, Assembled._bn_param(None, layer, "train"))
    if kind == "conv2d":
        return fn(x, *p, _conv_param(layer))
    if kind == "maxpool2d":
        return fn(x, _pool_param(layer))
    if kind == "dropout":
        return dropout_train(fn, x, layer.shape[0], mask)
    return fn(x, *p)


def _check_loss_op(layers, loss, fn, found, label, seed):
    z, a, y = ops.loss_inputs(loss, seed)
    value, dz = getattr(layers, fn)(z, y.argmax(axis=1))
    a_ref = _softmax(z) if loss == "softmax_cross_entropy" else z
    found.compare(np.asarray(value), ref_losses.loss_forward(loss, z, a_ref, y), None, "forward", what=fn,
                  backend=label)
    ref_dz = ref_losses.loss_backward(loss, a_ref, y)
    if loss == "hinge":  # the tie row (a margin exactly 0) has no derivative there: conventions differ
        dz, ref_dz = dz[1:], ref_dz[1:]
    found.compare(dz, ref_dz, None, "gradient", what=f"{fn}: score gradient", backend=label)
