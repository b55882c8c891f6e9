"""The suite as a user runs it: the installed package, from an empty folder of their own, on their own file.

Run by `tox -e installed` (in .ci/run), inside an environment where tox has built the wheel and installed it, so
nothing of the checkout is importable. It writes, in a fresh temporary folder, a user's file and a copy of it with
one planted mistake, for two forms of code:

- mine.py: CS231n-style layer functions (examples/cs231n_layers.py) as students write them (examples/cs231n_student.py:
  update rules that change their arrays in place, as the assignment's template does, and batch norm with keepdims
  (1, D) statistics and gradients), with dropout, convolution, momentum, RMSprop and Adam; its planted copy's
  batchnorm_backward drops the terms through the batch statistics;
- five.py: CS231n-style affine, relu, the softmax loss, sgd_momentum and adam alone (the focused suite must exercise
  all five); its planted copy's momentum step lacks the learning rate;
- student.py: a class in the first seed's style (examples/student_nn.py); its planted copy takes the hidden slope
  from the pre-activation;
- nielsen.py: Nielsen's network.py (examples/nielsen_network.py); its planted copy takes BP1's slope at the output;
- loop.py: a plain script's loop body as a function (examples/seed_loop.py); its planted copy's bias update lacks
  the learning rate;
- makemore.py: makemore part 4's manual backward with batch norm, in PyTorch tensors, by leaf name
  (examples/makemore_bn_torch.py), on a text of names; its planted copy overwrites a repeated id's gradient.
- nielsen2.py: Nielsen's network2 (the cross-entropy cost, L2 regularization of the weights alone) through
  nielsen(cost="cross_entropy"); its planted copy shrinks the biases too.
- guarded.py: a textbook two-layer net whose cross-entropy guards its log, -log(p + 1e-7), declared as a convention
  (examples/guarded_ce_numpy.py); its planted copy leaves the mean's 1 / N out of the output gradient.
- notebook.py: the same as makemore's notebook writes batch norm (examples/makemore_notebook_torch.py: Bessel's
  variance, running statistics moved by 0.001, both declared as conventions); its planted copy drops the backward's
  terms through the batch's statistics.
- gpt2.py: a GPT-2 block by hand in NumPy with llm.c's sixteen tensors (attention biases, a padded vocabulary; examples/
  gpt2_block_numpy.py); its planted copy gives the tied embedding one of its two gradients.
- adamobj.py: a two-layer net stepped by an Adam object's update(params, grads) (examples/optimizer_object_numpy.py);
  its planted copy's bias correction is a step ahead.

and runs, for each, `python -m pytest --pyargs crosscheck_tests --implementation NAME=FILE:DRIVER --backends NAME`
and `python -m crosscheck ...` there: the correct file must exit 0, the planted one 1, naming the mistake. Then one op's
custom backward (examples/attention_numpy_op.py and its planted copy) through pytest --op and crosscheck op; the
same of programs in other languages (commands): examples/c built there with make, through --command, and through
crosscheck export, the program, and crosscheck verify; examples/js on node; and the data- and tensor-parallel reports.
And a user's project with packages of its own named common, reference, backends, utils and tests: the report loads
it and checks it (the wheel installs nothing but crosscheck and crosscheck_tests).
Exits 1, saying which, if any of them does not.
"""

import os
import random
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _text(name):
    return (EXAMPLES / name).read_text()


def _replaced(text, old, new):
    if text.count(old) != 1:
        raise SystemExit(f"installed_suite.py: the line to plant is not once in the example: {old!r}")
    return text.replace(old, new)


def cs231n_file(name):
    """cs231n_layers.py and cs231n_student.py as one standalone file: the student's batch norm (keepdims) and in-place
    update rules defined after, and so in place of, the layers' own."""
    layers = _text("cs231n_layers.py")
    layers = layers[:layers.index("\nDRIVER = ")]
    student = _text("cs231n_student.py")
    own = student[student.index("\ndef batchnorm_forward("):student.index("\nLAYERS = ")]
    return f"{layers}\n# As students write them: batch norm with keepdims, the update rules in place.\n{own}\n" \
           f"DRIVER = cs231n(sys.modules[__name__], name={name!r}, keepdims=True)\n"


FIVE = ("affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss", "sgd_momentum", "adam")
MOMENTUM_PLANT = ('config["momentum"] * config["velocity"] - config["learning_rate"] * dw',
                  'config["momentum"] * config["velocity"] - dw')
