"""Every backend mirrors the reference module for module, function for function, in the same order."""

import importlib
import inspect
from pathlib import Path

import pytest

import backends
from common import registry

MODULES = ("activations", "losses", "layers", "optimizers", "mlp")


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
    for kind in ("layernorm", "rmsnorm", "swiglu", "attention", "positions", "rope", "batchnorm", "dropout", "conv",
                 "maxpool", "avgpool", "embedding", "rnn", "lstm"):
        assert kind in planted, f"no catalogue mistake in {kind}"


def test_an_optimizer_pair_that_gives_its_state_by_position_is_refused_naming_the_names():
    """common/walk.py reads and returns a leaf's optimizer state by name; a pair that returns a tuple (or the wrong
    names) would otherwise have its state misfiled under another name."""
    import numpy as np

    from common import walk
    from common.config import Config

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
    from common import walk

    def relu_forward(x):
        return x

    with pytest.raises(NotImplementedError, match="mine has no tanh_forward for the registered 'tanh'"):
        walk.table({"__name__": "mine", "relu_forward": relu_forward}, ("relu", "tanh"), "forward")
    found = walk.table({"__name__": "mine", "relu_forward": relu_forward}, ("relu",), "forward")
    assert found == {"relu": relu_forward}


LEVELS = ("common", "reference", "backends", "crosscheck")  # each may import those before it, never one after


def _import_graph():
    """{module: the project's modules it imports anywhere in its source (function-local imports included)}."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
             for level in LEVELS for p in (root / level).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # from package import module names the module; from module import name, the module
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names]
            else:
                continue
            for target in targets:
                while target not in files and "." in target:
                    target = target.rpartition(".")[0]
                if target in files and target != name:
                    found.add(target)
        graph[name] = found
    return graph


@pytest.mark.skipif(not (Path(__file__).resolve().parent.parent / "common").is_dir(), reason="needs the checkout")
def test_the_imports_have_no_circle_and_nothing_reaches_up():
    """common/ imports only itself, reference/ common, backends/ both, crosscheck/ all three; no module imports one
    that imports it back, however indirectly (function-local imports count: a circle hidden in a function is one)."""
    graph = _import_graph()
    up = [f"{a} -> {b}" for a, deps in graph.items() for b in deps
          if LEVELS.index(b.split(".")[0]) > LEVELS.index(a.split(".")[0])]
    assert not up, "imports reaching up: " + ", ".join(sorted(up))

    def reaches(start, goal, seen):
        return any(d == goal or (d not in seen and not seen.add(d) and reaches(d, goal, seen)) for d in graph[start])

    circles = sorted(a for a in graph if reaches(a, a, set()))
    assert not circles, "modules on an import circle: " + ", ".join(circles)
