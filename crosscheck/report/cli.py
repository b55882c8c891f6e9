"""The report's command line: its options, a model file's keys, and every check of the arguments made before
anything trains (exit 2 with the reason, as argparse's own errors)."""

import argparse
import importlib.util
import os
import sys
from typing import Any

from crosscheck import backends
from crosscheck.common import dtypes, registry
from crosscheck.exchange import command
from crosscheck.reference import SEED2_XOR, Config, check_inputs
from crosscheck.reference.data import DATASETS
from crosscheck.report.declarations import ListConventions, adopted, declared, fit
from crosscheck.suite.cases import Case


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Says each default once: not where the help text already says it, nor where the default is None."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, []) or "default" in text:
            return text
        return super()._get_help_string(action)


DESCRIPTION = "The main job: train one configuration on every backend from one seed, and report how they agree."
EPILOG = ("Code in another language: crosscheck export [these options] --out DIR writes a problem with the reference's "
          "expected values; crosscheck verify DIR RESULT.safetensors checks the result a program wrote "
          "(docs/other-languages.md).")


def parse_args(argv=None, extra=None, prog="crosscheck"):
    """(args, case, names): the options, the run they describe, and the backends to compare, the reference first;
    any bad argument is refused here with the reason (exit 2), before anything trains. extra(parser) adds a
    subcommand's own options (crosscheck export's)."""
    p = parser(prog)
    if extra is not None:
        extra(p)
    from_file = _model_file(p, argv)
    p.set_defaults(**from_file)
    args = p.parse_args(argv)
    if from_file:
        args.model = from_file["model"]  # --model named the file; the file names the layers
    if args.dtype is None:
        args.dtype = "float32" if args.compute else SEED2_XOR.dtype
    config = _config(p, args)
    case = _case(p, args, config)
    _check_outputs(p, args)
    names = _backends(p, args)
    case = adopted(p, args, case, names)
    fit(p, args, case, names)
    return args, case, names


def parser(prog="crosscheck"):
    """The command line's options: the run (its model, data and training), then the report's own."""
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, formatter_class=_HelpFormatter, epilog=EPILOG)
    _run_options(p, SEED2_XOR)
    _optimizer_options(p, SEED2_XOR)
    _report_options(p, SEED2_XOR)
    return p


def _run_options(p, d):
    """The model, its data and its training; d: the defaults (the second seed's XOR run)."""
    p.add_argument("--layers", default=",".join(map(str, d.layers)), help="widths, input first, e.g. 2,4,1")
    p.add_argument("--hidden", default=d.hidden, choices=registry.hidden_activations(), help="hidden activation")
    p.add_argument("--output", default=d.output, choices=tuple(registry.ACTIVATIONS), help="output activation")
    p.add_argument("--model", metavar="LAYERS|FILE.toml", default=None,
                   help="an explicit sequence of layers instead of --layers/--hidden/--output, a dense layer as "
                        "dense:IN:OUT, a layer norm, RMS norm or batch norm as layernorm:FEATURES, rmsnorm:FEATURES or "
                        "batchnorm:FEATURES, "
                        "dropout as dropout:RATE, a convolution as conv2d:C_IN:C_OUT:KERNEL:STRIDE:PADDING (with "
                        "--input-shape), a pooling layer as maxpool2d:KERNEL:STRIDE or avgpool2d:KERNEL:STRIDE, "
                        "a SwiGLU MLP as swiglu:WIDTH:HIDDEN, causal self-attention as "
                        "attention:WIDTH:HEADS[:KV_HEADS] (rope_attention: with rotary positions), learned "
                        "positions as positions:CONTEXT:WIDTH, residual blocks as residual:N (the N layers after "
                        "it), scores tied to the embedding as unembed:VOCABULARY:DIM, an "
                        "embedding of ids as embedding:VOCABULARY:DIM "
                        "and a "
                        "recurrent layer as rnn:IN:HIDDEN or "
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
    p.add_argument("--convention", action="append", default=[], metavar="KEY=VALUE",
                   help="a convention the code follows where it differs from PyTorch's (repeatable), e.g. "
                        "batchnorm.running_variance=biased (CS231n's); --conventions lists them")
    p.add_argument("--conventions", action=ListConventions, help="list every convention: its key, values, "
                   "default and where each value comes from, and exit")


def _optimizer_options(p, d):
    """The optimizer and its hyperparameters, each defaulting to the optimizer's own (the registry)."""
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
    opt.add_argument("--schedule", default=None, choices=("warmup_cosine",),
                     help="a learning-rate schedule: warmup_cosine warms lr up from 0 over --warmup-steps updates, "
                          "then decays it along a cosine to --end-lr at update --decay-steps "
                          "(optax.warmup_cosine_decay_schedule; default: lr throughout)")
    opt.add_argument("--warmup-steps", type=int, default=0, help="the schedule's warmup, in updates (default 0)")
    opt.add_argument("--decay-steps", type=int, default=None,
                     help="the update count at which the schedule's cosine reaches --end-lr")
    opt.add_argument("--end-lr", type=float, default=0.0, help="the schedule's last lr (default 0)")
    opt.add_argument("--clip", type=float, default=None, metavar="MAX_NORM",
                     help="clip the gradients to this global norm before each update, as "
                          "torch.nn.utils.clip_grad_norm_ (default: no clipping)")


def _report_options(p, d):
    """The length of the run and its data, which backends, and what the report writes."""
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=None, help="minibatch size (default: full batch)")
    p.add_argument("--accumulate", type=int, default=1, metavar="N",
                   help="gradient accumulation: each step's batch as N micro-batches, their gradients added up "
                        "weighted by their share of the batch (default: 1, none)")
    p.add_argument("--parallel", default=None, metavar="data:N|tensor:N",
                   help="data parallelism (each step's batch on N shards, their gradients all-reduced) or tensor "
                        "parallelism (each pair of dense layers split by columns, then rows, each attention layer by "
                        "its heads and each SwiGLU by its hidden units, over N ranks), on torch as N gloo processes "
                        "and on JAX as N devices (host devices on the CPU); compared with the reference's run on one "
                        "device (default: one device)")
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
    p.add_argument("--command", action="append", default=[], metavar="NAME=PROGRAM",
                   help="also check a program in any language, run as PROGRAM PROBLEM.safetensors RESULT.safetensors "
                        "(repeatable; docs/other-languages.md)")
    p.add_argument("--checkpoints", type=int, default=50, help="how many times to compare parameters")
    p.add_argument("--log-every", type=int, default=0, metavar="N",
                   help="print each backend's loss every N epochs, as the seeds log (default: 0, off)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON (default: not written)")
    p.add_argument("--html", metavar="PATH", help="write the report as one self-contained HTML page: the table, every "
                                                  "finding and diagnosis, the plot (default: not written)")
    p.add_argument("--plot", metavar="PATH", default="crosscheck-report.png",
                   help="write the loss and deviation curves as PNG ('' for none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _config(p, args):
    """The Config the options describe, each number parsed and the whole validated (exit 2 naming what is wrong)."""
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
                        weight_decay=args.weight_decay, decay_biases=not args.no_decay_biases, clip=args.clip,
                        schedule=args.schedule, warmup_steps=args.warmup_steps, decay_steps=args.decay_steps,
                        end_lr=args.end_lr, accumulate=args.accumulate, parallel=args.parallel,
                        conventions=declared(p, args.convention))
        if args.compute is not None or loss_scale is not None:  # mixed precision: validated with its dtype
            config = config.replace(dtype=args.dtype, compute=args.compute, loss_scale=loss_scale)
    except (ValueError, TypeError) as exc:
        p.error(str(exc))
    return config


