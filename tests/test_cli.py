"""What a new user meets at the command line: exit statuses, one-line refusals before training, a diverged run
reported rather than a traceback. The exit status matters here, so most of these run a real subprocess."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crosscheck import backends
from crosscheck.report import run as report

from . import xla_flags
from .source import IN_SOURCE_TREE, ROOT, needs_source_tree
from .strictness import load_or_skip
from .test_report import supported

HERE = Path(__file__).resolve().parent
# The reference diverges by epoch 4 (the loss overflows to inf): relu hidden layers at learning rate 10.
DIVERGING = ["--hidden", "relu", "--output", "identity", "--loss", "mse", "--layers", "4,20,20,1", "--samples", "64",
             "--epochs", "300", "--lr", "10", "--init", "he_normal", "--no-progress"]


def crosscheck(*argv, cwd=ROOT if IN_SOURCE_TREE else None):
    """`python -m crosscheck ARGV` in a subprocess (from the checkout's root, or installed, from here): (exit status,
    stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "crosscheck", *argv], capture_output=True, text=True, cwd=cwd,
                          env=xla_flags.as_shipped(os.environ), check=False, timeout=300)
    return done.returncode, done.stdout, done.stderr


def crosscheck_here(capsys, *argv):
    """`crosscheck ARGV` in this process (what the console script calls: crosscheck.report.main.main), its exit status
    as sys.exit would give it: (exit status, stdout, stderr). A subprocess costs a second of imports; the tests that
    hold the process itself (its real exit status, a traceback, a device) keep one."""
    from crosscheck.report.main import main

    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


