"""Data and tensor parallelism (Config(parallel="data:N" | "tensor:N")): sharded runs against the reference's run on
one device.

torch runs its ranks as processes joined by gloo (backends/torch/parallel.py: started once, kept for the session's
other runs), JAX as host devices under shard_map (the tests start JAX with four: tests/xla_flags.py), the NumPy
reference simulates them as threads (reference/parallel.py). Every one is held to the single-device run by the
tolerance table.
"""

import os
import re
import subprocess
import sys
from functools import partial

import numpy as np
import pytest

from crosscheck import backends, reference
from crosscheck.common.config import Config
from crosscheck.reference import parallel as simulated
from crosscheck.reference.data import synthetic
from crosscheck.suite.cases import Case
from crosscheck.verdict import checks, ops
from crosscheck.verdict.compare import Disagreement
from crosscheck.verdict.findings import Findings

from . import xla_flags
from .strictness import load_or_skip

CASES = {
    # the mean loss: each shard's gradients weighted 1/N
    "mse-sgd-minibatch": Case("parallel-mse", Config(
        model=(("dense", 3, 8), "tanh", ("dense", 8, 2), "identity"), loss="mse", init="glorot_uniform", lr=0.1,
        epochs=12, batch_size=8, seed=3, parallel="data:2"), samples=16),
    # the seeds' summed loss (half_sse): each shard's weighted 1
    "half-sse-adam": Case("parallel-half-sse", Config(
        layers=(2, 4, 1), init="uniform_pm1", lr=0.01, epochs=20, optimizer="adam", seed=4, parallel="data:2"),
        samples=8),
    # a GPT block: token-level cross-entropy, AdamW, clipping and the schedule on the all-reduced gradients
    "gpt-block-adamw": Case("parallel-gpt", Config(
        model=(("embedding", 10, 8), ("positions", 8, 8), ("residual", 2), ("layernorm", 8), ("attention", 8, 2),
               ("residual", 4), ("layernorm", 8), ("dense", 8, 16), "gelu_tanh", ("dense", 16, 8), ("layernorm", 8),
               ("unembed", 10, 8), "softmax"), input_shape=(8,), loss="softmax_cross_entropy",
        init="glorot_uniform", lr=0.01, epochs=6, batch_size=8, seed=5, optimizer="adamw", weight_decay=0.01,
        decay_biases=False, clip=1.0, schedule="warmup_cosine", warmup_steps=2, decay_steps=12, parallel="data:2"),
        samples=16),
    # dropout: the batch's masks (drawn by the reference) shared, each shard reading its own rows of them
    "dropout-momentum": Case("parallel-dropout", Config(
        model=(("dense", 3, 8), "tanh", ("dropout", 0.25), ("dense", 8, 2), "identity"), loss="mse",
        init="glorot_uniform", lr=0.1, epochs=10, batch_size=8, seed=7, optimizer="momentum", parallel="data:2"),
        samples=16),
    # tensor parallelism: a column and a row layer, then a last layer whole on every rank; softmax and Adam, clipped
    "tensor-column-row-whole": Case("parallel-tensor-crw", Config(
        model=(("dense", 3, 8), "tanh", ("dense", 8, 4), "sigmoid", ("dense", 4, 3), "softmax"),
        loss="softmax_cross_entropy", init="glorot_uniform", lr=0.05, epochs=10, batch_size=8, seed=6,
        optimizer="adam", clip=0.5, parallel="tensor:2"), samples=16),
    # tensor parallelism through a Llama block: rotary grouped-query attention split by its heads, SwiGLU by its hidden
    # units; the norms and the scores tied to the embedding whole on every rank
    "tensor-llama-heads": Case("parallel-tensor-llama", Config(
        model=(("embedding", 10, 16), ("residual", 2), ("rmsnorm", 16), ("rope_attention", 16, 8, 4), ("residual", 2),
               ("rmsnorm", 16), ("swiglu", 16, 16), ("rmsnorm", 16), ("unembed", 10, 16), "softmax"),
        input_shape=(6,), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.02, epochs=6, batch_size=8,
        seed=8, optimizer="adamw", weight_decay=0.01, decay_biases=False, clip=1.0, parallel="tensor:2"), samples=16),
}


def load(name):
    try:
        return backends.load(name)
    except backends.BackendUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("case", list(CASES))
