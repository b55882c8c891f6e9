"""The house: one installed namespace, rooms whose imports run downward only, and modules and functions a reader can
take in (docs/contributing.md, "Where things live").

The rooms, from the bottom up (crosscheck/__init__.py names what lives in each): each module may import its own room
and those below it, never one above, and no module imports one that imports it back, however indirectly.
"""

import ast
import json
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from .source import IN_SOURCE_TREE, ROOT, needs_source_tree

ROOMS = ("common", "reference", "backends", "suite", "verdict", "adapters", "exchange", "diagnosis", "report")
# The repository's top-level folders installed under crosscheck (pyproject.toml's package-dir), and crosscheck/ itself.
FOLDERS = {"common": "crosscheck.common", "reference": "crosscheck.reference", "backends": "crosscheck.backends",
           "crosscheck": "crosscheck"}
MODULE_LINES = 450  # the most lines a module may have...
DATA_TABLES = {"crosscheck.diagnosis.catalogue": "BUGS"}  # ...not counting these tables of data (one entry a mistake)
FUNCTION_LINES = 60  # the most lines a function may have, its docstring included


def _modules():
    """{installed module name: its file in the checkout}."""
    found = {}
    for folder, name in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            found[".".join((name, *parts)).removesuffix(".__init__")] = path
    return found


def _sources(files):
    """{module: (whether it is a package, its source)} for _import_graph, from {module: its file}."""
    return {name: (path.name == "__init__.py", path.read_text(encoding="utf-8")) for name, path in files.items()}


def _import_graph(sources):
    """{module: the project's modules it imports anywhere in its source (function-local imports included)}."""
    graph = {}
    for name, (is_package, text) in sources.items():
        package = name if is_package else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                # from package import module names the module; from module import name, the module
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in sources else base
                           for alias in node.names]
            else:
                continue
            for target in targets:
                while target not in sources and "." in target:
                    target = target.rpartition(".")[0]
                if target in sources and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def _room(module):
    """The room's index in ROOMS; crosscheck itself (the namespace: its check() is the report's) and python -m
    crosscheck's __main__ above them all."""
    parts = module.split(".")
    return len(ROOMS) if len(parts) == 1 or parts[1] == "__main__" else ROOMS.index(parts[1])


@needs_source_tree
def test_every_module_lives_in_a_room():
    stray = [m for m in _modules() if m.count(".") >= 1 and m.split(".")[1] not in (*ROOMS, "__main__")]
    assert not stray, f"modules outside the rooms {ROOMS}: {stray}"


@needs_source_tree
def test_the_imports_run_down_the_rooms_and_have_no_circle():
    graph = _import_graph(_sources(_modules()))
    up = [f"{a} -> {b}" for a, deps in graph.items() for b in deps if _room(b) > _room(a)]
    assert not up, "imports reaching up a room: " + ", ".join(sorted(up))

    def reaches(start, goal, seen):
        return any(d == goal or (d not in seen and not seen.add(d) and reaches(d, goal, seen)) for d in graph[start])

    circles = sorted(a for a in graph if reaches(a, a, set()))
    assert not circles, "modules on an import circle: " + ", ".join(circles)


def _bare_imports(text):
    """The lines of text that import a repository folder by its bare name (common, reference, backends): a name the
    wheel does not install, which in a checkout loads a second copy of the module and, installed, fails or loads a
    user's own package of that name."""
    found = []
    for node in ast.walk(ast.parse(text)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        found += [node.lineno for name in names if name.split(".")[0] in FOLDERS and name.split(".")[0] != "crosscheck"]
    return sorted(found)


@needs_source_tree
def test_nothing_imports_a_folder_by_its_bare_name():
    folders = (*FOLDERS, "tests", "tools", "benchmarks", "examples")
    files = [p for folder in folders for p in (ROOT / folder).rglob("*.py")]
    bare = [f"{p.relative_to(ROOT)}:{line}" for p in files for line in _bare_imports(p.read_text(encoding="utf-8"))]
    assert not bare, f"imports of common, reference or backends by their bare names (use crosscheck.<name>): {bare}"
    assert _bare_imports("def f():\n    import backends  # a comment\nfrom reference.mlp import train\n") == [2, 3]


def test_the_room_test_finds_an_upward_import_and_a_circle():
    """The two failures the test above looks for, in a made-up house: it can fail."""
    graph = _import_graph({"crosscheck.verdict.a": (False, "from crosscheck.report import b\n"),
                           "crosscheck.report": (True, ""), "crosscheck.report.b": (False, ""),
                           "crosscheck.suite.c": (False, "from . import d\n"),
                           "crosscheck.suite.d": (False, "def f():\n    import crosscheck.suite.c\n")})
    assert graph["crosscheck.verdict.a"] == {"crosscheck.report.b"}
    assert _room("crosscheck.report.b") > _room("crosscheck.verdict.a")
    assert graph["crosscheck.suite.c"] == {"crosscheck.suite.d"}
    assert graph["crosscheck.suite.d"] == {"crosscheck.suite.c"}


def _code_lines(name, tree, lines):
    """A module's lines, less those of its data table (DATA_TABLES)."""
    table = DATA_TABLES.get(name)
    data = sum(node.end_lineno - node.lineno + 1 for node in tree.body if isinstance(node, ast.Assign)
               and table in {getattr(target, "id", None) for target in node.targets})
    return lines - data


@needs_source_tree
def test_no_module_or_function_is_too_long_to_read():
    long_modules, long_functions = [], []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        if (n := _code_lines(name, tree, len(text.splitlines()))) > MODULE_LINES:
            long_modules.append(f"{path.relative_to(ROOT)} ({n} lines)")
        long_functions += [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})"
                           for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                           and node.end_lineno - node.lineno + 1 > FUNCTION_LINES]
    assert not long_modules, f"modules over {MODULE_LINES} lines: {long_modules}"
    assert not long_functions, f"functions over {FUNCTION_LINES} lines: {long_functions}"


