"""The PyTorch mirror, and its driver (NumPy in, NumPy out; see common/driver.py).

Importing this module pins precision: TF32 off for CUDA matrix products, so that
float32 on a GPU means IEEE float32.
"""

import numpy as np
import torch

from crosscheck.common import dtypes
from crosscheck.common.driver import Driver, Sharded

from . import activations, autodiff, losses, mlp, parallel

if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
    torch.backends.cuda.matmul.fp32_precision = "ieee"
    torch.backends.cudnn.fp32_precision = "ieee"
else:  # torch < 2.9 knows only the old flags; the two styles must not be mixed
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

__all__ = ["DRIVER", "activations", "autodiff", "losses", "mlp"]


def to_native(arr, device):
    arr = np.asarray(arr, order="C")  # not ascontiguousarray: it makes a 0-d array (a loss scale) 1-d
    if arr.dtype.name == "bfloat16":  # ml_dtypes' bfloat16, which torch.from_numpy does not know: its bits
        return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16).to(device)
    return torch.from_numpy(arr).to(device)


def to_numpy(tensor):
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(dtypes.numpy_dtype("bfloat16"))
    return tensor.numpy()


def synchronize(tree):
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _sharded_gradients(params, X, y, config):
    """mlp.gradients' result for the whole batch, from config.world processes (each rank's mlp.accumulated)."""
    return parallel.start(mlp.accumulated, (params, X, y, config), config.world)


def _sharded_train(params, X, y, config, orders=None, checkpoints=(), opt_state=None, step=0, **kept):
    """mlp.train's Run, every step on config.world processes."""
    return parallel.start(mlp.train, (params, X, y, config, orders, checkpoints, opt_state, step), config.world, kept)


DRIVER = Driver(name="torch", version=torch.__version__,
                devices=("cpu", "cuda") if torch.cuda.is_available() else ("cpu",),
                mlp=mlp, to_native=to_native, to_numpy=to_numpy, synchronize=synchronize,
                autodiff_gradients=autodiff.autodiff_gradients,
                parallel=Sharded(_sharded_gradients, _sharded_train, parallel.ready))
