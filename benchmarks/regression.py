"""Catch a slowdown in CI without comparing absolute times between machines, and without crying wolf.

Every ratio is measured within one benchmark run: each row's speed over the seeds'
loop on the same workload, and on `wide` each backend's FLOP rate over its own
framework's GEMM rate. Each row is timed over several rounds; a ratio's uncertainty is
a bootstrap confidence interval (the rounds of both rows resampled, the ratio of their
medians recomputed). `check` fails only when the whole interval lies below the
threshold, (1 - margin) times the committed ratio in benchmarks/baseline.json, or when
a committed row did not run: a noisy round cannot fail the run, a real slowdown does.

    pytest benchmarks --benchmark-only -n0 --benchmark-json=bench.json
    python benchmarks/regression.py check bench.json        # exit 1 on a regression
    python benchmarks/regression.py record bench.json a.json b.json   # baseline: per ratio, the lowest median

README ("Regression check") gives the measured false-alarm and detection rates.
"""

import argparse
import json
import pathlib
import sys

import numpy as np

BASELINE = pathlib.Path(__file__).with_name("baseline.json")
MARGIN = 0.35  # fail below 65% of the committed ratio: a 2x slowdown (50%) is caught, run-to-run swings are not
CONFIDENCE = 0.95
RESAMPLES = 2000
BASELINE_ROW = "seeds-loop"


def _rows(results):
    return [b["extra_info"] | {"median_s": b["stats"]["median"]} for b in results["benchmarks"]
            if "row" in b.get("extra_info", {})]


def ratio_samples(results):
    """{ratio name: (numerator rounds, denominator rounds, scale)}: ratio = scale * median(num) / median(den).

    'xor/jax' is the seeds' loop's time over jax's (its speed-up); 'wide/jax of gemm' is jax's FLOP rate over
    its framework's GEMM rate, i.e. (row FLOPs / GEMM FLOPs) * GEMM time / row time.
    """
    rows = _rows(results)
    out = {}
    for r in rows:
        base = next((b for b in rows if b["workload"] == r["workload"] and b["row"] == BASELINE_ROW), None)
        if base is not None and r["row"] != BASELINE_ROW and not r["row"].startswith("gemm-"):
            out[f"{r['workload']}/{r['row']}"] = (base["rounds_s"], r["rounds_s"], 1.0)
        gemm = next((b for b in rows if b["row"] == f"gemm-{r['framework']}"), None)
        if r["workload"] == "wide" and gemm is not None and not r["row"].startswith(("gemm-", BASELINE_ROW)):
            flops = (r["gflops"] * r["median_s"]) / (gemm["gflops"] * gemm["median_s"])
            out[f"wide/{r['row']} of gemm"] = (gemm["rounds_s"], r["rounds_s"], flops)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("check", "record"))
    parser.add_argument("results", nargs="+", help="--benchmark-json files (check reads the first)")
    parser.add_argument("--baseline", default=str(BASELINE))
    parser.add_argument("--margin", type=float, default=MARGIN)
    args = parser.parse_args(argv)
    runs = [ratios(json.loads(pathlib.Path(path).read_text())) for path in args.results]
    if args.action == "record":
        keys = sorted(set.intersection(*(set(run) for run in runs)))
        baseline = {key: round(min(run[key][0] for run in runs), 3) for key in keys}
        pathlib.Path(args.baseline).write_text(json.dumps(baseline, indent=2) + "\n")
        print(f"recorded {len(baseline)} ratios (the lowest median of {len(runs)} run(s)) in {args.baseline}")
        return 0
    measured = runs[0]
    committed = json.loads(pathlib.Path(args.baseline).read_text())
    print(f"{'ratio':<32} {'measured':>9} {'95% interval':>18} {'committed':>10} {'threshold':>10}")
    for key in sorted(measured):
        value, lower, upper = measured[key]
        then = committed.get(key)
        threshold = "-" if then is None else f"{(1 - args.margin) * then:.2f}"
        print(f"{key:<32} {value:9.2f} {f'[{lower:.2f}, {upper:.2f}]':>18} "
              f"{'-' if then is None else f'{then:.2f}':>10} {threshold:>10}")
    problems = check(measured, committed, args.margin)
    for line in problems:
        print(f"REGRESSION {line}")
    print(f"{len(committed) - len(problems)} of {len(committed)} committed ratios hold "
          f"(fail only when the whole {CONFIDENCE:.0%} interval is below {1 - args.margin:.0%} of the committed ratio)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
