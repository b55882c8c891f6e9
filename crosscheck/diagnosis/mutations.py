"""Plant a bug in a backend without editing its files: rewrite one line of a module's source, in memory.

mutate(monkeypatch, "crosscheck.backends.torch.layers", "dx = dz @ W.T if", "dx = dz @ W if") recompiles
the module's functions from the edited source and patches them in for the test's
duration. JAX's tracing caches and the cached reference results are cleared on the
way in and out, so nothing computed with the bug outlives the test.
"""

import functools
import importlib
import inspect
import sys
from contextlib import contextmanager

from crosscheck.verdict import checks

# JAX's compiled functions hold planted code only after a crosscheck.backends.jax module was mutated
_jax_mutated = False
_reference_mutated = False  # the reference's cached results hold planted code only after a module outside backends/ was


def clear_caches(jax=False, reference=False):
    """The votes cached by crosscheck.verdict.checks; the reference's cached results where they may hold planted code
    (reference=True, or a module outside backends/ mutated since the last clear: a plant in a framework backend
    leaves the reference's runs as they were, and recomputing them after every such plant cost the catalogue a
    third of its reference runs); and JAX's compiled functions where they may hold planted code: jax=True, or a
    crosscheck.backends.jax module mutated since the last clear (recompiling every JAX function after every plant would
    triple the catalogue's time)."""
    global _jax_mutated, _reference_mutated
    if (jax or _jax_mutated) and "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
    checks.clear_caches(reference=reference or _reference_mutated)
    _jax_mutated = _reference_mutated = False


def mutate(monkeypatch, module_name, old, new):
    global _jax_mutated, _reference_mutated
    module = importlib.import_module(module_name)
    source = inspect.getsource(module)
    count = source.count(old)
    if count != 1:
        raise AssertionError(f"mutation {old!r} -> {new!r} must match exactly once in {module_name}, matched {count}")
    namespace = dict(vars(module))
    exec(planted_code(source.replace(old, new), module.__file__ or module_name), namespace)  # noqa: S102
    replaced = {}
    for name, value in namespace.items():
        original = getattr(module, name, None)
        if inspect.isfunction(value) and inspect.isfunction(original) and original.__module__ == module_name:
            monkeypatch.setattr(module, name, value)
            replaced[original] = value
        elif isinstance(original, dict) and name.isupper() and value is not original:
            monkeypatch.setattr(module, name, value)  # function tables (FORWARD, BACKWARD) point at the new code
    _retable(monkeypatch, sys.modules.get(module_name.rpartition(".")[0]), replaced)
    ranks = sys.modules.get("crosscheck.backends.torch.parallel")
    if ranks is not None:  # torch's parallel ranks are processes of their own: each job plants it there too
        monkeypatch.setattr(ranks, "PLANTED", (*ranks.PLANTED, (planted, module_name, old, new)))
    planted_in_jax = module_name.startswith("crosscheck.backends.jax")
    planted_in_reference = not module_name.startswith("backends.")  # reference/, common/ or crosscheck/: shared
    clear_caches(jax=planted_in_jax, reference=planted_in_reference)  # the planted code must run afresh...
    _jax_mutated = _jax_mutated or planted_in_jax  # ...and cleared again when the test undoes it
    _reference_mutated = _reference_mutated or planted_in_reference
    return module


def _retable(monkeypatch, package, replaced):
    """A family module's planted functions put into its package's tables too (layers/ builds FORWARD, BACKWARD...
    from its families' files): each table that holds a replaced function is swapped for a copy that holds the new."""
    for name, table in list(vars(package).items()) if package is not None and replaced else ():
        if name.isupper() and isinstance(table, dict) and any(v in replaced for v in table.values()
                                                              if inspect.isfunction(v)):
            monkeypatch.setattr(package, name, {k: replaced.get(v, v) if inspect.isfunction(v) else v
                                                for k, v in table.items()})


@functools.lru_cache(maxsize=512)
def planted_code(source, filename):
    """source compiled, once a process for each planted source: the diagnosis plants every mistake in turn, again
    for each run it diagnoses, and compiling a module's whole source took 3.6 ms a time (11 of the 91 s that
    tests/test_bug_catalogue.py and tests/test_diagnose.py took in one process). Each plant executes the code afresh,
    so its functions are new objects still."""
    return compile(source, filename, "exec")


class Patch:
    """pytest's monkeypatch reduced to what the plants use (setattr, setitem, undo), so that a mistake can be planted
    outside a test too: the diagnosis plants each catalogue mistake in the reference in turn (crosscheck/diagnose)."""

    def __init__(self):
        self._undo = []

    def setattr(self, target, name, value):
        self._undo.append((setattr, target, name, getattr(target, name)))
        setattr(target, name, value)

    def setitem(self, table, key, value):
        self._undo.append((dict.__setitem__, table, key, table[key]))
        table[key] = value

    def undo(self):
        while self._undo:
            put, target, name, value = self._undo.pop()
            put(target, name, value)


@contextmanager
def planted(module_name, old, new):
    """The block runs with the one-line mistake planted in module_name; the module, and every cache that may hold
    results computed with it, is restored on the way out."""
    patch = Patch()
    try:
        mutate(patch, module_name, old, new)
        yield
    finally:
        patch.undo()
        clear_caches()
