"""The benchmark regression check: bootstrap intervals on within-run ratios; it fails only when a whole interval
is below the threshold, or when a committed row did not run."""

import importlib.util
import pathlib

import numpy as np
import pytest

spec = importlib.util.spec_from_file_location(
    "regression", pathlib.Path(__file__).parents[1] / "benchmarks" / "regression.py")
regression = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regression)


def bench(workload, row, framework, rounds, gflops=1.0):
    return {"stats": {"median": float(np.median(rounds))},
            "extra_info": {"workload": workload, "row": row, "framework": framework, "gflops": gflops,
                           "rounds_s": list(rounds)}}


STEADY = [1.0] * 9  # identical rounds: the interval collapses onto the ratio, which the hand arithmetic gives
RESULTS = {"benchmarks": [
    bench("xor", "seeds-loop", "numpy", STEADY), bench("xor", "jax", "jax", [0.01] * 9),
    bench("wide", "seeds-loop", "numpy", STEADY, 10), bench("wide", "torch", "torch", [0.5] * 9, 20),
    bench("wide", "gemm-torch", "torch", [0.4] * 9, 25),
]}


def test_ratios_are_speed_over_the_seeds_loop_and_rate_over_gemm():
    got = regression.ratios(RESULTS)
    # xor/jax: 1.0 / 0.01; wide/torch: 1.0 / 0.5; of gemm: (20 GFLOP/s) / (25 GFLOP/s).
    assert got.keys() == {"xor/jax", "wide/torch", "wide/torch of gemm"}
    for key, value in {"xor/jax": 100.0, "wide/torch": 2.0, "wide/torch of gemm": 0.8}.items():
        assert got[key] == pytest.approx((value, value, value), rel=1e-12)


def test_the_interval_widens_with_noisy_rounds_and_holds_the_ratio():
    rng = np.random.default_rng(1)
    ratio, lower, upper = regression.interval(1 + 0.3 * rng.random(9), 0.5 + 0.15 * rng.random(9), 1.0)
    assert lower < ratio < upper and upper - lower > 0.05


def test_check_flags_a_whole_interval_below_the_threshold_and_a_missing_row():
    measured = {"xor/jax": (40.0, 35.0, 45.0), "wide/torch": (2.0, 1.9, 2.1)}
    committed = {"xor/jax": 100.0, "wide/torch": 2.1, "xor/torch": 1.0}
    problems = regression.check(measured, committed, margin=0.5)
    assert problems == ["xor/jax: ratio 40.00, whole 95% interval [35.00, 45.00] below 50.00 (50% of the committed "
                        "100.00)", "xor/torch: did not run (committed ratio 1.00)"]


def test_check_passes_when_the_interval_reaches_the_threshold():
    """A median below the threshold is not enough: a noisy round must not fail CI."""
    assert regression.check({"xor/jax": (45.0, 30.0, 55.0)}, {"xor/jax": 100.0}, margin=0.5) == []


def test_the_verdict_is_deterministic():
    rounds = np.linspace(1.0, 1.3, 9), np.linspace(0.5, 0.8, 9)
    assert regression.interval(*rounds, 1.0) == regression.interval(*rounds, 1.0)
