"""Data parallelism, simulated in one process: what the sharded runs compute, with the collective written out.

Config(parallel="data:N") splits each step's batch into N shards of consecutive rows, one per rank. Each rank computes
its shard's loss and gradients by the same manual backprop, weighted by its share of the batch (1/N for a mean loss,
1 for a summed one), and the all-reduce sums them over the world, so that every rank takes the same update from the
whole batch's gradients. Here the ranks are a loop and the all-reduce a sum in rank order; backends/torch/parallel.py
runs them as processes with torch.distributed, backends/jax/parallel.py as devices with shard_map. The reference's own
run stays on one device (its driver leaves parallel out): every sharded run is compared with that. reference.SHARDS
runs this simulation through the driver protocol, where the diagnosis plants a mistake of the shards.
"""

from common import registry


def shard(X, y, rank, world):
    """Rank's rows of the batch: the rank-th of world equal blocks of consecutive rows."""
    size = len(X) // world
    start = rank * size
    return X[start:start + size], y[start:start + size]


def local_gradients(mlp_gradients, params, X, y, rank, config):
    """(share L_r, share dL_r/dp): rank's shard's loss and gradients (by mlp.gradients), times its share of the batch"""
    Xr, yr = shard(X, y, rank, config.world)
    loss, grads = mlp_gradients(params, Xr, yr, config)
    share = 1.0 / config.world if registry.LOSSES[config.loss].averaged else 1.0
    return share * loss, [tuple(share * g for g in leaves) for leaves in grads]


def all_reduce(parts):
    """sum_r parts[r], in rank order: what every rank holds after an all-reduce (SUM) of its part"""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def gradients(mlp_gradients, params, X, y, config):
    """(L, grads) of the batch: every rank's local gradients, all-reduced leaf by leaf (mlp.accumulated's, when
    config.parallel asks for shards)."""
    parts = [local_gradients(mlp_gradients, params, X, y, rank, config) for rank in range(config.world)]
    loss = all_reduce([part_loss for part_loss, _ in parts])
    grads = [tuple(all_reduce([part[l][i] for _, part in parts]) for i in range(len(leaves)))
             for l, leaves in enumerate(params)]
    return loss, grads
