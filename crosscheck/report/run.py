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

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from crosscheck import backends
from crosscheck.common.driver import Run, Unsupported
from crosscheck.common.errors import AdapterError, refusal
from crosscheck.diagnosis.diagnose import diagnose
from crosscheck.report import summary
from crosscheck.report.cli import parse_args
from crosscheck.report.result import Report
from crosscheck.report.summary import CHECKS, plot, verdict, write_json
from crosscheck.suite.cases import upcast_problem
from crosscheck.verdict import checks, tolerances
from crosscheck.verdict.compare import Disagreement, check_comparable
from crosscheck.verdict.findings import bounding_driver


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
    notes: list = field(default_factory=list)  # the reference's row: the run's ill-conditioned leaves (checks.py)
    blamed: list = field(default_factory=list)  # whom a failed check's majority vote found odd (the reference too)
    deviation_curve: list | None = None  # per epoch |loss - reference|, for the plot
    param_curve: list | None = None  # per checkpoint max |params - reference|
    diagnosis: str | None = None  # where a disagreeing backend's first step parts, what it looks like (diagnose.py)
    checks: dict = field(default_factory=dict)  # each check of the report -> "passed", "failed" or why it was skipped
    named: bool = False  # the user asked for it (--backends, or a plug-in of theirs): unchecked, the run cannot pass
    refused: str | None = None  # the code does not fit its adapter's interface (common/errors.py): what, in a line
    diagnosable: bool = True  # False where a failure left no values to diagnose (a program's bad result)

    def failed(self, exc, check):
        """A Disagreement on check: the row disagrees, says why, whom the vote blamed, and whether to diagnose."""
        self.agree = False
        self.problems.append(str(exc))
        self.blamed.extend(exc.blamed)
        self.diagnosable &= exc.diagnosable
        self.outcome(check, "failed")

    def outcome(self, check, result):
        self.checks.setdefault(check, result)  # the first word on a check stands (a failure is not overwritten)

    def pending(self):
        """The check under way: the first of CHECKS without an outcome."""
        return next((check for check in CHECKS if check not in self.checks), CHECKS[-1])


def _train_stretches(driver, case, problem, device, bar):
    """(run, diverged_at): the run up to the stretch in which it went non-finite, if it did, and that epoch.

    Each stretch is the problem's epochs between two checkpoints (Problem.stretch: its orders and masks), trained
    from the TrainState the last one reached. A train that cannot continue a run (a plug-in's without opt_state,
    step and buffers) trains at once: one stretch holding every checkpoint, so that no state is lost between
    stretches. A diverging run overflows on its way; the overflow is reported here as divergence, not warned about.
    """
    losses, saved, done, state = [], {}, 0, None
    epochs, continues = problem.config.epochs, driver.continues()
    for stop in case.checkpoints(epochs) if continues else (epochs,):
        with np.errstate(all="ignore"):
            part = driver.train(problem.stretch(done, stop), () if continues else case.checkpoints(epochs), device,
                                state)
        losses.append(part.losses)
        saved.update({done + epoch: kept for epoch, kept in part.checkpoints.items()})
        saved[stop] = state = part.state
        run = Run(losses=np.concatenate(losses), checkpoints=saved, params=state.params, state=state)
        bad_loss = ~np.isfinite(part.losses).all(axis=1)
        if bad_loss.any():
            return run, done + int(np.argmax(bad_loss))
        if not all(np.isfinite(t).all() for layer in state.params for t in layer):
            return run, stop
        if bar is not None:
            bar.update(stop - done)
        done = stop
    return run, None


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


@dataclass
class _Reference:
    """What every row is compared with: the reference's run, where it went non-finite, and its float64 twin (the run
    of the same values in float64, for a low-precision run; None in float64)."""

    run: Run | None = None
    diverged_at: int | None = None
    run64: Run | None = None
    bounds: Run | None = None  # a sharded problem below float64: its simulated shards' run (findings.bounding_driver)


