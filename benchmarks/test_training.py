"""Training cores side by side: `pytest --benchmark-only` (one group per workload, one row per backend).

Every row trains the same network on the same data from the same parameters for the
same epochs. The timed region is the training core alone (arrays already on the
device), blocked on until the result exists. Compilation (JAX, torch.compile) is
kept out of it by a warm-up round and reported as compile_s.
"""

import importlib
import os
import time
from functools import partial

import numpy as np
import pytest

from crosscheck import backends, reference
from crosscheck.reference import batch_orders, initial_params
from crosscheck.reference.data import synthetic, xor
from crosscheck.suite import seedloops
from workloads import BASELINE_ROW, WORKLOADS

ROUNDS = 9  # per row: the regression check bootstraps its ratios from these rounds (benchmarks/regression.py)
# For measuring the regression check's error rates only: "ROW=FACTOR" runs that row's training core FACTOR times
# inside its timed region, a planted slowdown (docs/benchmarks.md, "Regression check").
SLOWDOWN = os.environ.get("CROSSCHECK_BENCH_PLANT_SLOWDOWN", "")


def problem(workload):
    config = workload.config
    X, y = xor(config.dtype) if workload.samples is None else synthetic(config, workload.samples)
    return config, initial_params(config), X, y


def timed(benchmark, fn, rounds=ROUNDS, beside=None):
    """Time fn (after one warm-up call, which also compiles); return the warm-up's extra seconds.

    beside: {row: callable}, the rows this one's ratios are taken against, timed again (as many rounds)
    right after fn's rounds, so that a ratio compares timings taken seconds apart, not minutes: a machine
    that slows down part-way through the run slows both sides alike. Kept in extra_info["beside_rounds_s"].
    (Back to back, not interleaved round by round: a tiny XLA loop timed straight after a NumPy loop runs
    up to twice as slow from cold caches, which would measure the interleaving, not the row.)
    """
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
    if beside:
        seconds = {}
        for name, other in beside.items():
            other()  # warm-up
            seconds[name] = []
            for _ in range(rounds):
                start = time.perf_counter()
                other()
                seconds[name].append(time.perf_counter() - start)
        benchmark.extra_info["beside_rounds_s"] = seconds
    return max(0.0, first - benchmark.stats.stats.median)


def seeds_loop(wl):
    """The seeds' loop on a workload, as a callable (crosscheck/suite/seedloops.py)."""
    config, params, X, y = problem(wl)
    (W1, b1), (W2, b2) = params if len(params) == 2 else pytest.fail("the seeds' loops have one hidden layer")
    if wl.samples is None:  # notebook 2: samples as columns
        args = (X.T, y[:, 0], W1.T, b1[:, None], W2.T, b2[:, None], config.lr, config.epochs)
        return lambda: seedloops.seed2_train(*args)
    return lambda: seedloops.seed1_train(X, y, W1, W2, config.lr, config.epochs)


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_seeds_loop(benchmark, record, workload):
    """The baseline: the plain NumPy loop as the notebooks write it (crosscheck/suite/seedloops.py)."""
    wl = WORKLOADS[workload]
    if wl.baseline == "float32":
        pytest.skip(f"{workload} is a 16-bit workload: each row is measured beside its own float32 run")
    if wl.baseline != BASELINE_ROW:
        pytest.skip(f"{workload} has layers the seeds' loops never had: its rows are measured beside {wl.baseline}")
    benchmark.group = workload
    timed(benchmark, seeds_loop(wl))
    record(BASELINE_ROW, wl, framework="numpy")


ROWS = {
    # row: (backend, how) -- how is "manual" (the mirror's own train), "autodiff" or "compiled"
    "numpy": ("numpy", "manual"),
    "torch": ("torch", "manual"),
    "torch-autodiff": ("torch", "autodiff"),
    "torch-compiled": ("torch", "compiled"),
    "jax": ("jax", "manual"),
    "jax-autodiff": ("jax", "autodiff"),
    # the framework's autodiff and its own optimizer (torch.optim, optax): timed on the workloads with a stateful one
    "torch-optim": ("torch", "optimizer"),
    "jax-optax": ("jax", "optimizer"),
    # the framework training the model its own way: its layers (torch.nn.functional, lax), autodiff and optimizer;
    # timed on the workloads whose yardstick it is (baseline "native")
    "torch-native": ("torch", "native"),
    "jax-native": ("jax", "native"),
}


def core(backend, how):
    """The training function of a row: train(params, X, y, config) on native arrays."""
    if backend == "numpy":
        return reference.mlp.train
    if how in ("optimizer", "native"):
        return getattr(importlib.import_module(f"crosscheck.backends.{backend}.autodiff"), f"{how}_train")
    return importlib.import_module(f"crosscheck.backends.{backend}.{'mlp' if how == 'manual' else how}").train


