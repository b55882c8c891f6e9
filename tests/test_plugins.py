"""Plug your own implementation into the suite: registration, the seed-style adapter, the worked examples."""

import importlib
import os
import re
import subprocess
import sys
from dataclasses import replace
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from crosscheck import backends
from crosscheck.adapters import AdapterError, gradient_function, seed_style, step_function
from crosscheck.common.driver import Unsupported
from crosscheck.suite.cases import BY_ID
from crosscheck.suite.plugin_cases import BY_ID as PLUGIN_BY_ID
from crosscheck.verdict import checks
from crosscheck.verdict.compare import Disagreement

from .source import IN_SOURCE_TREE, ROOT, needs_source_tree

if IN_SOURCE_TREE and str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # examples/ lives in the checkout, beside the installed packages


@pytest.fixture
def clean_plugins(monkeypatch):
    monkeypatch.setattr(backends, "_plugins", {})


def student():
    from examples.student_nn import DRIVER

    return DRIVER


@needs_source_tree
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


@needs_source_tree
def test_unsupported_configurations_are_declared_not_failed():
    driver = student()
    for case_id, reason in (("relu-softmax-ce-minibatch", "2 layers only"), ("tanh-identity-mse-minibatch",
                                                                               "sigmoid activations only")):
        with pytest.raises(Unsupported, match=reason):
            checks.check_gradients(driver, BY_ID[case_id], "float64")
    with pytest.raises(Unsupported, match="dtypes float64 only"):
        checks.check_gradients(driver, BY_ID["seed1-xor"], "float32")


@needs_source_tree
def test_planted_mistake_is_named():
    from examples.student_nn_buggy import DRIVER

    with pytest.raises(Disagreement, match="buggy: layer 1 weight gradient disagrees"):
        checks.check_gradients(DRIVER, BY_ID["seed1-xor"], "float64")


@needs_source_tree
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


# The whole suite on a plug-in, correct (exit 0) and planted (exit 1), is tools/installed_suite.py's job, run by
# tox -e installed in .ci/run: the wheel installed from a user's folder, five forms of code, both tools. The two
# whole-session tests that ran it here from the checkout (a seed-style class alone) were superseded by it.


# A user's own file, in a folder of their own: the seeds' class, samples as rows (no file of this repository's).
OWN_NET = '''
import numpy as np
from crosscheck.adapters import AdapterError, gradient_function, seed_style, step_function


class Net:
    def __init__(self, n_in, n_hidden, n_out):
        self.weights_input_hidden, self.bias_hidden = np.zeros((n_in, n_hidden)), np.zeros((1, n_hidden))
        self.weights_hidden_output, self.bias_output = np.zeros((n_hidden, n_out)), np.zeros((1, n_out))

    def feedforward(self, X):
        self.hidden = 1 / (1 + np.exp(-(X @ self.weights_input_hidden + self.bias_hidden)))
        self.out = 1 / (1 + np.exp(-(self.hidden @ self.weights_hidden_output + self.bias_output)))
        return self.out

    def backward(self, X, y, lr):
        d_out = (y - self.out) * self.out * (1 - self.out)
        d_hidden = (d_out @ self.weights_hidden_output.T) * self.hidden * (1 - self.hidden)
        self.weights_hidden_output += lr * self.hidden.T @ d_out
        self.bias_output += lr * d_out.sum(axis=0, keepdims=True)
        self.weights_input_hidden += lr * X.T @ d_hidden
        self.bias_hidden += lr * d_hidden.sum(axis=0, keepdims=True)


DRIVER = seed_style(lambda layers: Net(*layers))
'''


