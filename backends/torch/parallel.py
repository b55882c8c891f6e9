"""Data and tensor parallelism with torch.distributed: the reference's parallel.py, its ranks as processes and its
collectives torch's own (gloo on the CPU; nccl on a GPU, untested until one is lent).

Each rank runs the mirror's own train; mlp.accumulated hands a step to gradients() here when config.parallel asks for
shards. start() runs a function on the world's processes (torch.multiprocessing, a file rendezvous in a fresh
folder), started on first use and kept, and returns rank 0's result: every rank holds the same parameters after
each all-reduced step.
"""

import atexit
import contextlib
import os
import queue
import sys
import tempfile
from dataclasses import replace
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

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
        return torch.cat([block(part, layer, "column", 0, rank, world) for part in qkv_parts(leaf, layer)],
                         dim=-1)
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
        return torch.cat([all_gather(part, axis=-1) for part in qkv_parts(g, share(layer, role, world))], dim=-1)
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


# The collectives, between the world's processes (torch.distributed).

def all_reduce(part):
    """sum_r part on rank r, held by every rank (dist.all_reduce, SUM; on a copy: part may be a cache's array)"""
    part = part.clone()
    dist.all_reduce(part, op=dist.ReduceOp.SUM)
    return part


def all_gather(part, axis):
    """every rank's part joined along axis, in rank order, held by every rank (dist.all_gather)"""
    parts = [torch.empty_like(part) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, part.contiguous())
    return torch.cat(parts, dim=axis)


def gradients(mlp_gradients, params, X, y, config, noise=None):
    """(L, grads) of the batch: rank_gradients on this process's rank (every rank's is the same). mlp.accumulated's,
    when config.parallel asks for ranks."""
    return rank_gradients(mlp_gradients, params, X, y, noise, dist.get_rank(), config)


# The world's processes: what the driver's sharded run (backends/torch/__init__.py) starts its functions on.

def ready(world):
    """Start the world (kept for the runs) and all-reduce one number across it: a RuntimeError in one line where the
    processes cannot start or cannot talk, before anything trains."""
    total = start(all_reduce, (torch.ones(1),), world)
    if float(total) != world:
        raise RuntimeError(f"torch.distributed: an all-reduce of 1 over {world} processes gave {float(total)}")


# The mistakes planted in this process, (planter, module, old, new) each (crosscheck/diagnosis/mutations.py sets it
# while a plant lasts, planter its own context manager): the ranks are processes of their own, which import the modules
# afresh, so each job carries them and a rank plants them for its duration.
PLANTED: tuple = ()


def start(fn, args, world, kwargs=None):
    """fn(*args, **kwargs) on each of world processes joined by gloo; rank 0's result. The processes are started once
    and kept for the next call of that size (the report trains in stretches; the suite alternates worlds of 2 and 4);
    a failure ends them. One line says why where they cannot start or a rank fails."""
    processes = _world(world)
    planted = sys.modules[__name__].PLANTED  # the module's own: a plant in this module runs a copy of start
    for inbox in processes.inboxes:
        inbox.put((fn, args, kwargs or {}, planted))
    while True:
        try:
            rank, ok, result = processes.outbox.get(timeout=1.0)
        except queue.Empty:
            if all(p.is_alive() for p in processes.ranks):
                continue
            _stop(world)
            raise RuntimeError(f"torch.distributed: a process of the world of {world} died (exit codes "
                               f"{[p.exitcode for p in processes.ranks]})") from None
        if not ok:
            _stop(world)
            raise RuntimeError(f"torch.distributed: rank {rank} of {world} failed: {result}")
        if rank == 0:
            return result


class _Processes(NamedTuple):
    world: int
    ranks: list
    inboxes: list
    outbox: Any
    folder: Any


_running: dict = {}  # world size -> the world of that size kept between calls (each process idles on its inbox)


def _kept():
    """The module's own table of kept worlds, also for a planted copy of this file's code: a plant here re-executes
    the source (crosscheck/diagnosis/mutations.py), which made a table afresh, so each plant started worlds of its own
    (3-7 s each, the catalogue's 20 plants here 92 of its 211 s) and left them running until the session ended."""
    return sys.modules[__name__]._running


def _world(world):
    """The running world of that size, started (and its rendezvous made) where none is. (Each size is kept apart: the
    catalogue's plants on sharded cases alternate 2 and 4 ranks, and a world of 4 took 3-7 s to start on two cores.)"""
    running = _kept()
    if world in running and all(p.is_alive() for p in running[world].ranks):
        return running[world]
    _stop(world)
    context = mp.get_context("spawn")
    folder = tempfile.TemporaryDirectory(prefix="crosscheck-dist-")
    inboxes, outbox = [context.Queue() for _ in range(world)], context.Queue()
    ranks = [context.Process(target=_serve, args=(rank, world, folder.name, inboxes[rank], outbox), daemon=True)
             for rank in range(world)]
    for process in ranks:
        process.start()
    running[world] = _Processes(world, ranks, inboxes, outbox, folder)
    return running[world]


def _stop(world=None):
    """End the kept world of that size, or every one (nothing is left running: they are daemons, and stopped at exit
    too)."""
    running = _kept()
    for size in [w for w in running if world is None or w == world]:
        processes = running.pop(size)
        for process in processes.ranks:
            process.kill()
            process.join()
        processes.folder.cleanup()


atexit.register(_stop)


def _serve(rank, world, folder, inbox, outbox):
    """One process: join the world, then run each job sent, rank 0 sending back its result (the same on every
    rank); an error is sent back in one line and ends the process."""
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))  # the world's processes share the cores
    try:
        dist.init_process_group("gloo", init_method=f"file://{os.path.join(folder, 'rendezvous')}", rank=rank,
                                world_size=world)
    except Exception as exc:  # noqa: BLE001  (gloo cannot start here: said to the parent in one line)
        outbox.put((rank, False, f"gloo could not start: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}"))
        return
    while True:
        fn, args, kwargs, planted = inbox.get()
        try:
            with _planted(planted):
                result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001  (said to the parent, which ends the world)
            outbox.put((rank, False, f"{type(exc).__name__}: {exc}"))
            return
        outbox.put((rank, True, result if rank == 0 else None))


@contextlib.contextmanager
def _planted(planted):
    """The parent's planted mistakes, in this rank for one job."""
    with contextlib.ExitStack() as stack:
        for planter, module_name, old, new in planted:
            stack.enter_context(planter(module_name, old, new))
        yield
