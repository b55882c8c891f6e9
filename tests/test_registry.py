"""A missing framework is a skip with its reason in a developer's run, and a failure in strict mode."""

import pytest

from crosscheck import backends

from .strictness import load_or_skip


class FakeConfig:
    def __init__(self, strict):
        self.strict = strict

    def getoption(self, name):
        return {"--strict-backends": self.strict, "--backends": None}[name]


@pytest.fixture
def missing_backend(monkeypatch):
    monkeypatch.setitem(backends.REGISTRY, "ghost", ("ghost_backend_module", "ghost_backend_module"))
    return "ghost"


def test_missing_framework_is_named(missing_backend):
    with pytest.raises(backends.BackendUnavailable, match="backend 'ghost' needs ghost_backend_module"):
        backends.load(missing_backend)


def test_missing_framework_skips_outside_strict_mode(missing_backend, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("CROSSCHECK_STRICT", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs ghost_backend_module"):
        load_or_skip(FakeConfig(strict=False), missing_backend)


@pytest.mark.parametrize("how", ["option", "CROSSCHECK_STRICT", "CI"])
def test_missing_framework_fails_in_strict_mode(missing_backend, monkeypatch, how):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("CROSSCHECK_STRICT", raising=False)
    if how == "CROSSCHECK_STRICT":
        monkeypatch.setenv("CROSSCHECK_STRICT", "1")
    if how == "CI":
        monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="strict mode: backend 'ghost' needs"):
        load_or_skip(FakeConfig(strict=how == "option"), missing_backend)


def test_a_missing_framework_not_asked_for_skips_in_strict_mode(missing_backend, monkeypatch):
    """--backends names the backends a run is about: one outside it (a user's `--backends mine` in a NumPy-only
    environment) is not required, and its tests skip, strict mode or not."""
    monkeypatch.setenv("CI", "true")
    config = FakeConfig(strict=True)
    config.getoption = lambda name: {"--strict-backends": True, "--backends": "numpy,mine"}[name]
    with pytest.raises(pytest.skip.Exception, match="needs ghost_backend_module.*not among --backends"):
        load_or_skip(config, missing_backend)


def test_a_broken_install_is_not_mistaken_for_a_missing_one(monkeypatch):
    """Only the framework itself missing counts as 'not installed'; any other import error propagates."""
    monkeypatch.setitem(backends.REGISTRY, "broken", ("crosscheck.backends.no_such_module", "torch"))
    with pytest.raises(ModuleNotFoundError, match="crosscheck.backends.no_such_module"):
        backends.load("broken")


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="unknown backend 'mxnet'"):
        backends.load("mxnet")