def pytest_in(folder, *args, strict=False):
    """`python -m pytest ARGS` started in folder (not this checkout), with this environment's installed packages; in
    strict mode where asked, else not, whatever this session's."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "CROSSCHECK_STRICT", "CROSSCHECK_BACKENDS", "PYTHONPATH", "PYTEST_ADDOPTS")}
    env.update({"CROSSCHECK_STRICT": "1"} if strict else {})
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=folder, env=env,
                          capture_output=True, text=True, check=False, timeout=600)


@pytest.mark.slow  # a whole pytest session and a report in subprocesses (8 s here); tox -e installed runs it too
def test_the_installed_suite_checks_your_file_from_your_own_folder(tmp_path):
    """README's command, from a folder holding only the user's file: the suite is found installed (--pyargs
    crosscheck_tests), its options come from the pytest11 plug-in, and the file is imported from that folder."""
    (tmp_path / "my_net.py").write_text(OWN_NET)
    done = pytest_in(tmp_path, "--pyargs", "crosscheck_tests.test_agreement", "--implementation", "mine=my_net:DRIVER",
                     "--backends", "mine", "-k", "seed1", "-rs")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "mine does not support this configuration: dtypes float64 only" in done.stdout
    # the summary says how many checks ran on the plug-in, and what was skipped for what
    assert re.search(r"\nmine: [1-9]\d* ran \([1-9]\d* passed, 0 failed\), \d+ skipped: .*unsupported: dtypes float64 "
                     r"only, not float32", done.stdout), done.stdout[-3000:]
    # and so does the report, through the CLI, from the same folder
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CROSSCHECK_STRICT", "CROSSCHECK_BACKENDS")}
    cli = subprocess.run([sys.executable, "-m", "crosscheck", "--implementation", "mine=my_net:DRIVER", "--backends",
                          "numpy,mine", "--epochs", "300", "--plot", "", "--no-progress"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=False, timeout=600)
    assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-2000:]
    assert re.search(r"\n  mine +3 of 4 ran; skipped: autodiff gradients \(mine has no autodiff\)\n", cli.stdout), \
        cli.stdout
    (tmp_path / "my_net.py").write_text(OWN_NET.replace("* self.hidden * (1 - self.hidden)", "* self.hidden"))
    done = pytest_in(tmp_path, "--pyargs", "crosscheck_tests.test_agreement", "--implementation", "mine=my_net:DRIVER",
                     "--backends", "mine", "-k", "seed1 and gradients")
    assert done.returncode == 1 and "mine: layer 1 weight gradient disagrees" in done.stdout, done.stdout[-3000:]
    assert "diagnosis of mine on seed1-xor (float64, the first step):" in done.stdout  # under the diff
    assert "the gradients first differ at layer 1 (layer 1 weight gradient" in done.stdout, done.stdout[-3000:]


def cs231n_module(functions, name, replace=None):
    """A user's file holding these of examples/cs231n_layers.py's functions alone, wrapped by cs231n() as name; replace:
    (old, new) planted in it."""
    source = (ROOT / "examples" / "cs231n_layers.py").read_text()
    text = "import sys\n\nimport numpy as np\n\nfrom crosscheck.adapters import cs231n\n\n\n" + "".join(
        re.search(rf"^def {f}\(.*?(?=^def |^DRIVER)", source, re.S | re.M).group(0) for f in functions)
    text += f"DRIVER = cs231n(sys.modules[__name__], name={name!r})\n"
    return text if replace is None else text.replace(*replace)


FIVE = ("affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss", "sgd_momentum", "adam")
MOMENTUM_SLIP = ('config["momentum"] * config["velocity"] - config["learning_rate"] * dw',
                 'config["momentum"] * config["velocity"] - dw')


@needs_source_tree
@pytest.mark.slow  # a whole pytest session in a subprocess (11 s here); tox -e installed runs the five-function user
def test_a_focused_session_exercises_all_five_functions_and_catches_a_momentum_slip(tmp_path):
    """The installed suite on CS231n-style affine, relu, the softmax loss, sgd_momentum and adam: only the checks of
    the user's code run (the suite's checks of itself are left out), every function and rule is exercised by a passing
    check, and the same module with momentum's learning rate left out fails there."""
    (tmp_path / "five.py").write_text(cs231n_module(FIVE, "five"))
    (tmp_path / "slip.py").write_text(cs231n_module(FIVE, "slip", MOMENTUM_SLIP))
    done = pytest_in(tmp_path, "--pyargs", "crosscheck_tests", "--implementation", "five=five:DRIVER",
                     "--implementation", "slip=slip:DRIVER", "--backends", "five,slip", "-n", "2")
    out = done.stdout
    assert done.returncode == 1 and "focused on your code" in out, out[-3000:] + done.stderr[-2000:]
    assert "five provides 6 functions and rules by name (adam, dense, momentum, relu, softmax, " \
           "softmax_cross_entropy); every one exercised" in out, out[-3000:]
    failed = re.findall(r"^FAILED (\S+)", out, re.M)  # slip's alone: its momentum case, and the property test, which
    assert failed and all("[slip-" in f or f.endswith("[slip]") for f in failed), failed  # draws its own rules
    assert any("cs231n-mlp-momentum" in f for f in failed) and "slip provides" in out and "NOT EXERCISED" in out


@needs_source_tree
def test_a_focused_session_on_which_no_check_ran_fails_strict_or_not(tmp_path):
    """Affine layers, the softmax loss and sgd cannot build the seeds' sigmoid network: every check of it there is
    skipped (unsupported), and a session that checked nothing the user named never exits 0."""
    functions = ("affine_forward", "affine_backward", "softmax_loss", "sgd")
    (tmp_path / "relus.py").write_text(cs231n_module(functions, "relus"))
    done = pytest_in(tmp_path, "--pyargs", "crosscheck_tests.test_agreement", "--implementation", "relus=relus:DRIVER",
                     "--backends", "relus", "-k", "seed1")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "NOT CHECKED: no check ran on relus, which you named" in done.stdout, done.stdout[-3000:]