def _case(p, args, config):
    """The report's case, its data loaded and checked against the model and the batch size."""
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
        problem = case.problem(args.dtype)
    except ValueError as exc:
        p.error(str(exc))
    n_samples = len(problem.X)
    if args.batch_size is not None and args.batch_size > n_samples:
        where = f"--data {args.data}" if args.data else "XOR" if args.samples is None else "--samples"
        p.error(f"--batch-size {args.batch_size} exceeds the {n_samples} samples ({where}); choose at most {n_samples}")
    if config.world > 1:  # the shards' sizes (the batches' against the world), before any process starts
        try:
            check_inputs(problem.params, problem.X, problem.y, problem.config, problem.orders)
        except ValueError as exc:
            p.error(str(exc))
        host_devices(config.world)
    return case


def host_devices(world):
    """Ask XLA for world host devices, so that JAX's parallel run has its devices on the CPU: through XLA_FLAGS,
    which JAX reads when it starts (a flag the environment already sets wins). After JAX has started, nothing changes
    here, and its parallel run says how many devices it needs."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={world}".strip()


def _check_outputs(p, args):
    """--json and --plot can be written (a plot needs matplotlib, the report extra: without it, no plot)."""
    if args.plot and importlib.util.find_spec("matplotlib") is None:  # the report extra is not installed
        print(f"crosscheck: no plot ({args.plot}): matplotlib is not installed "
              f"(pip install 'backprop-crosscheck[report]')", file=sys.stderr)
        args.plot = ""
    for option, path in (("--json", args.json), ("--plot", args.plot), ("--html", args.html)):
        problem = _unwritable(path)
        if problem:
            p.error(f"{option} {path}: {problem}")


def _backends(p, args):
    """The backends to compare, the reference first: plug-ins registered, names known, each on the device asked."""
    for spec in args.implementation:
        try:
            backends.register_spec(spec)
        except ValueError as exc:
            p.error(str(exc))
    for spec in args.command:
        try:
            command.register(spec)
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
        if args.parallel is not None and driver.parallel is not None:  # its processes or devices, before training
            try:
                driver.parallel.ready(int(args.parallel.partition(":")[2]))
            except (RuntimeError, ValueError) as exc:
                p.error(f"--parallel {args.parallel}: {name} cannot run it here: {exc}")
    return names


# A model file's keys: the command line's options (underscores for dashes) that describe the run, not the report.
MODEL_FILE_KEYS = ("model", "input_shape", "loss", "init", "dtype", "compute", "loss_scale", "lr", "optimizer",
                   "momentum", "betas", "alpha", "eps", "weight_decay", "decay_biases", "clip", "schedule",
                   "warmup_steps", "decay_steps", "end_lr", "epochs", "batch_size", "accumulate", "parallel", "seed",
                   "samples", "data", "conventions")


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
    if "conventions" in defaults:  # a table, [conventions] "batchnorm.running_variance" = "biased"
        table = defaults.pop("conventions")
        if not isinstance(table, dict):
            parser.error(f"--model {path}: conventions must be a table of key = value, got {table!r}")
        defaults["convention"] = [f"{k}={v}" for k, v in table.items()]
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


