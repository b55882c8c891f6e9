"""The diagnosis (crosscheck/diagnosis/diagnose.py): where a disagreeing implementation's first step parts from the
reference's, and which known mistake it looks like, in the test message and in the report."""

import importlib
import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from crosscheck import reference
from crosscheck.diagnosis import mutations
from crosscheck.diagnosis.diagnose import candidates, diagnose
from crosscheck.report import run as report
from crosscheck.suite.cases import BY_ID

from .source import IN_SOURCE_TREE, ROOT, needs_source_tree
from .test_plugins import FlatBiasNet

if IN_SOURCE_TREE and str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # examples/


@pytest.fixture(scope="module")
def copy_of_the_reference():
    """A plug-in whose code is a copy of the NumPy reference, loaded apart as the package `refcopy`: a catalogue
    mistake planted in it is an implementation's mistake, while the reference the diagnosis plants into stays clean."""
    root = Path(reference.__file__).parent
    spec = importlib.util.spec_from_file_location("refcopy", root / "__init__.py",
                                                  submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["refcopy"] = module
    spec.loader.exec_module(module)
    yield module
    for name in [n for n in sys.modules if n == "refcopy" or n.startswith("refcopy.")]:
        del sys.modules[name]


# Each known mistake with a NumPy spelling: a tenth of them by default (taking turns: 0.8 s each), all with --run-slow.
MISTAKES = [pytest.param(bug, id=bug.id, marks=[] if i % 10 == 0 else [
    pytest.mark.slow(reason="the other known mistakes diagnosed in a plug-in (a tenth by default)")])
            for i, bug in enumerate(candidates())]


@pytest.mark.parametrize("bug", MISTAKES)
def test_every_known_mistake_planted_in_a_plugin_is_diagnosed_as_itself(copy_of_the_reference, bug):
    case = BY_ID[next(iter(bug.cases))]
    # on a data-parallel case, the copy's simulated shards: the implementation whose collectives hold the mistake
    copy = replace(copy_of_the_reference.SHARDS if case.config.parallel else copy_of_the_reference.DRIVER, name="copy")
    with mutations.planted(f"refcopy.{bug.module}", *bug.spelled("numpy")), np.errstate(all="ignore"):
        found = diagnose(copy, case)
    assert found.stage is not None, found.text()
    assert [bug_id for bug_id, _ in found.matches] == [bug.id], found.text()
    assert f"it looks like: {bug.what} [{bug.id}]" in found.text()


@pytest.mark.parametrize("case_id", ["seed1-xor", *(pytest.param(c, marks=pytest.mark.slow(
    reason="the unreached mistakes planted on the larger models (XOR's by default)"))
    for c in ("cnn-maxpool-avgpool-adam-minibatch", "gpt-block-adamw-minibatch"))])
def test_a_mistake_left_unplanted_as_unreached_changes_nothing_the_diagnosis_sees(case_id):
    """The diagnosis plants only mistakes whose line lies in a function the case's first step calls (or outside every
    function); each it leaves out, planted anyway, gives exactly the clean reference's values, so could never have
    matched. And some are left out (on XOR most of them: no convolution, attention or norm is called)."""
    from crosscheck.diagnosis.diagnose import _acting, _planted_observations
    from crosscheck.diagnosis.observe import observe

    case, tried = BY_ID[case_id], candidates()
    left_out = [bug for bug in tried if bug not in _acting(tried, case, observe)]
    assert len(left_out) >= 5, [bug.id for bug in left_out]
    clean = observe(reference.DRIVER, case)
    for bug in left_out:
        planted = _planted_observations(bug, case, observe)
        if planted is None:  # the line is not in this reference
            continue
        for name in ("output", "layers", "loss", "grads", "after", "problems"):
            assert _same(getattr(planted, name), getattr(clean, name)), f"{bug.id} changes the {name}"


def _same(a, b):
    """a and b bit for bit (lists of arrays, arrays, dicts, None)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if a is None or b is None or isinstance(a, dict):
        return a == b
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def test_there_are_known_mistakes_to_match_against():
    assert len(candidates()) >= 45


def test_the_unmutated_copy_is_not_diagnosed_with_anything(copy_of_the_reference):
    found = diagnose(replace(copy_of_the_reference.DRIVER, name="copy"), BY_ID["seed1-xor"])
    assert found.stage is None and found.matches == [], found.text()
    assert "so does the run" in found.text()


def test_a_run_the_caller_saw_fail_is_never_said_to_agree(copy_of_the_reference):
    """The report's failing check of the whole run stands: a first step that agrees leaves it to the run, from the
    epoch the check found, and the diagnosis does not check the run again and say it agrees."""
    found = diagnose(replace(copy_of_the_reference.DRIVER, name="copy"), BY_ID["seed1-xor"], run_failed=True,
                     first_epoch=120)
    assert found.stage == "trajectory" and "the run parts later, from epoch 120" in found.text(), found.text()
    assert "so does" not in found.text()


def test_values_never_received_are_not_counted_as_agreeing():
    """An implementation that answers no float64 problem (a float32-only program) gives no value of the first step
    in float64: the diagnosis says so, names no stage as agreeing and plants nothing to match against nothing."""
    only32 = replace(reference.DRIVER, name="only32", reference=False,
                     supports=lambda config: "float32 only" if config.dtype == "float64" else None)
    found = diagnose(only32, BY_ID["seed1-xor"])
    assert found.stage == "unobserved" and found.matches == [] and found.candidates == 0, found.text()
    assert "gave no value of the first step in float64" in found.text()
    assert "agrees" not in found.text()


def example(module):
    return importlib.import_module(f"examples.{module}").DRIVER


# Each adapter's worked example with its planted mistake (examples/*_buggy.py): where it parts, and what it looks like.
# The CS231n copy is diagnosed in tests/test_cs231n.py.
PLANTED_EXAMPLES = [
    ("ninja_torch_buggy", "square-tanh-softmax-ce-minibatch", "gradients",
     "going back from the output, the gradients first differ at layer 3 (layer 1 bias gradient, layer 2 bias gradient, "
     "layer 3 bias gradient differ; layer 1 weight gradient, layer 2 weight gradient, layer 3 weight gradient agree)",
     "it looks like: the bias gradient averaged over the batch where the loss sums [bias-gradient-averaged]"),
    ("seed_loop_buggy", "seed1-xor", "update",
     "where: loop: the layer 2 bias update is not W − lr × gradient",
     "it looks like: the learning rate is missing (the step read back at two learning rates)"),
    ("student_nn_buggy", "seed1-xor", "gradients",
     "the gradients first differ at layer 1 (layer 1 weight gradient, layer 1 bias gradient differ; layer 2 weight "
     "gradient, layer 2 bias gradient agree)",
     "it looks like: sigmoid'(z) computed from z where the output a is meant, in the sigmoid after layer 1 alone "
     "(model[1]) [sigmoid-derivative-from-z]"),
    ("nielsen_network_buggy", "seed1-xor", "gradients",
     "the gradients first differ at layer 2",
     "in the output sigmoid alone (model[3]) [sigmoid-derivative-at-a]"),
]


@needs_source_tree
@pytest.mark.parametrize(("module", "case_id", "stage", "where", "looks"), PLANTED_EXAMPLES,
                         ids=[row[0] for row in PLANTED_EXAMPLES])
def test_the_examples_planted_mistakes_are_diagnosed(module, case_id, stage, where, looks):
    """Each example's one planted mistake, named: the slips in one layer alone (the student's hidden slope taken from
    z, Nielsen's BP1 slope taken at a) as the catalogue's mistake planted in that layer alone, the missing learning
    rate by the update-rule check."""
    if module.startswith("ninja"):
        pytest.importorskip("torch")
    found = diagnose(example(module), BY_ID[case_id])
    assert found.stage == stage and where in found.text() and looks in found.text(), found.text()
    assert len(found.matches) == 1, found.text()


@pytest.mark.parametrize(("old", "new", "parts_at"), [
    ("return 1.0 / (1.0 + np.exp(-z))", "return 1.0 / (1.0 - np.exp(-z))", "the sigmoid after layer 1, model[1]"),
    ("z = dot(x, W) + b", "z = dot(x, W) + b + 1.0", "layer 1 (dense), model[0]"),
])
def test_a_forward_mistake_is_located_at_its_layer(copy_of_the_reference, old, new, parts_at):
    """Where the implementation gives each layer's output (a backend's forward returns its caches), the diagnosis
    names the first layer whose output differs, not only the network's output."""
    module = "refcopy.activations" if "exp" in old else "refcopy.layers.dense"
    with mutations.planted(module, old, new), np.errstate(all="ignore"):
        found = diagnose(replace(copy_of_the_reference.DRIVER, name="copy"), BY_ID["seed1-xor"])
    assert found.stage == "output", found.text()
    assert f"the forward pass parts at {parts_at}: its output differs" in found.text()


