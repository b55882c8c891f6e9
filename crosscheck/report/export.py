"""crosscheck export and crosscheck verify: a problem for code in any language, and the verdict on its result.

    crosscheck export --epochs 2000 --out xor/            # or any run's options, a model file's included
    (your test loads xor/problem.safetensors, computes, and writes result.safetensors, or compares with
     xor/expected.safetensors itself, within the bounds xor/manifest.json gives each tensor)
    crosscheck verify xor/ result.safetensors             # exit 0 agree, 1 disagree, 2 bad input

export writes DIR/problem.safetensors (the problem, crosscheck/exchange/tensors.py), DIR/expected.safetensors (the
reference's values under the names a result uses: each layer's output, the loss, every gradient, the losses of every
step, the parameters and the optimizer's state after each of the first epochs and at the checkpoints) and
DIR/manifest.json (the run, every tensor's shape, dtype and meaning, and each expected value's bound for the dtype).
verify checks a result as the report checks a backend: the first stage that parts, the layer and leaf, and the
diagnosis.
"""

import argparse
import json
import os
import sys

import numpy as np

from crosscheck import backends, reference
from crosscheck.adapters.readback import _driver
from crosscheck.common import registry
from crosscheck.common.driver import Unsupported
from crosscheck.exchange import tensors as exchange
from crosscheck.exchange.command import Replay
from crosscheck.report import run as report
from crosscheck.report.cli import parse_args
from crosscheck.suite.cases import upcast_problem
from crosscheck.verdict import findings, tolerances

FIRST_EPOCHS = 2  # the epochs after which the parameters are exported besides the checkpoints: where a run first parts
MANIFEST, PROBLEM, EXPECTED = "manifest.json", "problem.safetensors", "expected.safetensors"
PATH_OPTIONS = ("--model", "--data")  # options naming files: kept absolute in the manifest, for verify from anywhere


def _export_options(p):
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write the problem into (created)")
    p.add_argument("--first-epochs", type=int, default=FIRST_EPOCHS, metavar="K",
                   help="also export the parameters and optimizer state after each of the first K epochs")


def export_main(argv):
    args, case, _ = parse_args(argv, extra=_export_options, prog="crosscheck export")
    if args.first_epochs < 0:
        print("crosscheck export: error: --first-epochs must be 0 or more", file=sys.stderr)
        return 2
    if case.config.parallel is not None:
        print(f"crosscheck export: error: --parallel {case.config.parallel}: a program under test runs the problem in "
              f"one process (the protocol has no ranks yet); export it without --parallel", file=sys.stderr)
        return 2
    try:
        written = export(case, args.dtype, args.out, args.first_epochs, _portable(argv))
    except Unsupported as exc:
        print(f"crosscheck export: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(written)}")
    return 0


# Options that say nothing of the run (the report's own, and export's): left out of the manifest's argv. Each takes a
# value but --no-progress.
NOT_THE_RUN = ("--out", "--first-epochs", "--backends", "--implementation", "--command", "--device", "--json", "--plot",
               "--log-every", "--no-progress")


def _portable(argv):
    """The run's options as export was given them, files named by absolute paths, NOT_THE_RUN left out."""
    argv, kept = list(argv), []
    while argv:
        arg = argv.pop(0)
        option, eq, value = arg.partition("=")
        if option in NOT_THE_RUN:
            if not eq and option != "--no-progress" and argv:
                argv.pop(0)
            continue
        if option in PATH_OPTIONS:
            value = value if eq else argv.pop(0)
            kept += [option, os.path.abspath(value) if os.path.exists(value) else value]
            continue
        kept.append(arg)
    return kept


def checkpoints_of(case, config, first):
    return tuple(sorted({*range(1, min(first, config.epochs) + 1), *case.checkpoints(config.epochs)}))