@pytest.mark.parametrize("row", list(ROWS))
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_training_core(benchmark, record, workload, row):
    backend, how = ROWS[row]
    native = WORKLOADS[workload].baseline == "native"
    if how == "native" and not native:
        pytest.skip("the frameworks' own layers are the yardstick of the workloads with layers the seeds never had")
    if how == "compiled" and workload != "xor":
        pytest.skip("torch.compile pays off where per-op overhead dominates: xor only (tens of seconds to compile)")
    if how == "autodiff" and WORKLOADS[workload].config.optimizer != "sgd":
        pytest.skip("the autodiff loops train by plain descent; the optimizer rows time autodiff with an optimizer")
    if how == "optimizer" and WORKLOADS[workload].config.optimizer == "sgd":
        pytest.skip("the framework-optimizer rows time the workloads with a stateful optimizer")
    wl = WORKLOADS[workload]
    if wl.baseline == "float32" and (backend == "numpy" or how not in ("manual", "autodiff")):
        pytest.skip("a 16-bit workload times the frameworks' manual and autodiff cores (NumPy has no bfloat16 matrix "
                    "product: ml_dtypes' runs element by element)")
    benchmark.group = workload
    try:
        driver, run = row_runner(row, wl)
    except backends.BackendUnavailable as exc:
        pytest.skip(str(exc))
    # The rows this one's ratios are taken against, timed again right after it (benchmarks/regression.py).
    if wl.baseline == "float32":  # the same row in float32
        beside = {f"{row}-float32": row_runner(row, wl.in_float32())[1]}
    elif native:  # the same framework's own layers (torch's for NumPy): none beside a native row itself
        yardstick = f"{'torch' if backend == 'numpy' else backend}-native"
        beside = {} if how == "native" else {yardstick: row_runner(yardstick, wl)[1]}
    else:
        beside = {BASELINE_ROW: seeds_loop(wl)}
    if workload == "wide":
        beside[f"gemm-{backend}"] = gemm_rate(backend)
    compile_s = timed(benchmark, run, beside=beside)
    losses = driver.to_numpy(run().losses)
    assert np.all(np.isfinite(losses)), f"{row} diverged on {workload}"
    record(row, wl, framework=backend, compile_s=compile_s if backend == "jax" or how == "compiled" else None)


def row_runner(row, wl):
    """(driver, a callable that runs the row's training core once on wl, arrays already native); raises
    BackendUnavailable."""
    backend, how = ROWS[row]
    driver = backends.load(backend)
    config, params, X, y = problem(wl)
    orders = batch_orders(config, len(X))
    native = driver.native_params(params, "cpu"), driver.to_native(X, "cpu"), driver.to_native(y, "cpu")
    extra = () if orders is None else (driver.to_native(orders, "cpu"),)
    train = core(backend, how)
    planted_row, _, factor = SLOWDOWN.partition("=")
    repeats = int(factor) if planted_row == row else 1

    def run():
        for _ in range(repeats):
            result = train(*native, config, *extra)
            driver.synchronize(result.params)
        return result

    return driver, run


GEMM_FRAMEWORKS = ("numpy", "torch", "jax")


@pytest.mark.parametrize("framework", GEMM_FRAMEWORKS)
def test_gemm_rate(benchmark, record, framework):
    """The matrix products of one wide step alone, as fast as the framework does them: the ceiling."""
    wl = WORKLOADS["wide"]
    benchmark.group = "wide-gemm"
    try:
        run = gemm_rate(framework)
    except backends.BackendUnavailable as exc:
        pytest.skip(str(exc))
    timed(benchmark, run)
    record(f"gemm-{framework}", wl, framework=framework)


def gemm_rate(framework):
    """The GEMM ceiling of the wide workload in one framework, as a callable (raises BackendUnavailable)."""
    wl = WORKLOADS["wide"]
    driver = backends.load(framework)
    config, params, X, y = problem(wl)
    (W1, _), (W2, _) = params
    n = wl.samples
    rng = np.random.default_rng(0)
    a1 = rng.standard_normal((n, W1.shape[1])).astype(config.dtype)
    dz2 = rng.standard_normal((n, W2.shape[1])).astype(config.dtype)
    dz1 = rng.standard_normal((n, W1.shape[1])).astype(config.dtype)
    arrays = [driver.to_native(a, "cpu") for a in (X, W1, a1, W2, dz2, dz1)]
    products = gemm_products(framework)

    def run():
        out = products(*arrays, config.epochs)
        driver.synchronize(out)

    return run


def gemm_products(framework):
    """epochs x the five products of a wide step, run as training runs them and with nothing else.

    X W1, a1 W2, a1^T dz2, dz2 W2^T and X^T dz1: the products training does (the first layer's input
    gradient skipped by both). Like with like: in one loop over the epochs (for JAX, one compiled loop,
    as its training's scan), each product's result feeding the next epoch (weight gradients subtracted
    from the weights, the rest taking a1's, dz2's and dz1's places), so that no product is loop-invariant,
    none is dead code a compiler may drop, and no result outlives its epoch. No activation, loss or bias.
    """
    if framework == "jax":
        import jax
        from jax import lax

        @partial(jax.jit, static_argnames="epochs")
        def products(X, W1, a1, W2, dz2, dz1, epochs):
            def epoch(_, carry):
                return gemm_step(X, *carry)

            return lax.fori_loop(0, epochs, epoch, (W1, a1, W2, dz2, dz1))

    else:
        def products(X, W1, a1, W2, dz2, dz1, epochs):
            for _ in range(epochs):
                W1, a1, W2, dz2, dz1 = gemm_step(X, W1, a1, W2, dz2, dz1)
            return W1, W2

    return products


def gemm_step(X, W1, a1, W2, dz2, dz1, lr=1e-12):
    """The five products once; lr is tiny so that ten epochs of it stay finite (the values do not matter)."""
    return W1 - lr * (X.T @ dz1), X @ W1, W2 - lr * (a1.T @ dz2), a1 @ W2, dz2 @ W2.T
