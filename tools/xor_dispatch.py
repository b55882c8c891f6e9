"""Where eager PyTorch's time goes on the seeds' XOR (issue 32): a profile, not a test.

    python tools/xor_dispatch.py [--epochs 20000]

The torch mirror's training of the second seed's 2-2-1 network (4 samples, float64, plain descent) under
torch.profiler: how many aten operators one epoch dispatches and their share of the time; then the same count of
operators timed bare (each a 2x2 or 4x2 operand, the sizes XOR's are), beside NumPy's same operators and the seeds'
own loop (crosscheck/suite/seedloops.py). What one epoch cannot go below in eager PyTorch is its operator count times
torch's cost of one tiny operator; the seeds' loop pays NumPy's. docs/benchmarks.md has the figures.
"""

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crosscheck import backends  # noqa: E402
from crosscheck.suite import seedloops  # noqa: E402
from crosscheck.suite.cases import BY_ID  # noqa: E402


def per_call(fn, repeats):
    """The median over five rounds of fn's seconds per call, each round repeats calls."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        rounds.append((time.perf_counter() - start) / repeats)
    return float(np.median(rounds))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20000)
    args = parser.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    driver = backends.load("torch")
    from crosscheck.backends.torch import mlp

    problem = BY_ID["seed2-xor"].problem("float64", epochs=args.epochs)
    config = problem.config
    params = [tuple(driver.to_native(a, "cpu") for a in leaves) for leaves in problem.params]
    X, y = driver.to_native(problem.X, "cpu"), driver.to_native(problem.y, "cpu")
    mlp.train(params, X, y, config.replace(epochs=100))  # warm

    def torch_run():
        mlp.train(params, X, y, config)

    start = time.perf_counter()
    torch_run()
    torch_epoch = (time.perf_counter() - start) / args.epochs

    (W1, b1), (W2, b2) = problem.params  # notebook 2's layout: samples as columns, weights (out, in)
    seeds = (problem.X.T, problem.y[:, 0], W1.T, b1[:, None], W2.T, b2[:, None], config.lr, args.epochs)
    seedloops.seed2_train(*seeds[:-1], 100)
    start = time.perf_counter()
    seedloops.seed2_train(*seeds)
    seeds_epoch = (time.perf_counter() - start) / args.epochs

    profiled = 200
    short = config.replace(epochs=profiled)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        mlp.train(params, X, y, short)
    counts = Counter(event.name for event in prof.events()  # the operators Python called (not those they call)
                     if event.name.startswith("aten::") and (event.cpu_parent is None
                                                            or not event.cpu_parent.name.startswith("aten::")))
    top = {name: count / profiled for name, count in counts.items()}
    ops = sum(top.values())

    a, b = torch.rand(4, 2, dtype=torch.float64), torch.rand(2, 2, dtype=torch.float64)
    na, nb = a.numpy().copy(), b.numpy().copy()
    with torch.inference_mode():
        bare = {"matmul": per_call(lambda: a @ b, 20000), "add": per_call(lambda: a + a, 20000),
                "sigmoid": per_call(lambda: torch.sigmoid(a), 20000), "sum": per_call(lambda: a.sum(dim=0), 20000),
                "sub_": per_call(lambda: b.sub_(b, alpha=0.0), 20000)}
    numpy_bare = {"matmul": per_call(lambda: np.dot(na, nb), 20000), "add": per_call(lambda: na + na, 20000),
                  "sigmoid": per_call(lambda: 1.0 / (1.0 + np.exp(-na)), 20000),
                  "sum": per_call(lambda: na.sum(axis=0), 20000), "sub_": per_call(lambda: np.subtract(nb, nb, out=nb),
                                                                                  20000)}
    torch_op = float(np.median(list(bare.values())))
    numpy_op = float(np.median(list(numpy_bare.values())))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; numpy {np.__version__}")
    print(f"one XOR epoch: torch mirror {torch_epoch * 1e6:.1f} us, the seeds' NumPy loop {seeds_epoch * 1e6:.1f} us "
          f"(ratio {seeds_epoch / torch_epoch:.2f})")
    print(f"aten operators dispatched per epoch (torch.profiler, top level): {ops:.1f}")
    for name, count in sorted(top.items(), key=lambda item: -item[1]):
        print(f"  {name:<28} {count:5.1f} per epoch")
    print("one tiny operator, bare (median of five rounds of 20,000 calls), us:")
    for name in bare:
        print(f"  {name:<8} torch {bare[name] * 1e6:6.2f}   numpy {numpy_bare[name] * 1e6:6.2f}")
    floor = ops * torch_op
    print(f"floor of an eager epoch: {ops:.0f} operators x {torch_op * 1e6:.2f} us = {floor * 1e6:.1f} us "
          f"({floor / torch_epoch:.0%} of the mirror's epoch); the seeds' loop's epoch is {seeds_epoch * 1e6:.1f} us, "
          f"NumPy's tiny operator {numpy_op * 1e6:.2f} us")


if __name__ == "__main__":
    main()
