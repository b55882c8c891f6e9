"""The NumPy reference: the oracle every backend is checked against. Imports NumPy only."""

from dataclasses import replace

import numpy as np

from crosscheck.common.config import SEED1_XOR, SEED2_XOR, Config
from crosscheck.common.driver import Driver, Sharded
from crosscheck.common.initializers import batch_orders, initial_params
from crosscheck.common.validate import check_inputs

from . import activations, losses, mlp
from .precision import bfloat16

__all__ = ["Config", "Driver", "SEED1_XOR", "SEED2_XOR", "DRIVER", "activations", "batch_orders", "check_inputs",
           "initial_params", "losses", "mlp"]

# NumPy has no autodiff: crosscheck.reference.gradcheck (central differences) is the reference's independent check.
# reference=True: it runs a data-parallel problem on one device, what every sharded run is compared with (parallel.py
# simulates the shards: tests/test_parallel.py holds it to that run too).
DRIVER = Driver(name="numpy", version=np.__version__, devices=("cpu",), mlp=mlp,
                to_native=lambda arr, device: bfloat16(arr), to_numpy=np.asarray,  # bfloat16: precision.BFloat16
                reference=True)
# The reference's shards simulated in one process (parallel.py), as a driver: where the diagnosis plants a mistake of
# the collectives, on a sharded problem.
SHARDS = replace(DRIVER, name="numpy shards", reference=False,
                 parallel=Sharded(run_gradients=mlp.accumulated, train=mlp.train))
