"""The benchmarks' other training cores train the same trajectory as the reference.

Each benchmark row is only worth timing if it computes the right thing: the autodiff
training loops and PyTorch's torch.compile path are cross-checked like the mirrors.
"""

import importlib
import os
from dataclasses import replace

import numpy as np
import pytest

from crosscheck import backends
from crosscheck.common.driver import TrainState
from crosscheck.suite.cases import BY_ID
from crosscheck.verdict import checks

from . import xla_flags
from .strictness import load_or_skip

EPOCHS = 256
COMPILED_EPOCHS = EPOCHS + 5  # torch's compiled path: 8 compiled blocks of 32 epochs, then 5 eager ones


def variant(driver, module):
    """driver, with its training core taken from backends.<name>.<module> instead of mlp."""
    core = importlib.import_module(f"{backends.REGISTRY[driver.name][0]}.{module}")

    class Mlp:
        forward, gradients = driver.mlp.forward, driver.mlp.gradients
        train = staticmethod(core.train)

    return replace(driver, name=f"{driver.name} {module}", mlp=Mlp)


@pytest.mark.frameworks
def test_autodiff_training_loop_agrees(driver, device):
    case = replace(BY_ID["seed1-xor"], n_checkpoints=1)
    config, params, X, y, _ = case.inputs(epochs=EPOCHS)
    run = variant(driver, "autodiff").run_train(params, X, y, config, device=device)
    checks.check_trajectory(driver, case, "float64", device, epochs=EPOCHS, run=with_checkpoints(run, case))


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", ["torch"])
def test_torch_compiled_training_agrees(driver, device):
    case = replace(BY_ID["seed2-xor"], n_checkpoints=1)
    config, params, X, y, _ = case.inputs(epochs=COMPILED_EPOCHS)
    run = variant(driver, "compiled").run_train(params, X, y, config, checkpoints=(config.epochs,), device=device)
    checks.check_trajectory(driver, case, "float64", device, epochs=config.epochs, run=with_checkpoints(run, case))


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", ["torch"])
def test_a_second_process_loads_the_compiled_block_from_disk(driver, monkeypatch):
    """The block compiled once is kept on disk: with nothing in memory and compiling forbidden, training loads it."""
    compiled = importlib.import_module("crosscheck.backends.torch.compiled")
    case = BY_ID["seed2-xor"]
    # the configuration test_torch_compiled_training_agrees compiles: after it, on this machine, the first run loads
    # that block instead of compiling its own (15 s of tox -e all); alone, this test compiles it
    config, params, X, y, _ = case.inputs(epochs=COMPILED_EPOCHS)
    first = variant(driver, "compiled").run_train(params, X, y, config).params
    monkeypatch.setattr(compiled, "_cache", {})  # as a new process finds it

    def refuse(path, example):
        raise AssertionError(f"compiled again although {path} was saved")

    monkeypatch.setattr(compiled, "compiled", refuse)
    again = variant(driver, "compiled").run_train(params, X, y, config).params
    assert len(again) == len(first) == 2
    for mine, theirs in zip(first, again):
        for a, b in zip(mine, theirs):
            assert np.isfinite(a).all(), "the compiled run diverged: equal NaNs would prove nothing"
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend_name", ["torch"])
def test_the_compiled_blocks_file_is_named_by_all_it_depends_on(driver, monkeypatch, tmp_path):
    """A block saved for one configuration, shape, thread count or source is never loaded for another."""
    compiled = importlib.import_module("crosscheck.backends.torch.compiled")
    torch = importlib.import_module("torch")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    config, params, X, y, _ = BY_ID["seed2-xor"].inputs(epochs=64)
    native = [tuple(torch.as_tensor(p) for p in leaves) for leaves in params]
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    path = compiled.stored(config, 32, native, X, y)
    assert path.parent == tmp_path / "crosscheck"
    assert compiled.stored(config, 32, native, X, y) == path
    assert compiled.stored(config.replace(lr=0.2), 32, native, X, y) != path
    assert compiled.stored(config, 16, native, X, y) != path
    assert compiled.stored(config, 32, native, X[:3], y[:3]) != path
    assert compiled.stored(config, 32, native, X.float(), y) != path
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        assert compiled.stored(config, 32, native, X, y) != path
    finally:
        torch.set_num_threads(threads)
    source = tmp_path / "traced"
    source.mkdir()
    (source / "mlp.py").write_text("x = 1\n")
    monkeypatch.setattr(compiled, "TRACED", (source,))
    compiled.traced_source.cache_clear()
    try:
        before = compiled.stored(config, 32, native, X, y)
        (source / "mlp.py").write_text("x = 2\n")
        compiled.traced_source.cache_clear()
        assert compiled.stored(config, 32, native, X, y) != before
    finally:
        compiled.traced_source.cache_clear()