FIVE_RUN = ["--model", "dense:4:8,relu,dense:8:3,softmax", "--loss", "softmax_cross_entropy", "--samples", "30",
            "--batch-size", "6", "--optimizer", "momentum", "--lr", "0.05", "--epochs", "20"]


def five_file(name):
    """A CS231n-style module of five functions alone (affine, relu, the softmax loss, sgd_momentum, adam), taken from
    examples/cs231n_layers.py: the installed suite must exercise every one of them, and focus on them."""
    layers = _text("cs231n_layers.py")
    parts = [re.search(rf"^def {f}\(.*?(?=^def |^DRIVER)", layers, re.S | re.M).group(0) for f in FIVE]
    return ("import sys\n\nimport numpy as np\n\nfrom crosscheck.adapters import cs231n\n\n\n" + "".join(parts)
            + f"DRIVER = cs231n(sys.modules[__name__], name={name!r})\n")


def student_file(name):
    return re.sub(r'name="[^"]*"', f'name="{name}"', _text("student_nn.py"))


CS231N_PLANT = ("dx = (dx_hat - np.mean(dx_hat, axis=0, keepdims=True)\n"
                "          - x_hat * np.mean(dx_hat * x_hat, axis=0, keepdims=True)) / np.sqrt(var + eps)\n",
                "dx = dx_hat / np.sqrt(var + eps)  # planted: the terms through the mean and variance are missing\n")
STUDENT_PLANT = ("return back * self.slope(self.hidden_out)", "return back * self.slope(self.hidden_in)  # planted")
NIELSEN_PLANT = ("* sigmoid_prime(zs[-1])", "* sigmoid_prime(activations[-1])  # planted")
LOOP_PLANT = ("b2 += lr * delta_out.sum(axis=1, keepdims=True)",
              "b2 += delta_out.sum(axis=1, keepdims=True)  # planted: lr missing")
MAKEMORE_PLANT = ("    dC.index_add_(0, X.reshape(-1), demb.reshape(-1, C.shape[1]))\n",
                  "    for k, i in enumerate(X.reshape(-1).tolist()):\n"
                  "        dC[i] = demb.reshape(-1, C.shape[1])[k]  # planted: = where += adds a repeated id up\n")
NOTEBOOK_PLANT = ("    return bngain * bnvar_inv / n * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * "
                  "(dhpreact * bnraw).sum(0))\n",
                  "    return bngain * bnvar_inv * dhpreact  # planted: the terms through the mean and variance\n")
GUARDED_PLANT = ("    return (p - y) / len(y)\n", "    return p - y  # planted: the mean's 1 / N left out\n")
GUARDED = ["--model", "dense:4:8,tanh,dense:8:3,softmax", "--loss", "softmax_cross_entropy", "--samples", "60",
           "--epochs", "200", "--lr", "0.1"]
NIELSEN2_PLANT = ("        self.biases = [b - rate * s for b, s in zip(self.biases, sum_b)]\n",
                  "        self.biases = [(1 - eta * (lmbda / n)) * b - rate * s\n"
                  "                       for b, s in zip(self.biases, sum_b)]\n")
NIELSEN2 = ["--layers", "4,6,2", "--hidden", "sigmoid", "--output", "sigmoid", "--loss", "bce", "--samples", "40",
            "--batch-size", "10", "--weight-decay", "0.05", "--no-decay-biases", "--lr", "0.5", "--epochs", "30"]
GPT2_PLANT = ("    dwte = dwte_out.copy()\n", "    dwte = np.zeros_like(dwte_out)  # planted: the output's use lost\n")
GPT2 = ["--model", "embedding:16:8,positions:12:8,residual:2,layernorm:8,biased_attention:8:2,residual:4,layernorm:8,"
        "dense:8:16,gelu_tanh,dense:16:8,layernorm:8,unembed:16:8,vocabulary:10,softmax", "--input-shape", "12",
        "--loss", "softmax_cross_entropy", "--samples", "32", "--epochs", "20", "--batch-size", "16", "--optimizer",
        "adam", "--lr", "0.01"]
ADAM_PLANT = ("        return 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t\n",
              "        return 1 - self.beta1 ** (self.t + 1), 1 - self.beta2 ** (self.t + 1)  # planted\n")
