"""Where the suite runs from: this repository's checkout, or an installed copy (crosscheck_tests, from any folder).

A few tests check the checkout's own files (examples/, benchmarks/): installed, there are none to check, and
those tests skip, saying so.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_SOURCE_TREE = (ROOT / "pyproject.toml").is_file() and (ROOT / "examples").is_dir()
needs_source_tree = pytest.mark.skipif(not IN_SOURCE_TREE, reason=(
    "checks this repository's own files (examples/, benchmarks/): run it from a checkout; installed, the suite "
    "checks the backends and your implementation"))


def user_cache():
    """The user's cache folder for the suite ($XDG_CACHE_HOME or ~/.cache, then backprop-crosscheck)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "backprop-crosscheck"


# The checkout's worked examples that tests/test_your_code.py exercises as a user's implementation would be, when no
# --implementation names one: NAME -> module:object, the form --implementation takes.
EXAMPLES = {"cs231n-example": "examples.cs231n_layers:DRIVER", "cs231n-student": "examples.cs231n_student:DRIVER",
            "makemore-ninja": "examples.makemore_bn_torch:DRIVER",
            "makemore-notebook": "examples.makemore_notebook_torch:DRIVER",
            "adam-object": "examples.optimizer_object_numpy:DRIVER", "d2l-sgd": "examples.d2l_sgd_torch:DRIVER",
            "gpt2-block": "examples.gpt2_block_numpy:DRIVER"}


def load_example(name):
    """The Driver of EXAMPLES[name], named name (the checkout's examples/ put on sys.path)."""
    import importlib
    import sys
    from dataclasses import replace

    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    module, _, attr = EXAMPLES[name].partition(":")
    return replace(getattr(importlib.import_module(module), attr), name=name)


def load_example_module(name):
    """The checkout's examples/NAME.py, imported as examples.NAME (examples/ put on sys.path)."""
    import importlib
    import sys

    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    return importlib.import_module(f"examples.{name}")