@needs_source_tree
@pytest.mark.slow
def test_a_focused_session_in_strict_mode_fails_on_what_nothing_exercised(tmp_path):
    """A convolution with nothing to pool it: its op is checked, but no case assembles conv2d and the flattening
    before the affine layer without max-pooling, so flatten goes unexercised, which strict mode fails and a
    developer's run warns of."""
    functions = ("affine_forward", "affine_backward", "relu_forward", "relu_backward", "conv_forward_naive",
                 "conv_backward_naive", "softmax_loss", "sgd")
    (tmp_path / "conv.py").write_text(cs231n_module(functions, "conv"))
    argv = ("--pyargs", "crosscheck_tests", "--implementation", "conv=conv:DRIVER", "--backends", "conv", "-n", "2")
    warned = pytest_in(tmp_path, *argv)
    assert warned.returncode == 0 and "NOT EXERCISED by any passing check: flatten\n" in warned.stdout, warned.stdout
    strict_run = pytest_in(tmp_path, *argv, strict=True)
    assert strict_run.returncode == 1, strict_run.stdout[-3000:]
    assert "NOT EXERCISED by any passing check: flatten (a failure in strict mode)" in strict_run.stdout


def test_the_plugin_stays_out_of_other_sessions(tmp_path):
    """Installed, the pytest11 plug-in is loaded in every session of the environment: a project of the user's own
    that defines --device and --backends itself still runs, and gets none of the suite's options."""
    (tmp_path / "conftest.py").write_text('def pytest_addoption(parser):\n'
                                          '    parser.addoption("--device")\n    parser.addoption("--backends")\n')
    (tmp_path / "test_theirs.py").write_text('def test_theirs(pytestconfig):\n'
                                             '    assert pytestconfig.getoption("--device") == "tpu"\n')
    done = pytest_in(tmp_path, "--device", "tpu")
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
    done = pytest_in(tmp_path, "--implementation", "x=y:z")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR and "unrecognized arguments: --implementation" in done.stderr


@pytest.mark.parametrize(("module", "spec", "message"), [
    (None, "mine=no_such_module:DRIVER", "plug-in 'mine' (no_such_module:DRIVER): no module named 'no_such_module'; "
                                          "looked in the current folder {cwd} and on sys.path"),
    ("import numpy\n", "mine=my_net:DRIVER", "plug-in 'mine' (my_net:DRIVER): my_net ({file}) has no 'DRIVER'; it has "
                                             "numpy"),
    ("import no_such_dependency\n", "mine=my_net:DRIVER", "importing 'my_net' failed: No module named "
                                                          "'no_such_dependency' (a module it imports is missing)"),
    ("class Net:\n    pass\n", "mine=my_net:Net", "is the class Net, not a Driver nor a callable returning one: wrap "
                                                  "it with an adapter"),
    ("def make(layers):\n    pass\n", "mine=my_net:make", "is not a Driver; called with no arguments, as a factory "
                                                           "of one, it raised TypeError"),
    ("1 / 0\n", "mine=my_net:DRIVER", "importing 'my_net' raised ZeroDivisionError: division by zero"),
])
def test_a_spec_that_does_not_load_is_named_with_where_it_looked(clean_plugins, monkeypatch, tmp_path, module, spec,
                                                                 message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "my_net", raising=False)
    if module is not None:
        (tmp_path / "my_net.py").write_text(module)
    backends.register_spec(spec)
    with pytest.raises(backends.PluginError) as info:
        backends.load("mine")
    assert message.format(cwd=tmp_path, file=tmp_path / "my_net.py") in str(info.value)


def test_a_bad_spec_is_one_usage_error_in_pytest_and_exit_2_in_the_cli(tmp_path):
    done = pytest_in(tmp_path, "--pyargs", "crosscheck_tests.test_agreement", "--implementation", "mine=my_net:DRIVER",
                     "--backends", "mine")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-3000:] + done.stderr[-2000:]
    assert "ERROR: plug-in 'mine' (my_net:DRIVER): no module named 'my_net'" in done.stderr
    assert "INTERNALERROR" not in done.stdout + done.stderr
    cli = subprocess.run([sys.executable, "-m", "crosscheck", "--implementation", "mine=my_net:DRIVER", "--backends",
                          "mine", "--no-progress"], cwd=tmp_path, capture_output=True, text=True, check=False,
                         timeout=300)
    assert cli.returncode == 2 and cli.stdout == "", cli.stdout + cli.stderr
    last = cli.stderr.strip().splitlines()[-1]
    assert last.startswith("crosscheck: error: plug-in 'mine' (my_net:DRIVER): no module named 'my_net'"), cli.stderr


# -- every way people write it: one worked example per adapter that agrees, and a copy with one planted mistake
EXAMPLES = ["student_nn", "seed_loop", "nielsen_network"]
PLANTED = {
    "student_nn_buggy": "buggy: layer 1 weight gradient disagrees",
    "seed_loop_buggy": "loop: the layer 2 bias update is not W − lr × gradient: the step taken at lr 0.5 is 1 × the "
                       "step at lr 1, where it should be 0.5: it looks like the learning rate is missing",
    "nielsen_network_buggy": "nielsen: layer 2 weight gradient disagrees",
}


