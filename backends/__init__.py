"""The one registry of backends: name -> the module whose DRIVER runs it, plus plug-ins.

Frameworks are imported lazily, on load(): NumPy alone is enough to import this
package and run the reference. A backend whose framework is not installed raises
BackendUnavailable with the reason; any other import error is a real bug and
propagates.

Plug-ins (implementations under test from outside this repository) are registered
as NAME=module:object, from the environment variable CROSSCHECK_PLUGINS (comma-
separated), from pytest's --implementation option, or by an installed package's
entry point in the group "backprop_crosscheck.backends". The object is a
common.driver.Driver, or a callable returning one (crosscheck.adapters builds
one around a class in the seeds' style).
"""

import importlib
import os
import sys
from importlib.metadata import entry_points
from typing import Any

REGISTRY = {
    "numpy": ("reference", None),
    "torch": ("backends.torch", "torch"),
    "jax": ("backends.jax", "jax"),
}
REFERENCE = "numpy"
EXTRAS_HINT = "pip install -e '.[torch,jax]'"


class BackendUnavailable(Exception):
    """The backend's framework is not installed."""


PLUGIN_ENV = "CROSSCHECK_PLUGINS"
ENTRY_POINT_GROUP = "backprop_crosscheck.backends"
_plugins: dict[str, str] = {}  # name -> "module:object"


def register(name, target):
    """Register the implementation at target ("module:object") under name."""
    if name in REGISTRY:
        raise ValueError(f"plug-in name {name!r} is taken by a built-in backend")
    if ":" not in target:
        raise ValueError(f"plug-in {name!r}: target must be 'module:object', got {target!r}")
    _plugins[name] = target


def register_spec(spec):
    """register() from "NAME=module:object"."""
    name, sep, target = spec.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"a plug-in is given as NAME=module:object, got {spec!r}")
    register(name.strip(), target.strip())


def discover():
    """Register the plug-ins named by CROSSCHECK_PLUGINS and by installed entry points."""
    for spec in filter(None, (s.strip() for s in os.environ.get(PLUGIN_ENV, "").split(","))):
        register_spec(spec)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _plugins.setdefault(ep.name, ep.value)


def plugins():
    return dict(_plugins)


def strict_from_environment():
    """Strict mode, in which a missing backend fails instead of being skipped: CROSSCHECK_STRICT=1 or CI=true."""
    return os.environ.get("CROSSCHECK_STRICT") == "1" or os.environ.get("CI", "").lower() == "true"


def names():
    return list(REGISTRY) + [n for n in _plugins if n not in REGISTRY]


def _load_plugin(name):
    module_name, _, attr = _plugins[name].partition(":")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # as `python -m` would: a plug-in module in the current directory
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    driver = obj if hasattr(obj, "run_train") else obj()
    if not hasattr(driver, "run_train"):
        raise TypeError(f"plug-in {name!r} ({_plugins[name]}) is not a Driver nor a callable returning one")
    if driver.name != name:
        from dataclasses import replace

        driver = replace(driver, name=name)
    return driver


def load(name):
    """The Driver of backend name; BackendUnavailable if its framework is not installed."""
    if name in _plugins and name not in REGISTRY:
        return _load_plugin(name)
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(names())}")
    module_name, framework = REGISTRY[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if framework is None or exc.name != framework:
            raise
        raise BackendUnavailable(f"backend {name!r} needs {framework}, which is not installed ({EXTRAS_HINT})") from exc
    return module.DRIVER


discover()
