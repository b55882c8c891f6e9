"""Data and tensor parallelism with JAX's sharding: the reference's parallel.py, its ranks as devices and its
collectives lax.psum and lax.all_gather.

mlp.accumulated hands a step to gradients() here when config.parallel asks for ranks: shard_map runs rank_gradients on
each device (the mesh's "ranks" axis), which takes its rows of the batch or its blocks of the dense layers itself, so
that the compiled step holds the collectives where the reference's threads meet. On the CPU the devices are host
devices: JAX makes N of them only when started with XLA_FLAGS=--xla_force_host_platform_device_count=N (crosscheck
--parallel sets it; the tests start with 4).
"""

from dataclasses import replace

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from crosscheck.common.conventions import log_guard, reduced, summed

from . import layers
from .activations import activation_backward
from .losses import FUSED_WITH_OUTPUT, loss_backward, loss_forward

AXIS = "ranks"


def shard(X, y, noise, rank, world):
    """Rank's rows of the batch and of its dropout masks (the batch's, shared: each rank reads its own rows of them):
    the rank-th of world equal blocks of consecutive rows (rank: the device's index)."""
    size = X.shape[0] // world
    start = rank * size
    masks = None if noise is None else [lax.dynamic_slice_in_dim(m, start, size) for m in noise]
    return lax.dynamic_slice_in_dim(X, start, size), lax.dynamic_slice_in_dim(y, start, size), masks


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
        return jnp.concatenate([block(part, layer, "column", 0, rank, world) for part in qkv_parts(leaf, layer)],
                               axis=-1)
    axis = split(role, which)
    if axis is None:
        return leaf
    size = leaf.shape[axis] // world
    return lax.dynamic_slice_in_dim(leaf, rank * size, size, axis=axis % leaf.ndim)


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
        return jnp.concatenate([all_gather(part, axis=-1) for part in qkv_parts(g, share(layer, role, world))], axis=-1)
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


# The collectives, between the mesh's devices (inside shard_map).

def all_reduce(part):
    """sum_r part on rank r, held by every device (lax.psum over the mesh's axis)"""
    return lax.psum(part, AXIS)


def all_gather(part, axis):
    """every device's part joined along axis, in rank order, held by every device (lax.all_gather, tiled)"""
    return lax.all_gather(part, AXIS, axis=axis % part.ndim, tiled=True)


def gradients(mlp_gradients, params, X, y, config, noise=None):
    """(L, grads) of the batch: rank_gradients on each device (every device's is the same). mlp.accumulated's, when
    config.parallel asks for ranks."""

    def on_device(params, X, y, noise):
        return rank_gradients(mlp_gradients, params, X, y, noise, lax.axis_index(AXIS), config)

    # Every device is handed the whole batch and every parameter, and takes its rows or blocks itself (shard, block),
    # as a torch rank does. check_vma off: JAX's own check would refuse a result it cannot prove replicated (a psum
    # left out) before any number; off, that mistake shows as torch's does, device 0's values alone, which the
    # cross-check and the diagnosis then name.
    return jax.shard_map(on_device, mesh=mesh(config.world), in_specs=(P(), P(), P(), P()), out_specs=P(),
                         check_vma=False)(params, X, y, noise)


def mesh(world):
    """The first world devices as the mesh's one axis; a clear error where JAX was started with fewer."""
    devices = jax.devices()
    if len(devices) < world:
        raise ValueError(f"a world of {world} ranks needs {world} JAX devices, but JAX sees {len(devices)}: start "
                         f"Python with XLA_FLAGS=--xla_force_host_platform_device_count={world} (crosscheck "
                         f"--parallel sets it)")
    return Mesh(devices[:world], (AXIS,))


def ready(world):
    """A ValueError in one line where JAX has fewer devices than the world, before anything trains."""
    mesh(world)


def replicated(tree, world):
    """Every array of tree on each of the mesh's devices (the driver put them on the first): each device reads its
    rows of the batch (shard) inside the step."""
    return jax.device_put(tree, NamedSharding(mesh(world), P()))