def example(module):
    return importlib.import_module(f"examples.{module}").DRIVER


@needs_source_tree
@pytest.mark.parametrize("case_id", ["seed1-xor", "seed2-xor"])
@pytest.mark.parametrize("module", EXAMPLES)
def test_each_adapters_example_agrees(module, case_id):
    driver, case = example(module), BY_ID[case_id]
    checks.check_forward(driver, case, "float64")
    checks.check_gradients(driver, case, "float64")
    checks.check_trajectory(driver, case, "float64", epochs=1000)


@needs_source_tree
@pytest.mark.parametrize("module", PLANTED)
def test_each_adapters_planted_copy_fails_saying_what_is_wrong(module):
    with pytest.raises(Disagreement) as info:
        checks.check_gradients(example(module), BY_ID["seed1-xor"], "float64")
    assert PLANTED[module] in str(info.value)
    assert "(a crash, not a result)" not in str(info.value)


def minibatch_xor():
    """XOR in mini-batches of 2 (orders from the shared seed): no registered case is sigmoid, half_sse and
    minibatched, which is all the step-function and Nielsen adapters need to show they batch as the reference."""
    case = BY_ID["seed1-xor"]
    return replace(case, id="seed1-xor-minibatch", config=case.config.replace(batch_size=2))


@needs_source_tree
@pytest.mark.parametrize("module", ["seed_loop", "nielsen_network"])
def test_a_minibatching_adapter_follows_the_shared_orders(module):
    checks.check_trajectory(example(module), minibatch_xor(), "float64", epochs=500)


@needs_source_tree
def test_the_nielsen_adapter_tells_a_wrong_update_from_its_backprop(monkeypatch):
    """update_mini_batch forgetting to average over the batch: backprop is right, the step is m times too long."""
    from examples.nielsen_network import Network

    def update_mini_batch(self, mini_batch, eta):
        nabla = [self.backprop(x, y) for x, y in mini_batch]
        self.weights = [w - eta * sum(n[1][l] for n in nabla) for l, w in enumerate(self.weights)]
        self.biases = [b - eta / len(mini_batch) * sum(n[0][l] for n in nabla) for l, b in enumerate(self.biases)]

    monkeypatch.setattr(Network, "update_mini_batch", update_mini_batch)
    with pytest.raises(Disagreement, match="update_mini_batch's step of the layer 1 weight is not −lr × the gradient "
                                           "backprop gives"):
        checks.check_gradients(example("nielsen_network"), BY_ID["seed1-xor"], "float64")


def test_attribute_names_the_class_lacks_are_refused_before_training():
    driver = seed_style(lambda layers: ColumnNet(*layers), name="columns", layout="columns")  # default names: wrong
    with pytest.raises(AdapterError, match=r"columns: ColumnNet has no attribute 'weights_input_hidden', "
                                           r"'weights_hidden_output', 'bias_hidden', 'bias_output' \(its arrays: b1, "
                                           r"b2, w1, w2\); declare its names with weights=\(...\) and biases=\(...\)"):
        driver.run_gradients(*BY_ID["seed2-xor"].inputs("float64")[1:4], BY_ID["seed2-xor"].config)


def test_a_forgotten_layout_is_refused_with_the_shapes_it_expected():
    """The second seed's layout (samples as columns) declared as rows: said before the class trains."""
    driver = seed_style(lambda layers: ColumnNet(*layers), name="columns", weights=("w1", "w2"), biases=("b1", "b2"))
    case = BY_ID["seed2-xor"]
    with pytest.raises(AdapterError, match=r"columns: b1 \(layer 1 bias\) is \(2, 1\) as the class builds it, but "
                                           r"layout 'rows' \(samples as rows: .*\) makes it \(1, 2\); declare "
                                           r"layout='columns'\?"):
        driver.run_gradients(*case.inputs("float64")[1:4], case.config)


@needs_source_tree  # examples/seed_loop.py
def test_a_step_function_declared_in_the_wrong_layout_says_how_it_was_called():
    from examples.seed_loop import forward, step

    driver = step_function(step, name="loop", layout="rows", targets="flat", forward=forward)
    case = BY_ID["seed2-xor"]
    with pytest.raises(AdapterError, match=r"loop: the forward pass \(forward\(\)\) raised ValueError: .*; it was "
                                           r"called with layout 'rows' \(samples as rows: .*\): X \(4, 2\), "
                                           r"w1 \(2, 2\), b1 \(1, 2\), w2 \(2, 1\), b2 \(1, 1\)"):
        driver.run_forward(case.inputs("float64")[1], case.inputs("float64")[2], case.config)


