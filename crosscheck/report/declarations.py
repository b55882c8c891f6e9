"""What a report's run declares of the code it checks, settled before anything trains: the conventions it follows
(--convention, a model file's table, a plug-in's own), --conventions' listing, and whether each plug-in's code fits its
adapter at all (a refusal, exit 2, through the parser's error)."""

import argparse

from crosscheck import backends
from crosscheck.common.conventions import listing, normal
from crosscheck.common.driver import Unsupported
from crosscheck.suite.cases import under


class ListConventions(argparse.Action):
    """--conventions: the registry's listing, then exit 0 (as --help does)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(listing())
        parser.exit()


def declared(p, given):
    """{key: value} of --convention KEY=VALUE options (a model file's first, the command line's after: the later
    wins), each checked (exit 2 naming the key or value)."""
    declared = {}
    for text in given:
        key, eq, value = text.partition("=")
        if not eq:
            p.error(f"--convention must be KEY=VALUE, e.g. batchnorm.running_variance=biased, got {text!r}")
        try:
            declared[key.strip()] = normal(key.strip(), value)
        except ValueError as exc:
            p.error(f"--convention {text}: {exc}")
    return declared


def adopted(p, args, case, names):
    """case under the conventions a plug-in among names declares (its adapter's source's), where the command line
    declares none for that key; two plug-ins that declare different values for one key cannot share a report."""
    given = {text.partition("=")[0].strip() for text in args.convention}
    adopted: dict = {}
    for name in names:
        if name not in backends.plugins():
            continue
        try:
            driver = backends.load(name)
            driver.check_support(case.config)  # a plug-in that cannot run this model declares nothing of it
            declared = driver.conventions
        except (backends.BackendUnavailable, backends.PluginError, Unsupported):
            continue
        for key, value in declared:
            if key in given:
                continue
            if adopted.get(key, value) != value:
                p.error(f"{name} declares convention {key}={value}, another plug-in {key}={adopted[key]}: compare "
                        f"them in two reports, or declare --convention {key}=VALUE for both")
            adopted[key] = value
    return under(case, adopted) if adopted else case


def fit(p, args, case, names):
    """Each plug-in's code called once, on the run's first step, before anything trains: code that does not fit its
    adapter (a method it lacks, a function it cannot call so, a result of another form) is refused (exit 2) with the
    adapter's one line; a crash or a wrong value is left to the checks, which report it."""
    problem = case.problem(args.dtype)
    for name in names:
        if name not in backends.plugins():
            continue
        try:
            said = backends.load(name).misfit(problem, args.device)
        except (backends.BackendUnavailable, backends.PluginError):  # the report says (its row, or _backends' error)
            continue
        if said:
            p.error(f"{name} does not fit its adapter: {said}")
