"""Catch a slowdown in CI without comparing absolute times between machines.

Every ratio is measured within one benchmark run: each row's speed over the seeds'
loop on the same workload, and on `wide` each backend's FLOP rate over its own
framework's GEMM rate. `check` fails when a ratio falls below (1 - margin) times the
committed one in benchmarks/baseline.json, or when a committed row did not run.

    pytest benchmarks --benchmark-only -n0 --benchmark-json=bench.json
    python benchmarks/regression.py check bench.json        # exit 1 on a regression
    python benchmarks/regression.py record bench.json       # rewrite the baseline (after a deliberate change)

The committed baseline holds, per ratio, the lower of two runs on the 2-core CI machine, so
that the check fails on a real slowdown (a halving) rather than on a lucky baseline.
"""

import argparse
import json
import pathlib
import sys

BASELINE = pathlib.Path(__file__).with_name("baseline.json")
MARGIN = 0.5  # a ratio may drop to half its committed value: runs on a busy 2-core machine vary by ~30%
BASELINE_ROW = "seeds-loop"


def ratios(results):
    """{'xor/jax': speed over the seeds' loop, ..., 'wide/jax of gemm': FLOP rate over the framework's GEMM rate}."""
    rows = [b["extra_info"] | {"median_s": b["stats"]["median"]} for b in results["benchmarks"]
            if "row" in b.get("extra_info", {})]
    out = {}
    for r in rows:
        base = next((b for b in rows if b["workload"] == r["workload"] and b["row"] == BASELINE_ROW), None)
        if base is not None and r["row"] != BASELINE_ROW and not r["row"].startswith("gemm-"):
            out[f"{r['workload']}/{r['row']}"] = base["median_s"] / r["median_s"]
        gemm = next((b for b in rows if b["row"] == f"gemm-{r['framework']}"), None)
        if r["workload"] == "wide" and gemm is not None and not r["row"].startswith(("gemm-", BASELINE_ROW)):
            out[f"wide/{r['row']} of gemm"] = r["gflops"] / gemm["gflops"]
    return out


def check(measured, committed, margin):
    """The lines describing each regression or missing row (empty when all is well)."""
    problems = []
    for key, then in sorted(committed.items()):
        now = measured.get(key)
        if now is None:
            problems.append(f"{key}: did not run (committed ratio {then:.2f})")
        elif now < (1 - margin) * then:
            problems.append(f"{key}: ratio {now:.2f}, below {(1 - margin):.0%} of the committed {then:.2f}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("check", "record"))
    parser.add_argument("results", help="a --benchmark-json file")
    parser.add_argument("--baseline", default=str(BASELINE))
    parser.add_argument("--margin", type=float, default=MARGIN)
    args = parser.parse_args(argv)
    measured = ratios(json.loads(pathlib.Path(args.results).read_text()))
    if args.action == "record":
        pathlib.Path(args.baseline).write_text(json.dumps({k: round(v, 3) for k, v in sorted(measured.items())},
                                                          indent=2) + "\n")
        print(f"recorded {len(measured)} ratios in {args.baseline}")
        return 0
    committed = json.loads(pathlib.Path(args.baseline).read_text())
    for key in sorted(measured):
        then = committed.get(key)
        print(f"{key:<32} {measured[key]:8.2f}   committed {'-' if then is None else f'{then:.2f}'}")
    problems = check(measured, committed, args.margin)
    for line in problems:
        print(f"REGRESSION {line}")
    print(f"{len(committed) - len(problems)} of {len(committed)} committed ratios hold (margin {args.margin:.0%})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
