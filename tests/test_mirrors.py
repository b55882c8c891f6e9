"""Every backend mirrors the reference module for module, function for function, in the same order."""

import importlib
import inspect

import pytest

import backends
from common import registry

MODULES = ("activations", "losses", "mlp")


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
    theirs = importlib.import_module(f"reference.{module}")
    wanted, have = public_functions(theirs), public_functions(ours)
    missing = [name for name in wanted if name not in have]
    assert not missing, f"{package}.{module} is missing " + ", ".join(f"{name}()" for name in missing)
    in_order = [n for n in have if n in wanted]
    assert in_order == wanted, f"{package}.{module} defines the reference's functions in another order: {in_order}"


TABLES = {"activations.FORWARD": registry.ACTIVATIONS, "activations.BACKWARD": registry.ACTIVATIONS,
          "losses.FORWARD": registry.LOSSES, "losses.BACKWARD": registry.LOSSES}


@pytest.mark.builtin
@pytest.mark.parametrize("table", list(TABLES))
def test_backend_tables_hold_every_registered_name(driver, table):
    """The dispatch tables of every built-in backend, the reference's included, list the registry's names in order."""
    module, name = table.split(".")
    package = backends.REGISTRY[driver.name][0]
    ours = getattr(importlib.import_module(f"{package}.{module}"), name)
    assert list(ours) == list(TABLES[table]), f"{package}.{table} has {list(ours)}, the registry {list(TABLES[table])}"


NUMPY_ONLY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "jax", "jaxlib", "backends"):
            raise ImportError(f"{name} is blocked: the reference must run on NumPy alone")
sys.meta_path.insert(0, Block())
import reference, crosscheck.checks, crosscheck.cases
from reference.data import xor
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
    from common import registry
    from crosscheck.cases import CASES
    from crosscheck.catalogue import BUGS

    used = {layer.kind for case in CASES for layer in case.config.model}
    assert set(registry.LAYERS) - used == set(), "layer kinds in no case"
    planted = " ".join(bug.id for bug in BUGS if bug.module == "layers")
    for kind in ("layernorm", "batchnorm", "dropout", "conv", "maxpool", "avgpool", "embedding", "rnn", "lstm"):
        assert kind in planted, f"no catalogue mistake in {kind}"
