"""Data parallelism with JAX's sharding: the reference's parallel.py, its ranks as devices and its all-reduce lax.psum.

mlp.accumulated hands a step to gradients() here when config.parallel asks for shards: shard_map runs
local_gradients on each device (the mesh's "data" axis), which reads its block of the batch's rows, and psum adds them
up, so that the compiled step holds the collective where the reference's loop holds its sum. On the CPU the devices
are host devices: JAX makes N of them only when started with XLA_FLAGS=--xla_force_host_platform_device_count=N
(crosscheck --parallel sets it; the tests start with 2).
"""

import jax
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from common import registry

AXIS = "data"


def shard(X, y, rank, world):
    """Rank's rows of the batch: the rank-th of world equal blocks of consecutive rows (rank: the device's index)."""
    size = X.shape[0] // world
    start = rank * size
    return lax.dynamic_slice_in_dim(X, start, size), lax.dynamic_slice_in_dim(y, start, size)


def local_gradients(mlp_gradients, params, X, y, rank, config):
    """(share L_r, share dL_r/dp): rank's shard's loss and gradients (by mlp.gradients), times its share of the batch"""
    Xr, yr = shard(X, y, rank, config.world)
    loss, grads = mlp_gradients(params, Xr, yr, config)
    share = 1.0 / config.world if registry.LOSSES[config.loss].averaged else 1.0
    return share * loss, [tuple(share * g for g in leaves) for leaves in grads]


def all_reduce(part):
    """sum_r part on rank r, held by every device (lax.psum over the mesh's axis)"""
    return lax.psum(part, AXIS)


def gradients(mlp_gradients, params, X, y, config):
    """(L, grads) of the batch: each device's local gradients, all-reduced leaf by leaf."""

    def on_device(params, X, y):
        loss, grads = local_gradients(mlp_gradients, params, X, y, lax.axis_index(AXIS), config)
        loss = all_reduce(loss)
        grads = [tuple(all_reduce(g) for g in leaves) for leaves in grads]
        return loss, grads

    # Every device is handed the whole batch and reads its own rows (shard), as a torch rank does. check_vma off:
    # JAX's own check would refuse a result it cannot prove replicated (a psum left out) before any number; off, that
    # mistake shows as torch's does, device 0's gradient alone, which the cross-check and the diagnosis then name.
    return jax.shard_map(on_device, mesh=mesh(config.world), in_specs=(P(), P(), P()), out_specs=P(),
                         check_vma=False)(params, X, y)


def mesh(world):
    """The first world devices as the mesh's one axis; a clear error where JAX was started with fewer."""
    devices = jax.devices()
    if len(devices) < world:
        raise ValueError(f"parallel 'data:{world}' needs {world} JAX devices, but JAX sees {len(devices)}: start "
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
