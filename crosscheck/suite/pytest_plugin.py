"""The suite's pytest options, for a run of it from any folder: `pytest --pyargs crosscheck_tests ...`.

Installed, this module is a pytest plugin (entry point pytest11 in pyproject.toml), so it is loaded in every
pytest session of the environment, the user's own projects' included. It therefore stays out of the way: it
imports nothing heavy and adds the suite's options (--implementation, --command, --backends, --device, --run-slow,
--strict-backends: names a project's own conftest may well use too) only to a session that runs the suite.
Run from this repository, tests/conftest.py adds them (it is then an initial conftest, read before the command
line is parsed); with --pyargs it is read only at collection, too late for its options, so this plugin adds them
first, when the command line names the installed suite (crosscheck_tests).
"""

import importlib.util
import os
from pathlib import Path

import pytest

SUITE = "crosscheck_tests"  # tests/, as installed (pyproject.toml's package-dir)
_ADDED = "_crosscheck_options_added"


def add_options(parser):
    """The suite's options, once per session (this plugin or tests/conftest.py, whichever comes first)."""
    if getattr(parser, _ADDED, False):
        return
    setattr(parser, _ADDED, True)
    group = parser.getgroup("crosscheck")
    group.addoption("--strict-backends", action="store_true",
                    help="fail, instead of skip, when a backend's framework is missing "
                         "(also CROSSCHECK_STRICT=1 or CI=true)")
    group.addoption("--run-slow", action="store_true", help="also run the full-length runs marked slow")
    group.addoption("--all-cases", action="store_true",
                    help="every first case on every backend (the deeper tier too), without the slow runs: tox -e "
                         "portable's, which checks them under other CPU vector units")
    group.addoption("--backends", default=os.environ.get("CROSSCHECK_BACKENDS"),
                    help="comma-separated backends to check (default: all registered, plug-ins included; "
                         "env CROSSCHECK_BACKENDS)")
    group.addoption("--implementation", action="append", default=[], metavar="NAME=module:object",
                    help="check your own implementation too (repeatable; also env CROSSCHECK_PLUGINS, and entry "
                         "points in the group backprop_crosscheck.backends); module is found from the current "
                         "folder too")
    group.addoption("--command", action="append", default=[], metavar="NAME=PROGRAM",
                    help="check a program in any language too, run as PROGRAM PROBLEM.safetensors RESULT.safetensors "
                         "(repeatable; docs/other-languages.md)")
    group.addoption("--op", action="append", default=[], metavar="NAME=module:object[@KIND]",
                    help="check one op's custom backward pass (an Op from crosscheck.adapters' autograd_function, "
                         "custom_vjp or numpy_pair; or a Function, custom_vjp or NumPy pair with @KIND, the registered "
                         "op it computes), in every dtype it declares (repeatable; docs/your-code.md)")
    group.addoption("--convention", action="append", default=[], metavar="KEY=VALUE",
                    help="a convention your code follows where it differs from PyTorch's (repeatable), over those its "
                         "adapter declares, e.g. batchnorm.running_variance=biased (crosscheck --conventions)")
    group.addoption("--device", default=os.environ.get("CROSSCHECK_DEVICE", "cpu"), choices=("cpu", "cuda"),
                    help="device for the framework backends (the NumPy reference always runs on the CPU)")


def names_the_suite(args):
    """Whether a command line's arguments name the installed suite: crosscheck_tests, or a module of it
    (crosscheck_tests.test_agreement), as --pyargs takes them."""
    return any(arg.split("::")[0].split(".")[0] == SUITE for arg in map(str, args))


def _as_path(arg):
    """A --pyargs argument naming the suite or a module of it, as the path pytest would collect (node ids kept)."""
    name, sep, rest = str(arg).partition("::")
    if name.split(".")[0] != SUITE:
        return arg
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return arg  # pytest itself says the module is not found
    origin = Path(spec.origin)
    return str(origin.parent if origin.name == "__init__.py" else origin) + sep + rest


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """Before the command line is parsed for good, if this session runs the installed suite: the options, and the
    suite's conftest.py as an initial one. pytest finds initial conftests from path arguments only; a --pyargs
    module of the suite (crosscheck_tests.test_agreement) would otherwise be collected without its fixtures."""
    if not names_the_suite(args):
        return
    add_options(parser)
    namespace = early_config.known_args_namespace
    if getattr(namespace, "pyargs", False):
        namespace.file_or_dir = [_as_path(arg) for arg in namespace.file_or_dir]
