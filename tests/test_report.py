"""The main job's command: its table, verdict, exit status, JSON and picture."""

import json
import re
import sys

import pytest

from crosscheck import backends
from crosscheck.diagnosis.catalogue import BY_ID as BUGS
from crosscheck.report import run as report

from .source import needs_source_tree

SHORT = ["--epochs", "300", "--checkpoints", "3", "--no-progress"]


def test_report_agrees_and_writes_json_and_png(tmp_path, capsys):
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    status = report.main([*SHORT, "--backends", "numpy", "--json", str(out_json), "--plot", str(out_png),
                          "--log-every", "100"])
    text = capsys.readouterr().out
    assert status == 0
    assert "NOT CHECKED: only the NumPy reference ran, so nothing was compared with it" in text
    assert "2-2-1 sigmoid/sigmoid, loss half_sse, init uniform_pm1, lr 0.1, 300 epochs" in text
    assert [line.split()[0] for line in text.splitlines() if line[:1].isdigit()] == ["0", "100", "200"]
    data = json.loads(out_json.read_text())
    assert data["agree"] is False and data["verdict"].startswith("NOT CHECKED") and data["config"]["epochs"] == 300
    assert data["backends"]["numpy"]["final_loss"] > 0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def supported(driver, argv):
    """argv, after a skip (through Unsupported) where driver declares the configuration they give unsupported."""
    args, case, _ = report.parse_args(argv)
    driver.check_support(case.inputs(args.dtype)[0])
    return argv


def test_report_covers_every_backend(driver, capsys):
    status = report.main(supported(driver, [*SHORT, "--backends", driver.name, "--plot", ""]))
    text = capsys.readouterr().out
    if driver.name == backends.REFERENCE:  # the reference alone: nothing compared with it
        assert status == 0 and "\nNOT CHECKED: only the NumPy reference ran" in text, text
        return
    assert status == 0, text
    assert f"\n{driver.name} " in text and f"\nAGREE: {driver.name} matches the NumPy reference" in text, text


@pytest.mark.frameworks
def test_report_exits_1_and_names_the_culprit(driver, mutate, capsys):
    BUGS["sigmoid-derivative-from-z"].plant(mutate, driver.name)
    status = report.main([*SHORT, "--backends", driver.name, "--plot", ""])
    text = capsys.readouterr().out
    assert status == 1
    assert f"DISAGREE: {driver.name} did not match" in text
    assert f"{driver.name}: layer 1 weight gradient disagrees" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["--layers", "2,x,1"], "comma-separated integers"),
    (["--layers", "3,4,1"], "XOR needs 2 inputs and 1 output"),
    (["--lr", "-1"], "lr must be a positive finite number"),
    (["--backends", "numpy,mxnet"], "unknown backend"),
    (["--hidden", "swish"], "invalid choice"),
    (["--optimizer", "lbfgs"], "invalid choice"),
    (["--optimizer", "adam", "--betas", "0.9"], "betas must be a pair"),
    (["--betas", "a,b"], "--betas must be two comma-separated numbers"),
    (["--optimizer", "momentum", "--momentum", "1.5"], "momentum must be a number in [0, 1)"),
    (["--momentum", "0.5"], "sgd does not read momentum (it reads lr); got momentum=0.5"),
])
def test_bad_arguments_exit_2_with_the_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        report.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_synthetic_data_and_minibatches(capsys):
    status = report.main(["--layers", "3,5,2", "--hidden", "tanh", "--output", "identity", "--loss", "mse",
                          "--samples", "20", "--batch-size", "6", "--dtype", "float32", "--backends", "numpy",
                          *SHORT, "--plot", ""])
    assert status == 0, capsys.readouterr().out


@pytest.mark.parametrize("strict", [False, True])
def test_missing_backend_is_reported_and_fails_where_named_or_in_strict_mode(monkeypatch, capsys, strict):
    """A backend whose framework is missing: named alone (--backends), the run compared nothing the user asked for
    and fails; unnamed, in a default run beside backends that ran, it fails only in strict mode."""
    monkeypatch.setitem(backends.REGISTRY, "ghost", ("ghost_backend_module", "ghost_backend_module"))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("CROSSCHECK_STRICT", "1" if strict else "0")
    status = report.main([*SHORT, "--backends", "numpy,ghost", "--plot", ""])
    text = capsys.readouterr().out
    assert "backend 'ghost' needs ghost_backend_module" in text and status == 1, text
    monkeypatch.setattr(backends, "names", lambda: ["numpy", "ghost"])
    status = report.main([*SHORT, "--plot", ""])
    text = capsys.readouterr().out
    assert "backend 'ghost' needs ghost_backend_module" in text and status == (1 if strict else 0), text


@pytest.mark.frameworks
def test_report_blames_the_reference_for_its_own_bug(driver, mutate, capsys):
    """The reference's bias gradient averaged: the framework row disagrees, and the vote names the reference."""
    BUGS["bias-gradient-averaged"].plant(mutate, backends.REFERENCE)
    status = report.main([*SHORT, "--backends", driver.name, "--plot", ""])
    text = capsys.readouterr().out
    assert status == 1
    assert "the odd one out: numpy (the reference)" in text, text
    assert "diagnosis of" not in text, text  # the vote's data (Disagreement.blamed) says the framework is not at fault


