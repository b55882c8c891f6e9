"""Strict mode for the suite: a missing backend is a skip with its reason, or, in strict mode, a failure."""

import pytest

from crosscheck import backends


def strict(config):
    """--strict-backends, CROSSCHECK_STRICT=1 or CI=true."""
    return config.getoption("--strict-backends") or backends.strict_from_environment()


def load_or_skip(config, name):
    """The backend's Driver; a skip with the reason if its framework is missing, a failure in strict mode where the
    session asks for it (every backend, or those --backends names)."""
    try:
        return backends.load(name)
    except backends.BackendUnavailable as exc:
        chosen = config.getoption("--backends")
        if chosen is not None and name not in [n.strip() for n in chosen.split(",")]:
            pytest.skip(f"{exc}; not among --backends {chosen}, so not required, strict mode or not")
        if strict(config):
            pytest.fail(f"strict mode: {exc}", pytrace=False)
        pytest.skip(str(exc))


_WORLDS: dict = {}  # (backend, world size) -> why it cannot start here, or None: each asked once a session


def world_or_skip(config, driver, problem):
    """A sharded problem's world started on the backend (its parallel.ready: torch's processes, JAX's devices) before
    the test trains: a skip with the reason where it cannot start here, a failure in strict mode."""
    if problem.parallel is None or driver.parallel is None:
        return
    key = (driver.name, problem.world)
    if key not in _WORLDS:
        try:
            driver.parallel.ready(problem.world)
            _WORLDS[key] = None
        except Exception as exc:  # noqa: BLE001  (whatever stops the world: said, then skipped or failed)
            _WORLDS[key] = f"{driver.name} cannot run a world of {problem.world} here: {exc}"
    why = _WORLDS[key]
    if why is not None:
        if strict(config):
            pytest.fail(f"strict mode: {why}", pytrace=False)
        pytest.skip(why)
