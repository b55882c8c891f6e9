"""Code that does not fit its adapter's interface is refused before anything trains: exit 2 from the report (a usage
error from pytest, ValueError from crosscheck.check), one line naming what the adapter expected and what it found;
never a DISAGREE with a diagnosis of a backward that raised. A crash inside code that fits stays a finding."""

import sys

import pytest

from crosscheck import backends
from crosscheck.report import run as report

from .source import ROOT, needs_source_tree

NO_BACKWARD = '''
import numpy as np
from crosscheck.adapters import seed_style


class Net:
    def __init__(self, n_in, n_hidden, n_out):
        self.weights_input_hidden, self.bias_hidden = np.zeros((n_in, n_hidden)), np.zeros((1, n_hidden))
        self.weights_hidden_output, self.bias_output = np.zeros((n_hidden, n_out)), np.zeros((1, n_out))

    def feedforward(self, X):
        return X @ self.weights_input_hidden

    def train(self, X, y, learning_rate):  # named otherwise than the adapter calls it
        pass


DRIVER = seed_style(lambda layers: Net(*layers), name="mine")
'''

WRONG_RETURN = '''
from crosscheck.adapters import gradient_function


def grads(params, X, y):
    return 0.5  # the loss alone, not (loss, [(dW, db), ...])


DRIVER = gradient_function(grads, name="mine")
'''


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A user's folder on sys.path, the plug-in registry restored after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.setattr(backends, "_plugins", dict(backends._plugins))
    monkeypatch.delitem(sys.modules, "mine", raising=False)  # each test's own mine.py, not the last one's
    yield tmp_path
    sys.modules.pop("mine", None)


def refused(folder, capsys, text, *argv):
    (folder / "mine.py").write_text(text)
    with pytest.raises(SystemExit) as exit_:
        report.main(["--implementation", "mine=mine:DRIVER", "--backends", "mine", "--epochs", "20", "--plot", "",
                     "--no-progress", *argv])
    captured = capsys.readouterr()
    assert exit_.value.code == 2 and not captured.out, captured.out  # nothing trained, nothing printed
    return captured.err.strip().splitlines()[-1]


def test_a_class_without_the_method_the_adapter_calls_is_refused(folder, capsys):
    said = refused(folder, capsys, NO_BACKWARD, "--layers", "2,4,1")
    assert said == ("crosscheck: error: mine does not fit its adapter: mine: Net has no method backward(X, y, "
                    "learning_rate), which the adapter calls; its methods: feedforward, train"), said


def test_a_gradient_function_that_returns_another_form_is_refused(folder, capsys):
    said = refused(folder, capsys, WRONG_RETURN, "--layers", "2,4,1")
    assert "mine does not fit its adapter: mine: the gradient function returned float; declared: (loss, [(dW, db) " \
           "for each of the 2 layers])" in said, said


@needs_source_tree
def test_an_update_rule_with_arguments_the_assignment_does_not_pass_is_refused(folder, capsys):
    source = (ROOT / "examples" / "cs231n_layers.py").read_text()
    text = source.replace("def sgd(w, dw, config):", "def sgd(w, dw, config, decay):")
    assert text != source
    said = refused(folder, capsys, text, "--model", "dense:2:4,relu,dense:4:2,softmax", "--loss",
                   "softmax_cross_entropy", "--samples", "16")
    assert "sgd(w, dw, config, decay) cannot be called as the assignment calls it, sgd(w, dw, config): missing a " \
           "required argument: 'decay'" in said, said


@needs_source_tree
def test_undeclared_keepdims_is_refused_with_the_declaration(folder, capsys):
    source = (ROOT / "examples" / "cs231n_student.py").read_text()
    text = source.replace('name="cs231n-student", keepdims=True)', 'name="cs231n-student")')
    assert text != source
    said = refused(folder, capsys, text, "--model", "dense:4:8,relu,batchnorm:8,dense:8:3,softmax", "--loss",
                   "softmax_cross_entropy", "--samples", "32", "--batch-size", "8")
    assert "does not fit its adapter" in said and "declare cs231n(..., keepdims=True)" in said, said


def test_the_python_api_raises_the_refusal(folder):
    import crosscheck

    (folder / "mine.py").write_text(NO_BACKWARD)
    with pytest.raises(ValueError, match=r"mine does not fit its adapter: mine: Net has no method backward"):
        crosscheck.check("mine=mine:DRIVER", layers=(2, 4, 1), epochs=20, no_progress=True)


def test_pytest_refuses_it_as_a_usage_error_before_any_test(folder):
    import subprocess

    (folder / "mine.py").write_text(NO_BACKWARD)
    done = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "crosscheck_tests.test_agreement", "-q", "-p",
                           "no:cacheprovider", "-n", "0", "--implementation", "mine=mine:DRIVER", "--backends", "mine"],
                          cwd=folder, capture_output=True, text=True, check=False, timeout=300,
                          env={k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"})
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:] + done.stderr[-2000:]
    assert "mine does not fit its adapter: mine: Net has no method backward" in done.stderr, done.stderr[-2000:]
