"""Catch a slowdown in CI without comparing absolute times between machines, and without crying wolf.

Every ratio is measured within one benchmark run: each row's speed over the seeds'
loop on the same workload, and on `wide` each backend's FLOP rate over its own
framework's GEMM rate. The rows a row is compared with are timed again right after it
(so a machine that slows down part-way through a run slows both sides of a ratio alike).
Each side is timed over several rounds; a ratio's uncertainty is a bootstrap confidence
interval (the rounds of both sides resampled, the ratio of their medians recomputed).
`check` flags a ratio when the whole interval lies below the threshold, (1 - margin)
times the committed ratio in benchmarks/baseline.json; with --confirm N it re-times a
flagged row in N fresh runs, and it fails only on a ratio flagged every time, or when a
committed row did not run: a noisy round or a noisy minute cannot fail the run, a real
slowdown (which persists) does.

    pytest benchmarks --benchmark-only -n0 --benchmark-json=bench.json
    python benchmarks/regression.py check --confirm 2 bench.json   # exit 1 on a regression
    python benchmarks/regression.py record bench.json a.json b.json   # baseline: per ratio, the lowest median

A ratio depends on the machine (XLA's loop against NumPy's small-array overhead: xor/jax measured 142.6x on the AMD
EPYC the baseline came from and 74.6x on an Intel Xeon), so the baseline holds one set of ratios per kind of machine,
keyed as asv keys its results: the CPU's model, its widest vector unit (or ATEN_CPU_CAPABILITY where set) and its core
count, read from the benchmark file's own machine_info. `check` on a machine with no baseline of its own records the
run's ratios under its key (in the baseline file, to be committed) and says so: nothing to compare with, nothing fails.

docs/benchmarks.md ("Regression check") gives the measured false-alarm and detection rates.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

BASELINE = pathlib.Path(__file__).with_name("baseline.json")
MARGIN = 0.35  # fail below 65% of the committed ratio: a 2x slowdown (50%) is caught, run-to-run swings are not
CONFIDENCE = 0.95
RESAMPLES = 2000
BASELINE_ROW = "seeds-loop"


def machine_key(results):
    """'CPU model / vector unit / N cores' of the machine that measured results (pytest-benchmark's machine_info)."""
    import os

    cpu = results.get("machine_info", {}).get("cpu", {})
    flags = set(cpu.get("flags", []))
    isa = next((name for name, flag in (("avx512", "avx512f"), ("avx2", "avx2"), ("neon", "asimd")) if flag in flags),
               "baseline")
    isa = os.environ.get("ATEN_CPU_CAPABILITY", isa).lower()
    return f"{cpu.get('brand_raw') or 'unknown CPU'} / {isa} / {cpu.get('count', '?')} cores"


def committed_for(baseline, key):
    """The committed ratios for the machine key, or None where it has none; a flat file (no "machines") holds ratios
    for whatever machine reads it (the tests' hand-written baselines)."""
    if "machines" not in baseline:
        return baseline
    entry = baseline["machines"].get(key)
    return None if entry is None else entry["ratios"]


def _recorded(baseline, key, ratios):
    """baseline with ratios recorded under key (a flat file becomes a keyed one)."""
    machines = dict(baseline.get("machines", {})) if "machines" in baseline else {}
    machines[key] = {"ratios": ratios}
    return {"machines": machines}


def _rows(results):
    return [b["extra_info"] | {"median_s": b["stats"]["median"]} for b in results["benchmarks"]
            if "row" in b.get("extra_info", {})]


def ratio_samples(results):
    """{ratio name: (numerator rounds, denominator rounds, scale)}: ratio = scale * median(num) / median(den).

    'xor/jax' is the seeds' loop's time over jax's (its speed-up); 'wide/jax of gemm' is jax's FLOP rate over
    its framework's GEMM rate, i.e. GEMM time / row time (both do the FLOPs of the same wide step). The other
    side's rounds are those timed right after the row (beside_rounds_s) where there are any, else its own
    benchmark's.
    """
    rows = _rows(results)
    out = {}
    for r in rows:
        if r["row"] == BASELINE_ROW or r["row"].startswith("gemm-"):
            continue
        beside = r.get("beside_rounds_s", {})
        base = next((b["rounds_s"] for b in rows if b["workload"] == r["workload"] and b["row"] == BASELINE_ROW),
                    None)
        base = beside.get(BASELINE_ROW, base)
        if base is not None:
            out[f"{r['workload']}/{r['row']}"] = (base, r["rounds_s"], 1.0)
        for other, rounds in beside.items():  # the frameworks' own layers (cnn): the row's speed over theirs
            if other.endswith("-native"):
                out[f"{r['workload']}/{r['row']} of {other}"] = (rounds, r["rounds_s"], 1.0)
            if other.endswith("-float32"):  # a 16-bit workload: the row's speed over its own float32 run
                out[f"{r['workload']}/{r['row']} of float32"] = (rounds, r["rounds_s"], 1.0)
        gemm = beside.get(f"gemm-{r['framework']}", next(
            (b["rounds_s"] for b in rows if b["row"] == f"gemm-{r['framework']}"), None))
        if r["workload"] == "wide" and gemm is not None:
            # The GEMM row does the wide step's matrix products, the FLOPs that step_flops counts for the row:
            # the ratio of FLOP rates is the ratio of times.
            out[f"wide/{r['row']} of gemm"] = (gemm, r["rounds_s"], 1.0)
    return out


def interval(num, den, scale, seed=0):
    """(ratio of medians, lower, upper): a percentile bootstrap interval at CONFIDENCE, both rows resampled."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    rng = np.random.default_rng(seed)  # seeded: the same results always give the same verdict
    boot = (np.median(rng.choice(num, size=(RESAMPLES, num.size)), axis=1)
            / np.median(rng.choice(den, size=(RESAMPLES, den.size)), axis=1))
    tail = (1 - CONFIDENCE) / 2
    lower, upper = np.quantile(boot, [tail, 1 - tail])
    return scale * float(np.median(num) / np.median(den)), scale * float(lower), scale * float(upper)


def ratios(results):
    """{ratio name: (value, lower, upper)}."""
    return {key: interval(*samples) for key, samples in ratio_samples(results).items()}


def check(measured, committed, margin):
    """The lines describing each regression or missing row (empty when all is well)."""
    problems = []
    for key, then in sorted(committed.items()):
        now = measured.get(key)
        threshold = (1 - margin) * then
        if now is None:
            problems.append(f"{key}: did not run (committed ratio {then:.2f})")
        elif now[2] < threshold:
            problems.append(f"{key}: ratio {now[0]:.2f}, whole {CONFIDENCE:.0%} interval [{now[1]:.2f}, {now[2]:.2f}] "
                            f"below {threshold:.2f} ({1 - margin:.0%} of the committed {then:.2f})")
    return problems


def flagged_keys(problems):
    """The ratio names of check's problem lines ("KEY: ...")."""
    return {line.split(":")[0] for line in problems}


def test_id(key):
    """The benchmark that times a ratio's row (its other side is timed beside it): 'wide/jax of gemm' and
    'rnn/torch-optim of torch-native' -> their rows' tests (the yardstick after " of " is timed in the same test)."""
    workload, row = key.split(" of ")[0].split("/")
    return f"{pathlib.Path(__file__).with_name('test_training.py')}::test_training_core[{workload}-{row}]"


def remeasure(keys):
    """The ratios of keys, measured again in a fresh benchmark run of their rows alone."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "again.json"
        command = [sys.executable, "-m", "pytest", "--benchmark-only", "-n0", "-q", "-p", "no:cacheprovider",
                   f"--benchmark-json={out}", *sorted({test_id(key) for key in keys})]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        again = ratios(json.loads(out.read_text()))
    return {key: again[key] for key in keys if key in again}


def show(measured, committed, margin):
    print(f"{'ratio':<32} {'measured':>9} {'95% interval':>18} {'committed':>10} {'threshold':>10}")
    for key in sorted(measured):
        value, lower, upper = measured[key]
        then = committed.get(key)
        threshold = "-" if then is None else f"{(1 - margin) * then:.2f}"
        print(f"{key:<32} {value:9.2f} {f'[{lower:.2f}, {upper:.2f}]':>18} "
              f"{'-' if then is None else f'{then:.2f}':>10} {threshold:>10}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("check", "record"))
    parser.add_argument("results", nargs="+", help="--benchmark-json files (check reads the first)")
    parser.add_argument("--baseline", default=str(BASELINE))
    parser.add_argument("--margin", type=float, default=MARGIN)
    parser.add_argument("--confirm", type=int, default=0, metavar="N",
                        help="re-time a flagged ratio's row in N fresh runs; it is a regression only if every "
                             "run flags it too (a real slowdown persists, a noisy moment does not)")
    args = parser.parse_args(argv)
    files = [json.loads(pathlib.Path(path).read_text()) for path in args.results]
    runs = [ratios(results) for results in files]
    machine = machine_key(files[0])
    path = pathlib.Path(args.baseline)
    baseline = json.loads(path.read_text()) if path.exists() else {"machines": {}}
    if args.action == "record":
        keys = sorted(set.intersection(*(set(run) for run in runs)))
        lowest = {key: round(min(run[key][0] for run in runs), 3) for key in keys}
        path.write_text(json.dumps(_recorded(baseline, machine, lowest), indent=2) + "\n")
        print(f"recorded {len(lowest)} ratios (the lowest median of {len(runs)} run(s)) for {machine} in {path}")
        return 0
    measured = runs[0]
    committed = committed_for(baseline, machine)
    if committed is None:
        path.write_text(json.dumps(_recorded(baseline, machine, {k: round(v[0], 3) for k, v in measured.items()}),
                                   indent=2) + "\n")
        show(measured, {}, args.margin)
        known = ", ".join(baseline.get("machines", {})) or "none"
        print(f"NO BASELINE for this machine ({machine}; baselines are kept for: {known}): a ratio depends on the "
              f"machine, so nothing is compared and nothing fails. This run's {len(measured)} ratios are recorded "
              f"for it in {path}: commit them (better, `record` three runs) to check this machine from now on.")
        return 0
    print(f"baseline: {machine}")
    show(measured, committed, args.margin)
    problems = check(measured, committed, args.margin)
    flagged = {key for key in flagged_keys(problems) if key in measured}
    for attempt in range(1, args.confirm + 1):
        if not flagged:
            break
        print(f"\nconfirming {len(flagged)} flagged ratio(s), fresh run {attempt} of {args.confirm}: "
              f"{', '.join(sorted(flagged))}")
        again = remeasure(flagged)
        show(again, {key: committed[key] for key in again}, args.margin)
        still = flagged_keys(check(again, {key: committed[key] for key in flagged}, args.margin))
        cleared = flagged - still
        problems = [line for line in problems if flagged_keys([line]).isdisjoint(cleared)]
        flagged = still
    for line in problems:
        print(f"REGRESSION {line}")
    print(f"{len(committed) - len(problems)} of {len(committed)} committed ratios hold "
          f"(fail only when the whole {CONFIDENCE:.0%} interval is below {1 - args.margin:.0%} of the committed ratio"
          f"{f', in the run and in {args.confirm} fresh re-runs of its row' if args.confirm else ''})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