def test_a_plugin_that_gives_only_its_output_is_not_located_within_the_forward():
    wrong = replace(reference.DRIVER, name="output-only")
    wrong = replace(wrong, mlp=_OutputOnly())
    found = diagnose(wrong, BY_ID["seed1-xor"])
    assert found.stage == "output", found.text()
    assert "output-only gives only its output, so the layer where it parts is not located" in found.text()


class _OutputOnly:
    """The reference's mlp, its forward giving the output alone (as an adapter's does), 1% too large."""

    def __getattr__(self, name):
        return getattr(reference.mlp, name)

    @staticmethod
    def forward(params, X, config, buffers=None, noise=None):
        z, a = reference.mlp.forward(params, X, config, buffers, noise)[-1]
        return [(z, a * 1.01)]


@needs_source_tree
def test_the_report_diagnoses_a_disagreeing_row(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    from crosscheck import backends

    monkeypatch.setattr(backends, "_plugins", dict(backends._plugins))
    out_json = tmp_path / "r.json"
    status = report.main(["--implementation", "ninja=examples.ninja_torch_buggy:DRIVER", "--backends", "ninja",
                          "--layers", "5,6,6,3", "--hidden", "tanh", "--output", "softmax", "--loss",
                          "softmax_cross_entropy", "--samples", "20", "--epochs", "30", "--no-progress", "--plot", "",
                          "--json", str(out_json)])
    text = capsys.readouterr().out
    assert status == 1, text
    assert "diagnosis of ninja on report (float64, the first step):" in text
    assert "[bias-gradient-averaged]" in text
    assert "[bias-gradient-averaged]" in json.loads(out_json.read_text())["backends"]["ninja"]["diagnosis"]


# -- a diagnosis that says how much ----------------------------------------------------------------------------------

def _scaled_grads(factor):
    """A right gradient function for the tanh/softmax case (the reference's own maths), its gradients times factor."""
    from crosscheck.adapters import gradient_function

    def grads(params, X, Y):
        loss, g = reference.mlp.gradients([(W, b[0]) for W, b in params], X, Y, BY_ID[
            "square-tanh-softmax-ce-minibatch"].config)
        return loss, [(factor * dW, factor * db[None, :]) for dW, db in g]

    return gradient_function(grads, name="scaled", activations=("tanh", "softmax"), losses=("softmax_cross_entropy",))


@pytest.mark.parametrize(("factor", "says"), [
    (30.0, "every gradient is 30 × the reference's, the 30 samples of the step: the gradient is not divided by the "
           "batch size (the loss softmax_cross_entropy summed where it is averaged)"),
    (1 / 30, "every gradient is 0.0333333 × the reference's, 1/30: the gradient is divided by the batch size (30) "
             "twice"),
    (-1.0, "every gradient is -1 × the reference's: the sign is flipped"),
    (2.0, "every gradient is 2 × the reference's: a constant factor"),
])
def test_a_gradient_off_by_a_constant_factor_is_said_with_the_factor_and_what_it_points_to(factor, says):
    found = diagnose(_scaled_grads(factor), BY_ID["square-tanh-softmax-ce-minibatch"])
    assert found.stage == "gradients" and says in found.where, found.text()


def test_a_gradient_not_a_multiple_of_the_reference_is_not_given_a_factor():
    from crosscheck.adapters import gradient_function

    def grads(params, X, Y):
        loss, g = _scaled_grads(1.0).mlp.fn(params, X, Y)
        return loss, [(dW, 2 * db) for dW, db in g]  # the biases alone doubled

    found = diagnose(gradient_function(grads, name="biases", activations=("tanh", "softmax"),
                                       losses=("softmax_cross_entropy",)), BY_ID["square-tanh-softmax-ce-minibatch"])
    assert found.stage == "gradients" and "×" not in found.where, found.text()


class _OrderNet(FlatBiasNet):
    """The seeds' class (test_plugins.py's, biases 1-D), its hidden delta computed from the output weights after they
    were updated: a gradient read after another layer's update."""

    def backward(self, X, y, lr):
        d_out = (y - self.out) * self.out * (1 - self.out)
        self.weights_hidden_output += lr * self.h.T @ d_out
        self.bias_output += lr * d_out.sum(axis=0)
        d_h = (d_out @ self.weights_hidden_output.T) * self.h * (1 - self.h)  # read after the update above
        self.weights_input_hidden += lr * X.T @ d_h
        self.bias_hidden += lr * d_h.sum(axis=0)


def test_a_gradient_read_after_another_layers_update_is_named_as_the_order_of_operations():
    from crosscheck.adapters import seed_style
    from crosscheck.verdict import checks
    from crosscheck.verdict.compare import Disagreement

    driver = seed_style(lambda layers: _OrderNet(*layers), name="order")
    with pytest.raises(Disagreement, match=r"order: the layer 1 weight update is not W − lr × gradient: .* while layer "
                                           r"2 steps in proportion: layer 1's gradient looks read after layer 2's "
                                           r"update .*; compute every gradient before updating any"):
        checks.check_gradients(driver, BY_ID["seed1-xor"], "float64")


DIVERGES = '''
import numpy as np
from crosscheck.adapters import seed_style


class Net:
    def __init__(self, n_in, n_hidden, n_out):
        self.weights_input_hidden, self.bias_hidden = np.zeros((n_in, n_hidden)), np.zeros((1, n_hidden))
        self.weights_hidden_output, self.bias_output = np.zeros((n_hidden, n_out)), np.zeros((1, n_out))

    def feedforward(self, X):
        self.out = 1 / (1 + np.exp(-((X @ self.weights_input_hidden + self.bias_hidden) @ self.weights_hidden_output
                                     + self.bias_output)))
        return self.out

    def backward(self, X, y, lr):
        self.weights_hidden_output *= 1e300  # a step that blows the weights up, whatever the learning rate
        self.bias_output += np.inf


DRIVER = seed_style(lambda layers: Net(*layers), name="diverges")
'''


def test_a_learning_rate_is_suspected_only_where_the_reference_diverges_too(tmp_path, monkeypatch, capsys):
    (tmp_path / "diverges.py").write_text(DIVERGES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    from crosscheck import backends

    monkeypatch.setattr(backends, "_plugins", dict(backends._plugins))
    status = report.main(["--implementation", "diverges=diverges:DRIVER", "--backends", "diverges", "--layers", "2,4,1",
                          "--epochs", "20", "--plot", "", "--no-progress"])
    text = capsys.readouterr().out
    assert status == 1 and "diverges: diverged: the loss or the parameters are not finite from epoch" in text, text
    assert "too large" not in text, text


def test_the_diagnosis_says_how_many_mistakes_it_tried_and_why_not_the_rest():
    from crosscheck.diagnosis.catalogue import BUGS

    text = diagnose(_scaled_grads(2.0), BY_ID["square-tanh-softmax-ce-minibatch"]).text()
    assert (f"tried: {len(candidates())} of the catalogue's {len(BUGS)} mistakes, planted in the NumPy reference one "
            f"at a time; the other {len(BUGS) - len(candidates())} cannot be planted there") in text, text


def test_a_nan_is_matched_only_by_the_same_nan_at_the_same_place():
    """The diagnosis names a mistake that makes NaN (a causal mask hiding a whole row) by the planted reference making
    the same ones at the same places, the finite values within tolerance; anything else is no match."""
    from crosscheck.diagnosis.observe import close

    nan = np.nan
    assert close(np.array([nan, 1.0]), np.array([nan, 1.0]), "forward")
    assert close(np.array([nan, nan]), np.array([nan, nan]), "forward")
    assert not close(np.array([nan, 1.0]), np.array([1.0, nan]), "forward")
    assert not close(np.array([nan, 1.0]), np.array([nan, 2.0]), "forward")
    assert not close(np.array([1.0, 1.0]), np.array([nan, 1.0]), "forward")
    assert not close(np.array([np.inf, 1.0]), np.array([-np.inf, 1.0]), "forward")


def test_a_float32_only_implementation_is_diagnosed_and_voted_in_float32(copy_of_the_reference):
    """A program that runs only in float32 (llm.c's trainer, a CUDA kernel) gives nothing to a float64 diagnosis: it
    is diagnosed in float32, the catalogue's mistakes planted in the NumPy float32 reference and matched within the
    float32 bounds; its slip is located at its layer and named."""
    bug = next(b for b in candidates() if b.id == "gelu-density-term-dropped")
    case_id = "gelu-leaky-hinge-minibatch"
    only32 = replace(copy_of_the_reference.DRIVER, name="only32",
                     supports=lambda config: "float32 only" if config.dtype == "float64" else None)
    with mutations.planted(f"refcopy.{bug.module}", *bug.spelled("numpy")), np.errstate(all="ignore"):
        found = diagnose(only32, BY_ID[case_id], dtype="float32")
    text = found.text()
    assert text.startswith(f"diagnosis of only32 on {case_id} (float32, the first step):"), text
    assert found.stage == "gradients" and "the gradients first differ at layer 1" in text, text
    assert [bug_id for bug_id, _ in found.matches] == [bug.id], text
    assert "planted in the NumPy float32 reference" in text
    if importlib.util.find_spec("torch") is None:  # the vote needs a third voter
        return
    from crosscheck.verdict import checks
    from crosscheck.verdict.compare import Disagreement

    with mutations.planted(f"refcopy.{bug.module}", *bug.spelled("numpy")), np.errstate(all="ignore"):
        with pytest.raises(Disagreement, match=r"vote on the gradients \(float32, \d voters\): .*the odd one out: "
                                               r"only32$"):
            checks.check_gradients(only32, BY_ID[case_id], "float32")