@needs_source_tree  # examples/seed_loop.py
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"params": "b1 w1 b2 w2"}, r"step\(w1, b1, w2, b2, X, d, lr\) takes its parameters as w1 b1 w2 b2, but params= "
                                r"declares b1 w1 b2 w2; declare params='w1 b1 w2 b2'"),
    ({"params": "w1 b1 w2"}, r"must name one weight and one bias for each layer"),
    ({"params": "w1 b1 x2 b2"}, r"'x2' is not a weight or bias name"),
    ({"layout": "cols"}, r"layout must be 'rows' .* or 'columns'"),
])
def test_a_step_function_misdeclared_is_refused_when_wrapped(kwargs, message):
    from examples.seed_loop import step

    with pytest.raises(ValueError, match=message):
        step_function(step, **kwargs)


def test_a_step_function_taking_other_arguments_is_refused():
    def step(w1, b1, w2, b2, X, d):  # no learning rate
        pass

    with pytest.raises(AdapterError, match=r"step\(w1, b1, w2, b2, X, d\) takes 6 arguments; the adapter calls it "
                                           r"with 7: w1 b1 w2 b2 X y lr"):
        step_function(step)


@needs_source_tree  # examples/seed_loop.py
def test_a_step_function_returning_new_arrays_agrees_and_one_without_forward_skips_that_check():
    from examples.seed_loop import step

    def pure(w1, b1, w2, b2, X, d, lr):
        w1, b1, w2, b2 = (a.copy() for a in (w1, b1, w2, b2))
        step(w1, b1, w2, b2, X, d, lr)
        return w1, b1, w2, b2

    driver, case = step_function(pure, name="pure", targets="flat"), BY_ID["seed2-xor"]
    checks.check_gradients(driver, case, "float64")
    checks.check_trajectory(driver, case, "float64", epochs=500)
    with pytest.raises(Unsupported, match="no forward function declared"):
        checks.check_forward(driver, case, "float64")


NINJA = {"ninja_torch": "torch", "ninja_jax": "jax"}


@needs_source_tree
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("module", NINJA)
def test_manual_backprop_in_framework_tensors_agrees(module, dtype):
    """makemore's "backprop ninja" style: gradients by hand in torch or JAX tensors, checked as they are (float32 by
    the float32 rule: within a multiple of the NumPy float32 reference's own rounding)."""
    pytest.importorskip(NINJA[module])
    driver, case = example(module), BY_ID["square-tanh-softmax-ce-minibatch"]
    checks.check_forward(driver, case, dtype)
    checks.check_gradients(driver, case, dtype)
    checks.check_trajectory(driver, case, dtype, epochs=case.short_epochs)


@needs_source_tree
def test_a_gradient_function_trains_with_any_registered_optimizer():
    """Its gradients go through the reference's own Adam: the Adam moments along the run are compared too."""
    pytest.importorskip("torch")
    case = BY_ID["square-tanh-softmax-ce-minibatch"]
    adam = replace(case, id="square-tanh-softmax-ce-adam", config=case.config.replace(optimizer="adam", lr=0.01))
    checks.check_trajectory(example("ninja_torch"), adam, "float64", epochs=60)


@needs_source_tree
def test_manual_backprop_in_tensors_with_a_planted_mistake_is_named():
    pytest.importorskip("torch")
    with pytest.raises(Disagreement) as info:
        checks.check_gradients(example("ninja_torch_buggy"), BY_ID["square-tanh-softmax-ce-minibatch"], "float64")
    text = str(info.value)
    assert "ninja: layer 3 bias gradient disagrees" in text and "weight gradient" not in text, text


# -- the shapes people give biases: (out,) as makemore and CS231n do, or 2-D as the seeds do ----------------------

def _numpy_grads(flat_out):
    """A correct gradient function in NumPy (tanh hidden layers, softmax cross-entropy), samples as rows, taking its
    biases in whatever shape it is handed and returning db as (out,) when flat_out, else as b came."""
    def grads(params, X, Y):
        hs = [X]
        for W, b in params[:-1]:
            hs.append(np.tanh(hs[-1] @ W + b))
        W, b = params[-1]
        z = hs[-1] @ W + b
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        n = len(X)
        d = (np.exp(log_p) - Y) / n
        out = []
        for l in reversed(range(len(params))):
            W, b = params[l]
            db = d.sum(axis=0) if flat_out else d.sum(axis=0).reshape(b.shape)
            out.append((hs[l].T @ d, db))
            if l:
                d = (d @ W.T) * (1 - hs[l] ** 2)
        return -(Y * log_p).sum() / n, out[::-1]

    return grads


def test_flat_biases_declared_agree():
    """makemore's convention, b of shape (out,): declared with bias_shape='flat', checked as any other."""
    driver = gradient_function(_numpy_grads(flat_out=True), name="flat", bias_shape="flat",
                               activations=("tanh", "softmax"), losses=("softmax_cross_entropy",))
    case = BY_ID["square-tanh-softmax-ce-minibatch"]
    checks.check_gradients(driver, case, "float64")
    checks.check_trajectory(driver, case, "float64", epochs=10)


