"""The main job: train one configuration on every backend from one seed, and report how they agree.

    crosscheck                      # the second seed's XOR run: 2-2-1, 180,000 epochs, lr 0.1
    crosscheck --layers 2,4,1 --init standard_normal --epochs 10000   # the first seed's
    crosscheck --json out/report.json --plot out/report.png
    crosscheck --model examples/models/mlp-layernorm.toml   # a model file: its layers, data and optimizer
    crosscheck --layers 2,4,1 --init standard_normal --epochs 10000 --compute float16 --loss-scale dynamic

Exit status: 0 when every backend agreed with the reference, 1 when one did not
or diverged (the reference included: the table still shows where each backend went
non-finite), 2 for bad arguments, refused before any training starts.
"""

import argparse
import importlib.util
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

import backends
from common import dtypes, registry
from common.driver import Run, Unsupported
from reference import SEED2_XOR, Config
from reference.data import DATASETS
from reference.initializers import dropout_masks

from . import checks, tolerances
from .cases import Case, upcast
from .compare import Disagreement, check_comparable


@dataclass
class Row:
    """One backend's line in the report."""

    backend: str
    version: str
    device: str
    final_loss: float | None = None
    predictions: list | None = None
    gradient_deviation: float | None = None
    autodiff_deviation: float | None = None
    loss_deviation: float | None = None
    loss_bound: float | None = None  # the reference's row in a low-precision run: the bound on every backend's
    # loss deviation from the float64 run (tolerances.low_bound of the reference's own)
    param_deviation: float | None = None
    first_epoch_out: int | None = None  # first epoch outside tolerance, None if none
    diverged_at: int | None = None  # first epoch whose loss (or the parameters after it) is not finite
    wall_s: float | None = None
    epochs_per_s: float | None = None
    agree: bool | None = True  # None: the backend declares this configuration unsupported
    problems: list = field(default_factory=list)
    deviation_curve: list | None = None  # per epoch |loss - reference|, for the plot
    param_curve: list | None = None  # per checkpoint max |params - reference|
    diagnosis: str | None = None  # where a disagreeing backend's first step parts, what it looks like (diagnose.py)
    checks: dict = field(default_factory=dict)  # each check of the report -> "passed", "failed" or why it was skipped

    def outcome(self, check, result):
        self.checks.setdefault(check, result)  # the first word on a check stands (a failure is not overwritten)

    def pending(self):
        """The check under way: the first of CHECKS without an outcome."""
        return next((check for check in CHECKS if check not in self.checks), CHECKS[-1])


CHECKS = ("gradients", "autodiff gradients", "training run", "evaluation output")  # the report's, per backend


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Says each default once: not where the help text already says it, nor where the default is None."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, []) or "default" in text:
            return text
        return super()._get_help_string(action)


