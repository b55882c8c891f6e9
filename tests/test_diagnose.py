"""The diagnosis (crosscheck/diagnose.py): where a disagreeing implementation's first step parts from the reference's,
and which known mistake it looks like, in the test message and in the report."""

import importlib
import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import reference
from crosscheck import mutations, report
from crosscheck.cases import BY_ID
from crosscheck.diagnose import candidates, diagnose

from .source import IN_SOURCE_TREE, ROOT, needs_source_tree

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
    yield replace(module.DRIVER, name="copy")
    for name in [n for n in sys.modules if n == "refcopy" or n.startswith("refcopy.")]:
        del sys.modules[name]


# Each known mistake with a NumPy spelling: a fifth of them by default (taking turns), all with --run-slow.
MISTAKES = [pytest.param(bug, id=bug.id, marks=[] if i % 5 == 0 else [pytest.mark.slow])
            for i, bug in enumerate(candidates())]


@pytest.mark.parametrize("bug", MISTAKES)
def test_every_known_mistake_planted_in_a_plugin_is_diagnosed_as_itself(copy_of_the_reference, bug):
    case = BY_ID[next(iter(bug.cases))]
    with mutations.planted(f"refcopy.{bug.module}", *bug.spelled("numpy")), np.errstate(all="ignore"):
        found = diagnose(copy_of_the_reference, case)
    assert found.stage is not None, found.text()
    assert [bug_id for bug_id, _ in found.matches] == [bug.id], found.text()
    assert f"it looks like: {bug.what} [{bug.id}]" in found.text()


def test_there_are_known_mistakes_to_match_against():
    assert len(candidates()) >= 45


def test_the_unmutated_copy_is_not_diagnosed_with_anything(copy_of_the_reference):
    found = diagnose(copy_of_the_reference, BY_ID["seed1-xor"])
    assert found.stage is None and found.matches == [], found.text()
    assert "so does the whole run" in found.text()


def example(module):
    return importlib.import_module(f"examples.{module}").DRIVER


@needs_source_tree
@pytest.mark.parametrize(("module", "case_id", "stage", "where", "looks"), [
    ("ninja_torch_buggy", "square-tanh-softmax-ce-minibatch", "gradients",
     "going back from the output, the gradients first differ at layer 3 (layer 1 bias gradient, layer 2 bias gradient, "
     "layer 3 bias gradient differ; layer 1 weight gradient, layer 2 weight gradient, layer 3 weight gradient agree)",
     "it looks like: the bias gradient averaged over the batch where the loss sums [bias-gradient-averaged]"),
    ("seed_loop_buggy", "seed1-xor", "update",
     "the gradients agree; the update does not: loop: the layer 2 bias update is not W − lr × gradient",
     "it looks like: none of the"),
    ("student_nn_buggy", "seed1-xor", "gradients",
     "the gradients first differ at layer 1 (layer 1 weight gradient, layer 1 bias gradient differ; layer 2 weight "
     "gradient, layer 2 bias gradient agree)", "none of the"),
])
def test_the_examples_planted_mistakes_are_located(module, case_id, stage, where, looks):
    """The sigmoid slope taken from z in the hidden layer alone (student) is no catalogue mistake, which plants it in
    every sigmoid: the diagnosis says where, and that nothing known matches, rather than guessing."""
    if module.startswith("ninja"):
        pytest.importorskip("torch")
    found = diagnose(example(module), BY_ID[case_id])
    assert found.stage == stage and where in found.text() and looks in found.text(), found.text()


@needs_source_tree
def test_the_report_diagnoses_a_disagreeing_row(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import backends

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
