"""Where the test suite's time goes (issue 32): a pytest plug-in that profiles a run, not a test.

    PYTHONPATH=tools pytest -p suite_profile [pytest's own arguments]   # writes .cache/suite-profile/<worker>.json
    python tools/suite_profile.py                                         # the table, over every worker's file

Each test's wall time (setup, call and teardown) is split by what it was doing: training or differentiating in the
NumPy reference, in the torch mirror or in the JAX mirror (each backend's mlp.train, gradients and forward, the
outermost call counted once), JAX compiling (tracing, lowering and XLA's compile, from jax.monitoring's events; taken
out of the call it happened in), waiting on a subprocess (a report, a C or JavaScript program, the installed suite),
and the rest (the checks' own arithmetic, fixtures, imports). Summed by test file. A worker's start-up (importing
torch and JAX) happens before its first test and is not in any row: the table gives it as the wall time less the
tests' sum. Under it, tests/test_mirrors.py's check of the torch mirror's function order fails: it reads the
wrappers' line numbers.
"""

import functools
import importlib
import importlib.util
import json
import os
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

OUT = Path(".cache/suite-profile")
WRAPPED = {"reference": "crosscheck.reference.mlp", "torch": "crosscheck.backends.torch.mlp",
           "jax": "crosscheck.backends.jax.mlp"}
KINDS = ("reference", "torch", "jax", "jax compile", "subprocess")

_spent: dict[str, float] = defaultdict(float)  # this test's seconds by kind
_inside: list[str] = []  # the timed call running now, if any
_tests: dict[str, dict[str, float]] = {}
_started = time.perf_counter()


def timed(kind, fn):
    """fn, its seconds added to kind when it is the outermost timed call."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _inside:
            return fn(*args, **kwargs)
        _inside.append(kind)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _spent[kind] += time.perf_counter() - start
            _inside.pop()

    return wrapper


def _wrap_backends():
    for kind, name in WRAPPED.items():
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for fn in ("train", "gradients", "forward"):
            setattr(module, fn, timed(kind, getattr(module, fn)))
    if importlib.util.find_spec("jax"):
        import jax.monitoring

        def on_duration(event, seconds, **kwargs):
            if event.startswith("/jax/core/compile/"):  # its own column: taken out of the call it happened in
                _spent["jax compile"] += seconds
                if _inside:
                    _spent[_inside[0]] -= seconds

        jax.monitoring.register_event_duration_secs_listener(on_duration)


def _wrap_subprocesses():
    """Popen.wait and communicate: where a test waits on a program it started."""
    for name in ("wait", "communicate"):
        original = getattr(subprocess.Popen, name)

        def waiting(self, *args, _original=original, **kwargs):
            start = time.perf_counter()
            try:
                return _original(self, *args, **kwargs)
            finally:
                _spent["subprocess"] += time.perf_counter() - start

        setattr(subprocess.Popen, name, waiting)


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the run's own process (xdist's controller, or the one with -n0)
        for stale in OUT.glob("*.json"):  # a previous run's workers: the table reads every file in OUT
            stale.unlink()
    _wrap_backends()
    _wrap_subprocesses()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _spent.clear()
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _tests[item.nodeid] = {"wall": time.perf_counter() - start, **_spent}


def pytest_sessionfinish(session):
    OUT.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (OUT / f"{worker}.json").write_text(json.dumps({"alive": time.perf_counter() - _started, "tests": _tests}))


def table(folder=OUT):
    """Seconds by test file and kind, over every worker's file in folder."""
    rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    alive = 0.0
    for path in sorted(folder.glob("gw*.json")) or sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        alive += data["alive"]
        for nodeid, spent in data["tests"].items():
            row = rows[nodeid.split("::")[0]]
            row["tests"] += 1
            for kind, seconds in spent.items():
                row[kind] += seconds
    kinds = ("wall", *KINDS)
    print(f"{'file':<34}{'tests':>6}" + "".join(f"{k:>12}" for k in kinds) + f"{'rest':>9}")
    total: dict[str, float] = defaultdict(float)
    for name, row in sorted(rows.items(), key=lambda kv: -kv[1]["wall"]):
        rest = row["wall"] - sum(row[k] for k in KINDS)
        print(f"{name:<34}{int(row['tests']):>6}" + "".join(f"{row[k]:>12.1f}" for k in kinds) + f"{rest:>9.1f}")
        for k in ("tests", *kinds):
            total[k] += row[k]
    rest = total["wall"] - sum(total[k] for k in KINDS)
    print(f"{'all':<34}{int(total['tests']):>6}" + "".join(f"{total[k]:>12.1f}" for k in kinds) + f"{rest:>9.1f}")
    print(f"workers alive {alive:.1f} s in all; outside any test (start-up, collection, waiting): "
          f"{alive - total['wall']:.1f} s")


if __name__ == "__main__":
    table()