ADAM = ["--model", "dense:4:8,tanh,dense:8:3,softmax", "--loss", "softmax_cross_entropy", "--optimizer", "adam",
        "--lr", "0.01", "--samples", "60", "--epochs", "100", "--batch-size", "20"]
MAKEMORE = ["--data", "names.txt", "--model",
            "embedding:27:10,flatten,dense:30:64,batchnorm:64,tanh,dense:64:27,softmax", "--input-shape", "3",
            "--loss", "softmax_cross_entropy", "--batch-size", "32", "--samples", "512", "--epochs", "5", "--lr", "0.1"]


def names_text():
    """Made-up lower-case names, each ended by '.': makemore's 27 characters."""
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ".".join("".join(rng.choice(letters) for _ in range(rng.randint(3, 8))) for _ in range(400)) + "." + letters


# (name, its text, the planted line, the report's arguments, what each tool must say of the planted copy); as
# Issue 26's "Done when" lists them: CS231n-style code, a seed-style class, Nielsen's network, a plain script's loop
# body, makemore part 4's backward with batch norm (written to PyTorch's conventions, and as its notebook writes it).
USERS = [
    ("mine", cs231n_file, CS231N_PLANT,
     ["--model", "dense:4:8,relu,batchnorm:8,dense:8:3,softmax", "--loss", "softmax_cross_entropy", "--samples", "32",
      "--batch-size", "8", "--optimizer", "adam", "--lr", "0.01", "--epochs", "40"],
     {"pytest": "batchnorm_backward: input gradient disagrees",
      "crosscheck": "[batchnorm-backward-without-statistics]"}),
    ("five", five_file, MOMENTUM_PLANT, FIVE_RUN,
     {"pytest": "[five-cs231n-mlp-momentum]", "crosscheck": "DISAGREE: five did not match"}),
    ("student", student_file, STUDENT_PLANT, ["--layers", "2,4,1", "--init", "standard_normal", "--epochs", "2000"],
     {"pytest": "layer 1 weight gradient disagrees", "crosscheck": "layer 1 weight gradient disagrees"}),
    ("nielsen", lambda name: _text("nielsen_network.py"), NIELSEN_PLANT,
     ["--layers", "2,4,1", "--init", "standard_normal", "--epochs", "2000"],
     {"pytest": "layer 2 weight gradient disagrees", "crosscheck": "[sigmoid-derivative-at-a]"}),
    ("nielsen2", lambda name: _text("nielsen_network2.py"), NIELSEN2_PLANT, NIELSEN2,
     {"pytest": "disagree", "crosscheck": "[weight-decay-on-excluded-biases]"}),
    ("loop", lambda name: _text("seed_loop.py"), LOOP_PLANT, ["--epochs", "2000"],
     {"pytest": "it looks like the learning rate is missing", "crosscheck": "the learning rate is missing"}),
    ("makemore", lambda name: _text("makemore_bn_torch.py"), MAKEMORE_PLANT, MAKEMORE,
     {"pytest": "layer 1 weight gradient disagrees", "crosscheck": "[embedding-repeated-ids-overwritten]"}),
    ("guarded", lambda name: _text("guarded_ce_numpy.py"), GUARDED_PLANT, GUARDED,
     {"pytest": "gradient disagrees", "crosscheck": "[cross-entropy-not-averaged]"}),
    ("notebook", lambda name: _text("makemore_notebook_torch.py"), NOTEBOOK_PLANT, MAKEMORE,
     {"pytest": "layer 1 weight gradient disagrees", "crosscheck": "[batchnorm-backward-without-statistics]"}),
    ("gpt2", lambda name: _text("gpt2_block_numpy.py"), GPT2_PLANT, GPT2,
     {"pytest": "layer 1 weight gradient disagrees", "crosscheck": "[tied-weight-one-gradient]"}),
    ("adamobj", lambda name: _text("optimizer_object_numpy.py"), ADAM_PLANT, ADAM,
     {"pytest": "disagrees", "crosscheck": "[adam-bias-correction-off-by-one]"}),
]


def run(cwd, *argv):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CROSSCHECK_PLUGINS")}
    done = subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, check=False,
                          timeout=900)
    return done.returncode, done.stdout + done.stderr