def test_a_diverged_reference_is_a_finding_not_a_traceback(tmp_path):
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    status, out, err = crosscheck(*DIVERGING, "--backends", "numpy", "--json", str(out_json), "--plot", str(out_png))
    assert status == 1, out + err
    assert "Traceback" not in err and "Warning" not in err, err
    assert "DIVERGED: the NumPy reference is not finite from epoch 4" in out
    assert "numpy: diverged: the loss or the parameters are not finite from epoch 4 (lr 10 too large?)" in out
    data = json.loads(out_json.read_text())
    assert data["agree"] is False and data["backends"]["numpy"]["diverged_at"] == 4
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_diverged_reference_still_shows_every_backends_row(tmp_path, capsys, session_backends):
    status = report.main([*DIVERGING, *session_backends, "--plot", "", "--json", str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    assert status == 1
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data["backends"]) == {backends.REFERENCE, *session_backends[1].split(",")}  # the reference always runs
    for name, row in data["backends"].items():
        outcomes = set(row["checks"].values())
        if outcomes == {"not installed"}:  # reported as such (strict mode fails it elsewhere)
            continue
        if all(outcome.startswith("unsupported: ") for outcome in outcomes):  # a plug-in's: not this configuration
            assert row["agree"] is None and row["diverged_at"] is None, (name, row)
            continue
        assert row["diverged_at"] == 4, (name, row)
        if name != backends.REFERENCE:
            assert row["agree"] is None and f"{name}: not compared: the NumPy reference diverged at epoch 4" in text


def test_the_bce_run_that_used_to_diverge_now_trains(driver, capsys):
    """The run of the issue: relu/sigmoid with bce at lr 1, float32. Unfused, the reference went to NaN by epoch 6
    (0/0 in bce's backward where the sigmoid saturates); fused, it trains and every backend agrees."""
    status = report.main(supported(driver, [
        "--hidden", "relu", "--output", "sigmoid", "--loss", "bce", "--layers", "4,20,20,1", "--samples", "64",
        "--batch-size", "7", "--epochs", "300", "--lr", "1.0", "--dtype", "float32", "--init", "he_normal", "--seed",
        "11", "--backends", driver.name, "--plot", "", "--no-progress", "--checkpoints", "10"]))
    text = capsys.readouterr().out
    assert status == 0, text
    verdict = "NOT CHECKED: only the NumPy reference ran" if driver.name == backends.REFERENCE else "AGREE"
    assert text.split("\n")[-2].startswith(verdict) and "DISAGREE" not in text, text


@pytest.mark.parametrize(("argv", "message"), [
    (["--samples", "3", "--batch-size", "10", "--layers", "2,2,1"],
     "--batch-size 10 exceeds the 3 samples (--samples); choose at most 3"),
    (["--batch-size", "5"], "--batch-size 5 exceeds the 4 samples (XOR); choose at most 4"),
    (["--json", "/no/such/dir/x.json"], "--json /no/such/dir/x.json: no such directory /no/such/dir"),
    (["--plot", "/no/such/dir/x.png"], "--plot /no/such/dir/x.png: no such directory /no/such/dir"),
    (["--json", "."], "--json .: is a directory"),
    (["--loss-scale", "big", "--compute", "float16"], "--loss-scale must be dynamic or a number, got 'big'"),
    (["--loss-scale", "1024"], "loss_scale needs mixed precision (compute='float16' or 'bfloat16')"),
    (["--compute", "float16", "--dtype", "float64"],
     "mixed precision keeps float32 master weights: dtype must be 'float32' with compute 'float16', got 'float64'"),
])
def test_bad_input_exits_2_with_one_line_before_training(argv, message, capsys):
    """In this process (crosscheck_here); the diverged run's test and the missing device's hold a
    real process's exit status and stderr."""
    status, out, err = crosscheck_here(capsys, *argv, "--backends", "numpy", "--no-progress")
    assert status == 2, out + err
    assert out == "" and "Traceback" not in err  # refused before anything trained or printed a table
    assert err.strip().splitlines()[-1] == f"crosscheck: error: {message}"


@pytest.mark.frameworks
def test_a_device_this_machine_lacks_exits_2(driver):
    if "cuda" in driver.devices:
        pytest.skip(f"{driver.name} has a CUDA device here: nothing to refuse")
    status, out, err = crosscheck("--backends", driver.name, "--device", "cuda", "--no-progress")
    assert status == 2 and out == "", out + err
    assert err.strip().splitlines()[-1] == (f"crosscheck: error: --device cuda: backend {driver.name!r} offers only "
                                            f"{', '.join(driver.devices)} on this machine")


def test_help_says_each_default_once():
    status, out, _ = crosscheck("--help")
    assert status == 0
    text = " ".join(out.split())  # argparse wraps lines
    assert "default: None" not in text and "default: False" not in text and "default: []" not in text
    for option in ("--batch-size", "--samples", "--backends", "--json", "--log-every", "--plot"):
        entry = text.split(f" {option} ", 1)[1].split(" --", 1)[0]
        assert entry.count("default") == 1, f"{option}: {entry}"


def pytest_run(*argv, strict_mode):
    """A pytest run of this suite in a subprocess: (exit status, output)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CROSSCHECK_STRICT", "CROSSCHECK_BACKENDS")}
    if strict_mode:
        env["CROSSCHECK_STRICT"] = "1"
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n0", *argv],
                          capture_output=True, text=True, cwd=HERE.parent, env=env, check=False, timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_an_unknown_backend_is_one_usage_error():
    status, text = pytest_run("--backends", "foo", str(HERE / "test_agreement.py"), strict_mode=False)
    assert status == pytest.ExitCode.USAGE_ERROR, text
    assert "ERROR: --backends: unknown backend(s) foo; registered: numpy, torch, jax" in text
    assert "collect" not in text.lower()


@pytest.mark.slow  # two whole pytest sessions per framework
@pytest.mark.frameworks
@pytest.mark.parametrize("strict_mode", [False, True], ids=["developer", "strict"])
def test_a_missing_device_stops_or_skips_with_the_reason(driver, strict_mode):
    if "cuda" in driver.devices:
        pytest.skip(f"{driver.name} has a CUDA device here: nothing to refuse")
    status, text = pytest_run("--device", "cuda", "--backends", driver.name, str(HERE / "test_agreement.py"), "-k",
                              "seed1 and float64 and gradients", "-rs", strict_mode=strict_mode)
    why = f"--device cuda: backend {driver.name!r} offers only cpu on this machine"
    if strict_mode:
        assert status == pytest.ExitCode.USAGE_ERROR, text
        assert f"ERROR: {why} (strict mode: a missing device is a failure)" in text
    else:
        assert status == pytest.ExitCode.OK, text
        assert "SKIPPED [1] " in text and "test_agreement.py" in text and why in text


def test_an_explicit_model_from_the_command_line_trains_and_agrees(tmp_path, capsys, session_builtins):
    """--model gives a model the shorthand cannot say (a different activation per layer); every backend agrees."""
    status = report.main(["--model", "dense:2:4,tanh,dense:4:4,relu,dense:4:1,sigmoid", "--epochs", "300",
                          *session_builtins,
                          "--plot", "", "--no-progress", "--json", str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "cross-check of 2-4-4-1 tanh,relu/sigmoid" in text
    data = json.loads((tmp_path / "r.json").read_text())  # every backend compared agrees; none disagrees
    assert data["verdict"].startswith(("AGREE", "NOT CHECKED")) and data["agree"] is data["verdict"].startswith("AGREE")
    assert all(row["agree"] is not False for row in data["backends"].values()), data


def test_mixed_precision_from_the_command_line_agrees_within_the_drawn_bound(tmp_path, capsys, session_builtins):
    """--compute float16 --loss-scale dynamic (float32 master weights implied): every backend agrees; the numpy row
    carries the bound on the loss's drift from the float64 run (its own largest drift times the factor, plus the
    floor), every backend's drift is within it, and the plot is drawn with it."""
    pytest.importorskip("matplotlib")
    status = report.main(["--layers", "2,4,1", "--init", "standard_normal", "--epochs", "300", "--compute", "float16",
                          "--loss-scale", "dynamic", "--no-progress", "--checkpoints", "5", *session_builtins,
                          "--plot", str(tmp_path / "r.png"), "--json", str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    assert status == 0, text
    assert "optimizer sgd, float32 master weights computed in float16, dynamic loss scale" in text
    rows = json.loads((tmp_path / "r.json").read_text())["backends"]
    own, bound = rows["numpy"]["loss_deviation"], rows["numpy"]["loss_bound"]
    assert 0 < own < bound == pytest.approx(4 * own + 2 * 2.0 ** -10)  # the floor at scale 1: XOR's loss is below 1
    assert all(r["loss_deviation"] <= bound for r in rows.values() if r["loss_deviation"] is not None)
    assert (tmp_path / "r.png").stat().st_size > 0


@pytest.mark.parametrize(("model", "message"), [
    ("dense:2:4,tanh,dense:5:1,sigmoid", r"model\[2\]: dense layer takes 5 inputs, but 4 reach it"),
    ("dense:2:x", "--model entries are a kind or kind:IN:OUT"),
    ("dense:2:4,swish,dense:4:1,sigmoid", r"model\[1\]: unknown layer kind 'swish'"),
])
def test_a_bad_model_is_refused_before_training(model, message, capsys):
    with pytest.raises(SystemExit) as info:
        report.parse_args(["--model", model])
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


MODEL_FILES = sorted((ROOT / "examples" / "models").glob("*.toml"))  # none installed: the test is then skipped


# Two transformer blocks, a CNN and a character RNN take JAX seconds to compile (2.9-4.3 s each on a cold cache), long
# for the default run: there its cases check the same kinds (attention, RoPE, positions, residual blocks, norms at
# every position, tied weights; convolution and pooling; recurrence over embeddings), and --run-slow runs the files
# whole.
LONG_COMPILES = {"gpt-mini.toml", "llama-mini.toml", "cnn.toml", "char-rnn.toml"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) for p in MODEL_FILES] +
                         [pytest.param(p, id=f"{p.name}-short") for p in MODEL_FILES if p.name not in LONG_COMPILES])