def parse_args(argv=None):
    d = SEED2_XOR
    p = argparse.ArgumentParser(prog="crosscheck", description=__doc__.split("\n\n")[0],
                                formatter_class=_HelpFormatter)
    p.add_argument("--layers", default=",".join(map(str, d.layers)), help="widths, input first, e.g. 2,4,1")
    p.add_argument("--hidden", default=d.hidden, choices=registry.hidden_activations(), help="hidden activation")
    p.add_argument("--output", default=d.output, choices=tuple(registry.ACTIVATIONS), help="output activation")
    p.add_argument("--model", metavar="LAYERS|FILE.toml", default=None,
                   help="an explicit sequence of layers instead of --layers/--hidden/--output, a dense layer as "
                        "dense:IN:OUT, a layer norm or batch norm as layernorm:FEATURES or batchnorm:FEATURES, "
                        "dropout as dropout:RATE, a convolution as conv2d:C_IN:C_OUT:KERNEL:STRIDE:PADDING (with "
                        "--input-shape), a pooling layer as maxpool2d:KERNEL:STRIDE or avgpool2d:KERNEL:STRIDE, "
                        "an embedding of ids as embedding:VOCABULARY:DIM and a recurrent layer as rnn:IN:HIDDEN or "
                        "lstm:IN:HIDDEN (with --input-shape T, the sequence length; it gives every step, scored by "
                        "a dense layer after it, or the last step only with last after it), e.g. "
                        f"dense:2:4,tanh,dense:4:4,relu,dense:4:1,sigmoid (kinds: "
                        f"{', '.join(registry.LAYERS)}); or a TOML model file giving the layers with their loss, "
                        "data and training (docs/layers-and-optimizers.md, 'Model files'; options given here "
                        "override the file's)")
    p.add_argument("--input-shape", default=None, metavar="C,H,W|T",
                   help="the per-sample shape of the inputs, for a model that begins with conv2d (C,H,W: synthetic "
                        "images) or embedding (T: windows of a generated text)")
    p.add_argument("--loss", default=d.loss, choices=tuple(registry.LOSSES))
    p.add_argument("--init", default=d.init, choices=tuple(registry.INITS), help="initialisation scheme")
    p.add_argument("--dtype", default=None, choices=registry.DTYPES,
                   help=f"the run's dtype (default: {d.dtype}; float32, the master weights', with --compute)")
    p.add_argument("--compute", default=None, choices=dtypes.HALF,
                   help="mixed precision: each step's forward and backward in this dtype on float32 master weights "
                        "(docs/precision.md)")
    p.add_argument("--loss-scale", default=None, metavar="dynamic|S",
                   help="mixed precision's loss scaling: dynamic (torch.amp's GradScaler: 2^16, halved and the step "
                        "skipped on overflow, doubled after 2000 steps) or a static scale S (default: none)")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate")
    opt = p.add_argument_group("optimizer", "torch.optim's definitions and defaults "
                               "(docs/layers-and-optimizers.md, 'Optimizers')")
    opt.add_argument("--optimizer", default=d.optimizer, choices=tuple(registry.OPTIMIZERS))
    opt.add_argument("--momentum", type=float, default=None,
                     help=f"momentum and nesterov's mu (default {_default('momentum')})")
    opt.add_argument("--betas", default=None, metavar="B1,B2",
                     help=f"adam and adamw's betas (default {_default('betas')})")
    opt.add_argument("--alpha", type=float, default=None,
                     help=f"rmsprop's smoothing constant (default {_default('alpha')})")
    opt.add_argument("--eps", type=float, default=None,
                     help="the optimizer's epsilon (default: its own, e.g. 1e-8 for adam, 1e-10 for adagrad)")
    opt.add_argument("--weight-decay", type=float, default=d.weight_decay,
                     help="L2 weight decay, coupled into the gradient (decoupled for adamw)")
    opt.add_argument("--no-decay-biases", action="store_true", help="leave the biases out of weight decay")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: full batch)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--samples", type=int, default=None,
                   help="train on this many synthetic samples drawn from the seed (default: XOR); with --data, its "
                        "first N")
    p.add_argument("--data", metavar="digits|iris|FILE", default=None,
                   help="train on this data: scikit-learn's bundled digits or iris (the data extra), or a file: .npz "
                        "with X and y, .csv (inputs' columns, then targets' or one class-label column), .txt (a "
                        "character model's text); checked against the model before training")
    p.add_argument("--backends", default=None,
                   help="comma-separated (default: every registered one, plug-ins included); the reference always runs")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="device for the framework backends")
    p.add_argument("--implementation", action="append", default=[], metavar="NAME=module:object",
                   help="also check your own implementation (repeatable; see docs/your-code.md)")
    p.add_argument("--checkpoints", type=int, default=50, help="how many times to compare parameters")
    p.add_argument("--log-every", type=int, default=0, metavar="N",
                   help="print each backend's loss every N epochs, as the seeds log (default: 0, off)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON (default: not written)")
    p.add_argument("--plot", metavar="PATH", default="crosscheck-report.png",
                   help="write the loss and deviation curves as PNG ('' for none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    from_file = _model_file(p, argv)
    p.set_defaults(**from_file)
    args = p.parse_args(argv)
    if from_file:
        args.model = from_file["model"]  # --model named the file; the file names the layers
    if args.dtype is None:
        args.dtype = "float32" if args.compute else d.dtype
    loss_scale = args.loss_scale
    if loss_scale is not None and str(loss_scale) != "dynamic":
        try:
            loss_scale = float(loss_scale)
        except ValueError:
            p.error(f"--loss-scale must be dynamic or a number, got {args.loss_scale!r}")
    try:
        layers = tuple(int(w) for w in args.layers.split(","))
    except ValueError:
        p.error(f"--layers must be comma-separated integers, got {args.layers!r}")
    try:
        betas: Any = None if args.betas is None else tuple(float(b) for b in args.betas.split(","))
    except ValueError:
        p.error(f"--betas must be two comma-separated numbers, got {args.betas!r}")
    input_shape = None
    if args.input_shape is not None:
        try:
            input_shape = tuple(int(n) for n in args.input_shape.split(","))
        except ValueError:
            p.error(f"--input-shape must be comma-separated integers, e.g. 1,8,8, got {args.input_shape!r}")
    model = None
    if args.model is not None:
        try:
            model = tuple(kind if not shape else (kind, *map(_number, shape))
                          for kind, *shape in (entry.strip().split(":") for entry in args.model.split(",")))
        except ValueError:
            p.error(f"--model entries are a kind or kind:IN:OUT with integer widths (dropout:RATE a probability), "
                    f"got {args.model!r}")
    try:
        config = Config(model=model, layers=layers, hidden=args.hidden, output=args.output, loss=args.loss,
                        init=args.init, input_shape=input_shape,
                        lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, dtype="float64", seed=args.seed,
                        optimizer=args.optimizer, momentum=args.momentum, betas=betas, alpha=args.alpha, eps=args.eps,
                        weight_decay=args.weight_decay, decay_biases=not args.no_decay_biases)
        if args.compute is not None or loss_scale is not None:  # mixed precision: validated with its dtype
            config = config.replace(dtype=args.dtype, compute=args.compute, loss_scale=loss_scale)
    except (ValueError, TypeError) as exc:
        p.error(str(exc))
    if args.samples is None and args.data is None and (config.sample_shape, config.layers[-1]) != ((2,), 1):
        p.error(f"XOR needs 2 inputs and 1 output, got layers {','.join(map(str, config.layers))}; pass --samples N "
                "for synthetic data")
    if args.samples is not None and args.samples < 1:
        p.error("--samples must be positive")
    if args.checkpoints < 1:
        p.error("--checkpoints must be positive")
    case = Case("report", config, samples=args.samples, n_checkpoints=min(args.checkpoints, args.epochs),
                data=args.data)
    try:  # the data the run trains on, checked against the model before anything trains
        n_samples = len(case.inputs(args.dtype)[2])
    except ValueError as exc:
        p.error(str(exc))
    if args.batch_size is not None and args.batch_size > n_samples:
        where = f"--data {args.data}" if args.data else "XOR" if args.samples is None else "--samples"
        p.error(f"--batch-size {args.batch_size} exceeds the {n_samples} samples ({where}); choose at most {n_samples}")
    if args.plot and importlib.util.find_spec("matplotlib") is None:  # the report extra is not installed
        print(f"crosscheck: no plot ({args.plot}): matplotlib is not installed "
              f"(pip install 'backprop-crosscheck[report]')", file=sys.stderr)
        args.plot = ""
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        problem = _unwritable(path)
        if problem:
            p.error(f"{option} {path}: {problem}")
    for spec in args.implementation:
        try:
            backends.register_spec(spec)
        except ValueError as exc:
            p.error(str(exc))
    names = backends.names() if args.backends is None else [n.strip() for n in args.backends.split(",") if n.strip()]
    unknown = [n for n in names if n not in backends.names()]
    if unknown:
        p.error(f"unknown backend(s) {unknown}; known: {backends.names()} (plug-ins: --implementation)")
    names = [backends.REFERENCE] + [n for n in dict.fromkeys(names) if n != backends.REFERENCE]
    for name in names[1:]:
        try:
            driver = backends.load(name)
        except backends.BackendUnavailable:
            continue  # reported in the table (a failure only in strict mode)
        except backends.PluginError as exc:
            p.error(str(exc))
        if args.device not in driver.devices and name in backends.REGISTRY:
            p.error(f"--device {args.device}: backend {name!r} offers only {', '.join(driver.devices)} on this machine")
    return args, case, names


# A model file's keys: the command line's options (underscores for dashes) that describe the run, not the report.
MODEL_FILE_KEYS = ("model", "input_shape", "loss", "init", "dtype", "compute", "loss_scale", "lr", "optimizer",
                   "momentum", "betas", "alpha", "eps", "weight_decay", "decay_biases", "epochs", "batch_size", "seed",
                   "samples", "data")


def _default(hyperparameter):
    """A hyperparameter's default, as the registry's optimizers that read it give it ('0.9', '0.9,0.999')."""
    value = next(o.defaults[hyperparameter] for o in registry.OPTIMIZERS.values() if hyperparameter in o.defaults)
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _model_file(parser, argv):
    """The defaults a TOML model file named by --model sets ({} when --model is not a .toml path); exits 2 (through
    parser.error) on a missing or malformed file, or on a key it does not know, naming them."""
    path = parser.parse_known_args(argv)[0].model  # argparse's own reading of --model, before the file's defaults
    if path is None or not path.endswith(".toml"):
        return {}
    try:
        import tomllib  # Python 3.11 and later
    except ModuleNotFoundError:
        parser.error(f"--model {path}: model files need Python 3.11 or later (tomllib); give the layers inline")
    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
    except OSError as exc:
        parser.error(f"--model {path}: {exc.strerror}")
    except tomllib.TOMLDecodeError as exc:
        parser.error(f"--model {path}: not valid TOML: {exc}")
    unknown = [key for key in spec if key not in MODEL_FILE_KEYS]
    if unknown:
        parser.error(f"--model {path}: unknown key(s) {', '.join(map(repr, unknown))}; a model file may give "
                     f"{', '.join(MODEL_FILE_KEYS)}")
    if "model" not in spec:
        parser.error(f"--model {path}: the file gives no model (model = [\"dense:IN:OUT\", \"tanh\", ...])")
    defaults = dict(spec)
    for key, value in spec.items():  # lists as the command line spells them (a string is taken as spelled)
        if key in ("model", "betas", "input_shape") and not isinstance(value, str):
            if not isinstance(value, list):
                parser.error(f"--model {path}: {key} must be a list or a string, got {value!r}")
            defaults[key] = ",".join(map(str, value))
    data = defaults.get("data")
    if isinstance(data, str) and data not in DATASETS and not os.path.isabs(data):
        defaults["data"] = os.path.join(os.path.dirname(path), data)  # beside the model file
    if "decay_biases" in defaults:
        defaults["no_decay_biases"] = not defaults.pop("decay_biases")
    return defaults


def _number(text):
    """An integer where the text is one (a width), else a float (a dropout rate); ValueError otherwise."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _unwritable(path):
    """Why path cannot be written (checked before training, not after it), or None."""
    if not path:
        return None
    if os.path.isdir(path):
        return "is a directory"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"no such directory {folder}"
    if not os.access(folder, os.W_OK):
        return f"directory {folder} is not writable"
    return None


def train_with_progress(driver, case, dtype, device, bar):
    """driver.run_train stretch by stretch (between checkpoints), so that a bar can follow it."""
    config, params, X, y, orders = case.inputs(dtype)
    return _train_stretches(driver, case, config, params, X, y, orders, device, bar)


def _train_stretches(driver, case, config, params, X, y, orders, device, bar):
    """(run, diverged_at): the run up to the stretch in which it went non-finite, if it did, and that epoch.

    A diverging run overflows on its way; the overflow is reported here as divergence, not warned about.
    """
    losses, saved, done, opt_state, step, buffers = [], {}, 0, None, 0, None
    masks = dropout_masks(config, len(X))  # the whole run's: each stretch is handed its own epochs of them
    # A train that cannot continue a run (a plug-in's without opt_state, step and buffers) trains at once: one stretch
    # holding every checkpoint, so that no state is lost between stretches.
    continues = driver.continues()
    for stop in case.checkpoints(config.epochs) if continues else (config.epochs,):
        stretch = config.replace(epochs=stop - done)
        with np.errstate(all="ignore"):  # each stretch continues the last one's optimizer state, step and buffers
            part = driver.run_train(params, X, y, stretch, None if orders is None else orders[done:stop],
                                    () if continues else case.checkpoints(config.epochs), device,
                                    opt_state=opt_state, step=step, buffers=buffers,
                                    masks=None if masks is None else [m[done:stop] for m in masks])
        losses.append(part.losses)
        saved.update({done + epoch: state for epoch, state in part.checkpoints.items()})
        saved[stop] = part.state
        params, opt_state, step, buffers = part.state
        bad_loss = ~np.isfinite(part.losses).all(axis=1)
        if bad_loss.any():
            run = Run(losses=np.concatenate(losses), checkpoints=saved, params=params, state=part.state)
            return run, done + int(np.argmax(bad_loss))
        if not all(np.isfinite(t).all() for layer in params for t in layer):
            return Run(losses=np.concatenate(losses), checkpoints=saved, params=params, state=part.state), stop
        if bar is not None:
            bar.update(stop - done)
        done = stop
    return Run(losses=np.concatenate(losses), checkpoints=saved, params=params, state=part.state), None


def _param_curve(run, target, epochs):
    """Per checkpoint, the largest |parameter - target| over all layers."""
    return [max(float(np.abs(a.astype(np.float64) - b).max())
                for a, b in zip(checks.flat(run.checkpoints[e].params), checks.flat(target.checkpoints[e].params)))
            for e in epochs]


def deviations(run, ref, ref64, row):
    """Fill row's deviations and curves, for display; whether they are in tolerance is checks.check_trajectory's
    verdict alone (one route, so the table's "first epoch out" and "agrees" cannot contradict each other)."""
    check_comparable(run.losses, ref.losses, what="loss", backend=row.backend)
    target = ref if ref64 is None else ref64
    epochs = sorted(run.checkpoints)
    loss_dev = np.abs(run.losses.astype(np.float64) - target.losses).max(axis=1)
    row.deviation_curve = loss_dev.tolist()
    row.loss_deviation = float(loss_dev.max())
    row.param_curve = _param_curve(run, target, epochs)
    row.param_deviation = max(row.param_curve)


def run_report(args, case, names, out=None):
    out = out or sys.stdout
    dtype = args.dtype
    config, params, X, y, orders = case.inputs(dtype)
    tqdm = _tqdm(args.no_progress)
    rows, runs, ref, ref64, ref_diverged = [], {}, None, None, None
    if dtype != "float64":
        c64, p64, X64, y64 = upcast(config, params, X, y)
        ref64, _ = _train_stretches(backends.load(backends.REFERENCE), case, c64, p64, X64, y64, orders, "cpu", None)
    for name in names:
        try:
            driver = backends.load(name)
        except backends.BackendUnavailable as exc:  # not checked; a failure in strict mode (as in the tests)
            agree = False if backends.strict_from_environment() else None
            rows.append(Row(name, "-", "-", agree=agree, problems=[str(exc)],
                            checks=dict.fromkeys(CHECKS, "not installed")))
            continue
        device = "cpu" if name == backends.REFERENCE else args.device
        row = Row(name, driver.version, device)
        rows.append(row)
        try:
            for kind, autodiff in (("gradient", False), ("autodiff", True)):
                check = "autodiff gradients" if autodiff else "gradients"
                if autodiff and driver.autodiff_gradients is None:
                    row.outcome(check, f"{name} has no autodiff")
                    continue
                try:
                    diffs = checks.check_gradients(driver, case, dtype, device, autodiff=autodiff)
                    row.outcome(check, "passed")
                except Disagreement as exc:
                    row.agree = False
                    row.problems.append(str(exc))
                    row.outcome(check, "failed")
                    diffs = []
                setattr(row, f"{kind}_deviation", max((d.max_abs for _, _, d in diffs), default=None))
            bar = tqdm(total=config.epochs, desc=f"{name:>6}", unit="epoch", leave=False) if tqdm else None
            start = time.perf_counter()
            try:
                run, row.diverged_at = train_with_progress(driver, case, dtype, device, bar)
            finally:
                if bar is not None:
                    bar.close()
            row.wall_s = time.perf_counter() - start
            runs[name] = run
            if name == backends.REFERENCE:
                ref, ref_diverged = run, row.diverged_at
            if row.diverged_at is not None:
                reason = f"{name}: diverged: the loss or the parameters are not finite from epoch {row.diverged_at}"
                if name == backends.REFERENCE:  # the learning rate is a suspect only where the reference diverges too
                    raise Disagreement(f"{reason} (lr {config.lr:g} too large?): the reference itself, so there is "
                                       f"nothing to compare with")
                if ref_diverged is None:
                    raise Disagreement(f"{reason}, while the reference stays finite; divergence is never agreement")
            if ref_diverged is not None:
                row.agree = None
                row.problems.append(f"{name}: not compared: the NumPy reference diverged at epoch {ref_diverged}")
                row.outcome("training run", "not compared: the reference diverged")
                continue
            if name != backends.REFERENCE and ref is None:
                raise Disagreement("the reference run failed, so there is nothing to compare with")
            row.epochs_per_s = config.epochs / row.wall_s
            row.final_loss = float(run.losses[-1].mean())
            # in evaluation mode, where the model keeps buffers (batch norm reads its running statistics)
            buffers = run.state.buffers if run.state is not None and checks.flat(run.state.buffers) else None
            output = driver.run_forward(run.params, X, config, device, buffers=buffers)
            row.predictions = np.round(output[:8].astype(np.float64), 4).ravel().tolist()
            deviations(run, ref, ref64, row)
            if name == backends.REFERENCE and ref64 is not None:
                row.loss_bound = tolerances.low_bound(config.compute or dtype, row.loss_deviation,
                                                      float(np.abs(ref64.losses).max()))
            if name != backends.REFERENCE:
                try:
                    checks.check_trajectory(driver, case, dtype, device, run=run, ref=ref, ref64=ref64)
                except Disagreement as exc:
                    row.first_epoch_out = exc.first_epoch
                    raise
            row.outcome("training run", "passed")
            row.outcome("evaluation output", "passed")
        except Disagreement as exc:
            row.agree = False
            row.problems.append(str(exc))
            row.outcome(row.pending(), "failed")
        except Unsupported as exc:
            row.agree = None
            row.problems.append(str(exc))
            for check in CHECKS:
                row.outcome(check, f"unsupported: {exc}")
        except Exception as exc:  # noqa: BLE001  (code under test crashed: its row says so, the other rows complete)
            if name == backends.REFERENCE:
                raise
            row.agree = False
            row.problems.append(f"{name}: raised {type(exc).__name__}: {exc} (a crash, not a result)")
            row.outcome(row.pending(), "failed (a crash)")
        for check in CHECKS:
            row.outcome(check, "not reached: an earlier check failed")
        blamed = any("the odd one out: numpy (the reference)" in p for p in row.problems)
        if row.agree is False and name != backends.REFERENCE and not blamed:
            row.diagnosis = _diagnosis(driver, case, device)
    _print_table(rows, config, out)
    if args.log_every:
        _print_log(runs, args.log_every, out)
    return rows, runs


def _diagnosis(driver, case, device):
    """The diagnosis of a disagreeing row (crosscheck/diagnose.py), or why there is none."""
    from .diagnose import diagnose

    try:
        return diagnose(driver, case, device).text()
    except Unsupported as exc:
        return f"no diagnosis: {exc}"
    except Exception as exc:  # noqa: BLE001  (the row's own findings stand)
        return f"no diagnosis: it raised {type(exc).__name__}: {exc}"


def _fmt(value, spec=".2e"):
    return "-" if value is None else format(value, spec)


def _print_table(rows, config, out):
    images = f"{'x'.join(map(str, config.sample_shape))} inputs, " if len(config.sample_shape) > 1 else ""
    print(f"\ncross-check of {images}{'-'.join(map(str, config.layers))} {config.hidden}/{config.output}, "
          f"loss {config.loss}, "
          f"init {config.init}, lr {config.lr:g}, {config.epochs:,} epochs, "
          f"{'full batch' if config.batch_size is None else f'batches of {config.batch_size}'}, seed {config.seed}, "
          f"optimizer {config.describe_optimizer()}, {_precision(config)}", file=out)
    header = ["backend", "version", "device", "final loss", "predictions", "max |dgrad|", "max |dautodiff|",
              "max |dloss|", "max |dparams|", "first epoch out", "diverged at", "wall s", "epochs/s", "agrees"]
    table = [header]
    for r in rows:
        table.append([r.backend, r.version, r.device, _fmt(r.final_loss, ".4e"),
                      "-" if r.predictions is None else " ".join(f"{v:.3f}" for v in r.predictions[:4]),
                      _fmt(r.gradient_deviation), _fmt(r.autodiff_deviation), _fmt(r.loss_deviation),
                      _fmt(r.param_deviation), "-" if r.first_epoch_out is None else str(r.first_epoch_out),
                      "-" if r.diverged_at is None else str(r.diverged_at),
                      _fmt(r.wall_s, ".2f"), _fmt(r.epochs_per_s, ",.0f"),
                      {True: "yes", False: "NO", None: "n/a"}[r.agree]])
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for i, line in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)), file=out)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        for problem in r.problems:
            print(f"\n{problem}", file=out)
        if r.diagnosis:
            print(f"\n{r.diagnosis}", file=out)
    _print_checks(rows, out)
    print(f"\n{verdict(rows)[0]}", file=out)