def test_simulated_ranks_are_the_single_device_run(case, world):
    """The reference's ranks as threads, their collectives summing or joining in rank order: the single-device
    gradients and run, to rounding: within the derived float64 bounds (the single-device reference's distance from its
    extended twin; its run's spread under rounding, checks.shadow_parts)."""
    case = CASES[case]
    config, params, X, y, orders = case.inputs()
    config = config.replace(parallel=f"{config.parallel_kind}:{world}")
    single = config.replace(parallel=None)
    loss, grads = simulated.gradients(reference.mlp.gradients, params, X[:8], y[:8], config)
    shapes = [len(leaves) for leaves in params]

    def single_device(X, y, *leaves, k=None):  # the single-device loss (k None) or gradient leaf k
        it = iter(leaves)
        tree = [tuple(next(it) for _ in range(n)) for n in shapes]
        ref_loss, ref_grads = reference.mlp.gradients(tree, X, y, single)
        return np.asarray(ref_loss) if k is None else checks.flat(ref_grads)[k]

    leaves = checks.flat(params)
    ops.assert_within_twin(loss, single_device, X[:8], y[:8], *leaves, what="loss")
    for k, g in enumerate(checks.flat(grads)):
        ops.assert_within_twin(g, partial(single_device, k=k), X[:8], y[:8], *leaves, what=f"gradient leaf {k}")
    run = reference.mlp.train(params, X, y, config, orders)
    ref = reference.mlp.train(params, X, y, single, orders)
    found = Findings()
    found.compare_run(run.losses, ref.losses, checks.shadow_parts(lambda r: r.losses, case, "float64"),
                      what="loss [epoch, step]", backend=f"simulated {world} ranks")
    found.result()
    assert np.all(np.isfinite(run.losses))


def test_a_missing_all_reduce_in_the_simulation_is_not_the_single_device_run(monkeypatch):
    """The comparison can fail: rank 0's part alone (no all-reduce) is half the mean loss's gradient."""
    config, params, X, y, _ = CASES["mse-sgd-minibatch"].inputs()
    monkeypatch.setattr(simulated, "all_reduce", lambda part: part)
    _, grads = simulated.gradients(reference.mlp.gradients, params, X[:8], y[:8], config)
    _, ref_grads = reference.mlp.gradients(params, X[:8], y[:8], config.replace(parallel=None))
    assert not np.allclose(checks.flat(grads)[0], checks.flat(ref_grads)[0], rtol=1e-3)


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("case", list(CASES))
def test_sharded_run_agrees_with_the_reference_on_one_device(backend, case):
    """The backend's data-parallel gradients and whole run (N = 2) within the float64 table of the reference's
    single-device ones: the collectives written out in the mirror add up to the batch's gradient."""
    driver = load(backend)
    checks.check_gradients(driver, CASES[case], "float64")
    checks.check_trajectory(driver, CASES[case], "float64")


@pytest.mark.parametrize("planted", ["summed", "missing"])
def test_a_wrong_all_reduce_on_jax_is_caught(monkeypatch, planted):
    """The check can fail: each rank's gradient summed where the mean loss wants it averaged, or psum left out (device
    0's gradient alone: shard_map's own replication check is off, docs/parallel.md). (JAX keeps what it compiled per
    function: its caches are cleared for the patch, and again after it.)"""
    driver = load("jax")
    import jax
    from jax import lax

    from crosscheck.backends.jax import parallel

    wrong = {"summed": lambda part: lax.psum(2 * part, parallel.AXIS), "missing": lambda part: part}[planted]
    monkeypatch.setattr(parallel, "all_reduce", wrong)
    jax.clear_caches()
    try:
        with pytest.raises(Disagreement, match=re.compile(
                r"jax: layer 1 weight gradient disagrees with the reference.*the odd one out: jax", re.S)):
            checks.check_gradients(driver, CASES["mse-sgd-minibatch"], "float64")
    finally:
        monkeypatch.undo()
        jax.clear_caches()


def test_a_mistake_planted_in_torchs_parallel_module_runs_on_the_kept_world():
    """A plant in backends/torch/parallel.py re-executes its source; the copy's runs use the world already started
    (a world of 2 takes seconds to start: the catalogue's plants there each started one, and left it running), and
    the plant still reaches the ranks (its shards overlap: the gradients change)."""
    load("torch")
    from crosscheck.backends.torch import parallel
    from crosscheck.diagnosis.mutations import planted

    parallel.ready(2)
    kept = parallel._running[2]
    before = {p.pid for p in parallel.mp.active_children()}
    caught = pytest.raises(Disagreement, match="gradient disagrees")
    with planted("crosscheck.backends.torch.parallel", "start = rank * size", "start = rank * size // 2"), caught:
        checks.check_gradients(backends.load("torch"), CASES["mse-sgd-minibatch"], "float64")
    assert parallel._running[2] is kept, "the plant's runs started a world of their own"
    assert {p.pid for p in parallel.mp.active_children()} == before, "processes were left running after the plant"


def test_too_few_jax_devices_is_said_before_training():
    load("jax")
    from crosscheck.backends.jax import parallel

    with pytest.raises(ValueError, match=r"a world of 64 ranks needs 64 JAX devices, but JAX sees \d+: start Python "
                                         r"with XLA_FLAGS=--xla_force_host_platform_device_count=64"):
        parallel.ready(64)