def _check(failures, what, status, out, want, says=None):
    """One run's verdict: its exit status is want, and a failing one says what it must."""
    summary = [line for line in out.splitlines() if re.search(r"\d+ (passed|failed)|AGREE|DISAGREE|NOT CHECKED", line)]
    print(f"{what}: exit {status} (want {want}): {summary[-1] if summary else '?'}")
    if status != want:
        failures.append(f"{what} exited {status}, not {want}")
        print(out[-6000:])
    elif says is not None and says not in out:
        failures.append(f"{what} did not say {says!r}")
        print(out[-6000:])


def ops(folder, failures):
    """One op's custom backward, as a user checks it from their folder: examples/attention_numpy_op.py and its planted
    copy through pytest --op and crosscheck op (the correct op exits 0, the planted one 1, its mistake named)."""
    import shutil

    for name in ("attention_numpy_op.py", "attention_numpy_op_buggy.py"):
        shutil.copy(EXAMPLES / name, folder / name)
    for module, want in (("attention_numpy_op", 0), ("attention_numpy_op_buggy", 1)):
        says = "[attention-softmax-backward-without-row-sum]" if want else None
        status, out = run(folder, "-m", "pytest", "--pyargs", "crosscheck_tests", "--op", f"mine={module}:OP", "-q",
                          "-p", "no:cacheprovider", "-n", "0")
        _check(failures, f"pytest --op mine={module}:OP", status, out, want, says)
        status, out = run(folder, "-m", "crosscheck", "op", f"mine={module}:OP")
        _check(failures, f"crosscheck op mine={module}:OP", status, out, want, says)