def _wheel_files(tmp_path):
    """The files of the wheel this suite runs from: the installed distribution's own record where it was installed
    from a wheel (tox, a user's pip install), else a wheel built from the checkout (an editable install's record
    lists only its finder; a checkout's egg-info, its sources)."""
    dist = metadata.distribution("backprop-crosscheck")
    editable = json.loads(dist.read_text("direct_url.json") or "{}").get("dir_info", {}).get("editable", False)
    if dist.read_text("RECORD") and not editable:
        return [str(f) for f in dist.files or ()]
    if not IN_SOURCE_TREE:
        pytest.skip("an editable install away from its checkout: no wheel to read")
    pytest.importorskip("setuptools", reason="building the checkout's wheel needs setuptools")
    import shutil
    import zipfile

    source = tmp_path / "checkout"  # a copy: setuptools builds in the source folder, and the checkout stays clean
    source.mkdir()
    for name in ("pyproject.toml", "README.md", *FOLDERS, "tests"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                             if (ROOT / name).is_dir() else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_the_wheel_installs_no_top_level_name_but_its_own(tmp_path):
    files = _wheel_files(tmp_path)
    top = {Path(f).parts[0] for f in files if not Path(f).parts[0].endswith((".dist-info", ".data"))
           and not f.startswith("..")}
    top = {t.removesuffix(".py") for t in top if t != "__pycache__"} - {"bin"}  # a script's entry in the record
    assert top == {"crosscheck", "crosscheck_tests"}, f"the wheel installs top-level names {sorted(top)}"
    if IN_SOURCE_TREE:  # every module of the checkout is in it, at its installed name (a package left out of
        # pyproject's list is a module missing from the wheel)
        installed = {str(Path(f).with_suffix("")).replace("/", ".").removesuffix(".__init__") for f in files
                     if f.endswith(".py")}
        missing = sorted(set(_modules()) - installed)
        assert not missing, f"modules the wheel leaves out: {missing}"


# A user's project with packages of the names the suite once installed at the top level: its network imports its own
# common/, utils/ and reference/ (which hold nothing of ours), and the suite must load and check it from its folder.
PROJECT = {
    "common/__init__.py": "",
    "common/layers.py": """
        import numpy as np


        def squash(v):
            return 1.0 / (1.0 + np.exp(-v))


        def slope(s):
            return s * (1.0 - s)
        """,
    "reference/__init__.py": "SIZES = (2, 4, 1)  # the user's own reference: a name only\n",
    "backends/__init__.py": "",
    "utils/__init__.py": "def outer(a, b):\n    return a.T @ b\n",
    "tests/__init__.py": "",
    "my_net.py": """
        import numpy as np
        from common.layers import slope, squash
        from utils import outer

        from crosscheck.adapters import seed_style


        class Net:
            def __init__(self, n_in, n_hidden, n_out):
                self.weights_input_hidden, self.bias_hidden = np.zeros((n_in, n_hidden)), np.zeros((1, n_hidden))
                self.weights_hidden_output, self.bias_output = np.zeros((n_hidden, n_out)), np.zeros((1, n_out))

            def feedforward(self, X):
                self.h = squash(X @ self.weights_input_hidden + self.bias_hidden)
                self.out = squash(self.h @ self.weights_hidden_output + self.bias_output)
                return self.out

            def backward(self, X, y, lr):
                d_out = (y - self.out) * slope(self.out)
                d_h = (d_out @ self.weights_hidden_output.T) * slope(self.h)
                self.weights_hidden_output += lr * outer(self.h, d_out)
                self.bias_output += lr * d_out.sum(axis=0, keepdims=True)
                self.weights_input_hidden += lr * outer(X, d_h)
                self.bias_hidden += lr * d_h.sum(axis=0, keepdims=True)


        DRIVER = seed_style(lambda layers: Net(*layers), name="mine")
        """,
}


def user_project(folder, planted=False):
    """PROJECT written into folder; planted: its hidden slope taken from the wrong array (a mistake it must catch)."""
    for name, text in PROJECT.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = textwrap.dedent(text).lstrip()
        if planted and name == "my_net.py":
            text = text.replace("* slope(self.h)", "* slope(self.h @ self.weights_hidden_output)")
        path.write_text(text)


@pytest.mark.parametrize("planted", [False, True], ids=["correct", "planted"])
def test_a_project_with_its_own_common_reference_backends_utils_tests_loads_and_is_checked(tmp_path, planted):
    """From the user's folder, with the installed package: their common/ and utils/ load (the suite's own names are
    all under crosscheck), and the report exits 0 on their correct network, 1 on the planted copy."""
    user_project(tmp_path, planted)
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("PYTHONPATH", "CROSSCHECK_PLUGINS")}
    done = subprocess.run([sys.executable, "-m", "crosscheck", "--implementation", "mine=my_net:DRIVER", "--backends",
                           "mine", "--layers", "2,4,1", "--init", "standard_normal", "--epochs", "200", "--plot", "",
                           "--no-progress"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    out = done.stdout + done.stderr
    assert "No module named" not in out and "importing" not in out, out[-3000:]
    assert done.returncode == (1 if planted else 0), out[-3000:]