def verdict(rows):
    """(the verdict line, the exit status): AGREE (0) only when some backend besides the reference was compared and
    every compared one agreed; DISAGREE or DIVERGED (1); NOT CHECKED when nothing was compared with the reference,
    with the reason: exit 0, or 1 in strict mode where a backend asked for went unchecked (unsupported or missing)."""
    bad = [r.backend for r in rows if r.agree is False]
    compared = [r for r in rows if r.agree is not None and r.backend != backends.REFERENCE]
    skipped = [r for r in rows if r.agree is None]
    reference_row = next((r for r in rows if r.backend == backends.REFERENCE), None)
    if reference_row is not None and reference_row.diverged_at is not None:
        return (f"DIVERGED: the NumPy reference is not finite from epoch {reference_row.diverged_at}, so no backend "
                "could be compared; the table shows where each went non-finite"), 1
    if bad:
        return f"DISAGREE: {', '.join(bad)} did not match the NumPy reference" + _unchecked(skipped), 1
    if not compared:
        if not skipped:
            return ("NOT CHECKED: only the NumPy reference ran, so nothing was compared with it (name another backend "
                    "with --backends)"), 0
        reasons = "; ".join(f"{r.backend}: {r.problems[0] if r.problems else 'not run'}" for r in skipped)
        return f"NOT CHECKED: no backend was compared with the NumPy reference ({reasons})", \
            1 if backends.strict_from_environment() else 0
    names = [r.backend for r in compared]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    line = f"AGREE: {listed} match{'es' if len(names) == 1 else ''} the NumPy reference within tolerance"
    return line + _unchecked(skipped), 1 if skipped and backends.strict_from_environment() else 0