def export(case, dtype, out, first=FIRST_EPOCHS, argv=()):
    """Write the problem, the expected values and the manifest into out (created); the files' names. Unsupported,
    before anything is written, where the dtype is not one the files carry."""
    problem = case.problem(dtype)
    config = problem.config
    exchange.check_exchangeable(config)
    os.makedirs(out, exist_ok=True)
    checkpoints = checkpoints_of(case, config, first)
    inputs = exchange.problem_tensors(config, problem.params, problem.X, problem.y, problem.orders, problem.noise)
    metadata = exchange.problem_metadata(config, exchange.TASKS, checkpoints)
    expected, meaning = _expected(problem, checkpoints)
    if dtype != "float64":  # the values a lower precision is compared with: the float64 run of the same values
        expected64, _ = _expected(upcast_problem(problem), checkpoints)
        bounds = _low_bounds(config, expected, expected64)
        expected = expected64
    else:  # the spread of the reference's own values under rounding: its extended twin and its nudged shadow run
        bounds = _derived_bounds(expected, _twins(problem, checkpoints))
    exchange.write(os.path.join(out, PROBLEM), inputs, metadata)
    exchange.write(os.path.join(out, EXPECTED), expected, {"protocol": exchange.PROTOCOL, "dtype": "float64"})
    manifest = {
        "protocol": exchange.PROTOCOL,
        "run": metadata | {"config": json.loads(metadata["config"])},
        "argv": list(argv),
        "layout": "samples as rows: X (N, in), dense weights (in, out), biases (out,); C order, little-endian",
        "verify": f"crosscheck verify {out} RESULT.safetensors",
        "problem": {name: _entry(t, _input_meaning(name)) for name, t in inputs.items()},
        "expected": {name: _entry(t, meaning[name]) | {"bound": bounds[name]} for name, t in expected.items()},
        "bound": "|result - expected| <= atol + rtol |expected|, elementwise"
                 + ("; atol derived from the reference's own spread under rounding (its extended-precision twin, its "
                    "run nudged by an ulp a step: docs/precision.md)" if dtype == "float64" else
                    f"; expected is the float64 run of the same values, atol derived from the NumPy {dtype} "
                    f"reference's own deviation (docs/precision.md)"),
    }
    with open(os.path.join(out, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
    return [os.path.join(out, name) for name in (PROBLEM, EXPECTED, MANIFEST)]


def _entry(t, meaning):
    return {"shape": list(t.shape), "dtype": str(t.dtype), "meaning": meaning}


def _input_meaning(name):
    if name == "X":
        return "the inputs, one sample per row"
    if name == "y":
        return "the targets, one sample per row"
    if name == "orders":
        return "each epoch's sample order: its minibatches are consecutive slices"
    if name.startswith("masks."):
        return f"dropout layer {name[6:]}'s keep masks, (epochs, steps, batch, width): 1 keeps, 0 drops"
    return f"the initial {name.replace('.', ' ').replace('_', ' ')}"


def _expected(problem, checkpoints):
    """The reference's values for problem under a result's names (and the optimizer's state), with their meanings."""
    ref = reference.DRIVER
    config, params, X, y = problem.config, problem.params, problem.X, problem.y
    run = ref.train(problem, checkpoints)
    # the trained network in evaluation mode (batch norm reading its running statistics, dropout passing all)
    evaluated = ref.run_forward(run.params, X, config, buffers=run.state.buffers if config.buffer_names() else None)
    values, meaning = _point_values(config, ref.run_layers(params, X, config), ref.run_gradients(params, X, y, config))
    run_values, run_meaning = _run_values(config, run, evaluated, checkpoints)
    return {k: np.asarray(v) for k, v in (values | run_values).items()}, meaning | run_meaning


def _point_values(config, outputs, loss_and_grads):
    """(values, meanings) under a result's names of the first step: each layer's output, the loss, the gradients."""
    keys, (loss, grads) = exchange.leaf_keys(config), loss_and_grads
    values, meaning = {}, {}
    for i, (layer, out) in enumerate(zip(config.model, outputs), start=1):
        values[f"forward.{i}"], meaning[f"forward.{i}"] = out, f"the output of layer {i} of the model ({layer.kind})"
    values["output"], meaning["output"] = values[f"forward.{len(config.model)}"], "the network's output"
    values["loss"], meaning["loss"] = np.asarray(loss), f"the {config.loss} loss at the initial parameters"
    for key, g in zip(keys, (g for layer in grads for g in layer)):
        values[f"grad.{key}"], meaning[f"grad.{key}"] = g, f"dL/d{key}"
    return values, meaning


def _run_values(config, run, evaluated, checkpoints):
    """(values, meanings) under a result's names of a run: its losses, the final parameters, the output in evaluation
    mode after it (evaluated), and each checkpoint's parameters, optimizer state and buffers."""
    keys = exchange.leaf_keys(config)
    values, meaning = {}, {}
    values["evaluation.output"] = evaluated
    meaning["evaluation.output"] = "the output in evaluation mode after the last epoch"
    values["losses"], meaning["losses"] = run.losses, "each step's loss, before its update: (epochs, steps)"
    for key, p in zip(keys, (p for layer in run.params for p in layer)):
        values[f"final.{key}"], meaning[f"final.{key}"] = p, f"{key} after the last epoch"
    for e in checkpoints:
        state = run.checkpoints[e]
        for key, p in zip(keys, (p for layer in state.params for p in layer)):
            values[f"epoch{e}.{key}"], meaning[f"epoch{e}.{key}"] = p, f"{key} after epoch {e}"
        for name in registry.OPTIMIZERS[config.optimizer].state:
            for key, s in zip(keys, (s for layer in state.opt_state[name] for s in layer)):
                label = f"epoch{e}.state.{exchange.state_key(name)}.{key}"
                values[label], meaning[label] = s, f"{config.optimizer}'s {name} of {key} after epoch {e}"
        for name, b in zip(config.buffer_names(), (b for layer in state.buffers for b in layer)):
            label = f"epoch{e}.buffer.{exchange.leaf_key(name)}"
            values[label], meaning[label] = b, f"{name} after epoch {e}"
    return values, meaning


def _low_bounds(config, ours, ref64, rule=None):
    """{name: the absolute bound on |result - expected64|} in a lower precision: tolerances.low_bound of the NumPy
    reference's own deviation; a parameter's over every checkpoint at once, as the trajectory check stacks them."""
    rule = rule or config.compute or config.dtype
    groups: dict = {}
    for name in ours:
        groups.setdefault(name.split(".", 1)[1] if name.startswith("epoch") else name, []).append(name)
    bounds = {}
    for names in groups.values():
        deviation = max(float(np.max(np.abs(np.asarray(ours[k], np.float64) - ref64[k]))) for k in names)
        scale = max(float(np.max(np.abs(ref64[k]))) for k in names)
        bounds.update(dict.fromkeys(names, {"rtol": 0.0, "atol": tolerances.low_bound(rule, deviation, scale)}))
    return bounds


def _derived_bounds(expected, twins):
    """{name: the absolute float64 bound}: tolerances.low_bound of the widest of the twins' deviations from expected
    (each twin holds some of the names), a parameter's over every checkpoint at once, as the checks bound them."""
    widest = {name: max((t for t in twins if name in t),
                        key=lambda t: float(np.max(np.abs(np.asarray(t[name], np.float64) - expected[name]))),
                        default={name: expected[name]})[name] for name in expected}
    return _low_bounds(None, widest, expected, rule="float64")


def _twins(problem, checkpoints):
    """The reference's values of a float64 problem under rounding, under a result's names, in float64: the training
    values of its run nudged by an ulp a step (findings.nudged_train), and every value computed in extended precision
    (findings.extended_layers and extended_train, where longdouble is wider)."""
    config = findings.one_device(problem.config)

    def run_values(run, X):
        with np.errstate(all="ignore"):
            evaluated = reference.mlp.forward(run.params, X, config, run.state.buffers if config.buffer_names()
                                              else None)[-1][1]
        return _run_values(config, run, evaluated, checkpoints)[0]

    twins = [run_values(findings.nudged_train(problem, checkpoints), problem.X)]
    arrays = findings.widened(problem)
    if arrays is not None:  # the run's evaluated output in extended precision too: on X in it
        layers, run = findings.extended_layers(problem), findings.extended_train(problem, checkpoints)
        twins.append(_point_values(config, *layers)[0] | run_values(run, arrays[1]))
    return [{k: np.asarray(v, np.float64) for k, v in twin.items()} for twin in twins]


# -- verify ------------------------------------------------------------------------------------------------------

def verify_main(argv):
    p = argparse.ArgumentParser(prog="crosscheck verify", description="Check a result written by code in any "
                                "language against a problem written by crosscheck export.")
    p.add_argument("folder", metavar="DIR", help="the folder crosscheck export wrote")
    p.add_argument("result", metavar="RESULT.safetensors", help="the result your code wrote")
    p.add_argument("--name", default="result", help="what the report calls the result's implementation")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = p.parse_args(argv)
    try:
        run_args, case, driver = _replayed(args)
    except (exchange.BadFile, exchange.BadResult, ValueError) as exc:
        print(f"crosscheck verify: error: {exc}", file=sys.stderr)
        return 2
    backends.register(args.name, lambda: driver)
    rows, _ = report.run_report(run_args, case, [backends.REFERENCE, args.name])
    if args.json:
        report.write_json(args.json, run_args, case, rows)
    return report.verdict(rows)[1]


def _replayed(args):
    """(the report's options, the case, a Driver answering from the result) for verify; BadFile, BadResult or
    ValueError where the folder or the result is not what it should be."""
    manifest_path = os.path.join(args.folder, MANIFEST)
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except OSError as exc:
        raise exchange.BadFile(f"{manifest_path}: {exc.strerror} (is {args.folder} a folder crosscheck export "
                               f"wrote?)") from None
    except json.JSONDecodeError as exc:
        raise exchange.BadFile(f"{manifest_path}: not valid JSON: {exc}") from None
    if manifest.get("protocol") != exchange.PROTOCOL:
        raise exchange.BadFile(f"{manifest_path}: protocol {manifest.get('protocol')!r}; this crosscheck reads "
                               f"{exchange.PROTOCOL!r}")
    tensors, metadata = exchange.read(os.path.join(args.folder, PROBLEM))
    run_args, case, _ = parse_args([*manifest["argv"], "--backends", backends.REFERENCE, "--plot", "",
                                    "--no-progress"], prog="crosscheck verify")
    problem = case.problem(run_args.dtype)
    config = problem.config
    again = exchange.problem_tensors(config, problem.params, problem.X, problem.y, problem.orders, problem.noise)
    if set(again) != set(tensors) or not all(np.array_equal(again[k], tensors[k]) for k in tensors):
        raise exchange.BadFile(f"{args.folder}: its problem is not the one its options make with this crosscheck "
                               f"(exported by another version?); export it again")
    checkpoints = tuple(int(e) for e in metadata["checkpoints"].split(","))
    result, asked = exchange.check_result(args.name, args.result, config, len(problem.X), len(problem.steps),
                                          tuple(metadata["tasks"].split(",")), checkpoints)
    replay = Replay(args.name, args.result, tensors, metadata, result, asked)
    return run_args, case, _driver(args.name, replay, None, f"file {os.path.basename(args.result)}")
