"""The JAX mirror, and its driver (NumPy in, NumPy out; see common/driver.py).

Importing this module pins precision for the whole process (JAX's settings are
global): jax_enable_x64, so float64 is really float64, and "highest" matmul
precision, so float32 products on a GPU are not done in TF32 or bf16.

It also lets XLA:CPU compile small training loops whole (see small_loops below), which
takes effect only where JAX has not yet started its backends in this process.
"""

import os
import re

SMALL_LOOP_OPTION = "xla_cpu_small_while_loop_byte_threshold"
SMALL_LOOP_BYTES = 65536


def small_loops(flags, option=SMALL_LOOP_OPTION, limit=SMALL_LOOP_BYTES):
    """XLA_FLAGS with XLA:CPU's small-loop limit raised to limit bytes, unless the flags already set it.

    JAX quirk: XLA:CPU runs a compiled loop op by op, each fused op a separate call of tens of
    nanoseconds, unless one iteration touches under 1 kB, when the whole loop becomes one kernel.
    One iteration of XOR's scan (8 epochs) touches a few kB, so its 3200 epochs ran as ~40,000
    calls. With the limit at 64 kB, XOR's epoch went from ~0.47 us to ~0.1 us (SGD) and Adam's
    from ~1.06 us to ~0.55 us (benchmarks/: xor/jax 39x -> 150x the seeds' loop, xor-adam/jax
    19x -> 42x); loops over real-sized arrays (mid, wide) touch more and run as before. A
    user's own setting of the option is kept.
    """
    if option in flags:
        return flags
    extra = re.search(r"--xla_backend_extra_options=(\S+)", flags)
    if extra:
        return flags.replace(extra.group(0), f"{extra.group(0)},{option}={limit}")
    return f"{flags} --xla_backend_extra_options={option}={limit}".strip()


os.environ["XLA_FLAGS"] = small_loops(os.environ.get("XLA_FLAGS", ""))

import jax  # noqa: E402  (after XLA_FLAGS: JAX reads them when it starts its backends)
import numpy as np  # noqa: E402

from crosscheck.common.driver import Driver, Sharded  # noqa: E402

from . import activations, autodiff, losses, mlp, parallel  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_default_matmul_precision", "highest")

__all__ = ["DRIVER", "activations", "autodiff", "losses", "mlp"]


def _has_gpu():
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def _forward(params, X, config, buffers=None):
    return mlp.forward(params, X, config, buffers)


def _gradients(params, X, y, config):
    return mlp.gradients(params, X, y, config)


def _autodiff_gradients(params, X, y, config):
    return autodiff.autodiff_gradients(params, X, y, config)


class _Compiled:
    """The driver's view of mlp: each whole function compiled once per configuration and shape.

    (JAX quirk: run eagerly, every small op compiles on its own at first use, which
    costs seconds per configuration.) The wrappers above look mlp up when traced, so
    a patched mlp (crosscheck/diagnosis/mutations.py) is seen after jax.clear_caches().
    """

    forward = staticmethod(jax.jit(_forward, static_argnames="config"))
    gradients = staticmethod(jax.jit(_gradients, static_argnames="config"))

    @staticmethod
    def train(*args, **kwargs):
        return mlp.train(*args, **kwargs)  # compiled inside, around lax.scan


def _accumulated(params, X, y, config):
    return mlp.accumulated(params, X, y, config)


_sharded_accumulated = jax.jit(_accumulated, static_argnames="config")


def _sharded_gradients(params, X, y, config):
    """mlp.gradients' result for the whole batch, from config.world devices (the inputs put on each of them)."""
    return _sharded_accumulated(*parallel.replicated((params, X, y), config.world), config)


def _sharded_train(params, X, y, config, orders=None, checkpoints=(), opt_state=None, step=0, **kept):
    """mlp.train's Run, every step on config.world devices."""
    params, X, y, orders, opt_state, kept = parallel.replicated((params, X, y, orders, opt_state, kept), config.world)
    return mlp.train(params, X, y, config, orders, checkpoints, opt_state, step, **kept)


def to_native(arr, device):
    return jax.device_put(arr, jax.devices("gpu" if device == "cuda" else "cpu")[0])


DRIVER = Driver(name="jax", version=jax.__version__, devices=("cpu", "cuda") if _has_gpu() else ("cpu",),
                mlp=_Compiled, to_native=to_native, to_numpy=np.asarray, synchronize=jax.block_until_ready,
                autodiff_gradients=jax.jit(_autodiff_gradients, static_argnames="config"),
                parallel=Sharded(_sharded_gradients, _sharded_train, parallel.ready), compiled=jax.jit)