def run_report(args, case, names, out=None):
    """Check every backend in names (the reference first) on case, print the table, and return (rows, runs)."""
    out = out or sys.stdout
    ref, rows, runs = _Reference(), [], dict[str, Run]()
    problem = case.problem(args.dtype)
    if args.dtype != "float64":
        ref.run64, _ = _train_stretches(backends.load(backends.REFERENCE), case, upcast_problem(problem), "cpu", None)
    if args.dtype != "float64" and problem.config.parallel is not None:  # the shards' sums set the rows' bounds
        ref.bounds, _ = _train_stretches(bounding_driver(problem.config), case, problem, "cpu", None)
    for name in names:
        rows.append(_row(name, args, case, ref, runs))
        rows[-1].named = name != backends.REFERENCE and (args.backends is not None or name in backends.plugins())
    if args.dtype == "float64" and ref.run is not None and ref.diverged_at is None and rows and \
            rows[0].backend == backends.REFERENCE:
        rows[0].notes = checks.ill_conditioned(case, ref=ref.run, shadowed_only=True)  # whose bounds follow rounding
    summary.print_table(rows, problem.config, out)
    if args.log_every:
        summary.print_log(runs, args.log_every, out)
    return rows, runs


def _row(name, args, case, ref, runs):
    """One backend's row: its gradients, then its training run, each check's outcome, and the diagnosis where it
    disagrees (unless the vote blamed the reference itself)."""
    try:
        driver = backends.load(name)
    except backends.BackendUnavailable as exc:  # not checked; a failure in strict mode (as in the tests)
        agree = False if backends.strict_from_environment() else None
        return Row(name, "-", "-", agree=agree, problems=[str(exc)], checks=dict.fromkeys(CHECKS, "not installed"))
    device = "cpu" if name == backends.REFERENCE else args.device
    row = Row(name, driver.version, device)
    try:
        _check_gradients(row, driver, case, args.dtype, device)
        _check_training(row, driver, case, args, device, ref, runs)
    except Disagreement as exc:
        row.failed(exc, row.pending())
    except Unsupported as exc:
        row.agree = None
        row.problems.append(str(exc))
        for check in CHECKS:
            row.outcome(check, f"unsupported: {exc}")
    except AdapterError as exc:  # the code does not fit its adapter (a crash inside it: CodeRaised, below)
        if refusal(exc):
            row.agree, row.refused = None, str(exc)
            row.problems.append(f"refused: {exc}")
            for check in CHECKS:
                row.outcome(check, "refused: the code does not fit its adapter")
        else:
            _crashed(row, name, exc)
    except Exception as exc:  # noqa: BLE001  (code under test crashed: its row says so, the other rows complete)
        if name == backends.REFERENCE:
            raise
        _crashed(row, name, exc)
    for check in CHECKS:
        row.outcome(check, "not reached: an earlier check failed")
    if row.agree is False and name != backends.REFERENCE and backends.REFERENCE not in row.blamed and row.diagnosable:
        row.diagnosis = _diagnosis(driver, case, device, row, args.dtype)
    return row


def _crashed(row, name, exc):
    row.agree = False
    said = str(exc) if isinstance(exc, AdapterError) else f"{name}: raised {type(exc).__name__}: {exc}"  # CodeRaised
    row.problems.append(f"{said} (a crash, not a result)")  # names the function and what it was handed
    row.outcome(row.pending(), "failed (a crash)")


def _check_gradients(row, driver, case, dtype, device):
    """The manual gradients, then the autodiff ones where the backend has them: each check's outcome and the largest
    deviation; a disagreement is recorded and the row goes on to the training run."""
    for kind, autodiff in (("gradient", False), ("autodiff", True)):
        check = "autodiff gradients" if autodiff else "gradients"
        if autodiff and driver.autodiff_gradients is None:
            row.outcome(check, f"{driver.name} has no autodiff")
            continue
        try:
            diffs = checks.check_gradients(driver, case, dtype, device, autodiff=autodiff)
            row.outcome(check, "passed")
        except Disagreement as exc:
            row.failed(exc, check)
            diffs = []
        setattr(row, f"{kind}_deviation", max((d.max_abs for _, _, d in diffs), default=None))


