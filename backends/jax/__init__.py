"""The JAX mirror, and its driver (NumPy in, NumPy out; see reference/driver.py).

Importing this module pins precision for the whole process (JAX's settings are
global): jax_enable_x64, so float64 is really float64, and "highest" matmul
precision, so float32 products on a GPU are not done in TF32 or bf16.
"""

import jax
import numpy as np

from common.driver import Driver

from . import activations, autodiff, losses, mlp

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_default_matmul_precision", "highest")

__all__ = ["DRIVER", "activations", "autodiff", "losses", "mlp"]


def _has_gpu():
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def _forward(params, X, config):
    return mlp.forward(params, X, config)


def _gradients(params, X, y, config):
    return mlp.gradients(params, X, y, config)


def _autodiff_gradients(params, X, y, config):
    return autodiff.autodiff_gradients(params, X, y, config)


class _Compiled:
    """The driver's view of mlp: each whole function compiled once per configuration and shape.

    (JAX quirk: run eagerly, every small op compiles on its own at first use, which
    costs seconds per configuration.) The wrappers above look mlp up when traced, so
    a patched mlp (tests/mutations.py) is seen after jax.clear_caches().
    """

    forward = staticmethod(jax.jit(_forward, static_argnames="config"))
    gradients = staticmethod(jax.jit(_gradients, static_argnames="config"))

    @staticmethod
    def train(*args, **kwargs):
        return mlp.train(*args, **kwargs)  # compiled inside, around lax.scan


def to_native(arr, device):
    return jax.device_put(arr, jax.devices("gpu" if device == "cuda" else "cpu")[0])


DRIVER = Driver(name="jax", version=jax.__version__, devices=("cpu", "cuda") if _has_gpu() else ("cpu",),
                mlp=_Compiled, to_native=to_native, to_numpy=np.asarray, synchronize=jax.block_until_ready,
                autodiff_gradients=jax.jit(_autodiff_gradients, static_argnames="config"))