def test_flat_bias_gradients_undeclared_are_named_with_the_declaration_that_fits():
    """Handed (1, out) biases, a function returning db as (out,) is not reshaped silently: the message says its
    values agree once reshaped and how to declare it; a wrong db of the same shape says the values differ too."""
    case = BY_ID["square-tanh-softmax-ce-minibatch"]
    driver = gradient_function(_numpy_grads(flat_out=True), name="undeclared", activations=("tanh", "softmax"),
                               losses=("softmax_cross_entropy",))
    with pytest.raises(AdapterError, match=r"undeclared: db1 \(layer 1 bias\) is \(6,\) as the gradient function "
                                           r"returns it, but layout 'rows' .* makes it \(1, 6\): its values agree with "
                                           r"the reference's once reshaped to \(1, 6\); declare bias_shape='flat'"):
        checks.check_gradients(driver, case, "float64")

    def wrong(params, X, Y):
        loss, grads = _numpy_grads(flat_out=True)(params, X, Y)
        return loss, [(dW, 2 * db) for dW, db in grads]

    driver = gradient_function(wrong, name="wrong", activations=("tanh", "softmax"), losses=("softmax_cross_entropy",))
    with pytest.raises(AdapterError, match=r"its values differ from the reference's even reshaped to \(1, 6\)"):
        checks.check_gradients(driver, case, "float64")


def test_a_crash_in_a_gradient_function_names_it_and_the_shapes_it_was_handed():
    def grads(params, X, Y):
        return params[0][0] @ X  # the product the wrong way round

    driver = gradient_function(grads, name="crash", activations=("tanh", "softmax"), losses=("softmax_cross_entropy",))
    with pytest.raises(Disagreement, match=r"crash: the gradient function grads\(\) raised ValueError: .*; it was "
                                           r"called with layout 'rows' .*, bias_shape '2d': X \(30, 5\), y \(30, 6\), "
                                           r"params \[W1 \(5, 6\), b1 \(1, 6\), W2 \(6, 6\)"):
        checks.check_gradients(driver, BY_ID["square-tanh-softmax-ce-minibatch"], "float64")


class FlatBiasNet:
    """The seeds' class, samples as rows, its biases built 1-D, (out,): the adapter takes the class's own shapes."""

    def __init__(self, n_in, n_hidden, n_out):
        self.weights_input_hidden, self.bias_hidden = np.zeros((n_in, n_hidden)), np.zeros(n_hidden)
        self.weights_hidden_output, self.bias_output = np.zeros((n_hidden, n_out)), np.zeros(n_out)

    def feedforward(self, X):
        self.h = 1 / (1 + np.exp(-(X @ self.weights_input_hidden + self.bias_hidden)))
        self.out = 1 / (1 + np.exp(-(self.h @ self.weights_hidden_output + self.bias_output)))
        return self.out

    def backward(self, X, y, lr):
        d_out = (y - self.out) * self.out * (1 - self.out)
        d_h = (d_out @ self.weights_hidden_output.T) * self.h * (1 - self.h)
        self.weights_hidden_output += lr * self.h.T @ d_out
        self.bias_output += lr * d_out.sum(axis=0)
        self.weights_input_hidden += lr * X.T @ d_h
        self.bias_hidden += lr * d_h.sum(axis=0)


def test_a_class_building_flat_biases_is_checked_in_its_own_shapes():
    driver, case = seed_style(lambda layers: FlatBiasNet(*layers), name="flat-class"), BY_ID["seed1-xor"]
    checks.check_forward(driver, case, "float64")
    checks.check_gradients(driver, case, "float64")
    checks.check_trajectory(driver, case, "float64", epochs=500)
    declared = seed_style(lambda layers: FlatBiasNet(*layers), name="declared", bias_shape="2d")
    with pytest.raises(AdapterError, match=r"declared: bias_hidden \(layer 1 bias\) is \(4,\) as the class builds it, "
                                           r"but .* makes it \(1, 4\); declare bias_shape='flat'"):
        checks.check_gradients(declared, case, "float64")


# -- gradients by leaf name: makemore part 4's model, batch norm and its running statistics included ----------------

def _makemore(module="makemore_bn_torch"):
    pytest.importorskip("torch")
    return example(module)


def _names_case(tmp_path):
    """makemore part 4's model on a text of 27 characters, as names.txt has: the vocabulary the generated text lacks."""
    from crosscheck.reference import Config
    from crosscheck.suite.cases import Case

    rng = np.random.default_rng(1)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    (tmp_path / "names.txt").write_text(".".join("".join(rng.choice(letters, rng.integers(3, 9))) for _ in range(80))
                                        + "." + "".join(letters))
    config = Config(model=(("embedding", 27, 10), "flatten", ("dense", 30, 32), ("batchnorm", 32), "tanh",
                           ("dense", 32, 27), "softmax"), input_shape=(3,), loss="softmax_cross_entropy",
                    init="glorot_uniform", lr=0.1, epochs=6, batch_size=32, seed=3)
    return Case("makemore-names", config, samples=160, data=str(tmp_path / "names.txt"))


