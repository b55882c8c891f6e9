"""The one registry of backends: name -> the module whose DRIVER runs it, plus plug-ins.

Frameworks are imported lazily, on load(): NumPy alone is enough to import this
package and run the reference. A backend whose framework is not installed raises
BackendUnavailable with the reason; any other import error is a real bug and
propagates.

Plug-ins (implementations under test from outside this repository) are registered
as NAME=module:object, from the environment variable CROSSCHECK_PLUGINS (comma-
separated), from pytest's --implementation option, or by an installed package's
entry point in the group "backprop_crosscheck.backends". The object is a
crosscheck.common.driver.Driver, or a callable returning one (crosscheck.adapters builds
one around a class in the seeds' style).
"""

import importlib
import os
import sys
from dataclasses import replace
from importlib.metadata import entry_points
from typing import Any

from crosscheck.common.conventions import check

REGISTRY = {
    "numpy": ("crosscheck.reference", None),
    "torch": ("crosscheck.backends.torch", "torch"),
    "jax": ("crosscheck.backends.jax", "jax"),
}
REFERENCE = "numpy"
EXTRAS_HINT = "pip install 'backprop-crosscheck[torch,jax]'; in a checkout, pip install -e '.[torch,jax]'"


class BackendUnavailable(Exception):
    """The backend's framework is not installed."""


PLUGIN_ENV = "CROSSCHECK_PLUGINS"
ENTRY_POINT_GROUP = "backprop_crosscheck.backends"
_plugins: dict[str, Any] = {}  # name -> "module:object", or a callable building the Driver
_conventions: dict[str, str] = {}  # declared for every plug-in by the session (pytest --convention), over its own


def declare_conventions(declared):
    """Conventions every plug-in loaded after this follows, over those it declares itself (pytest --convention
    KEY=VALUE; common/conventions.py): a mapping or "KEY=VALUE" strings, checked here."""
    _conventions.clear()
    _conventions.update(check(declared, keep_defaults=True))  # a default declared overrides a plug-in's other value


def register(name, target):
    """Register the implementation at target ("module:object", or a callable returning its Driver: a command's,
    crosscheck/exchange/command.py) under name."""
    if name in REGISTRY:
        raise ValueError(f"plug-in name {name!r} is taken by a built-in backend")
    if callable(target):
        _plugins[name] = target
        return
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


class PluginError(ValueError):
    """A plug-in spec that cannot be loaded: its module or object is not found, or it is not a Driver. The message
    names the spec, what was not found and where it was looked for (a usage error in pytest; exit status 2)."""


def _import_plugin_module(name, module_name):
    """The plug-in's module, imported as `python -m` would: the current folder first, then sys.path."""
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):  # the module itself (or its package) is missing
            places = [os.getcwd()] + [p for p in sys.path if p and p != os.getcwd()]
            raise PluginError(f"plug-in {name!r} ({_plugins[name]}): no module named {exc.name!r}; looked in the "
                              f"current folder {os.getcwd()} and on sys.path ({', '.join(places[1:4])}, ...)") from None
        raise PluginError(f"plug-in {name!r} ({_plugins[name]}): importing {module_name!r} failed: {exc} "
                          f"(a module it imports is missing)") from exc
    except Exception as exc:
        raise PluginError(f"plug-in {name!r} ({_plugins[name]}): importing {module_name!r} raised "
                          f"{type(exc).__name__}: {exc}") from exc


def _load_plugin(name):
    if callable(_plugins[name]):
        built = _plugins[name]()
        return _declared(built if built.name == name else replace(built, name=name))
    module_name, _, attr = _plugins[name].partition(":")
    module = _import_plugin_module(name, module_name)
    obj: Any = module
    for depth, part in enumerate(attr.split(".")):
        if not hasattr(obj, part):
            where = module_name if depth == 0 else f"{module_name}:{'.'.join(attr.split('.')[:depth])}"
            public = sorted(n for n in vars(obj) if not n.startswith("_")) if hasattr(obj, "__dict__") else []
            raise PluginError(f"plug-in {name!r} ({_plugins[name]}): {where} ({getattr(module, '__file__', '?')}) has "
                              f"no {part!r}; it has {', '.join(public[:12]) or 'no public names'}")
        obj = getattr(obj, part)
    driver: Any = obj if hasattr(obj, "run_train") else None
    if driver is None and callable(obj) and not isinstance(obj, type):
        try:
            driver = obj()
        except TypeError as exc:
            raise PluginError(f"plug-in {name!r} ({_plugins[name]}) is not a Driver; called with no arguments, as a "
                              f"factory of one, it raised TypeError: {exc}") from exc
    if not hasattr(driver, "run_train"):
        what = f"the class {obj.__name__}" if isinstance(obj, type) else f"a {type(obj).__name__}"
        raise PluginError(f"plug-in {name!r} ({_plugins[name]}) is {what}, not a Driver nor a callable "
                          f"returning one: wrap it with an adapter (crosscheck.adapters; docs/your-code.md)")
    return _declared(driver if driver.name == name else replace(driver, name=name))


def _declared(driver):
    """driver under the session's conventions (declare_conventions), laid over its own."""
    return replace(driver, conventions=check({**dict(driver.conventions), **_conventions})) if _conventions else driver


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