def _unchecked(skipped):
    if not skipped:
        return ""
    return f" ({', '.join(r.backend for r in skipped)}: not installed or configuration not supported, not checked)"


def _precision(config):
    """"float64", or "float32 master weights computed in float16, dynamic loss scale" for mixed precision."""
    if config.compute is None:
        return config.dtype
    text = f"{config.dtype} master weights computed in {config.compute}"
    if config.dynamic:
        return f"{text}, dynamic loss scale"
    return text if config.loss_scale is None else f"{text}, loss scale {config.loss_scale:g}"


def _print_checks(rows, out):
    """How many of the report's checks ran on each backend, and which were skipped for what."""
    print("\nchecks per backend (gradients, autodiff gradients, the training run, the output in evaluation mode):",
          file=out)
    width = max(len(r.backend) for r in rows)
    for r in rows:
        ran = [c for c in CHECKS if r.checks.get(c) in ("passed", "failed", "failed (a crash)")]
        failed = [c for c in ran if r.checks[c] != "passed"]
        skipped = [f"{c} ({r.checks.get(c, 'not reached')})" for c in CHECKS if c not in ran]
        if r.backend == backends.REFERENCE:
            line = "the reference: what the others are compared with"
        else:
            line = f"{len(ran)} of {len(CHECKS)} ran" + (f" ({', '.join(failed)} failed)" if failed else "")
            line += f"; skipped: {'; '.join(skipped)}" if skipped else ""
        print(f"  {r.backend:<{width}}  {line}", file=out)


