"""What bounds each backend's speed on the workloads issue 32 sets targets for: a profile, not a test.

    python tools/speed_bounds.py

Three floors, each measured beside the seeds' loop (crosscheck/suite/seedloops.py) in the same process, medians of nine:
- NumPy on `xor` and `xor-adam`: the reference's gradients alone (forward, loss, backward; no update) against the
  seeds' whole epoch (which also updates, and computes its loss only when it logs).
- PyTorch on `mid`: the mirror's epoch under torch.profiler (the matrix products' share), and each of the epoch's
  products bare in torch and in NumPy, on the same shapes and threads.
- JAX on `mid`: one compiled scan of only the epoch's five matrix products (what XLA:CPU's products cost an epoch)
  against the same five products in a NumPy loop, and the seeds' whole epoch.
docs/benchmarks.md has the figures and what they mean for the targets.
"""

import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from test_training import problem, seeds_loop  # noqa: E402
from xor_dispatch import per_call  # noqa: E402 -- tools/, this script's own folder

from crosscheck import reference  # noqa: E402
from workloads import WORKLOADS  # noqa: E402


def median_s(fn, *args, rounds=9):
    """Median seconds of fn(*args) over rounds calls, after one warm-up call."""
    fn(*args)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def repeated(fn, times, *args):
    """fn(*args), times times over."""
    for _ in range(times):
        fn(*args)




def products(config, samples):
    """The (m, k, n) of one epoch's five matrix products on a one-hidden-layer network: two forward, three backward."""
    d, h, k = config.layers
    return [(samples, d, h), (samples, h, k), (h, samples, k), (samples, k, h), (d, samples, h)]


def numpy_xor():
    print("NumPy on xor and xor-adam (one thread), microseconds an epoch:")
    for name in ("xor", "xor-adam"):
        config, params, X, y = problem(WORKLOADS[name])
        seeds = median_s(seeds_loop(WORKLOADS[name])) / config.epochs * 1e6
        train = median_s(reference.mlp.train, params, X, y, config) / config.epochs * 1e6
        grads = median_s(repeated, reference.mlp.gradients, config.epochs, params, X, y, config) / config.epochs * 1e6
        print(f"  {name:<9} seeds' epoch {seeds:5.1f}   reference's epoch {train:5.1f} ({seeds / train:.2f}x)   "
              f"its gradients alone {grads:5.1f} ({seeds / grads:.2f}x)")


def torch_mid():
    import torch
    from torch.profiler import ProfilerActivity, profile

    from crosscheck.backends.torch import mlp

    wl = WORKLOADS["mid"]
    config, params, X, y = problem(wl)
    native = [tuple(torch.as_tensor(p) for p in leaves) for leaves in params]
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    seeds = median_s(seeds_loop(wl)) / config.epochs * 1e6
    epoch = median_s(mlp.train, native, Xt, yt, config) / config.epochs * 1e6
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        mlp.train(native, Xt, yt, config.replace(epochs=50))
    ops = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    share = ops.get("aten::mm", 0.0) / sum(ops.values())
    print(f"PyTorch on mid ({torch.get_num_threads()} threads): seeds' epoch {seeds:.1f} us, the mirror's "
          f"{epoch:.1f} us ({seeds / epoch:.2f}x); aten::mm {share:.0%} of the profiled operators' time")
    rng = np.random.default_rng(0)
    total_t = total_n = 0.0
    for m, k, n in products(config, wl.samples):
        a, b = (rng.standard_normal(s).astype(np.float32) for s in ((m, k), (k, n)))
        ta, tb = torch.as_tensor(a), torch.as_tensor(b)
        t = per_call(partial(torch.matmul, ta, tb), 300) * 1e6  # microseconds a product
        q = per_call(partial(np.matmul, a, b), 300) * 1e6
        total_t, total_n = total_t + t, total_n + q
        print(f"  {m}x{k} @ {k}x{n}: torch {t:6.1f} us, NumPy {q:6.1f} us")
    print(f"  the five products: torch {total_t:.1f} us, NumPy {total_n:.1f} us, the seeds' whole epoch {seeds:.1f} us")


def jax_mid():
    import jax
    import jax.numpy as jnp
    from jax import lax

    import crosscheck.backends.jax  # noqa: F401 -- its XLA flags, set before JAX starts

    wl = WORKLOADS["mid"]
    config, params, X, y = problem(wl)
    (W1, _), (W2, _) = params
    dz = np.random.default_rng(0).standard_normal((wl.samples, config.layers[-1])).astype(np.float32)
    epochs = config.epochs

    @jax.jit
    def five_products(X, W1, W2, dz):
        def epoch(weights, _):
            W1, W2 = weights
            a = X @ W1
            z = a @ W2
            dW2, da = a.T @ dz, dz @ W2.T
            dW1 = X.T @ da
            return (W1 - 1e-6 * dW1, W2 - 1e-6 * dW2 - 1e-9 * z[:W2.shape[0]]), None

        return lax.scan(epoch, (W1, W2), None, length=epochs)[0]

    def numpy_products():
        w1, w2 = W1.copy(), W2.copy()
        for _ in range(epochs):
            a = X @ w1
            z = a @ w2
            dW2, da = a.T @ dz, dz @ w2.T
            w1 -= 1e-6 * (X.T @ da)
            w2 -= 1e-6 * dW2 + 1e-9 * z[:w2.shape[0]]

    args = [jnp.asarray(a) for a in (X, W1, W2, dz)]
    xla = median_s(lambda: jax.block_until_ready(five_products(*args))) / epochs * 1e6  # noqa: B023 -- not a loop
    blas = median_s(numpy_products) / epochs * 1e6
    seeds = median_s(seeds_loop(wl)) / epochs * 1e6
    print(f"JAX on mid: the five products alone, one compiled scan {xla:.1f} us an epoch; in NumPy {blas:.1f} us; "
          f"the seeds' whole epoch {seeds:.1f} us (1.5x of it: {seeds / 1.5:.1f} us)")


if __name__ == "__main__":
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        numpy_xor()
    torch_mid()
    jax_mid()