def _check_training(row, driver, case, args, device, ref, runs):
    """The whole run in the report's stretches, timed; divergence, then the deviations and the trajectory check
    against the reference (whose own run, trained first, becomes ref.run). Each row trains on a problem of its own
    (fresh arrays: a plug-in that updates in place cannot reach the next row's)."""
    name, dtype = driver.name, args.dtype
    problem = case.problem(dtype)
    config, X = problem.config, problem.X
    tqdm = _tqdm(args.no_progress)
    bar = tqdm(total=config.epochs, desc=f"{name:>6}", unit="epoch", leave=False) if tqdm else None
    start = time.perf_counter()
    try:
        run, row.diverged_at = _train_stretches(driver, case, problem, device, bar)
    finally:
        if bar is not None:
            bar.close()
    row.wall_s = time.perf_counter() - start
    runs[name] = run
    if name == backends.REFERENCE:
        ref.run, ref.diverged_at = run, row.diverged_at
    _check_divergence(row, name, config, ref)
    if ref.diverged_at is not None:
        row.agree = None
        row.problems.append(f"{name}: not compared: the NumPy reference diverged at epoch {ref.diverged_at}")
        row.outcome("training run", "not compared: the reference diverged")
        return
    if ref.run is None:
        raise Disagreement("the reference run failed, so there is nothing to compare with")
    row.epochs_per_s = config.epochs / row.wall_s
    row.final_loss = float(run.losses[-1].mean())
    # in evaluation mode, where the model keeps buffers (batch norm reads its running statistics)
    buffers = run.state.buffers if run.state is not None and checks.flat(run.state.buffers) else None
    try:
        output = driver.run_forward(run.params, X, config, device, buffers=buffers)
        row.predictions = np.round(output[:8].astype(np.float64), 4).ravel().tolist()
    except Unsupported as exc:  # a result file replayed (crosscheck verify) without evaluation.output
        row.outcome("evaluation output", f"unsupported: {exc}")
    deviations(run, ref.run, ref.run64, row)
    if name == backends.REFERENCE and ref.run64 is not None:
        row.loss_bound = tolerances.low_bound(config.compute or dtype, row.loss_deviation,
                                              float(np.abs(ref.run64.losses).max()))
    if name != backends.REFERENCE:
        try:
            checks.check_trajectory(driver, case, dtype, device, run=run, ref=ref.bounds or ref.run, ref64=ref.run64)
        except Disagreement as exc:
            row.first_epoch_out = exc.first_epoch
            raise
    row.outcome("training run", "passed")
    row.outcome("evaluation output", "passed")


def _check_divergence(row, name, config, ref):
    """A run that went non-finite is a disagreement, unless the reference did too (then nothing is compared)."""
    if row.diverged_at is None:
        return
    reason = f"{name}: diverged: the loss or the parameters are not finite from epoch {row.diverged_at}"
    if name == backends.REFERENCE:  # the learning rate is a suspect only where the reference diverges too
        raise Disagreement(f"{reason} (lr {config.lr:g} too large?): the reference itself, so there is nothing to "
                           f"compare with")
    if ref.diverged_at is None:
        raise Disagreement(f"{reason}, while the reference stays finite; divergence is never agreement")


def _diagnosis(driver, case, device, row, dtype):
    """The diagnosis of a disagreeing row (crosscheck/diagnosis/diagnose.py), or why there is none. The row's own
    failing checks stand: where its training run failed, the diagnosis says the run parts, from the row's first epoch
    out."""
    failed = row.checks.get("training run") == "failed"
    try:
        return diagnose(driver, case, device, run_failed=failed, first_epoch=row.first_epoch_out, dtype=dtype).text()
    except Unsupported as exc:
        return f"no diagnosis: {exc}"
    except Exception as exc:  # noqa: BLE001  (the row's own findings stand)
        return f"no diagnosis: it raised {type(exc).__name__}: {exc}"


def _tqdm(disabled):
    """tqdm's progress bar (tqdm.auto: a widget in a notebook, text in a terminal), or None without it."""
    if disabled:
        return None
    try:
        from tqdm.auto import tqdm
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
    if args.html:
        Report(rows, "", summary.json_data(args, case, rows), runs, case.config.replace(dtype=args.dtype)).save_html(
            args.html)
        print(f"wrote {args.html}")
    return verdict(rows)[1]


if __name__ == "__main__":
    sys.exit(main())