def commands(folder, failures):
    """Code in other languages, as a user checks it from their folder: examples/c copied there and built with make,
    run by the installed suite and report through --command (the correct program exits 0, the planted copy 1, named),
    examples/js/mlp.js on node; then the export, a test of their own, and verify."""
    import shutil

    shutil.copytree(EXAMPLES / "c", folder / "c", ignore=shutil.ignore_patterns("mlp", "mlp_buggy"))
    shutil.copy(EXAMPLES / "js" / "mlp.js", folder / "mlp.js")
    built = subprocess.run(["make", "-C", "c"], cwd=folder, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        failures.append(f"make -C c failed: {built.stdout}{built.stderr}")
        return
    for program, want in (("c/mlp", 0), ("c/mlp_buggy", 1)):
        spec = f"c=./{program}"
        status, out = run(folder, "-m", "pytest", "--pyargs", "crosscheck_tests", "--command", spec, "--backends", "c",
                          "-q", "-p", "no:cacheprovider", "-n", "2")
        _check(failures, f"pytest --command {spec}", status, out, want, "sigmoid-derivative-from-z" if want else None)
        status, out = run(folder, "-m", "crosscheck", "--command", spec, "--backends", "c", "--epochs", "2000",
                          "--plot", "", "--no-progress")
        _check(failures, f"crosscheck --command {spec}", status, out, want,
               "[sigmoid-derivative-from-z]" if want else None)
    status, out = run(folder, "-m", "crosscheck", "--command", "js=node mlp.js", "--backends", "js", "--model",
                      "dense:2:4,tanh,dense:4:1,sigmoid", "--samples", "32", "--batch-size", "8", "--epochs", "200",
                      "--plot", "", "--no-progress")
    _check(failures, "crosscheck --command js=node mlp.js", status, out, 0)
    status, out = run(folder, "-m", "crosscheck", "export", "--epochs", "2000", "--out", "xor")
    _check(failures, "crosscheck export", status, out, 0)
    for program, want in (("c/mlp", 0), ("c/mlp_buggy", 1)):
        ran = subprocess.run([f"./{program}", "xor/problem.safetensors", "result.safetensors"], cwd=folder,
                             capture_output=True, text=True, check=False)
        status, out = run(folder, "-m", "crosscheck", "verify", "xor", "result.safetensors")
        _check(failures, f"{program} then crosscheck verify", ran.returncode or status, out, want,
               "[sigmoid-derivative-from-z]" if want else None)


def parallel(folder, failures):
    """The sharded runs as a user starts them from their folder, on torch (this environment installs the torch extra
    alone; JAX's sharded runs are the suite's, tests/test_parallel.py): its gloo processes import the installed
    package, and data and tensor parallelism agree with the one-device reference (exit 0); a world that does not
    divide the batch is refused before training (exit 2)."""
    model = ["--model", "dense:3:8,tanh,dense:8:2,identity", "--loss", "mse", "--samples", "16", "--batch-size", "8",
             "--epochs", "20", "--plot", "", "--no-progress", "--backends", "torch"]
    for layout, want, says in (("data:2", 0, "data parallel over 2 shards"), ("tensor:2", 0, "tensor parallel over 2"),
                               ("data:3", 2, "splits each batch into 3 equal shards")):
        status, out = run(folder, "-m", "crosscheck", *model, "--parallel", layout)
        _check(failures, f"crosscheck --parallel {layout}", status, out, want, says)


def project(folder, failures):
    """A user's project with its own common/, reference/, backends/, utils/ and tests/ packages (the names the suite
    once installed at the top level), its network importing its own common and utils: from its folder, the report
    must load it and exit 0, and 1 on its planted copy (tests/test_layout.py writes it)."""
    from crosscheck_tests.test_layout import user_project

    for planted, want in ((False, 0), (True, 1)):
        where = folder / ("project_planted" if planted else "project")
        user_project(where, planted)
        status, out = run(where, "-m", "crosscheck", "--implementation", "mine=my_net:DRIVER", "--backends", "mine",
                          "--layers", "2,4,1", "--init", "standard_normal", "--epochs", "200", "--plot", "",
                          "--no-progress")
        _check(failures, f"crosscheck on {where.name}/my_net.py (its own common/ and utils/)", status, out, want)


def user(folder, name, make, plant, report_args, planted_says):
    """(the lines to print, the failures) of one user's file and its planted copy, through pytest and crosscheck."""
    lines, failures = [], []
    old, new = plant
    correct = make(name)
    (folder / f"{name}.py").write_text(correct)
    (folder / f"{name}_planted.py").write_text(_replaced(correct, old, new))
    for module, want in ((name, 0), (f"{name}_planted", 1)):
        spec = f"{name}={module}:DRIVER"
        for what, argv in (
                ("pytest", ["-m", "pytest", "--pyargs", "crosscheck_tests", "--implementation", spec,
                            "--backends", name, "-q", "-p", "no:cacheprovider", "-n", "0"]),
                ("crosscheck", ["-m", "crosscheck", "--implementation", spec, "--backends", name,
                                *report_args, "--plot", "", "--no-progress"])):
            status, out = run(folder, *argv)
            summary = [line for line in out.splitlines() if re.search(r"\d+ (passed|failed)|AGREE|DISAGREE|"
                                                                      r"NOT CHECKED", line)]
            lines.append(f"{what} on {module}.py: exit {status} (want {want}): {summary[-1] if summary else '?'}")
            if status != want:
                failures.append(f"{what} on {module}.py exited {status}, not {want}")
                lines.append(out[-6000:])
            elif want == 1 and planted_says[what] not in out:
                failures.append(f"{what} on {module}.py did not say {planted_says[what]!r}")
                lines.append(out[-6000:])
            coverage = [line for line in out.splitlines() if "functions and rules by name" in line]
            if coverage:
                lines.append(coverage[0])
            if want == 0 and what == "pytest" and (not coverage or "NOT EXERCISED" in coverage[0]):
                failures.append(f"pytest on {module}.py left some of what it provides unexercised")
    return lines, failures


def main():
    import crosscheck_tests

    where = Path(crosscheck_tests.__file__).resolve().parent
    print(f"installed suite: {where}")
    if (where.parent / "pyproject.toml").is_file():
        raise SystemExit("installed_suite.py: crosscheck_tests is the checkout's tests/, not an installed copy; run it "
                         "with tox -e installed")
    failures = []
    with tempfile.TemporaryDirectory(prefix="crosscheck-user-") as folder:
        (Path(folder) / "names.txt").write_text(names_text())
        # Two users at a time, each run on one core (-n 0): a session on a plug-in is mostly its start (imports,
        # collection), which xdist's workers repeat; two at once keep both cores busy. Each user's lines print whole.
        with ThreadPoolExecutor(max_workers=2) as pool:
            for lines, found in pool.map(lambda entry: user(Path(folder), *entry), USERS):
                print("\n".join(lines))
                failures += found
        project(Path(folder), failures)
        ops(Path(folder), failures)
        commands(Path(folder), failures)
        parallel(Path(folder), failures)
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print("\nthe installed suite and the report exit 0 on correct code and 1 on each planted copy, naming it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
