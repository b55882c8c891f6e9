"""The benchmark regression check: bootstrap intervals on within-run ratios; it fails only when a whole interval
is below the threshold, or when a committed row did not run."""

import importlib.util
import json

import numpy as np
import pytest

from .source import IN_SOURCE_TREE, ROOT

if not IN_SOURCE_TREE:
    pytest.skip("checks benchmarks/regression.py, which lives in the checkout only", allow_module_level=True)
spec = importlib.util.spec_from_file_location("regression", ROOT / "benchmarks" / "regression.py")
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


def test_rounds_timed_beside_the_row_cancel_a_machine_that_slows_down_part_way():
    """The seeds' loop's own benchmark ran on a quiet machine (1 s); jax's came later, on a machine twice as
    slow, where jax took 0.02 s and the seeds' loop timed right after it 2 s. Taken beside the row, the
    ratio is the true 100; from the seeds' own benchmark it would be 50, a false alarm at a 65% threshold."""
    slow_jax = bench("xor", "jax", "jax", [0.02] * 9)
    slow_jax["extra_info"]["beside_rounds_s"] = {"seeds-loop": [2.0] * 9}
    results = {"benchmarks": [bench("xor", "seeds-loop", "numpy", STEADY), slow_jax]}
    got = regression.ratios(results)
    assert got["xor/jax"] == pytest.approx((100.0, 100.0, 100.0), rel=1e-12)
    assert regression.check(got, {"xor/jax": 100.0}, margin=0.35) == []
    del slow_jax["extra_info"]["beside_rounds_s"]
    assert regression.check(regression.ratios(results), {"xor/jax": 100.0}, margin=0.35) != []


def test_a_row_rerun_alone_still_has_its_ratios():
    """A confirmation re-run times only the flagged rows: the other sides come from beside_rounds_s."""
    torch = bench("wide", "torch", "torch", [0.5] * 9)
    torch["extra_info"]["beside_rounds_s"] = {"seeds-loop": [1.0] * 9, "gemm-torch": [0.4] * 9}
    got = regression.ratios({"benchmarks": [torch]})
    assert got.keys() == {"wide/torch", "wide/torch of gemm"}
    assert got["wide/torch"] == pytest.approx((2.0, 2.0, 2.0))
    assert got["wide/torch of gemm"] == pytest.approx((0.8, 0.8, 0.8))
    assert regression.test_id("wide/torch of gemm").endswith("test_training.py::test_training_core[wide-torch]")
    # a ratio over the framework's own layers: CI's confirmation run once asked for "[rnn-torch-optim of torch-native]"
    assert regression.test_id("rnn/torch-optim of torch-native").endswith("::test_training_core[rnn-torch-optim]")


def test_confirmation_clears_a_ratio_that_a_fresh_run_does_not_flag(monkeypatch, tmp_path, capsys):
    """Flagged in the run, cleared by the re-run: it holds. Flagged in both: a regression (exit 1)."""
    results = tmp_path / "bench.json"
    results.write_text(json.dumps(RESULTS))
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"xor/jax": 200.0, "wide/torch": 2.0}))  # xor/jax measured 100: flagged
    monkeypatch.setattr(regression, "remeasure", lambda keys: {"xor/jax": (190.0, 180.0, 200.0)})
    assert regression.main(["check", str(results), "--baseline", str(baseline), "--confirm", "1"]) == 0
    assert "REGRESSION" not in capsys.readouterr().out
    monkeypatch.setattr(regression, "remeasure", lambda keys: {"xor/jax": (100.0, 100.0, 100.0)})
    assert regression.main(["check", str(results), "--baseline", str(baseline), "--confirm", "2"]) == 1
    assert "REGRESSION xor/jax" in capsys.readouterr().out
    assert regression.main(["check", str(results), "--baseline", str(baseline)]) == 1  # no confirmation asked


def _on(machine, flags, count=2):
    return {**RESULTS, "machine_info": {"cpu": {"brand_raw": machine, "flags": flags, "count": count}}}


def test_the_baseline_is_keyed_by_the_machine_that_measured(monkeypatch):
    """CPU model, widest vector unit (ATEN_CPU_CAPABILITY where set) and core count, from the run's machine_info."""
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    assert regression.machine_key(_on("AMD EPYC", ["sse2", "avx2", "avx512f"])) == "AMD EPYC / avx512 / 2 cores"
    assert regression.machine_key(_on("Intel Xeon", ["avx2"], 4)) == "Intel Xeon / avx2 / 4 cores"
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert regression.machine_key(_on("AMD EPYC", ["avx512f"])) == "AMD EPYC / default / 2 cores"


def test_a_machine_without_a_baseline_records_one_and_never_fails(monkeypatch, tmp_path, capsys):
    """Another machine's ratios are no yardstick (xor/jax: 142.6x on one CPU, 74.6x on another): a run on a machine the
    baseline does not know exits 0, says so, and records its ratios under its key; the next run there is checked
    against them, and a 2x slowdown there is then caught."""
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"machines": {"AMD EPYC / avx512 / 2 cores": {"ratios": {"xor/jax": 200.0,
                                                                                               "wide/torch": 2.0}}}}))
    intel = tmp_path / "intel.json"
    intel.write_text(json.dumps(_on("Intel Xeon", ["avx2"])))  # xor/jax 100: half the AMD machine's
    assert regression.main(["check", str(intel), "--baseline", str(baseline)]) == 0
    assert "NO BASELINE for this machine (Intel Xeon / avx2 / 2 cores" in capsys.readouterr().out
    machines = json.loads(baseline.read_text())["machines"]
    assert machines["Intel Xeon / avx2 / 2 cores"]["ratios"]["xor/jax"] == 100.0
    assert machines["AMD EPYC / avx512 / 2 cores"]["ratios"]["xor/jax"] == 200.0  # the other machine's kept
    assert regression.main(["check", str(intel), "--baseline", str(baseline)]) == 0  # unchanged code holds
    slow = json.loads(intel.read_text())
    slow["benchmarks"][1]["extra_info"]["rounds_s"] = [0.02] * 9  # jax 2x slower on the same machine
    intel.write_text(json.dumps(slow))
    assert regression.main(["check", str(intel), "--baseline", str(baseline)]) == 1
    assert "REGRESSION xor/jax" in capsys.readouterr().out
    amd = tmp_path / "amd.json"
    amd.write_text(json.dumps(_on("AMD EPYC", ["avx512f"])))  # on the baseline's own machine the 2x is caught too
    assert regression.main(["check", str(amd), "--baseline", str(baseline)]) == 1


def test_the_committed_baseline_is_keyed_by_machine():
    committed = json.loads((ROOT / "benchmarks" / "baseline.json").read_text())
    assert committed["machines"], "benchmarks/baseline.json holds no machine's ratios"
    for key, entry in committed["machines"].items():
        assert key.count(" / ") == 2 and entry["ratios"], key