def test_a_plug_in_without_a_parallel_run_is_refused_named():
    from crosscheck.common.driver import Driver, Unsupported

    plug = Driver(name="mine", version="0", devices=("cpu",), mlp=reference.mlp, to_native=lambda a, d: a,
                  to_numpy=np.asarray)
    with pytest.raises(Unsupported, match=r"mine does not support this configuration: no parallel run "
                                          r"\(parallel 'data:2'\)"):
        plug.check_support(CASES["mse-sgd-minibatch"].config)


@pytest.mark.parametrize(("changes", "message"), [
    ({"parallel": "data:1"}, "a world of 1 is one device"),
    ({"parallel": "data"}, "parallel must be None, 'data:N'"),
    ({"parallel": "pipeline:2"}, "parallel must be None, 'data:N'"),
    ({"parallel": "tensor:3"}, r"dense layer 1 \(3 -> 8\) is split by its 8 columns, not a multiple of 3"),
    ({"parallel": "tensor:2", "model": (("dense", 3, 2), "identity")},
     "splits a pair of dense layers .*, an attention layer by its heads or a SwiGLU layer by its hidden units; this "
     "model has none"),
    ({"parallel": "tensor:2", "model": (("dense", 3, 8), ("layernorm", 8), "tanh", ("dense", 8, 2), "identity")},
     "splits a pair of dense layers .*only activations between.*; this model has none"),
    ({"parallel": "tensor:4", "model": (("embedding", 10, 8), ("swiglu", 8, 6), ("dense", 8, 10), "softmax"),
      "input_shape": (4,), "loss": "softmax_cross_entropy"},
     r"swiglu layer 2 is split by its 6 hidden units, not a multiple of 4"),
    ({"parallel": "tensor:2", "model": (("embedding", 10, 12), ("attention", 12, 6, 3), ("dense", 12, 10), "softmax"),
      "input_shape": (4,), "loss": "softmax_cross_entropy"},
     r"attention layer 2 is split by its heads, 6 \(and 3 key-value heads\), not a multiple of 2"),
    ({"parallel": "tensor:4", "model": (("embedding", 10, 12), ("attention", 12, 6), ("dense", 12, 10), "softmax"),
      "input_shape": (4,), "loss": "softmax_cross_entropy"},
     r"attention layer 2 is split by its heads, 6, not a multiple of 4"),
    ({"accumulate": 2}, "gradient accumulation inside each shard is not built yet"),
    ({"model": (("dense", 3, 8), ("batchnorm", 8), "tanh", ("dense", 8, 2), "identity")},
     "batch norm's statistics would be each shard's"),
    ({"parallel": "tensor:2", "model": (("dense", 3, 8), "tanh", ("dropout", 0.5), ("dense", 8, 2), "identity")},
     "tensor parallelism over dropout is not built yet"),
])
def test_bad_parallel_configurations_are_refused_named(changes, message):
    given = dict(model=(("dense", 3, 8), "tanh", ("dense", 8, 2), "identity"), loss="mse", epochs=2, batch_size=8,
                 parallel="data:2")
    with pytest.raises(ValueError, match=message):
        Config(**{**given, **changes})


def test_a_world_that_does_not_divide_every_batch_is_refused_before_training():
    config = CASES["mse-sgd-minibatch"].config.replace(parallel="data:3", batch_size=6)
    X, y = synthetic(config, 16)
    with pytest.raises(ValueError, match=r"'data:3' splits each batch into 3 equal shards, but the batches hold 4 "
                                         r"and 6 samples \(16 samples in batches of 6\)"):
        reference.check_inputs(reference.initial_params(config), X, y, config, reference.batch_orders(config, 16))


def crosscheck(*options, env=None):
    return subprocess.run([sys.executable, "-m", "crosscheck", "--model", "dense:3:8,tanh,dense:8:2,identity",
                           "--loss", "mse", "--samples", "16", "--batch-size", "8", "--epochs", "20", "--no-progress",
                           "--plot", "", *options], capture_output=True, text=True, timeout=300,
                          env=xla_flags.as_shipped({**os.environ, **(env or {})}))


@pytest.mark.slow  # 8-10 s each, worlds of processes; tox -e installed runs both reports from a user's folder too
@pytest.mark.parametrize(("layout", "said"), [("data:2", "data parallel over 2 shards"),
                                              ("tensor:2", "tensor parallel over 2 ranks")])
