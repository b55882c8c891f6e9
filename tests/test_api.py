"""crosscheck.check(): the report as a function, for a notebook or a user's own test, and the HTML it shows.

The user's code here is examples/student_nn.py (a seed-style class) and its planted copy; from an installed wheel, the
same runs from a folder of the user's own (tools/installed_suite.py)."""

import json

import pytest

import crosscheck

from .source import load_example_module, needs_source_tree

RUN = {"layers": (2, 4, 1), "init": "standard_normal", "epochs": 400, "no_progress": True}


@pytest.fixture(scope="module")
def student():
    return load_example_module("student_nn").DRIVER


@pytest.fixture(scope="module")
def planted():
    return load_example_module("student_nn_buggy").DRIVER


@needs_source_tree
def test_a_correct_implementation_agrees_and_shows_its_table_and_plot(student):
    report = crosscheck.check(student, **RUN)
    assert report.agrees and report.status == 0 and report.diagnosis == {}, report.text
    assert [row.backend for row in report.rows] == ["numpy", "student"]
    page = report._repr_html_()
    assert "<table>" in page and "<td>student</td>" in page and "AGREE" in page
    pytest.importorskip("matplotlib")
    assert "data:image/png;base64," in page  # the plot, inline


@needs_source_tree
def test_a_planted_mistake_is_diagnosed_and_assert_agrees_raises_with_it(student, planted):
    report = crosscheck.check(planted, **RUN)
    assert not report.agrees and report.status == 1
    assert "buggy" in report.diagnosis and "layer 1 weight gradient disagrees" in report.findings["buggy"][0]
    with pytest.raises(AssertionError, match="DISAGREE: buggy"):
        report.assert_agrees()
    assert "diagnosis of buggy" in report._repr_html_()


@needs_source_tree
def test_check_runs_what_the_command_line_runs(student, tmp_path):
    """The keywords are the command line's options: the same run gives the same JSON, the timings aside."""
    from crosscheck.report import run

    report = crosscheck.check(student, **RUN)
    status = run.main(["--implementation", "student=examples.student_nn:DRIVER", "--backends", "student",
                       "--layers", "2,4,1", "--init", "standard_normal", "--epochs", "400", "--no-progress",
                       "--plot", "", "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html")])
    written = json.loads((tmp_path / "r.json").read_text())
    timings = ("wall_s", "epochs_per_s")
    for data in (written, report.data):
        for row in data["backends"].values():
            for key in timings:
                row.pop(key)
    assert status == report.status == 0 and written == json.loads(json.dumps(report.data))
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!doctype html>") and "<table>" in page and "AGREE: student" in page


@pytest.mark.parametrize(("options", "error", "says"), [
    ({"layers": "2,x,1"}, ValueError, "--layers must be comma-separated integers"),
    ({"optimizer": "adamw2"}, ValueError, "invalid choice: 'adamw2'"),
    ({"layer": (2, 4, 1)}, TypeError, r"unknown option\(s\) \['layer'\]"),
])
def test_a_bad_option_is_refused_before_anything_trains(options, error, says):
    with pytest.raises(error, match=says):
        crosscheck.check(**options)
