"""Data and tensor parallelism, simulated in one process: what the sharded runs compute, the collectives written out.

Config(parallel="data:N") splits each step's batch into N shards of consecutive rows, one per rank. Each rank computes
its shard's loss and gradients by the same manual backprop, weighted by its share of the batch (1/N for a mean loss,
1 for a summed one), and the all-reduce sums them over the world, so that every rank takes the same update from the
whole batch's gradients.

Config(parallel="tensor:N") splits the dense layers instead (the Megatron MLP): each pair of dense layers is a column
layer (rank r holds W's r-th block of columns and b's entries) and a row layer (W's r-th block of rows; b whole). Every
rank sees the whole batch; the column layer's output and the activation after it stay in blocks, the row layer sums
its rank's partial products with an all-reduce and adds its bias once, and in the backward the column layer's input
gradient is all-reduced (each rank's block of columns gives part of it). The gradients' blocks are gathered (all-gather)
so that every rank takes the same update of the whole parameters.

An attention layer is split by its heads the same way (Megatron's attention): rank r holds its heads' columns of the
fused q, k, v projection (q's, k's and v's blocks each) and the output projection's rows for them, computes attention
over its heads alone, and the partial outputs are all-reduced (no bias); its input gradient is all-reduced as a column
layer's is. A SwiGLU layer is Megatron's pair inside one layer, split by its hidden units (gate and up projections by
columns, down projection by rows, its output all-reduced). Every other layer (norms, embeddings, positions, residual
blocks, the tied scores) runs whole on every rank: its input is the same there, so its gradient is too.

Here the ranks are threads and the collectives meet at a barrier, summing or joining the ranks' parts in rank order;
backends/torch/parallel.py runs the same code on processes with torch.distributed, backends/jax/parallel.py on devices
with shard_map. The reference's own run stays on one device (its driver leaves parallel out): every sharded run is
compared with that. reference.SHARDS runs this simulation through the driver protocol, where the diagnosis plants a
mistake of the collectives.
"""

import threading
from dataclasses import replace

import numpy as np

from crosscheck.common.conventions import log_guard, reduced, summed

from . import layers
from .activations import activation_backward
from .losses import FUSED_WITH_OUTPUT, loss_backward, loss_forward


def shard(X, y, noise, rank, world):
    """Rank's rows of the batch and of its dropout masks (the batch's, shared: each rank reads its own rows of them):
    the rank-th of world equal blocks of consecutive rows."""
    size = len(X) // world
    start = rank * size
    masks = None if noise is None else [m[start:start + size] for m in noise]
    return X[start:start + size], y[start:start + size], masks


def local_gradients(mlp_gradients, params, X, y, noise, rank, config):
    """(share L_r, share dL_r/dp): rank's shard's loss and gradients (by mlp.gradients), times its share of the batch"""
    Xr, yr, masks = shard(X, y, noise, rank, config.world)
    loss, grads = mlp_gradients(params, Xr, yr, config, masks)
    share = 1.0 if summed(config) else 1.0 / config.world
    return share * loss, [tuple(share * g for g in leaves) for leaves in grads]


def split(role, which):
    """The axis a layer's leaf (which: its index in the layer's params) is split along over the ranks: -1 by columns
    (a column layer's W and b, SwiGLU's gate and up projections), 0 by rows (a row layer's W, attention's output
    projection, SwiGLU's down projection); None whole (a row layer's b, added once after the all-reduce; a whole
    layer's leaves). Attention's fused projection is cut by heads within each of q, k and v (block)."""
    if role == "column" or (role == "hidden" and which < 2):
        return -1
    if (role, which) in (("row", 0), ("heads", 1), ("hidden", 2)):
        return 0
    return None


def block(leaf, layer, role, which, rank, world):
    """rank's block of a layer's leaf: its rank-th of world equal parts along split's axis; an attention layer's q, k
    and v columns each by blocks of heads; a whole leaf as it is"""
    if role == "heads" and which == 0:
        return np.concatenate([block(part, layer, "column", 0, rank, world) for part in qkv_parts(leaf, layer)],
                              axis=-1)
    axis = split(role, which)
    if axis is None:
        return leaf
    size = leaf.shape[axis] // world
    return leaf[..., rank * size:(rank + 1) * size] if axis == -1 else leaf[rank * size:(rank + 1) * size]