@pytest.mark.parametrize("backend_name", ["torch"])
def test_a_compiled_block_that_will_not_load_is_a_miss(driver, tmp_path):
    """No file, or one torch cannot read (another build's, a torn write): None, and the caller compiles afresh."""
    compiled = importlib.import_module("crosscheck.backends.torch.compiled")
    assert compiled.loaded(tmp_path / "none.pt2") is None
    (tmp_path / "bad.pt2").write_bytes(b"not a compiled function")
    assert compiled.loaded(tmp_path / "bad.pt2") is None


SEED2 = BY_ID["seed2-xor"].config
# What the compiled block does not train, each asked of a configuration whose other settings it does: named, refused.
NOT_COMPILED = {
    "a learning-rate schedule": SEED2.replace(schedule="warmup_cosine", warmup_steps=2, decay_steps=10),
    "gradient clipping": SEED2.replace(clip=1.0),
    "gradient accumulation": SEED2.replace(accumulate=2),
    "weight decay": SEED2.replace(weight_decay=0.01),
    "optimizer adam": SEED2.replace(optimizer="adam"),
    "mixed precision": SEED2.replace(dtype="float32", compute="bfloat16"),
    "running statistics": BY_ID["batchnorm-gelu-mse"].config,
    "dropout": BY_ID["layernorm-dropout-gelu-mse-minibatch"].config.replace(batch_size=None),
}


@pytest.mark.parametrize("backend_name", ["torch"])
@pytest.mark.parametrize("feature", NOT_COMPILED)
def test_what_the_compiled_path_does_not_train_is_refused_by_name(driver, monkeypatch, feature):
    """The block is plain full-batch descent: a configuration asking more is refused before anything is compiled,
    never trained without it."""
    compiled = importlib.import_module("crosscheck.backends.torch.compiled")
    monkeypatch.setattr(compiled, "compiled", lambda path, example: pytest.fail("compiled before refusing"))
    config = NOT_COMPILED[feature]
    with pytest.raises(ValueError, match=f"plain gradient descent, only: not .*{feature}"):
        compiled.train(None, None, None, config)
    assert compiled.unsupported(SEED2) == []  # the seeds' configuration itself is what the block trains


def with_checkpoints(run, case):
    """These cores keep no intermediate checkpoints: the case has one, the last epoch, so this is its state."""
    (last,) = case.checkpoints(run.losses.shape[0])
    return replace(run, checkpoints={last: TrainState(run.params, {}, 0)})


def test_jax_raises_xla_small_loop_limit_and_keeps_a_users_setting(request):
    """backends/jax lets XLA:CPU compile XOR-sized loops whole; a user's own XLA_FLAGS choice wins."""
    load_or_skip(request.config, "jax")
    jax_backend = importlib.import_module("crosscheck.backends.jax")
    small_loops, option = jax_backend.small_loops, jax_backend.SMALL_LOOP_OPTION
    assert small_loops("") == f"--xla_backend_extra_options={option}=65536"
    assert small_loops("--xla_dump_to=/tmp/d") == f"--xla_dump_to=/tmp/d --xla_backend_extra_options={option}=65536"
    # other extra options are kept, in the same flag (a second --xla_backend_extra_options would replace the first)
    merged = small_loops("--xla_backend_extra_options=a=1 --xla_dump_to=/tmp/d")
    assert merged == f"--xla_backend_extra_options=a=1,{option}=65536 --xla_dump_to=/tmp/d"
    mine = f"--xla_backend_extra_options={option}=0"
    assert small_loops(mine) == mine
    assert option in os.environ["XLA_FLAGS"]  # set on import, before JAX started its backends


