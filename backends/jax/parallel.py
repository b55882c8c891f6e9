"""Data parallelism with JAX's sharding: the reference's parallel.py, its ranks as devices and its all-reduce lax.psum.

mlp.accumulated hands a step to gradients() here when config.parallel asks for shards: shard_map runs
local_gradients on each device's block of the batch's rows (the mesh's "data" axis) and psum adds them up, so that the
compiled step holds the collective where the reference's loop holds its sum. On the CPU the devices are host devices:
JAX makes N of them only when started with XLA_FLAGS=--xla_force_host_platform_device_count=N (crosscheck --parallel
sets it; the tests start with 2).
"""

import jax
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from common import registry

from . import mlp

AXIS = "data"


def shard(X, y, rank, world):
    """Rank's rows of the batch: inside shard_map each device already holds its block, the rank-th of world."""
    return X, y


def local_gradients(params, X, y, rank, config):
    """(share L_r, share dL_r/dp): rank's shard's loss and gradients, times its share of the batch"""
    Xr, yr = shard(X, y, rank, config.world)
    loss, grads = mlp.gradients(params, Xr, yr, config)
    share = 1.0 / config.world if registry.LOSSES[config.loss].averaged else 1.0
    return share * loss, [tuple(share * g for g in leaves) for leaves in grads]


def all_reduce(part):
    """sum_r part on rank r, held by every device (lax.psum over the mesh's axis)"""
    return lax.psum(part, AXIS)


def gradients(params, X, y, config, noise=None):
    """(L, grads) of the batch: each device's local gradients, all-reduced leaf by leaf."""

    def on_device(params, X, y):
        loss, grads = local_gradients(params, X, y, lax.axis_index(AXIS), config)
        loss = all_reduce(loss)
        grads = [tuple(all_reduce(g) for g in leaves) for leaves in grads]
        return loss, grads

    return jax.shard_map(on_device, mesh=mesh(config.world), in_specs=(P(), P(AXIS), P(AXIS)),
                         out_specs=P())(params, X, y)


def mesh(world):
    """The first world devices as the mesh's one axis; a clear error where JAX was started with fewer."""
    devices = jax.devices()
    if len(devices) < world:
        raise ValueError(f"parallel 'data:{world}' needs {world} JAX devices, but JAX sees {len(devices)}: start "
                         f"Python with XLA_FLAGS=--xla_force_host_platform_device_count={world} (crosscheck "
                         f"--parallel sets it)")
    return Mesh(devices[:world], (AXIS,))


# What the driver calls: the mirror's own functions, the devices being in this process.

def ready(world):
    """A ValueError in one line where JAX has fewer devices than the world, before anything trains."""
    mesh(world)


def run_gradients(params, X, y, config):
    """mlp.gradients' result for the whole batch, from config.world devices."""
    params, X, y = replicated((params, X, y), config.world)
    return jax.jit(mlp.accumulated, static_argnames="config")(params, X, y, config)


def train(params, X, y, config, orders=None, checkpoints=(), opt_state=None, step=0, **kept):
    """mlp.train's Run, every step on config.world devices."""
    params, X, y, orders, opt_state, kept = replicated((params, X, y, orders, opt_state, kept), config.world)
    return mlp.train(params, X, y, config, orders, checkpoints, opt_state, step, **kept)


def replicated(tree, world):
    """Every array of tree on each of the mesh's devices (the driver put them on the first): the steps index the
    batch's rows out of X before shard_map hands each device its block."""
    return jax.device_put(tree, NamedSharding(mesh(world), P()))
