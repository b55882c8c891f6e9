"""The one registry of backends: name -> the module whose DRIVER runs it.

Frameworks are imported lazily, on load(): NumPy alone is enough to import this
package and run the reference. A backend whose framework is not installed raises
BackendUnavailable with the reason; any other import error is a real bug and
propagates.
"""

import importlib

REGISTRY = {
    "numpy": ("reference", None),
    "torch": ("backends.torch", "torch"),
    "jax": ("backends.jax", "jax"),
}
REFERENCE = "numpy"
EXTRAS_HINT = "pip install -e '.[torch,jax]'"


class BackendUnavailable(Exception):
    """The backend's framework is not installed."""


def names():
    return list(REGISTRY)


def load(name):
    """The Driver of backend name; BackendUnavailable if its framework is not installed."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(REGISTRY)}")
    module_name, framework = REGISTRY[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if framework is None or exc.name != framework:
            raise
        raise BackendUnavailable(f"backend {name!r} needs {framework}, which is not installed ({EXTRAS_HINT})") from exc
    return module.DRIVER