def test_jax_compiles_a_run_of_equal_stretches_once(request):
    """Stretches of one length share one compiled train_epochs: the step each stretch starts from sits where the
    one it hands back does (an uncommitted first step once compiled every run twice)."""
    load_or_skip(request.config, "jax")
    jax_backend = importlib.import_module("crosscheck.backends.jax")
    case = BY_ID["relu-softmax-ce-minibatch"]
    config, params, X, y, orders = case.inputs(epochs=12)
    config = config.replace(lr=0.0123)  # a configuration no other test compiles: its own cache entry
    train_epochs = jax_backend.mlp.train_epochs
    before = train_epochs._cache_size()
    jax_backend.DRIVER.run_train(params, X, y, config, orders, checkpoints=(3, 6, 9, 12))
    assert train_epochs._cache_size() - before == 1


def test_jax_trains_stretches_of_unequal_lengths_with_one_program_and_the_same_steps(request, monkeypatch):
    """Kept at epochs 3, 7, 10 and 14 (stretches of 3 and 4), a run compiles one train_epochs (pieces of one epoch),
    and gives the run trained in whole stretches bit for bit; a run that would take over PIECES calls stays whole."""
    load_or_skip(request.config, "jax")
    jax_backend = importlib.import_module("crosscheck.backends.jax")
    mlp = jax_backend.mlp
    assert mlp.pieces((3, 7, 10, 14)) == 1 and mlp.pieces((4, 8, 12)) is None
    assert mlp.pieces((2, 4, 6, 1000)) is None  # 500 calls of 2 epochs: each stretch whole instead
    case = BY_ID["relu-softmax-ce-minibatch"]
    config, params, X, y, orders = case.inputs(epochs=14)
    config = config.replace(lr=0.0234)  # a configuration no other test compiles: its own cache entry
    before = mlp.train_epochs._cache_size()
    pieces = jax_backend.DRIVER.run_train(params, X, y, config, orders, checkpoints=(3, 7, 10, 14))
    assert mlp.train_epochs._cache_size() - before == 1
    monkeypatch.setattr(mlp, "PIECES", 0)  # each stretch whole, as before pieces()
    whole = jax_backend.DRIVER.run_train(params, X, y, config, orders, checkpoints=(3, 7, 10, 14))
    assert mlp.train_epochs._cache_size() - before == 3  # stretches of 3 and of 4
    assert np.array_equal(np.asarray(pieces.losses), np.asarray(whole.losses))
    for epoch in (3, 7, 10, 14):
        for a, b in zip(checks.flat(pieces.checkpoints[epoch].params), checks.flat(whole.checkpoints[epoch].params)):
            assert np.array_equal(np.asarray(a), np.asarray(b)), f"the parameters differ at epoch {epoch}"


def test_the_tests_compile_cheaply_and_their_cli_runs_as_shipped():
    """tests/xla_flags.py: the tests' options added unless the flags choose them; dropped again for a subprocess."""
    ours = " ".join(xla_flags.FLAGS)
    assert xla_flags.for_tests("") == ours
    assert xla_flags.for_tests("--xla_dump_to=/d") == f"--xla_dump_to=/d {ours}"
    chosen = xla_flags.for_tests("--xla_backend_optimization_level=2")
    assert chosen.split()[0] == "--xla_backend_optimization_level=2"
    assert "--xla_backend_optimization_level=0" not in chosen
    shipped = xla_flags.as_shipped({"XLA_FLAGS": f"--xla_dump_to=/d {ours}", "HOME": "/h"})
    assert shipped == {"XLA_FLAGS": "--xla_dump_to=/d", "HOME": "/h"}
    assert all(flag in os.environ["XLA_FLAGS"].split() for flag in xla_flags.FLAGS)  # set by conftest.py before JAX
