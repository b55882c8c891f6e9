"""Plug your own implementation into the suite: registration, the seed-style adapter, the worked examples."""

import os
import subprocess
import sys
from importlib.metadata import EntryPoint

import numpy as np
import pytest

import backends
from common.driver import Unsupported
from crosscheck import checks
from crosscheck.adapters import seed_style
from crosscheck.cases import BY_ID
from crosscheck.compare import Disagreement

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.append(ROOT)  # examples/ lives in the checkout, beside the installed packages


@pytest.fixture
def clean_plugins(monkeypatch):
    monkeypatch.setattr(backends, "_plugins", {})


def student():
    from examples.student_nn import DRIVER

    return DRIVER


def test_seed_style_adapter_agrees_with_the_reference():
    driver, case = student(), BY_ID["seed1-xor"]
    checks.check_forward(driver, case, "float64")
    checks.check_gradients(driver, case, "float64")
    checks.check_trajectory(driver, case, "float64", epochs=2000)


class ColumnNet:
    """Notebook 2's layout as a class: samples as columns, w (out, in), b (out, 1)."""

    def __init__(self, n_in, n_hidden, n_out):
        self.w1, self.b1 = np.zeros((n_hidden, n_in)), np.zeros((n_hidden, 1))
        self.w2, self.b2 = np.zeros((n_out, n_hidden)), np.zeros((n_out, 1))

    def feedforward(self, X):
        self.a1 = 1 / (1 + np.exp(-(self.w1 @ X + self.b1)))
        self.a2 = 1 / (1 + np.exp(-(self.w2 @ self.a1 + self.b2)))
        return self.a2

    def backward(self, X, d, lr):
        dz2 = (d - self.a2) * self.a2 * (1 - self.a2)
        dz1 = (self.w2.T @ dz2) * self.a1 * (1 - self.a1)
        self.w2 += lr * dz2 @ self.a1.T
        self.b2 += lr * dz2.sum(axis=1, keepdims=True)
        self.w1 += lr * dz1 @ X.T
        self.b1 += lr * dz1.sum(axis=1, keepdims=True)


def test_column_layout_adapter_agrees_with_the_reference():
    driver = seed_style(lambda layers: ColumnNet(*layers), name="columns", layout="columns",
                        weights=("w1", "w2"), biases=("b1", "b2"))
    case = BY_ID["seed2-xor"]
    checks.check_forward(driver, case, "float64")
    checks.check_gradients(driver, case, "float64")
    checks.check_trajectory(driver, case, "float64", epochs=2000)


def test_unsupported_configurations_are_declared_not_failed():
    driver = student()
    for case_id, reason in (("relu-softmax-ce-minibatch", "2 layers only"), ("tanh-identity-mse-minibatch",
                                                                               "sigmoid activations only")):
        with pytest.raises(Unsupported, match=reason):
            checks.check_gradients(driver, BY_ID[case_id], "float64")
    with pytest.raises(Unsupported, match="dtypes float64 only"):
        checks.check_gradients(driver, BY_ID["seed1-xor"], "float32")


def test_planted_mistake_is_named():
    from examples.student_nn_buggy import DRIVER

    with pytest.raises(Disagreement, match="buggy: layer 1 weight gradient disagrees"):
        checks.check_gradients(DRIVER, BY_ID["seed1-xor"], "float64")


def test_registration_from_the_environment_and_entry_points(clean_plugins, monkeypatch):
    monkeypatch.setenv(backends.PLUGIN_ENV, "student=examples.student_nn:DRIVER")
    monkeypatch.setattr(backends, "entry_points", lambda group: [
        EntryPoint(name="installed", value="examples.student_nn:DRIVER", group=group)])
    backends.discover()
    assert backends.names()[-2:] == ["student", "installed"]
    assert backends.load("installed").name == "installed"


@pytest.mark.parametrize(("spec", "message"), [
    ("torch=examples.student_nn:DRIVER", "taken by a built-in backend"),
    ("student=examples.student_nn", "must be 'module:object'"),
    ("examples.student_nn:DRIVER", "NAME=module:object"),
])
def test_bad_registration_is_named(clean_plugins, spec, message):
    with pytest.raises(ValueError, match=message):
        backends.register_spec(spec)


def run_suite(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CROSSCHECK_STRICT", "CROSSCHECK_BACKENDS")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-n0",
                           "tests/test_agreement.py", "tests/test_validation.py", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)


@pytest.mark.slow  # a whole pytest session in a subprocess
def test_the_whole_suite_runs_on_a_plugin():
    """As README.md shows: every applicable test runs on the plug-in, the rest skip with the reason."""
    done = run_suite("--implementation", "student=examples.student_nn:DRIVER", "--backends", "student")
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "student does not support this configuration" in done.stdout


@pytest.mark.slow  # a whole pytest session in a subprocess
def test_the_whole_suite_fails_on_the_planted_mistake():
    done = run_suite("--implementation", "buggy=examples.student_nn_buggy:DRIVER", "--backends", "buggy",
                     "-k", "gradients and seed1")
    assert done.returncode == 1, done.stdout[-3000:]
    assert "buggy: layer 1 weight gradient disagrees" in done.stdout