@needs_source_tree
def test_makemore_part_4_by_leaf_name_agrees_batch_norm_and_all(tmp_path):
    """Its gradients by name, its running statistics returned by name, integer labels, (1, D) bngain and bnbias; the
    network in evaluation mode too (its forward takes training=False)."""
    driver, case = _makemore(), _names_case(tmp_path)
    checks.check_forward(driver, case, "float64")
    checks.check_gradients(driver, case, "float64")
    checks.check_trajectory(driver, case, "float64")


@needs_source_tree
def test_makemore_part_4_planted_mistake_is_diagnosed(tmp_path):
    from crosscheck.diagnosis.diagnose import diagnose

    with pytest.raises(Disagreement, match="ninja: layer 1 weight gradient disagrees"):
        checks.check_gradients(_makemore("makemore_bn_torch_buggy"), _names_case(tmp_path), "float64")
    found = diagnose(_makemore("makemore_bn_torch_buggy"), _names_case(tmp_path))
    assert [m[0] for m in found.matches] == ["embedding-repeated-ids-overwritten"], found.text()


@needs_source_tree
def test_the_notebooks_batch_norm_declared_agrees_and_undeclared_is_named_as_conventions(tmp_path):
    """makemore part 4 as its notebook writes batch norm (examples/makemore_notebook_torch.py): Bessel's 1/(n-1) in the
    batch variance, differentiated consistently, and running statistics moved by 0.001. Declared (as the example
    does), it agrees, evaluation mode and all; undeclared, it disagrees from the network's output, and the diagnosis
    names both conventions and their declaration, no mistake."""
    from dataclasses import replace

    from crosscheck.diagnosis.diagnose import diagnose

    driver, case = _makemore("makemore_notebook_torch"), _names_case(tmp_path)
    checks.check_gradients(driver, case, "float64")
    checks.check_trajectory(driver, case, "float64")
    undeclared = replace(driver, conventions=())
    with pytest.raises(Disagreement, match="ninja-notebook: network output disagrees"):
        checks.check_forward(undeclared, case, "float64")
    found = diagnose(undeclared, case)
    assert [dict(c) for c in found.conventions] == [{"batchnorm.variance": "unbiased",
                                                    "batchnorm.running_average": "keep:0.999"}], found.text()
    assert "--convention batchnorm.variance=unbiased --convention batchnorm.running_average=keep:0.999" in \
        found.text() and not found.matches, found.text()


@needs_source_tree
def test_the_notebooks_planted_copy_is_named_under_its_conventions(tmp_path):
    from crosscheck.diagnosis.diagnose import diagnose

    driver, case = _makemore("makemore_notebook_torch_buggy"), _names_case(tmp_path)
    with pytest.raises(Disagreement, match="ninja-notebook: layer 1 weight gradient disagrees"):
        checks.check_gradients(driver, case, "float64")
    found = diagnose(driver, case)
    assert [m[0] for m in found.matches] == ["batchnorm-backward-without-statistics"], found.text()


@needs_source_tree
@pytest.mark.parametrize(("change", "message"), [
    (lambda g, s: ({k: v for k, v in g.items() if k != "bngain"}, s), r"returned no gradient for bngain"),
    (lambda g, s: ({**g, "extra": g["b1"]}, s), r"gradients for extra, which params does not name"),
    (lambda g, s: ({**g, "b1": g["b1"][None, :]}, s), r"gradient of b1 \(layer 2 bias\) is \(1, 32\), but it was "
                                                        r"handed as \(32,\); the same values reshaped\? declare "
                                                        r"row_vectors='b1 bnbias bngain bnmean bnvar'"),
    (lambda g, s: (g, {"bnmean": s["bnmean"]}), r"returned no new value of bnvar"),
])
def test_a_named_gradient_function_that_returns_the_wrong_leaves_is_told_which(tmp_path, change, message):
    from crosscheck.adapters import named_gradients

    _makemore()
    correct = importlib.import_module("examples.makemore_bn_torch")

    def grads(p, X, Y):
        loss, g, s = correct.grads(p, X, Y)
        return (loss, *change(g, s))

    driver = named_gradients(grads, params=correct.NAMES, buffers="bnmean bnvar",
                             row_vectors="bngain bnbias bnmean bnvar", labels="index", framework="torch",
                             name="named", kinds=("embedding", "flatten", "batchnorm"), activations=("tanh", "softmax"))
    with pytest.raises(AdapterError, match=message):
        checks.check_gradients(driver, _names_case(tmp_path), "float64")


