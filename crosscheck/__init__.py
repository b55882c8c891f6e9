"""backprop cross-check: one namespace for everything the project installs.

    import crosscheck
    report = crosscheck.check(my_driver, layers=(2, 4, 1), epochs=2000)   # the report, as a Report (report/api.py)
    crosscheck.check_op(my_op)                  # one op's custom backward pass, by the op checks (report/op.py)

    crosscheck.common      <- common/      the registry, configuration, problem and driver every layer shares
    crosscheck.reference   <- reference/   the NumPy reference, the oracle
    crosscheck.backends    <- backends/    the PyTorch and JAX mirrors, file for file
    crosscheck.suite       the cases and the seeds' loops the suite draws on; the pytest plug-in
    crosscheck.verdict     bounds, comparisons, findings, checks, the vote, the op checks
    crosscheck.adapters    code as people write it, wrapped as a backend
    crosscheck.exchange    a program in any language as a backend: tensor files and commands
    crosscheck.diagnosis   the catalogue of mistakes, planted and matched
    crosscheck.report      the `crosscheck` command

Imports run downward only, in that order read from the bottom up (tests/test_layout.py holds it). The wheel maps the
repository's top-level common/, reference/ and backends/ onto their crosscheck names (pyproject.toml's package-dir);
a checkout that is imported without being installed finds them the same way, through the finder below.
"""

import importlib.util
import sys
from importlib.abc import MetaPathFinder
from pathlib import Path

_MAPPED = ("common", "reference", "backends")  # the repository's top-level folders, as crosscheck.<name>


class _Checkout(MetaPathFinder):
    """crosscheck.common, .reference and .backends from the checkout's top-level folders, where this package is
    imported from a checkout rather than an installed wheel; their submodules then follow their own __path__."""

    def __init__(self, root):
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        head, _, name = fullname.partition(".")
        if head != __name__ or name not in _MAPPED:
            return None
        folder = self.root / name
        return importlib.util.spec_from_file_location(fullname, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])


_root = Path(__file__).resolve().parent.parent
if not (Path(__file__).resolve().parent / "common").is_dir() and all((_root / n / "__init__.py").is_file()
                                                                      for n in _MAPPED):
    sys.meta_path.insert(0, _Checkout(_root))


def __getattr__(name):
    """crosscheck.check, crosscheck.check_op and crosscheck.Report, imported on first use: `import crosscheck` stays
    light, and loads nothing of the rooms below it."""
    if name == "check":
        from crosscheck.report.api import check

        return check
    if name == "check_op":
        from crosscheck.report.op import check_op

        return check_op
    if name == "Report":
        from crosscheck.report.result import Report

        return Report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
