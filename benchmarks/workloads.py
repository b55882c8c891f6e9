"""What the benchmarks time: workloads, and the FLOP model of one step.

CROSSCHECK_BENCH_DTYPE=float64 (or float32) runs every workload in that dtype instead of its own.
"""

import os
from dataclasses import dataclass, replace

from reference import Config

BASELINE_ROW = "seeds-loop"  # the row every speed ratio divides by (also spelled in regression.py, standalone)


@dataclass(frozen=True)
class Workload:
    name: str
    config: Config
    samples: int | None  # None: XOR
    threads: int | None  # None: every core this process may use; else pinned (tiny problems run on one)


WORKLOADS = {
    # The second seed's set-up: overhead-bound, every op works on a handful of numbers.
    "xor": Workload("xor", Config(layers=(2, 2, 1), init="uniform_pm1", lr=0.1, epochs=3200), None, 1),
    # In between: products of a few hundred rows, where per-op overhead and arithmetic are of one size.
    "mid": Workload("mid", Config(layers=(64, 128, 10), init="glorot_uniform", lr=0.01, epochs=320, dtype="float32"),
                    256, None),
    # Compute-bound: matrix products dominate.
    "wide": Workload("wide", Config(layers=(784, 512, 10), init="glorot_uniform", lr=0.001, epochs=10,
                                    dtype="float32"), 1024, None),
    # The same two with Adam: its state and update beside the seeds' plain descent (the baseline row stays the
    # seeds' own loop), and beside the frameworks' own optimizers (torch.optim, optax).
    "xor-adam": Workload("xor-adam", Config(layers=(2, 2, 1), init="uniform_pm1", lr=0.01, epochs=3200,
                                            optimizer="adam"), None, 1),
    "wide-adam": Workload("wide-adam", Config(layers=(784, 512, 10), init="glorot_uniform", lr=0.001, epochs=10,
                                              dtype="float32", optimizer="adam"), 1024, None),
}

if os.environ.get("CROSSCHECK_BENCH_DTYPE"):
    WORKLOADS = {name: replace(w, config=w.config.replace(dtype=os.environ["CROSSCHECK_BENCH_DTYPE"]))
                 for name, w in WORKLOADS.items()}


def step_flops(config, samples):
    """Multiply-adds x 2 of the matrix products of one full-batch step (elementwise work not counted).

    Per layer: forward a W (2 N in out), dW = a^T dz (2 N in out), and for every layer but the
    first, da = dz W^T (2 N in out).
    """
    total = 0
    for l, (fan_in, fan_out) in enumerate(zip(config.layers[:-1], config.layers[1:])):
        total += (3 if l > 0 else 2) * 2 * samples * fan_in * fan_out
    return total