def qkv_parts(W, layer):
    """[W_q, W_k, W_v]: an attention layer's fused projection (or its gradient) cut into its three blocks of columns"""
    width, heads, kv = layers.attention.attention_heads(layer)
    cut = width + kv * (width // heads)
    return [W[..., :width], W[..., width:cut], W[..., cut:]]


def share(layer, role, world):
    """The layer one rank computes: an attention layer's heads / world query heads (and kv / world key-value heads);
    any other as it is (its blocks set its size)"""
    return replace(layer, shape=tuple(n // world for n in layer.shape)) if role == "heads" else layer


def tensor_forward(params, X, rank, config):
    """Rank's caches of the forward pass, each layer on its block (column, row, heads, hidden or whole); residual blocks
    and tied matrices as mlp.forward's"""
    caches, skips, x = [], [], X
    for layer in config.model:
        role = "whole" if layer.slot is None else config.tensor_roles[layer.slot]
        p = () if layer.slot is None else tuple(block(leaf, layer, role, which, rank, config.world)
                                                for which, leaf in enumerate(params[layer.slot]))
        if role == "row":  # z = sum_r x_r W_r: each rank's partial product, all-reduced; the bias added once
            W, b = p
            z, cache = layers.dense.linear_forward(layer, (W,), x)
            x = all_reduce(z) + b
        elif role in ("heads", "hidden"):  # y = sum_r h_r W_r: each rank's heads' (or hidden units') part, all-reduced
            y, cache = layers.FORWARD[layer.kind](share(layer, role, config.world), p, x)
            x = all_reduce(y)
        else:
            x, cache = layers.FORWARD[layer.kind](layer, p, x)
        caches.append(cache)
        if layer.kind == "residual":
            skips.append(x)
        for _ in range(layer.closes):
            x = x + skips.pop()
    return caches


def tensor_backward(params, y, caches, rank, config):
    """Rank's gradients of its blocks, from the last layer to the first: the input gradient of a column layer (and of
    a layer split inside, attention or SwiGLU) all-reduced"""
    z, a = caches[-1]
    dL = loss_backward(config.loss, a, y, reduced(config, a))  # dL/dz where fused, else dL/da
    if config.loss in FUSED_WITH_OUTPUT:
        dy = dL
    else:
        dy = activation_backward(config.output, dL, z, a)
    grads = [()] * len(params)
    skipped = []
    for layer, cache in zip(reversed(config.model[:-1]), reversed(caches[:-1])):
        skipped += [dy] * layer.closes
        role = "whole" if layer.slot is None else config.tensor_roles[layer.slot]
        p = () if layer.slot is None else tuple(block(leaf, layer, role, which, rank, config.world)
                                                for which, leaf in enumerate(params[layer.slot]))
        dy, dp = layers.BACKWARD[layer.kind](share(layer, role, config.world), p, cache, dy)
        if role in ("column", "heads", "hidden") and dy is not None:  # dx = sum_r dz_r W_r^T: each block gives a part
            dy = all_reduce(dy)
        if layer.kind == "residual":
            dy = dy + skipped.pop()
        if layer.slot is not None:  # a tied matrix's second use adds its gradient to the first's
            grads[layer.slot] = dp if not grads[layer.slot] else tuple(a + b for a, b in zip(grads[layer.slot], dp))
    return grads


def gather(grads, config):
    """The whole gradients from every rank's blocks (all-gather), each leaf joined along the axis it was split along;
    attention's fused projection's q, k and v blocks each; the rest the same on every rank"""
    return [tuple(gathered(g, layer, config.tensor_roles[layer.slot], which, config.world)
                  for which, g in enumerate(grads[layer.slot])) for layer in config.parametrized]


def gathered(g, layer, role, which, world):
    """One leaf's whole gradient from the ranks' blocks of it (block undone)"""
    if role == "heads" and which == 0:
        return np.concatenate([all_gather(part, axis=-1) for part in qkv_parts(g, share(layer, role, world))], axis=-1)
    axis = split(role, which)
    return g if axis is None else all_gather(g, axis=axis)


def rank_gradients(mlp_gradients, params, X, y, noise, rank, config):
    """(L, grads) of the batch on rank: its local gradients all-reduced (data), or its blocks' gathered (tensor)."""
    if config.parallel_kind == "data":
        loss, grads = local_gradients(mlp_gradients, params, X, y, noise, rank, config)
        loss = all_reduce(loss)
        grads = [tuple(all_reduce(g) for g in leaves) for leaves in grads]
        return loss, grads
    caches = tensor_forward(params, X, rank, config)
    z, a = caches[-1]
    loss = loss_forward(config.loss, z, a, y, log_guard(config), reduced(config, a))
    return loss, gather(tensor_backward(params, y, caches, rank, config), config)


# The collectives, between the ranks of the world running now (threads meeting at a barrier).

class _World(threading.local):
    rank: int
    meeting: "_Meeting"


_world = _World()


class _Meeting:
    """world threads' rendezvous: each leaves its part in its slot; once all have, each reads every part."""

    def __init__(self, world):
        self.parts = [None] * world
        self.barrier = threading.Barrier(world)

    def exchange(self, rank, part):
        self.parts[rank] = part
        self.barrier.wait()
        parts = list(self.parts)
        self.barrier.wait()  # nobody writes the next collective's part before everyone has read this one's
        return parts


def all_reduce(part):
    """sum_r part on rank r, in rank order, held by every rank (what dist.all_reduce and lax.psum compute)"""
    parts = _world.meeting.exchange(_world.rank, part)
    total = parts[0]
    for other in parts[1:]:
        total = total + other
    return total


def all_gather(part, axis):
    """every rank's part joined along axis, in rank order, held by every rank"""
    return np.concatenate(_world.meeting.exchange(_world.rank, part), axis=axis)


def gradients(mlp_gradients, params, X, y, config, noise=None):
    """(L, grads) of the batch: rank_gradients on each of the world's ranks, run as threads; rank 0's result (every
    rank's is the same). mlp.accumulated's, when config.parallel asks for ranks."""
    meeting, results, errors = _Meeting(config.world), [None] * config.world, []

    def rank_thread(rank):
        _world.rank, _world.meeting = rank, meeting
        try:
            results[rank] = rank_gradients(mlp_gradients, params, X, y, noise, rank, config)
        except BaseException as exc:  # noqa: BLE001  (given to the caller; the others are let out of the barrier)
            errors.append(exc)
            meeting.barrier.abort()

    threads = [threading.Thread(target=rank_thread, args=(rank,)) for rank in range(config.world)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    real = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    if real or errors:
        raise (real or errors)[0]
    return results[0]