def _print_log(runs, every, out):
    """The seeds' periodic log: each backend's loss every `every` epochs, side by side."""
    names = list(runs)
    print("\nepoch      " + "  ".join(f"{n:>22}" for n in names), file=out)
    epochs = next(iter(runs.values())).losses.shape[0]
    for e in range(0, epochs, every):
        print(f"{e:<10} " + "  ".join(f"{float(runs[n].losses[e].mean()):>22.15e}" for n in names), file=out)


def write_json(path, args, case, rows):
    described = ("xor" if case.samples is None else f"synthetic ({case.samples} samples)") if case.data is None \
        else case.data + ("" if case.samples is None else f" (its first {case.samples} samples)")
    data = {"config": {**asdict(case.config), "dtype": args.dtype}, "data": described,
            "agree": verdict(rows)[0].startswith("AGREE"),
            "verdict": verdict(rows)[0],
            "backends": {r.backend: {k: v for k, v in asdict(r).items() if k not in ("deviation_curve",)}
                         for r in rows}}
    with open(path, "w") as f:
        json.dump(data, f, indent=2)


def plot(path, rows, runs, config):
    """Loss curves overlaid (log scale) and each backend's deviation from the reference over the epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 8), sharex=True)
    styles = ["-", "--", ":", "-."]
    for i, (name, run) in enumerate(runs.items()):
        losses = run.losses.astype(np.float64).mean(axis=1)
        losses[~np.isfinite(losses)] = np.nan  # a diverged run's curve stops where it went non-finite
        top.plot(np.arange(1, len(losses) + 1), losses, styles[i % 4], label=name, linewidth=1.5)
    top.set_yscale("log")
    top.set_ylabel(f"loss ({config.loss})")
    top.set_title("loss per epoch, every backend (the curves should lie on top of each other)")
    top.legend()
    floor = 1e-18  # exact agreement is drawn here, below any float64 round-off of O(1) values
    against = "reference" if config.dtype == "float64" else "float64"
    for i, r in enumerate(rows):
        if r.backend == backends.REFERENCE or r.deviation_curve is None:
            continue
        envelope = np.maximum(np.maximum.accumulate(np.asarray(r.deviation_curve)), floor)
        bottom.plot(np.arange(1, len(envelope) + 1), envelope, styles[i % 4], linewidth=1.2,
                    label=f"{r.backend}: largest |loss - {against}| so far")
        epochs = sorted(runs[r.backend].checkpoints)
        bottom.plot(epochs, np.maximum(r.param_curve, floor), "o", markersize=3,
                    label=f"{r.backend}: max |params - {against}| at checkpoints")
    if config.dtype == "float64":
        bottom.axhline(tolerances.float64("trajectory").atol, color="grey", linestyle="--", linewidth=0.8,
                       label="float64 trajectory atol")
    reference_row = next((r for r in rows if r.backend == backends.REFERENCE), None)
    if config.dtype != "float64" and reference_row is not None and reference_row.deviation_curve is not None:
        # Low precision: every curve is a drift from the float64 run of the same values, the NumPy reference's own
        # among them; the bound is tolerances.low_bound of its largest (checks.check_trajectory's, for the loss).
        own = np.maximum(np.maximum.accumulate(np.asarray(reference_row.deviation_curve)), floor)
        bottom.plot(np.arange(1, len(own) + 1), own, color="black", linewidth=1.0,
                    label=f"numpy {config.compute or config.dtype} reference: its own |loss - float64| so far")
        if reference_row.loss_bound is not None:
            rule = tolerances.LOW[config.compute or config.dtype]
            bottom.axhline(reference_row.loss_bound, color="red", linestyle="--", linewidth=0.8,
                           label=f"bound on |loss - float64|: {rule.factor:g} x numpy's own largest + "
                                 f"{rule.floor_ulps:g} ulps")
    if config.dtype == "float64":
        bottom.set_ylim(bottom=floor / 2)
    elif reference_row is not None and reference_row.loss_bound is not None:  # the bound and a few decades beneath
        bottom.set_ylim(bottom=reference_row.loss_bound * 1e-4, top=reference_row.loss_bound * 10)
    bottom.set_yscale("log")
    bottom.set_xlabel("epoch")
    if config.dtype == "float64":
        bottom.set_ylabel("deviation from the NumPy reference")
        bottom.set_title("drift from the NumPy reference, float64 (exact agreement sits at the bottom)")
    else:
        bottom.set_ylabel("deviation from the float64 run")
        bottom.set_title(f"drift from the float64 run of the same values\n{_precision(config)}", fontsize=10)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _tqdm(disabled):
    if disabled:
        return None
    try:
        from tqdm import tqdm
    except ModuleNotFoundError:
        return None
    return tqdm


def main(argv=None):
    args, case, names = parse_args(argv)
    rows, runs = run_report(args, case, names)
    if args.json:
        write_json(args.json, args, case, rows)
        print(f"wrote {args.json}")
    if args.plot and runs:
        plot(args.plot, rows, runs, case.config.replace(dtype=args.dtype))
        print(f"wrote {args.plot}")
    return verdict(rows)[1]


if __name__ == "__main__":
    sys.exit(main())
