"""Benchmark fixtures: pinned threads, machine info, and the summary table with ratios to the seeds' loop."""

import os
import platform

import numpy as np
import pytest

from workloads import BASELINE_ROW, WORKLOADS, step_flops

RESULTS = pytest.StashKey[list]()


def cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def pytest_configure(config):
    config.stash[RESULTS] = []


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """One process when timing (pyproject's addopts say -n auto): pytest-benchmark switches itself off under xdist."""
    return 0 if config.getoption("benchmark_only") else None


def pytest_benchmark_update_machine_info(config, machine_info):
    info = {"numpy": np.__version__, "python": platform.python_version(), "cores_available": cores(),
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
                    torch_cuda=torch.cuda.is_available())
    except ModuleNotFoundError:
        pass
    try:
        import jax

        info.update(jax=jax.__version__, jax_devices=[str(d) for d in jax.devices()],
                    jax_note="XLA's CPU thread pool ignores thread settings: it uses every core available",
                    XLA_FLAGS=os.environ.get("XLA_FLAGS"))  # backends/jax adds its small-loop limit
    except ModuleNotFoundError:
        pass
    machine_info["crosscheck"] = info


@pytest.fixture
def threads(request):
    """Pin torch's (and, with threadpoolctl, BLAS's) threads for the workload; record them."""
    workload = WORKLOADS[request.node.callspec.params.get("workload", "wide")]
    n = workload.threads or cores()
    limits = None
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(n)
    except ModuleNotFoundError:
        pass
    try:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(n)
    except ModuleNotFoundError:
        torch = None
    yield n
    if torch is not None:
        torch.set_num_threads(before)
    if limits is not None:
        limits.unregister()


@pytest.fixture
def record(request, benchmark, threads):
    """record(row, workload, **extra): fill extra_info after a timing and keep it for the summary."""

    def done(row, workload, **extra):
        stats = benchmark.stats.stats
        config = workload.config
        samples = workload.samples or 4
        median = stats.median
        benchmark.extra_info.update(row=row, workload=workload.name, threads=threads, epochs=config.epochs,
                                    dtype=config.dtype, rounds_s=list(stats.data), epochs_per_s=config.epochs / median,
                                    gflops=step_flops(config, samples) * config.epochs / median / 1e9, **extra)
        request.config.stash[RESULTS].append(dict(benchmark.extra_info, median_s=median))

    return done


def pytest_terminal_summary(terminalreporter, config):
    results = config.stash.get(RESULTS, [])
    if not results:
        return
    tr = terminalreporter
    tr.section("backprop cross-check: speed per workload (medians; x seeds = speed over the seeds' loop; "
               "% of gemm = FLOP rate over the same framework's matrix-product rate)")
    for name in WORKLOADS:
        rows = [r for r in results if r["workload"] == name]
        if not rows:
            continue
        base = next((r for r in rows if r["row"] == BASELINE_ROW), None)
        gemm = {r["framework"]: r["gflops"] for r in rows if r["row"].startswith("gemm-")}
        first = rows[0]
        tr.write_line(f"\n{name}: {first['epochs']} epochs, {first['dtype']}, {first['threads']} thread(s)")
        tr.write_line(f"  {'row':<16}{'median s':>10}{'epochs/s':>14}{'GFLOP/s':>10}{'x seeds':>10}"
                      f"{'compile s':>11}{'% of gemm':>11}")
        own = {r["framework"]: r["epochs_per_s"] for r in rows if r["row"].endswith("-native")}
        if not base and own:
            tr.write_line("  (no seeds' loop here: x seeds reads x own, the speed over the same framework's own "
                          "layers and autodiff, torch's for numpy)")
        if WORKLOADS[name].baseline == "float32":
            tr.write_line("  (a 16-bit workload: x seeds reads x float32, the row's speed over its own float32 run)")
        for r in sorted(rows, key=lambda r: -r["epochs_per_s"]):
            yardstick = base["epochs_per_s"] if base else own.get("torch" if r["framework"] == "numpy"
                                                                 else r["framework"], float("nan"))
            twin = r.get("beside_rounds_s", {}).get(f"{r['row']}-float32")
            if twin:
                yardstick = r["epochs"] / float(np.median(twin))
            ratio = r["epochs_per_s"] / yardstick
            compile_s = r.get("compile_s")
            of_gemm = None if r["row"].startswith("gemm-") else r["gflops"] / gemm.get(r["framework"], float("nan"))
            tr.write_line(f"  {r['row']:<16}{r['median_s']:>10.4f}{r['epochs_per_s']:>14,.0f}{r['gflops']:>10.2f}"
                          f"{ratio:>10.2f}{'' if compile_s is None else f'{compile_s:.2f}':>11}"
                          f"{'' if of_gemm is None or of_gemm != of_gemm else f'{100 * of_gemm:.0f}%':>11}")
