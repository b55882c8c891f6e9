"""Plant a bug in a backend without editing its files: rewrite one line of a module's source, in memory.

mutate(monkeypatch, "crosscheck.backends.torch.layers", "dx = dz @ W.T if", "dx = dz @ W if") recompiles
the module's functions from the edited source and patches them in for the test's
duration. JAX's tracing caches and the cached reference results are cleared on the
way in and out, so nothing computed with the bug outlives the test.
"""

import ast
import functools
import importlib
import inspect
import os
import sys
import threading
from contextlib import contextmanager

from crosscheck import backends
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
    planted_in_jax = _inside(module_name, backends.REGISTRY["jax"][0])
    # reference/, common/ or the rest of crosscheck/: shared; a framework backend's own modules are its package's (the
    # registry's: a spelled-out prefix went stale once, when the backends moved into crosscheck.*)
    planted_in_reference = not any(_inside(module_name, package) for name, (package, _) in backends.REGISTRY.items()
                                   if name != backends.REFERENCE)
    clear_caches(jax=planted_in_jax, reference=planted_in_reference)  # the planted code must run afresh...
    _jax_mutated = _jax_mutated or planted_in_jax  # ...and cleared again when the test undoes it
    _reference_mutated = _reference_mutated or planted_in_reference
    return module


def _inside(module_name, package):
    return module_name == package or module_name.startswith(package + ".")


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


def called(block):
    """{(file, name)} of every Python function block() calls, in any thread it starts (the reference's simulated ranks
    are threads); None where block raised, or another profiler holds the hook (cProfile): then nothing is known, so
    nothing may be ruled out."""
    if sys.getprofile() is not None:
        return None
    seen = set()

    def note(frame, event, arg):
        if event == "call":
            seen.add((frame.f_code.co_filename, frame.f_code.co_name))

    sys.setprofile(note)
    threading.setprofile(note)
    try:
        block()
    except Exception:  # noqa: BLE001  (what the rest of it would have called is not known)
        return None
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return {(os.path.realpath(file), name) for file, name in seen}


@functools.lru_cache(maxsize=1024)
def planted_in(module_name, old):
    """(file, name) of the innermost function whose lines hold old in module_name's source; None where old lies
    outside every function (a table, a constant, a decorator: it may act on any run) or is not there once. A plant in
    a function changes a run only if the run calls it: the rest of the code, and so the way to it, is the same."""
    module = importlib.import_module(module_name)
    source = inspect.getsource(module)
    if source.count(old) != 1:  # not in this version of the module, or ambiguous: mutate says which
        return None
    first = source.count("\n", 0, source.index(old)) + 1
    last = first + old.count("\n")
    inner = None
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= first \
                and last <= (node.end_lineno or 0) and (inner is None or node.lineno >= inner.lineno):
            inner = node
    return None if inner is None else (os.path.realpath(module.__file__ or ""), inner.name)


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