def test_crosscheck_parallel_agrees_and_records_the_layout(request, tmp_path, layout, said):
    """The command users run: both sharded backends agree (exit 0), the JSON says the layout; JAX's host devices
    asked for by the command itself (XLA_FLAGS as shipped: no device count)."""
    load_or_skip(request.config, "torch"), load_or_skip(request.config, "jax")  # the command runs both
    report = tmp_path / "r.json"
    done = crosscheck("--parallel", layout, "--json", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "AGREE" in done.stdout and said in done.stdout
    import json

    written = json.loads(report.read_text())
    assert written["config"]["parallel"] == layout
    kind = layout.split(":")[0]
    rows = "each step's batch in equal blocks of consecutive rows, rank r the r-th"
    assert written["layout"] == {"kind": kind, "world": 2, "reference": "one device",
                                 **({"layers": [{"layer": 1, "kind": "dense", "part": "column"},
                                                         {"layer": 2, "kind": "dense", "part": "row"}]}
                                    if kind == "tensor" else {"shards": rows})}


@pytest.mark.slow  # 5-7 s of gloo processes failing to start: with --run-slow (tox -e all, CI)
def test_processes_that_cannot_start_are_one_line_and_exit_2(request):
    """gloo told to use a network interface this machine lacks: the world cannot start; one line, exit 2, before
    anything trains, and no process left behind."""
    load_or_skip(request.config, "torch")
    done = crosscheck("--parallel", "data:2", "--backends", "torch", env={"GLOO_SOCKET_IFNAME": "no-such-interface"})
    assert done.returncode == 2, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("crosscheck: error: --parallel data:2: torch cannot run it here: torch.distributed: rank")
    assert "Unable to find address for: no-such-interface" in last
    assert "Traceback" not in done.stderr and "epoch" not in done.stdout


def test_a_world_that_does_not_divide_the_batch_exits_2():
    done = crosscheck("--parallel", "data:3")
    assert done.returncode == 2
    assert "'data:3' splits each batch into 3 equal shards, but the batches hold 8 samples" in done.stderr


def test_export_refuses_a_data_parallel_problem(tmp_path):
    """The command protocol has no ranks: a sharded problem is not exported as if it were one device's."""
    from crosscheck.report.export import export_main

    assert export_main(["--model", "dense:3:8,tanh,dense:8:2,identity", "--loss", "mse", "--samples", "16",
                        "--batch-size", "8", "--epochs", "2", "--parallel", "data:2", "--backends", "numpy",
                        "--out", str(tmp_path / "p")]) == 2
    assert not (tmp_path / "p").exists()


def test_a_model_file_says_parallel(tmp_path):
    from crosscheck.report.cli import parse_args

    spec = tmp_path / "m.toml"
    spec.write_text('model = ["dense:3:8", "tanh", "dense:8:2", "identity"]\nloss = "mse"\nsamples = 16\n'
                    'batch_size = 8\nepochs = 2\nparallel = "data:2"\n')
    _, case, _ = parse_args(["--model", str(spec), "--backends", "numpy", "--plot", ""])
    assert case.config.parallel == "data:2" and case.config.world == 2


def test_a_sharded_problem_below_float64_is_bounded_by_the_simulated_shards():
    """Below float64 a sharded run's sums over the ranks round otherwise than the one-device run: its bound comes from
    the reference's simulated shards (their float32 weights of a tensor-parallel GPT block stray about twice as far
    from float64 as the one-device run's); the float64 oracle stays the run on one device."""
    from crosscheck.verdict.findings import bounding_driver

    config = CASES["tensor-llama-heads"].config
    assert bounding_driver(config.replace(dtype="float32")) is reference.SHARDS
    assert bounding_driver(config) is reference.DRIVER
    assert bounding_driver(config.replace(dtype="float32", parallel=None)) is reference.DRIVER


@pytest.mark.parametrize("strict_mode", [False, True])
def test_a_world_that_cannot_start_is_a_skip_or_in_strict_mode_a_failure(monkeypatch, strict_mode):
    """A sharded case whose world cannot start here (the backend's ready() raises): the test is skipped with the
    reason in a developer's run and fails in strict mode, as a missing backend is."""
    from dataclasses import replace

    from crosscheck.common.driver import Sharded

    from . import strictness

    def refuse(world):
        raise RuntimeError("gloo could not start: Unable to find address for: no-such-interface")

    plug = replace(reference.SHARDS, name="unstartable", parallel=Sharded(run_gradients=None, train=None, ready=refuse))
    monkeypatch.setenv("CROSSCHECK_STRICT", "1" if strict_mode else "0")
    monkeypatch.delenv("CI", raising=False)
    options = type("Options", (), {"getoption": staticmethod(lambda name: False)})()
    outcome = pytest.fail.Exception if strict_mode else pytest.skip.Exception
    with pytest.raises(outcome, match=r"unstartable cannot run a world of 2 here: gloo could not start"):
        strictness.world_or_skip(options, plug, CASES["mse-sgd-minibatch"].config)
    strictness.world_or_skip(options, reference.SHARDS, CASES["mse-sgd-minibatch"].config)  # the threads start
