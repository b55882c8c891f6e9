"""Code in any language: a program run through the command protocol (crosscheck --command), and a problem exported
for a test of its own with its result verified (crosscheck export, crosscheck verify). The examples are the checkout's
examples/c (built with make and cc) and examples/js (Node.js)."""

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from crosscheck.common import registry
from crosscheck.exchange import tensors as exchange
from crosscheck.report import main
from crosscheck.report import run as report
from crosscheck.report.export import EXPECTED, MANIFEST, PROBLEM
from crosscheck.verdict import tolerances

from .source import ROOT, needs_source_tree
from .strictness import strict
from .test_cli import crosscheck_here

pytestmark = needs_source_tree

XOR = ["--epochs", "200", "--plot", "", "--no-progress"]


def _tool(config, name):
    """The path of a tool the examples need (cc, make, node): a skip without it, a failure in strict mode."""
    found = shutil.which(name)
    if found is None:
        (pytest.fail if strict(config) else pytest.skip)(f"{name} is not installed: the {name} example cannot run")
    return found


@pytest.fixture(scope="session")
def c_programs(request, tmp_path_factory):
    """examples/c built by its Makefile into a folder of this session's own: (mlp, mlp_buggy)."""
    _tool(request.config, "cc")
    make = _tool(request.config, "make")
    build = tmp_path_factory.mktemp("c")
    done = subprocess.run([make, "-C", str(ROOT / "examples" / "c"), f"BUILD={build}"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return str(build / "mlp"), str(build / "mlp_buggy")


@pytest.fixture
def node(request):
    return _tool(request.config, "node")


def _report(capsys, *argv):
    status = main.main([*argv, *XOR])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_c_example_agrees_and_its_planted_copy_is_diagnosed(c_programs, capsys):
    mlp, buggy = c_programs
    status, out, _ = _report(capsys, "--command", f"c={mlp}", "--backends", "c", "--epochs", "2000")
    assert status == 0 and "AGREE: c matches the NumPy reference" in out, out
    assert "c      3 of 4 ran" in out, out  # gradients, the training run, the evaluation output (no autodiff)
    status, out, _ = _report(capsys, "--command", f"c={buggy}", "--backends", "c", "--epochs", "2000")
    assert status == 1 and "DISAGREE: c" in out, out
    assert "layer 2 weight gradient disagrees" in out, out
    assert "[sigmoid-derivative-from-z]" in out and "gradients first differ at layer 2" in out, out


def test_the_javascript_example_agrees_on_a_deeper_minibatch_run(node, capsys):
    status, out, _ = _report(capsys, "--command", f"js={node} {ROOT / 'examples' / 'js' / 'mlp.js'}", "--backends",
                             "js", "--model", "dense:2:4,tanh,dense:4:3,sigmoid,dense:3:1,sigmoid", "--loss", "mse",
                             "--samples", "32", "--batch-size", "8", "--epochs", "100")
    assert status == 0 and "AGREE: js matches the NumPy reference" in out, out


@pytest.mark.parametrize("option", [("--optimizer", "adam"), ("--clip", "0.5"),
                                    ("--schedule", "warmup_cosine", "--warmup-steps", "2", "--decay-steps", "9")])
def test_a_configuration_the_program_declares_unsupported_is_skipped_with_its_reason(c_programs, capsys, option):
    """The C program reads what it does not implement (another optimizer, gradient clipping, a schedule) from the
    problem's metadata and declines it, named."""
    status, out, _ = _report(capsys, "--command", f"c={c_programs[0]}", "--backends", "c", *option)
    assert ("c does not support this configuration: half_sse and plain sgd without weight decay, clipping or a "
            "schedule only") in out, out
    assert "NOT CHECKED" in out and status == 1, out  # what the user named went unchecked: never exit 0


BAD = {
    "exit": "exited with status 3: bad_program: pretending to crash",
    "late": "exited with status 1: bad_program: wrote a result, then failed",  # a right result, a failed exit
    "hang": "ran past its timeout of 2 s and was killed (with every process it started)",
    "none": "bad result: ",  # ... exited 0 but wrote no result file (its second argument)
    "truncated": "is not a readable safetensors file",
    "dtype": "is float32, the problem is float64",
    "shape": "bad result: grad.layer2.weight has shape (1, 2), expected (2, 1)",
    "missing": "bad result: missing tensor grad.layer1.bias",
    "extra": "bad result: extra tensor grad.layer3.weight",
    "nan": "bad result: grad.layer1.weight holds nan (first at [0, 1])",
}


@pytest.mark.parametrize("mode", BAD)
def test_a_bad_result_is_one_line_naming_it_and_nothing_is_left_running(mode, c_programs, capsys, monkeypatch,
                                                                       tmp_path):
    pidfile = tmp_path / "child.pid"
    monkeypatch.setenv("BAD_PROGRAM_PIDFILE", str(pidfile))
    monkeypatch.setenv("CROSSCHECK_COMMAND_TIMEOUT", "2")
    program = f"{sys.executable} {Path(__file__).with_name('bad_program.py')} {mode} {c_programs[0]}"
    status, out, err = _report(capsys, "--command", f"bad={program}", "--backends", "bad")
    assert status == 1 and "DISAGREE: bad" in out, out + err
    lines = [line for line in out.splitlines() if BAD[mode] in line]
    assert lines and lines[0].startswith("bad: "), out
    if mode == "none":
        assert "exited 0 but wrote no result file" in lines[0], out
    assert "Traceback" not in out + err and "diagnosis of" not in out, out + err  # no values: nothing to diagnose
    if mode == "hang":  # the program and the child it started are gone (a zombie awaiting its reaper is dead too)
        status_file = Path(f"/proc/{int(pidfile.read_text())}/status")
        for _ in range(100):  # SIGKILL is delivered at once, the process is gone a moment later
            if not status_file.exists() or "State:\tZ" in status_file.read_text():
                break
            time.sleep(0.05)
        assert not status_file.exists() or "State:\tZ" in status_file.read_text()


@pytest.mark.parametrize("argv, says", [
    (["--command", "c=examples/c/no-such-program"], "--command c=examples/c/no-such-program: no such program"),
    (["--command", "c"], "a command is given as NAME=PROGRAM, got 'c'"),
    (["--command", "numpy=examples/c/Makefile"], "plug-in name 'numpy' is taken by a built-in backend"),
    (["--command", "c=examples/c/Makefile"], "--command c=examples/c/Makefile: examples/c/Makefile is not executable"),
    (["export", "--epochs", "3"], "the following arguments are required: --out"),
    (["export", "--layers", "2,4,1", "--dtype", "bfloat16", "--out", "x"], "carry float64 and float32, not bfloat16"),
])
def test_a_bad_command_or_export_is_refused_before_anything_runs(argv, says, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    status, _, err = crosscheck_here(capsys, *argv, *XOR)
    assert status == 2 and says in err
    assert not (ROOT / "x").exists()


# -- export and verify ---------------------------------------------------------------------------------------------

def read_safetensors(path):
    """A reader written from the format's description alone (8 bytes of header length, the JSON header, the bytes):
    what a test in another language does, here in a page of Python."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    kinds = {"F64": "<f8", "F32": "<f4", "I64": "<i8"}
    tensors = {name: np.frombuffer(data[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]],
                                   dtype=kinds[t["dtype"]]).reshape(t["shape"]) for name, t in header.items()}
    return tensors, metadata


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("xor")
    assert main.main(["export", "--epochs", "200", "--out", str(out)]) == 0
    return out


def test_export_writes_the_problem_the_expected_values_and_their_bounds(exported):
    problem, meta = read_safetensors(exported / PROBLEM)
    assert set(problem) == {"X", "y", "layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias"}
    assert problem["X"].tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and problem["y"].ravel().tolist() == [0, 1, 1, 0]
    assert meta["model"] == "dense:2:2,sigmoid,dense:2:1,sigmoid" and meta["epochs"] == "200"
    assert meta["checkpoints"].startswith("1,2,") and meta["checkpoints"].endswith(",200")
    expected, _ = read_safetensors(exported / EXPECTED)
    manifest = json.loads((exported / MANIFEST).read_text())
    assert set(manifest["expected"]) == set(expected)
    assert {"output", "forward.1", "forward.4", "loss", "grad.layer1.weight", "losses", "final.layer2.bias",
            "epoch1.layer1.weight", "epoch2.layer1.weight", "epoch200.layer1.weight"} <= set(expected)
    # float64's bounds are derived (the reference's spread under rounding), absolute: at least the floor of 8 ulps at
    # the value's scale, and far below what a slip moves (a wrong gradient strays by its own size)
    for name in ("grad.layer1.weight", "losses", "epoch200.layer1.weight", "loss"):
        bound = manifest["expected"][name]["bound"]
        floor = tolerances.low_bound("float64", 0.0, float(np.max(np.abs(expected[name]))))
        assert bound["rtol"] == 0.0 and floor <= bound["atol"] < 1e-12, (name, bound)
    assert "derived from the reference's own spread under rounding" in manifest["bound"]
    # The loss, by hand from the initial parameters: independent of the reference's code, within the loss's bound.
    W1, b1, W2, b2 = (problem[k] for k in ("layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias"))
    a = 1 / (1 + np.exp(-((1 / (1 + np.exp(-(problem["X"] @ W1 + b1)))) @ W2 + b2)))
    by_hand = 0.5 * np.sum((a - problem["y"]) ** 2)
    assert abs(expected["loss"] - by_hand) <= manifest["expected"]["loss"]["bound"]["atol"]


def _within(result, expected, manifest):
    """The names whose values stray beyond the manifest's bound: the check a test in another language makes."""
    out = []
    for name, t in result.items():
        if name in expected:
            bound = manifest["expected"][name]["bound"]
            if not np.all(np.abs(t - expected[name]) <= bound["atol"] + bound["rtol"] * np.abs(expected[name])):
                out.append(name)
    return out


def test_the_c_results_lie_within_the_exported_bounds_and_the_planted_ones_do_not(exported, c_programs, tmp_path):
    expected, _ = read_safetensors(exported / EXPECTED)
    manifest = json.loads((exported / MANIFEST).read_text())
    for program, strays in zip(c_programs, (False, True)):
        subprocess.run([program, str(exported / PROBLEM), str(tmp_path / "r.safetensors")], check=True)
        result, meta = read_safetensors(tmp_path / "r.safetensors")
        assert meta["supports"] == "forward,gradients,train" and "grad.layer1.weight" in result
        bad = _within(result, expected, manifest)
        assert bool(bad) is strays, bad
        if strays:
            assert "grad.layer2.weight" in bad and "output" not in bad and "forward.4" not in bad, bad


def _verify(capsys, folder, result, *extra):
    status = main.main(["verify", str(folder), str(result), *extra])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_verify_agrees_on_the_c_result_and_diagnoses_the_planted_one(exported, c_programs, capsys, tmp_path):
    for program, want in zip(c_programs, (0, 1)):
        subprocess.run([program, str(exported / PROBLEM), str(tmp_path / "r.safetensors")], check=True)
        status, out = _verify(capsys, exported, tmp_path / "r.safetensors", "--name", "mine")
        assert status == want and ("\nAGREE: mine" in out) is (want == 0), out
    assert "DISAGREE: mine" in out and "[sigmoid-derivative-from-z]" in out, out


def test_verify_names_the_leaf_that_parts(exported, capsys, tmp_path):
    expected, _ = read_safetensors(exported / EXPECTED)
    spoiled = {k: v.copy() for k, v in expected.items() if not k.startswith("epoch") or ".state." not in k}
    spoiled["grad.layer1.bias"][1] += 1e-6
    exchange.write(str(tmp_path / "r.safetensors"), spoiled, {})
    status, out = _verify(capsys, exported, tmp_path / "r.safetensors")
    assert status == 1 and "result: layer 1 bias gradient disagrees" in out, out
    assert "layer 1 weight gradient disagrees" not in out, out


@pytest.mark.parametrize("spoil, says", [
    ("truncated", "is not a readable safetensors file"),
    ("missing", "missing tensor grad.layer1.bias"),
    ("folder", "manifest.json: No such file or directory"),
])
def test_verify_exits_2_on_bad_input_naming_it(spoil, says, exported, capsys, tmp_path):
    expected, _ = read_safetensors(exported / EXPECTED)
    path = tmp_path / "r.safetensors"
    exchange.write(str(path), {k: v for k, v in expected.items() if k != "grad.layer1.bias"}, {})
    if spoil == "truncated":
        path.write_bytes((exported / EXPECTED).read_bytes()[:300])
    folder = tmp_path / "nowhere" if spoil == "folder" else exported
    status, out = _verify(capsys, folder, path)
    assert status == 2 and says in out and "Traceback" not in out, out
    assert out.startswith("crosscheck verify: error: "), out


def test_a_float32_export_is_bounded_from_the_numpy_float32_reference(capsys, tmp_path):
    """In float32, expected holds the float64 run of the same values and each bound is absolute: the NumPy float32
    reference's own deviation, scaled (docs/precision.md). The float32 reference's own result verifies."""
    from crosscheck.report.export import _expected, checkpoints_of
    argv = ["--layers", "2,4,1", "--init", "standard_normal", "--epochs", "300", "--dtype", "float32"]
    assert main.main(["export", *argv, "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    expected, _ = read_safetensors(tmp_path / EXPECTED)
    assert expected["loss"].dtype == np.float64 and read_safetensors(tmp_path / PROBLEM)[0]["X"].dtype == np.float32
    bounds = manifest["expected"]
    assert all(b["bound"]["rtol"] == 0.0 and 0 < b["bound"]["atol"] < 1e-3 for b in bounds.values())
    args, case, _ = report.parse_args(argv)
    problem = case.problem("float32")
    ours, _ = _expected(problem, checkpoints_of(case, problem.config, 2))
    exchange.write(str(tmp_path / "r.safetensors"), {k: v for k, v in ours.items() if ".state." not in k}, {})
    assert _within(ours, expected, manifest) == []
    status, out = _verify(capsys, tmp_path, tmp_path / "r.safetensors")
    assert status == 0 and "AGREE: result" in out, out


MODEL_FILES = sorted((ROOT / "examples" / "models").glob("*.toml"))


# One model file by default (the MLP with batch norm and dropout: buffers and masks in the exchange); the others, whose
# kinds the default cases cover, export and verify with --run-slow (JAX and the reference, 1-2 s each).
@pytest.mark.parametrize("model", [pytest.param(m, id=m.stem, marks=[] if m.stem == "mlp-bn-dropout" else [
    pytest.mark.slow(reason="the other model files exported whole")]) for m in MODEL_FILES])
def test_every_model_file_exports_whole_and_its_own_expected_values_verify(model, capsys, tmp_path):
    """Every model file (batch norm, dropout, convolutions, a character RNN; those issues add later too): its masks,
    orders, leaf names, running statistics and the optimizer's state are all in the files, and the expected values,
    as a result, agree."""
    assert main.main(["export", "--model", str(model), "--epochs", "3", "--out", str(tmp_path)]) == 0
    problem, meta = read_safetensors(tmp_path / PROBLEM)
    expected, _ = read_safetensors(tmp_path / EXPECTED)
    args, case, _ = report.parse_args(["--model", str(model)])
    config = case.problem(args.dtype).config
    assert {f"grad.{k}" for k in exchange.leaf_keys(config)} <= set(expected)
    assert ("orders" in problem) == (config.batch_size is not None)
    assert sum(k.startswith("masks.") for k in problem) == len(config.noise_widths())
    assert all(f"epoch3.buffer.{exchange.leaf_key(n)}" in expected for n in config.buffer_names())
    assert all(f"epoch3.state.{exchange.state_key(n)}.layer1.{exchange.leaf_keys(config)[0].split('.')[1]}" in expected
               for n in registry.OPTIMIZERS[config.optimizer].state)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert os.path.isabs(manifest["argv"][manifest["argv"].index("--model") + 1])  # verify works from anywhere
    assert manifest["argv"] == ["--model", str(model), "--epochs", "3"]  # --out is export's, not the run's
    exchange.write(str(tmp_path / "r.safetensors"), dict(expected), {})
    status, out = _verify(capsys, tmp_path, tmp_path / "r.safetensors")
    assert status == 0 and "AGREE: result matches" in out, out
    assert "result  3 of 4 ran" in out, out  # the gradients, the training run, the output in evaluation mode


@pytest.mark.slow  # two pytest sessions, on the seeds' cases (tox -e installed runs the whole installed suite so)
def test_the_pytest_suite_runs_a_command_correct_code_passes_and_planted_code_fails(c_programs):
    for program, want in zip(c_programs, (0, 1)):
        done = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_agreement.py"),
                               "--command", f"c={program}", "--backends", "c", "-q", "-p", "no:cacheprovider",
                               "-n", "0", "-k", "seed2"], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == want, done.stdout[-3000:] + done.stderr[-3000:]
        last = done.stdout.strip().splitlines()[-1]
        assert (" failed" in last) is bool(want) and " passed" in last, done.stdout[-2000:]