def test_a_named_gradient_function_for_another_model_is_skipped_saying_why():
    from crosscheck.adapters import named_gradients

    driver = named_gradients(lambda p, X, y: None, params="W1 b1 W2 b2", activations=("tanh", "softmax"))
    with pytest.raises(Unsupported, match=r"it names 4 parameters \(W1 b1 W2 b2\) and 0 running statistics, the model "
                                          r"has 6 \(layer 1 weight, layer 1 bias, layer 2 weight"):
        checks.check_gradients(driver, BY_ID["square-tanh-softmax-ce-minibatch"], "float64")


@needs_source_tree
def test_gradients_by_leaf_name_in_jax_arrays_agree():
    """The JAX example's maths, its leaves handed and returned by name (b1, b2, b3 as (1, out) row vectors)."""
    pytest.importorskip("jax")
    from crosscheck.adapters import named_gradients

    ninja = importlib.import_module("examples.ninja_jax")
    names = "W1 b1 W2 b2 W3 b3".split()

    def pairs(p):
        return [(p[f"W{l}"], p[f"b{l}"]) for l in (1, 2, 3)]

    def grads(p, X, Y):
        loss, g = ninja.grads(pairs(p), X, Y)
        return loss, dict(zip(names, (a for pair in g for a in pair)))

    driver = named_gradients(grads, params=names, row_vectors="b1 b2 b3", framework="jax", name="named-jax",
                             forward=lambda p, X: ninja.forward(pairs(p), X), activations=("tanh", "softmax"))
    case = BY_ID["square-tanh-softmax-ce-minibatch"]
    checks.check_forward(driver, case, "float64")
    checks.check_gradients(driver, case, "float64")
    checks.check_trajectory(driver, case, "float64", epochs=10)


def test_mixed_precision_is_declared_not_assumed():
    """A plug-in declaring float32 runs is not thereby declaring mixed precision (the loss scale, the master weights):
    a mixed case is skipped, saying so, rather than trained in float32 and blamed."""
    from crosscheck.suite.cases import MIXED_CASES

    driver = gradient_function(_numpy_grads(flat_out=False), name="f32", dtypes=("float32",),
                               activations=("tanh", "softmax"), losses=("softmax_cross_entropy",))
    case = next(c for c in MIXED_CASES if c.config.loss == "softmax_cross_entropy" and c.config.hidden == "tanh"
                and c.config.compute == "bfloat16" and len(c.config.layers) == 4)
    with pytest.raises(Unsupported, match="no mixed precision: not float32 computed in bfloat16"):
        checks.check_gradients(driver, case, "float32")


def test_a_crash_in_a_seed_style_class_names_its_method():
    class Broken(FlatBiasNet):
        def backward(self, X, y, lr):
            raise RuntimeError("not written yet")

    driver = seed_style(lambda layers: Broken(*layers), name="broken")
    with pytest.raises(Disagreement, match=r"broken: the training step \(feedforward\(\) then backward\(\)\) raised "
                                           r"RuntimeError: not written yet; it was called with layout 'rows'"):
        checks.check_gradients(driver, BY_ID["seed1-xor"], "float64")


@needs_source_tree
def test_nielsens_network2_agrees_and_its_planted_bias_decay_is_named():
    """network2.py's cross-entropy cost (its output error a - y: no missing derivative) and L2 on the weights alone,
    read as bce and weight decay with decay_biases=False; the planted copy that shrinks the biases too is named."""
    from crosscheck.diagnosis.diagnose import diagnose

    case = PLUGIN_BY_ID["nielsen2-bce-l2"]
    driver = example("nielsen_network2")
    checks.check_gradients(driver, case, "float64")
    checks.check_trajectory(driver, case, "float64")
    buggy = example("nielsen_network2_buggy")
    with pytest.raises(Disagreement, match="nielsen2: first parts after step"):
        checks.check_trajectory(buggy, case, "float64")
    assert [m[0] for m in diagnose(buggy, case).matches] == ["weight-decay-on-excluded-biases"]
    with pytest.raises(Unsupported, match="weight decay on the weights alone"):
        driver.check_support(case.config.replace(decay_biases=True))


@needs_source_tree  # examples/gpt2_block_numpy.py
def test_a_gpt2_block_by_hand_with_llm_cs_tensors_agrees_and_its_planted_copy_is_named():
    """GPT-2's block written by hand with llm.c's sixteen tensors (attention biases, the tied embedding, a vocabulary
    of 10 padded to 16 rows) against the reference's biased_attention and vocabulary kinds; its planted copy gives the
    tied matrix one of its two gradients and is named so."""
    from crosscheck.diagnosis.diagnose import diagnose

    case = BY_ID["gpt2-block-biased-attention-adam"]
    checks.check_gradients(example("gpt2_block_numpy"), case, "float64")
    checks.check_trajectory(example("gpt2_block_numpy"), case, "float64")
    buggy = example("gpt2_block_numpy_buggy")
    with pytest.raises(Disagreement, match="layer 1 weight gradient disagrees"):
        checks.check_gradients(buggy, case, "float64")
    found = diagnose(buggy, case)
    assert [m[0] for m in found.matches] == ["tied-weight-one-gradient"], found.text()
