"""The report as a function, for a notebook or a test of your own: crosscheck.check(...) returns a Report.

    import crosscheck
    from crosscheck.adapters import seed_style

    report = crosscheck.check(seed_style(lambda layers: MyNet(*layers), name="mine"),
                              layers=(2, 4, 1), init="standard_normal", epochs=2000)
    report            # in Jupyter: the table, the diagnosis and the plot, as HTML
    report.agrees     # True or False
    report.assert_agrees()   # in your own test: raises with the whole report where it disagrees

The keywords are the command line's options (`crosscheck --help`), dashes as underscores: the keywords are turned
into that command line and parsed by it, so both are checked alike (a bad option raises ValueError naming it,
before anything trains) and run the same report (run.run_report).
"""

import contextlib
import io

from crosscheck import backends
from crosscheck.report import cli, summary
from crosscheck.report.result import Report
from crosscheck.report.run import run_report


def check(implementation=None, **options):
    """The cross-check report on the options, as a Report. implementation: your code, as a Driver (what an adapter
    returns: seed_style(...), cs231n(...), ...), a {name: Driver} dict, or "NAME=module:object"; it is compared with
    the NumPy reference (name more with backends="torch,jax"). Without one, every registered backend runs, as
    `crosscheck` does. options: the command line's, e.g. layers=(2, 4, 1), model="dense:2:4,tanh,dense:4:1,sigmoid",
    batch_size=8, optimizer="adam", epochs=2000, dtype="float32", no_progress=True, conventions={"batchnorm.variance":
    "unbiased"} (crosscheck --conventions lists them)."""
    if "conventions" in options:  # conventions={"batchnorm.running_variance": "biased"}: --convention, repeated
        declared = options.pop("conventions") or {}
        if not isinstance(declared, dict):
            raise TypeError(f"conventions must be a dict of key to value, got {type(declared).__name__}")
        options["convention"] = [*options.get("convention", []), *(f"{k}={v}" for k, v in declared.items())]
    named = _register(implementation)
    if named and "backends" not in options:
        options["backends"] = ",".join(named)
    options.setdefault("plot", "")  # no file unless asked: the Report draws its plot itself
    args, case, names = _parsed(_argv(options))
    out = io.StringIO()
    rows, runs = run_report(args, case, names, out)
    config = case.config.replace(dtype=args.dtype)
    return Report(rows, out.getvalue(), summary.json_data(args, case, rows), runs, config)


def _register(implementation):
    """The names of the implementations given, each registered as a plug-in for this process."""
    if implementation is None:
        return []
    if isinstance(implementation, str):
        backends.register_spec(implementation)
        return [implementation.partition("=")[0].strip()]
    given = implementation if isinstance(implementation, dict) else {implementation.name: implementation}
    for name, driver in given.items():
        backends.register(name, lambda driver=driver: driver)
    return list(given)


def _argv(options):
    """options as the command line's arguments: each keyword is an option's dest (dashes as underscores); a flag
    is given for True, a sequence joined by commas (layers=(2, 4, 1) as 2,4,1), a repeatable option once per
    value, None left out."""
    actions = {a.dest: a for a in cli.parser()._actions if a.option_strings and a.dest not in ("help", "conventions")}
    unknown = sorted(set(options) - set(actions))
    if unknown:
        raise TypeError(f"crosscheck.check() got unknown option(s) {unknown}; the options are {sorted(actions)}")
    argv = []
    for name, value in options.items():
        flag = actions[name].option_strings[-1]
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif type(actions[name]).__name__ == "_AppendAction":
            for item in [value] if isinstance(value, str) else value:
                argv += [flag, str(item)]
        elif isinstance(value, list | tuple):
            argv += [flag, ",".join(map(str, value))]
        else:
            argv += [flag, str(value)]
    return argv


def _parsed(argv):
    """cli.parse_args(argv), its refusal (argparse's exit 2) raised as ValueError with argparse's message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return cli.parse_args(argv)
    except SystemExit as exc:
        said = err.getvalue().strip().splitlines()
        raise ValueError(said[-1].removeprefix("crosscheck: error: ") if said else f"bad options: {argv}") from exc
