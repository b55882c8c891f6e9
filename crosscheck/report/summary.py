"""What the report prints and writes: the table, the checks per backend, the verdict and its exit status, the
seeds' periodic log, the JSON and the plot."""

import json
from dataclasses import asdict

import numpy as np

from crosscheck import backends
from crosscheck.common.conventions import describe, in_force
from crosscheck.verdict import tolerances

CHECKS = ("gradients", "autodiff gradients", "training run", "evaluation output")  # the report's, per backend


def _fmt(value, spec=".2e"):
    return "-" if value is None else format(value, spec)


def title(config):
    """The report's first line: what was run."""
    images = f"{'x'.join(map(str, config.sample_shape))} inputs, " if len(config.sample_shape) > 1 else ""
    return (f"cross-check of {images}{'-'.join(map(str, config.layers))} {config.hidden}/{config.output}, "
            f"loss {config.loss}, init {config.init}, lr {config.lr:g}, {config.epochs:,} epochs, "
            f"{'full batch' if config.batch_size is None else f'batches of {config.batch_size}'}, seed {config.seed}, "
            f"optimizer {config.describe_optimizer()}, {_precision(config)}"
            + (f", conventions {conventions}" if (conventions := describe(config)) else ""))


def print_table(rows, config, out):
    print(f"\n{title(config)}", file=out)
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
        for note in r.notes:
            print(f"\n{note}", file=out)
        for problem in r.problems:
            print(f"\n{problem}", file=out)
        if r.diagnosis:
            print(f"\n{r.diagnosis}", file=out)
    _print_checks(rows, out)
    print(f"\n{verdict(rows)[0]}", file=out)


def verdict(rows):
    """(the verdict line, the exit status): AGREE (0) only when some backend besides the reference was compared and
    every compared one agreed; DISAGREE or DIVERGED (1); NOT CHECKED when nothing was compared with the reference,
    with the reason: exit 1 where a backend the user named (--backends, a plug-in) went unchecked, or any did in
    strict mode; else 0 (a default run on a machine without the frameworks). REFUSED (2) where code did not fit its
    adapter's interface."""
    refused = [r for r in rows if getattr(r, "refused", None)]
    if refused:
        return (f"REFUSED: {refused[0].backend} does not fit its adapter: {refused[0].refused} (nothing it gave was "
                "compared; exit 2, as for any option that cannot run)"), 2
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
        named = any(getattr(r, "named", False) for r in skipped)
        return (f"NOT CHECKED: no backend was compared with the NumPy reference ({reasons})"
                + ("; what you named went unchecked, so the run fails" if named else "")), \
            1 if named or backends.strict_from_environment() else 0
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


def print_log(runs, every, out):
    """The seeds' periodic log: each backend's loss every `every` epochs, side by side."""
    names = list(runs)
    print("\nepoch      " + "  ".join(f"{n:>22}" for n in names), file=out)
    epochs = next(iter(runs.values())).losses.shape[0]
    for e in range(0, epochs, every):
        print(f"{e:<10} " + "  ".join(f"{float(runs[n].losses[e].mean()):>22.15e}" for n in names), file=out)


def layout(config):
    """How the checked backends ran the problem: on one device, or over ranks (data: the rows each shard reads; tensor:
    each parametrized layer's part, by its number), beside the reference's run on one device."""
    if config.parallel is None:
        return {"kind": "one device"}
    found = {"kind": config.parallel_kind, "world": config.world, "reference": "one device"}
    if config.parallel_kind == "data":
        found["shards"] = "each step's batch in equal blocks of consecutive rows, rank r the r-th"
    else:
        found["layers"] = [{"layer": layer.slot + 1, "kind": layer.kind, "part": config.tensor_roles[layer.slot]}
                           for layer in config.parametrized]
    return found


def json_data(args, case, rows):
    """The report as `--json` writes it: the configuration, the data, the layout, the verdict and every row."""
    described = ("xor" if case.samples is None else f"synthetic ({case.samples} samples)") if case.data is None \
        else case.data + ("" if case.samples is None else f" (its first {case.samples} samples)")
    return {"title": title(case.config.replace(dtype=args.dtype)),
            "config": {**asdict(case.config), "dtype": args.dtype}, "data": described,
            "layout": layout(case.config),
            "conventions": in_force(case.config),  # every convention in force on the model, declared or default
            "agree": verdict(rows)[0].startswith("AGREE"),
            "verdict": verdict(rows)[0],
            "backends": {r.backend: {k: v for k, v in asdict(r).items() if k not in ("deviation_curve",)}
                         for r in rows}}


def write_json(path, args, case, rows):
    with open(path, "w") as f:
        json.dump(json_data(args, case, rows), f, indent=2)


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


