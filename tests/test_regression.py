"""The benchmark regression check fails on a slowdown or a missing row, and passes otherwise."""

import importlib.util
import pathlib

spec = importlib.util.spec_from_file_location(
    "regression", pathlib.Path(__file__).parents[1] / "benchmarks" / "regression.py")
regression = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regression)


def bench(workload, row, framework, median, gflops=1.0):
    return {"stats": {"median": median},
            "extra_info": {"workload": workload, "row": row, "framework": framework, "gflops": gflops}}


RESULTS = {"benchmarks": [
    bench("xor", "seeds-loop", "numpy", 1.0), bench("xor", "jax", "jax", 0.01),
    bench("wide", "seeds-loop", "numpy", 1.0, 10), bench("wide", "torch", "torch", 0.5, 20),
    bench("wide", "gemm-torch", "torch", 0.4, 25),
]}


def test_ratios_are_speed_over_the_seeds_loop_and_rate_over_gemm():
    got = regression.ratios(RESULTS)
    assert got == {"xor/jax": 100.0, "wide/torch": 2.0, "wide/torch of gemm": 0.8}


def test_check_flags_a_drop_beyond_the_margin_and_a_missing_row():
    measured = {"xor/jax": 40.0, "wide/torch": 2.0}
    committed = {"xor/jax": 100.0, "wide/torch": 2.1, "xor/torch": 1.0}
    problems = regression.check(measured, committed, margin=0.5)
    assert problems == ["xor/jax: ratio 40.00, below 50% of the committed 100.00",
                        "xor/torch: did not run (committed ratio 1.00)"]


def test_check_passes_within_the_margin():
    assert regression.check({"xor/jax": 60.0}, {"xor/jax": 100.0}, margin=0.5) == []