def test_report_trains_with_a_stateful_optimizer(driver, tmp_path, capsys):
    """`crosscheck --optimizer adam --lr 0.01 --epochs 2000` on the seeds' XOR: every backend agrees, and the JSON
    records the optimizer and, per backend, whether it agreed."""
    out_json = tmp_path / "r.json"
    status = report.main(["--optimizer", "adam", "--lr", "0.01", "--epochs", "2000", "--checkpoints", "10",
                          "--backends", driver.name, "--plot", "", "--no-progress", "--json", str(out_json)])
    text = capsys.readouterr().out
    assert "optimizer adam (betas (0.9, 0.999), eps 1e-08)" in text
    data = json.loads(out_json.read_text())
    if data["backends"][driver.name]["agree"] is None:  # a plug-in's row: adam declared unsupported
        pytest.skip(f"{driver.name} does not support adam")
    assert status == 0, text
    assert data["config"]["optimizer"] == "adam" and data["backends"][driver.name]["agree"] is True


@needs_source_tree  # examples/
def test_report_runs_a_plugin_over_several_stretches(monkeypatch, capsys):
    """The report trains in stretches, handing each one the last one's TrainState; a seed-style plug-in's train
    knows nothing of optimizer state, and must still run (its plain descent has none)."""
    monkeypatch.setattr(backends, "_plugins", dict(backends._plugins))  # the registration stays in this test
    status = report.main(["--implementation", "student=examples.student_nn:DRIVER", "--backends", "student",
                          "--layers", "2,4,1", "--init", "standard_normal", "--epochs", "300", "--checkpoints", "5",
                          "--plot", "", "--no-progress"])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "\nstudent " in text and "\nAGREE: student matches the NumPy reference" in text


@pytest.mark.frameworks
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_first_epoch_out_and_the_verdict_come_from_one_route(driver, mutate, tmp_path, capsys, dtype):
    """A backend that disagrees has a first epoch out of tolerance, in both dtypes (the report used to compute it by
    a second route, which in float32 could say '-' beside 'agrees: NO'); one that agrees has none."""
    args = [*SHORT, "--backends", driver.name, "--plot", "", "--dtype", dtype, "--json", str(tmp_path / "r.json")]
    assert report.main(args) == 0
    assert json.loads((tmp_path / "r.json").read_text())["backends"][driver.name]["first_epoch_out"] is None
    BUGS["learning-rate-twice"].plant(mutate, driver.name)
    assert report.main(args) == 1
    row = json.loads((tmp_path / "r.json").read_text())["backends"][driver.name]
    capsys.readouterr()
    assert row["agree"] is False and isinstance(row["first_epoch_out"], int), row["problems"]
    assert 0 <= row["first_epoch_out"] <= 300


RAISES = '''
import numpy as np
from crosscheck.adapters import seed_style


class Net:
    def __init__(self, n_in, n_hidden, n_out):
        self.weights_input_hidden, self.bias_hidden = np.zeros((n_in, n_hidden)), np.zeros((1, n_hidden))
        self.weights_hidden_output, self.bias_output = np.zeros((n_hidden, n_out)), np.zeros((1, n_out))

    def feedforward(self, X):
        raise RuntimeError("my forward is not written yet")

    def backward(self, X, y, learning_rate):
        pass


DRIVER = seed_style(lambda layers: Net(*layers), name="raiser")
'''


def test_an_implementation_that_raises_gets_its_row_and_the_others_complete(tmp_path, monkeypatch, capsys):
    (tmp_path / "raiser.py").write_text(RAISES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(backends, "_plugins", dict(backends._plugins))
    status = report.main(["--implementation", "raiser=raiser:DRIVER", "--backends", "numpy,raiser", "--layers",
                          "2,4,1", "--epochs", "50", "--plot", "", "--no-progress"])
    text = capsys.readouterr().out
    assert status == 1, text
    assert re.search(r"\nnumpy .* yes *\n", text) and re.search(r"\nraiser .* NO *\n", text), text
    assert ("raiser: the forward pass (feedforward()) raised RuntimeError: my forward is not written yet; it was "
            "called with layout 'rows'") in text
    assert "DISAGREE: raiser did not match the NumPy reference" in text
    # a crash is a finding, as a wrong value is: the gradients' check fails, and the training run's crashes too
    assert re.search(r"\n  raiser +2 of 4 ran \(gradients, training run failed\); skipped: autodiff gradients \(raiser "
                     r"has no autodiff\); evaluation output \(not reached: an earlier check failed\)", text), text


UNSUPPORTED = '''
from crosscheck.adapters import seed_style


class Net:  # never built: the configuration asked for is outside what the adapter declares
    pass


DRIVER = seed_style(lambda layers: Net(), name="sgd-only")
'''


@pytest.mark.parametrize("strict", [False, True])
def test_a_report_that_compared_nothing_is_not_checked_never_agree(tmp_path, monkeypatch, capsys, strict):
    """A plug-in that declares the configuration unsupported is not compared: the verdict says NOT CHECKED with the
    reason, never AGREE, and exits 1 in strict mode or not: every backend the user named went unchecked."""
    (tmp_path / "sgd_only.py").write_text(UNSUPPORTED)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(backends, "_plugins", dict(backends._plugins))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("CROSSCHECK_STRICT", "1" if strict else "0")
    status = report.main(["--implementation", "mine=sgd_only:DRIVER", "--backends", "mine", "--optimizer", "adam",
                          "--lr", "0.01", "--epochs", "20", "--plot", "", "--no-progress", "--json",
                          str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    verdict = text.strip().splitlines()[-2 if "wrote" in text else -1]
    assert verdict.startswith("NOT CHECKED: no backend was compared with the NumPy reference (mine: mine does not "
                              "support this configuration: sgd only, not adam)"), text
    assert "AGREE" not in text and "what you named went unchecked, so the run fails" in text
    assert status == 1
    assert json.loads((tmp_path / "r.json").read_text())["agree"] is False