def test_a_shipped_model_file_trains_and_agrees(path, request, tmp_path, capsys):
    """Each examples/models/*.toml agrees on every backend: at its own length with --run-slow, else for 20 epochs."""
    from .conftest import selected_backends

    if selected_backends(request.config) == [backends.REFERENCE]:
        pytest.skip("only the NumPy reference is selected: there is nothing to compare it with")
    if request.config.getoption("--run-slow") and not request.node.get_closest_marker("slow"):
        pytest.skip("--run-slow runs this file at its own length instead")
    short = [] if request.node.get_closest_marker("slow") else ["--epochs", "20"]
    status = report.main(["--model", str(path), *short, "--plot", "", "--no-progress",
                          "--json", str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    assert status == 0, text
    assert json.loads((tmp_path / "r.json").read_text())["agree"] is True


def test_a_model_file_sets_the_run_and_the_command_line_overrides_it(tmp_path):
    spec = tmp_path / "m.toml"
    spec.write_text('model = ["dense:3:4", "layernorm:4", "tanh", "dense:4:2", "identity"]\nloss = "mse"\n'
                    'samples = 12\nepochs = 40\nlr = 0.05\noptimizer = "adam"\ndecay_biases = false\n'
                    'betas = [0.8, 0.9]\n')
    args, case, _ = report.parse_args(["--model", str(spec), "--epochs", "7"])
    config = case.config
    assert [layer.kind for layer in config.model] == ["dense", "layernorm", "tanh", "dense", "identity"]
    assert (config.loss, config.lr, config.optimizer, config.betas, config.decay_biases) == \
        ("mse", 0.05, "adam", (0.8, 0.9), False)
    assert config.eps == 1e-8  # adam's own default, from the registry
    assert case.samples == 12
    assert config.epochs == 7  # the command line's, not the file's 40


@pytest.mark.parametrize(("text", "message"), [
    ('model = ["dense:2:4", "tanh", "dense:4:1", "sigmoid"]\nlearning_rate = 0.1\n', "unknown key(s) 'learning_rate'"),
    ('loss = "mse"\n', "the file gives no model"),
    ('model = 3\n', "model must be a list or a string"),
    ('model = [\n', "not valid TOML"),
    ('model = ["dense:2:4", "tanh", "dense:4:1", "sigmoid"]\noptimizer = "momentum"\nbetas = [0.8, 0.9]\n',
     "momentum does not read betas (it reads lr, momentum); got betas=(0.8, 0.9)"),
    (None, "No such file or directory"),
])
def test_a_bad_model_file_is_refused_before_training(tmp_path, capsys, text, message):
    spec = tmp_path / "m.toml"
    if text is not None:
        spec.write_text(text)
    with pytest.raises(SystemExit) as info:
        report.parse_args(["--model", str(spec)])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@needs_source_tree  # examples/models/cnn.toml
@pytest.mark.slow(reason="JAX compiling the CNN at full optimisation in a process of its own, 9 s")
def test_jax_agrees_as_compiled_for_users(request, tmp_path):
    """The tests compile JAX at LLVM -O0 (tests/xla_flags.py); this run, in a subprocess without it, checks the build
    users get: the CNN model file for 20 epochs, JAX against the reference."""
    load_or_skip(request.config, "jax")
    out_json = tmp_path / "r.json"
    status, out, err = crosscheck("--model", str(ROOT / "examples" / "models" / "cnn.toml"), "--epochs", "20",
                                  "--backends", "numpy,jax", "--plot", "", "--no-progress", "--json", str(out_json))
    assert status == 0, out + err
    assert json.loads(out_json.read_text())["agree"] is True


# -- the user's data: --data and a model file's data key (crosscheck.reference.data.load) ------------------------------

def _names(path, n=300, seed=0):
    """A text of made-up lower-case names ended by '.', as makemore's names.txt is one per line: 27 characters."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, rng.integers(3, 9))) for _ in range(n)]
    path.write_text(".".join(words) + "." + "".join(letters))  # every letter appears
    return path


def _table(tmp_path):
    """A regression problem of 3 inputs and 2 outputs as .npz and .csv (with a header), and its class-label twin."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 3))
    y = np.tanh(X @ rng.standard_normal((3, 2)))
    np.savez(tmp_path / "d.npz", X=X, y=y)
    np.savetxt(tmp_path / "d.csv", np.hstack([X, y]), delimiter=",", header="a,b,c,y1,y2", comments="")
    np.savetxt(tmp_path / "labels.csv", np.hstack([X, (X[:, :1] > 0).astype(int) + (X[:, 1:2] > 0)]), delimiter=",")
    return tmp_path


@pytest.mark.parametrize(("data", "argv"), [
    ("d.npz", ["--model", "dense:3:6,tanh,dense:6:2,tanh", "--loss", "mse", "--batch-size", "16"]),
    ("d.csv", ["--model", "dense:3:6,tanh,dense:6:2,tanh", "--loss", "mse"]),
    ("labels.csv", ["--model", "dense:3:6,relu,dense:6:3,softmax", "--loss", "softmax_cross_entropy"]),
    ("names.txt", ["--model", "embedding:27:10,flatten,dense:30:16,batchnorm:16,tanh,dense:16:27,softmax",
                   "--input-shape", "3", "--loss", "softmax_cross_entropy", "--samples", "120", "--batch-size", "32"]),
    ("iris", ["--model", "dense:4:8,tanh,dense:8:3,softmax", "--loss", "softmax_cross_entropy"]),
    pytest.param("digits", ["--model", "dense:64:16,relu,dense:16:10,softmax", "--loss", "softmax_cross_entropy",
                            "--samples", "300", "--batch-size", "100"], marks=pytest.mark.slow),  # iris's path again
])
def test_the_users_data_trains_and_agrees(data, argv, tmp_path, capsys, session_builtins):
    """--data: a .npz, a .csv (targets, or one class-label column), a character model's text of 27 characters
    (makemore's vocabulary), and scikit-learn's bundled iris and digits: every backend agrees on it."""
    if data in ("iris", "digits"):
        pytest.importorskip("sklearn")
    _table(tmp_path)
    _names(tmp_path / "names.txt")
    path = data if data in ("iris", "digits") else str(tmp_path / data)
    status = report.main(["--data", path, *argv, "--epochs", "5", "--lr", "0.05", "--no-progress", "--plot", "",
                          "--json", str(tmp_path / "r.json"), *session_builtins])
    text = capsys.readouterr().out
    assert status == 0, text
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["data"].startswith(path) and all(row["agree"] is not False for row in record["backends"].values())


@pytest.mark.parametrize(("data", "argv", "message"), [
    ("names.txt", ["--model", "embedding:10:4,flatten,dense:12:10,softmax", "--input-shape", "3", "--loss",
                   "softmax_cross_entropy"],
     r"names.txt has 27 distinct characters \('.abc.*'\): a character model's output width must be 27, got 10"),
    (None, ["--model", "embedding:27:4,flatten,dense:12:27,softmax", "--input-shape", "3", "--samples", "20",
            "--loss", "softmax_cross_entropy"],
     r"the generated text has 10 distinct characters .*: a character model's output width must be 10, got 27"),
    ("d.npz", ["--model", "dense:4:2,tanh", "--loss", "mse"], r"d.npz: each sample of X is \(3,\), but the model "
                                                             r"reads \(4,\)"),
    ("d.csv", ["--model", "dense:3:3,tanh", "--loss", "mse"], r"d.csv: 5 columns, but the model reads 3 inputs and "
                                                             r"gives 3 outputs: 6 columns \(or 4, the last a class"),
    ("labels.csv", ["--model", "dense:3:2,softmax", "--loss", "softmax_cross_entropy", "--lr", "0.1"],
     r"class labels must be integers 0 to 1 \(the model's 2 outputs\), got \[0.0, 1.0, 2.0\]"),
    ("d.npz", ["--model", "dense:3:2,tanh", "--loss", "mse", "--samples", "41"],
     r"41 samples asked for \(--samples\), but it holds 40"),
    ("bad.npz", ["--model", "dense:3:2,tanh", "--loss", "mse"], r"bad.npz: no array y \(it has X\)"),
    ("nan.npz", ["--model", "dense:3:2,tanh", "--loss", "mse"], r"nan.npz: X holds NaN or infinite values"),
    ("missing.csv", ["--model", "dense:3:2,tanh", "--loss", "mse"], r"missing.csv: No such file or directory"),
    ("d.json", ["--model", "dense:3:2,tanh", "--loss", "mse"], r"not a data set this knows \(digits, iris\) nor"),
    ("names.txt", ["--model", "dense:3:2,tanh", "--loss", "mse"], r"a text is for a character model"),
])
def test_bad_data_is_refused_in_one_line_before_training(data, argv, message, tmp_path, capsys):
    _table(tmp_path)
    _names(tmp_path / "names.txt")
    np.savez(tmp_path / "bad.npz", X=np.zeros((4, 3)))
    np.savez(tmp_path / "nan.npz", X=np.full((4, 3), np.nan), y=np.zeros((4, 2)))
    data_args = [] if data is None else ["--data", str(tmp_path / data)]
    with pytest.raises(SystemExit) as info:
        report.parse_args([*data_args, *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err and len(err.strip().splitlines()[-1]) > 20


def test_a_model_files_data_is_read_beside_it(tmp_path):
    _table(tmp_path)
    spec = tmp_path / "m.toml"
    spec.write_text('model = ["dense:3:4", "tanh", "dense:4:2", "tanh"]\nloss = "mse"\ndata = "d.csv"\nepochs = 5\n')
    args, case, _ = report.parse_args(["--model", str(spec), "--no-progress", "--plot", ""])
    X = case.inputs()[2]
    assert case.data == str(tmp_path / "d.csv") and X.shape == (40, 3)
    assert np.array_equal(X, np.load(tmp_path / "d.npz")["X"])  # the same values, through the other format
