"""Every backend mirrors the reference module for module, function for function, in the same order."""

import importlib
import inspect

import pytest

from crosscheck import backends
from crosscheck.common import registry
from crosscheck.reference import layers

# The layer kinds' families are files of their own (reference/layers/): each mirrored file for file.
FAMILIES = tuple(f"layers.{family.__name__.rpartition('.')[2]}" for family in layers.FAMILIES)
MODULES = ("activations", "losses", "layers", *FAMILIES, "optimizers", "mlp")


def public_functions(module):
    """Names of the functions defined in module itself, in source order."""
    found = [(fn.__code__.co_firstlineno, name) for name, fn in inspect.getmembers(module, inspect.isfunction)
             if fn.__module__ == module.__name__ and not name.startswith("_")]
    return [name for _, name in sorted(found)]


@pytest.mark.frameworks
@pytest.mark.parametrize("module", MODULES)
def test_backend_mirrors_reference_names_and_order(driver, module):
    package = backends.REGISTRY[driver.name][0]
    ours = importlib.import_module(f"{package}.{module}")
    theirs = importlib.import_module(f"crosscheck.reference.{module}")
    wanted, have = public_functions(theirs), public_functions(ours)
    missing = [name for name in wanted if name not in have]
    assert not missing, f"{package}.{module} is missing " + ", ".join(f"{name}()" for name in missing)
    in_order = [n for n in have if n in wanted]
    assert in_order == wanted, f"{package}.{module} defines the reference's functions in another order: {in_order}"


BUFFERED = [name for name, kind in registry.LAYERS.items() if kind.buffers]
TABLES = {"activations.FORWARD": registry.ACTIVATIONS, "activations.BACKWARD": registry.ACTIVATIONS,
          "losses.FORWARD": registry.LOSSES, "losses.BACKWARD": registry.LOSSES,
          "layers.FORWARD": registry.LAYERS, "layers.BACKWARD": registry.LAYERS, "layers.EVALUATE": BUFFERED,
          "layers.RUNNING": BUFFERED, "layers.BUFFERS": BUFFERED,
          "optimizers.INIT": registry.OPTIMIZERS, "optimizers.UPDATE": registry.OPTIMIZERS}


@pytest.mark.builtin
@pytest.mark.parametrize("table", list(TABLES))
def test_backend_tables_hold_every_registered_name(driver, table):
    """The dispatch tables of every built-in backend, the reference's included, hold every registered name, no
    other."""
    module, name = table.split(".")
    package = backends.REGISTRY[driver.name][0]
    ours = getattr(importlib.import_module(f"{package}.{module}"), name)
    assert sorted(ours) == sorted(TABLES[table]), f"{package}.{table} has {list(ours)}, the registry {TABLES[table]}"


NUMPY_ONLY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "jax", "jaxlib") or name.startswith("crosscheck.backends"):
            raise ImportError(f"{name} is blocked: the reference must run on NumPy alone")
sys.meta_path.insert(0, Block())
import crosscheck.verdict.checks, crosscheck.suite.cases
from crosscheck import reference
from crosscheck.reference.data import xor
X, y = xor()
config = reference.SEED1_XOR.replace(epochs=10)
print(reference.DRIVER.run_train(reference.initial_params(config), X, y, config).losses[-1, 0])
"""


def test_reference_runs_on_numpy_alone():
    """reference/ (and the checks) import and train with torch, jax and backends/ made unimportable."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", NUMPY_ONLY], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) > 0


def test_every_layer_kind_trains_in_a_case_and_is_caught_wrong():
    """Every registered layer kind is in at least one trajectory case (each in both dtypes), and every kind with a
    backward of its own beyond dense and the activations has a catalogue mistake planted in it."""
    from crosscheck.common import registry
    from crosscheck.diagnosis.catalogue import BUGS
    from crosscheck.suite.cases import CASES

    used = {layer.kind for case in CASES for layer in case.config.model}
    assert set(registry.LAYERS) - used == set(), "layer kinds in no case"
    planted = " ".join(bug.id for bug in BUGS if bug.module.startswith("layers."))
    for kind in ("layernorm", "rmsnorm", "swiglu", "attention", "positions", "rope", "batchnorm", "dropout", "conv",
                 "maxpool", "avgpool", "embedding", "rnn", "lstm"):
        assert kind in planted, f"no catalogue mistake in {kind}"


def test_an_optimizer_pair_that_gives_its_state_by_position_is_refused_naming_the_names():
    """common/walk.py reads and returns a leaf's optimizer state by name; a pair that returns a tuple (or the wrong
    names) would otherwise have its state misfiled under another name."""
    import numpy as np

    from crosscheck.common import walk
    from crosscheck.common.config import Config

    config = Config(layers=(2, 2, 1), optimizer="adam")
    params = [(np.ones((2, 2)), np.zeros(2)), (np.ones((2, 1)), np.zeros(1))]
    with pytest.raises(TypeError, match=r"adam_init must give a leaf's state by name, \['first moment', 'second "
                                        r"moment'\]; got tuple"):
        walk.optimizer_init(params, config, lambda p: (np.zeros_like(p), np.zeros_like(p)))
    state = walk.optimizer_init(params, config, lambda p: {"first moment": p * 0, "second moment": p * 0})
    with pytest.raises(TypeError, match=r"adam_update must give .*; got \['first moment', 'velocity'\]"):
        walk.optimizer_update(params, params, state, (), config,
                              lambda p, g, s, k, c, l, which: (p, {"first moment": p, "velocity": p}))


def test_a_registered_name_without_its_function_is_an_error_at_import():
    from crosscheck.common import walk

    def relu_forward(x):
        return x

    with pytest.raises(NotImplementedError, match="mine has no tanh_forward for the registered 'tanh'"):
        walk.table({"__name__": "mine", "relu_forward": relu_forward}, ("relu", "tanh"), "forward")
    found = walk.table({"__name__": "mine", "relu_forward": relu_forward}, ("relu",), "forward")
    assert found == {"relu": relu_forward}
