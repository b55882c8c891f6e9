"""Fixtures and options: one backend fixture parametrized from the registry, strict mode, slow runs.

Strict mode (--strict-backends, CROSSCHECK_STRICT=1, or CI=true) turns a missing
backend from a skip into a failure, so CI cannot pass by skipping.
"""

import os
from functools import partial

import pytest

from crosscheck.suite.pytest_plugin import add_options

from . import source

# JAX's compiled programs kept on disk between pytest runs (most of a run's JAX time is compiling): set before
# JAX is first imported. A planted mistake changes the program, and so its cache key; nothing stale is reused.
# Installed (crosscheck_tests), the cache goes to the user's cache folder, not into site-packages.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(source.ROOT / ".cache" / "jax" if source.IN_SOURCE_TREE
                                                     else source.user_cache() / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
# Under pytest-xdist (-n auto: a worker per core), torch's own intra-op threads would oversubscribe the cores: on
# this 2-core machine a CNN run took 4.7 s in a worker against 0.06 s alone. One thread per worker, unless told.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from crosscheck import backends
from crosscheck.common.driver import Unsupported
from crosscheck.common.errors import AdapterError, refusal
from crosscheck.diagnosis import mutations
from crosscheck.diagnosis.diagnose import diagnose
from crosscheck.exchange import command
from crosscheck.suite.cases import CASES, DTYPES, Case, declared_by, features
from crosscheck.suite.tiers import DEFAULT
from crosscheck.verdict.compare import Disagreement

from . import xla_flags
from .strictness import load_or_skip, strict, world_or_skip


def pytest_addoption(parser):
    add_options(parser)  # crosscheck/suite/pytest_plugin.py: one definition, for this checkout's runs and --pyargs runs


MARKERS = (
    "frameworks: parametrize only over the built-in framework backends (torch, jax: those with autodiff)",
    "builtin: parametrize only over the built-in backends (the test edits their source or reads their modules)",
    "exercises: the test runs its backend's code on its case (what a plug-in's passing tests ran: the summary)",
    "slow(reason=..., deeper=False): long runs (the seeds' 180,000 epochs, whole pytest sessions, the catalogue's "
    "second cases); run with --run-slow; the reason, where given, is what the summary says was left out; deeper: a "
    "sweep that --all-cases runs too (the 16-bit op checks under tox -e portable's vector units)",
)


def pytest_configure(config):
    """Declare the markers; refuse bad options once, as a usage error, before collecting anything."""
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    if not config.getoption("benchmark_only", False):  # before JAX starts its backends (tests/xla_flags.py)
        os.environ["XLA_FLAGS"] = xla_flags.for_tests(os.environ.get("XLA_FLAGS", ""))
    try:
        backends.declare_conventions(config.getoption("--convention"))
    except ValueError as exc:
        raise pytest.UsageError(f"--convention: {exc}") from None
    for spec in config.getoption("--implementation"):
        try:
            backends.register_spec(spec)
        except ValueError as exc:
            raise pytest.UsageError(f"--implementation: {exc}") from None
    for spec in config.getoption("--command"):
        try:
            command.register(spec)
        except ValueError as exc:
            raise pytest.UsageError(f"--command: {exc}") from None
    for name in selected_backends(config):
        if name in backends.plugins():
            try:
                driver = backends.load(name)  # a spec that does not load is one usage error now, not an error per test
            except backends.PluginError as exc:
                raise pytest.UsageError(str(exc)) from None
            except backends.BackendUnavailable:
                continue
            _fits(name, driver)
    config.stash[DEVICE_MISSING] = device_missing(config)


def _fits(name, driver):
    """The plug-in's code called once on the first case it supports, before any test: code that does not fit its
    adapter (a method it lacks, a function it cannot call so, a result of another form) is a usage error with the
    adapter's one line, not a failure per test; a crash or a wrong value is left to the tests."""
    for case in CASES:
        if case.slow or case.second or case.config.world > 1:
            continue
        try:
            driver.check_support(case.config)
        except Unsupported:
            continue
        said = driver.misfit(declared_by(driver, case).problem("float64"))
        if said:
            raise pytest.UsageError(f"{name} does not fit its adapter: {said}")
        return


DEVICE_MISSING = pytest.StashKey[dict]()


def device_missing(config):
    """{framework backend: why} for those that lack --device here: a usage error in strict mode, else skips."""
    device = config.getoption("--device")
    missing = {}
    for name in selected_backends(config):
        if name == backends.REFERENCE or name not in backends.REGISTRY:
            continue
        try:
            driver = backends.load(name)
        except backends.BackendUnavailable:
            continue  # skipped, or failed in strict mode, by the driver fixture
        if device not in driver.devices:
            offered = ", ".join(driver.devices)
            missing[name] = f"--device {device}: backend {name!r} offers only {offered} on this machine"
    if missing and strict(config):
        raise pytest.UsageError(f"{next(iter(missing.values()))} (strict mode: a missing device is a failure)")
    return missing


def selected_backends(config):
    chosen = config.getoption("--backends")
    names = backends.names() if chosen is None else [n.strip() for n in chosen.split(",") if n.strip()]
    unknown = sorted(set(names) - set(backends.names()))
    if unknown:
        raise pytest.UsageError(f"--backends: unknown backend(s) {', '.join(unknown)}; "
                                f"registered: {', '.join(backends.names())}")
    return names


def pytest_report_header(config):
    lines = [f"crosscheck: strict={strict(config)} device={config.getoption('--device')} dtypes={','.join(DTYPES)}"]

    for name in selected_backends(config):
        try:
            driver = backends.load(name)
            plugin = f" (plug-in {backends.plugins()[name]})" if name in backends.plugins() else ""
            lines.append(f"  {name}: {driver.version} on {', '.join(driver.devices)}{plugin}")
        except backends.BackendUnavailable as exc:
            lines.append(f"  {name}: UNAVAILABLE ({exc})")
    return lines


BACKEND_PROPERTY = "crosscheck_backend"
# what of its backend's code a test ran (crosscheck.suite.cases.features), if it passed
EXERCISED = "crosscheck_exercised"


def _tally(stats):
    """(ran, failed, skipped reasons, exercised) per backend, from the session's reports."""
    ran, failed, skipped, exercised = {}, {}, {}, {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in stats.get(outcome, []):
            properties = dict(getattr(report, "user_properties", ()))
            name = properties.get(BACKEND_PROPERTY)
            if name is None:
                continue
            if outcome == "passed" and report.when == "call":
                exercised.setdefault(name, set()).update(properties.get(EXERCISED, ()))
            if outcome == "skipped":
                reason = _reason(report)
                if reason.startswith("slow:"):  # long runs, the catalogue's turns: _left_out says why, once
                    reason = "slow: runs with --run-slow"
                reasons = skipped.setdefault(name, {})
                reason = reason.replace(f"{name} does not support this configuration: ", "unsupported: ")
                reasons[reason] = reasons.get(reason, 0) + 1
            elif outcome == "passed" and report.when == "call":
                ran[name] = ran.get(name, 0) + 1
            elif outcome in ("failed", "error"):
                failed[name] = failed.get(name, 0) + 1
    return ran, failed, skipped, exercised


def _unexercised(stats):
    """{plug-in: what it provides by name that no passing check exercised} for each plug-in that left any."""
    exercised = _tally(stats)[3]
    found = {name: sorted(provided - exercised.get(name, set()))
             for name in dict.fromkeys(exercised | {n: None for n in backends.plugins()})
             if (provided := _provided(name))}
    return {name: missing for name, missing in found.items() if missing}


def _unchecked(config, stats):
    """The plug-ins named with --backends on which no check ran (every one skipped: unsupported, say)."""
    ran, failed = _tally(stats)[:2]
    return [name for name in selected_backends(config) if name in backends.plugins()
            and not ran.get(name) and not failed.get(name)]


def pytest_sessionfinish(session, exitstatus):
    """A focused session fails where a plug-in it names ran no check at all, or, in strict mode, where something the
    plug-in provides went unexercised: its exit 0 would claim a check nobody made."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if exitstatus not in (0, pytest.ExitCode.NO_TESTS_COLLECTED) or reporter is None or not focused(session.config):
        return
    if _unchecked(session.config, reporter.stats) or (strict(session.config) and _unexercised(reporter.stats)):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _reason(report):
    """A skipped test's reason, as pytest.skip was given it."""
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def _left_out(stats):
    """{why: how many tests} of those the default `pytest` leaves to --run-slow (slow runs, the deeper tier)."""
    left: dict = {}
    for report in stats.get("skipped", []):
        reason = _reason(report)
        if reason.startswith(("slow:", "deeper tier:")):
            why = reason.split("; pass --run-slow")[0]
            left[why] = left.get(why, 0) + 1
    return left


def pytest_terminal_summary(terminalreporter):
    """What the default tier left to --run-slow, and why; how many checks ran on each backend (a plug-in's above all),
    and which were skipped for what."""
    left = _left_out(terminalreporter.stats)
    if left:
        terminalreporter.section("left for --run-slow (tox -e all and CI run every one)")
        for why, count in sorted(left.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{count:5d} {why}")
    ran, failed, skipped, exercised = _tally(terminalreporter.stats)
    names = [n for n in dict.fromkeys([*ran, *failed, *skipped])]
    if not names:
        return
    terminalreporter.section("checks per backend")
    if focused(terminalreporter.config):
        terminalreporter.write_line("focused on your code (--backends names plug-ins only): the suite's checks of "
                                    "itself were left out; run without --backends to include them")
        for name in _unchecked(terminalreporter.config, terminalreporter.stats):
            terminalreporter.write_line(f"NOT CHECKED: no check ran on {name}, which you named (each skipped, "
                                        f"reasons below): the session fails")
    for name in names:
        reasons = skipped.get(name, {})
        line = (f"{name}: {ran.get(name, 0) + failed.get(name, 0)} ran ({ran.get(name, 0)} passed, "
                f"{failed.get(name, 0)} failed), {sum(reasons.values())} skipped")
        if reasons:
            top = sorted(reasons.items(), key=lambda kv: -kv[1])
            line += ": " + "; ".join(f"{count} {reason}" for reason, count in top[:4])
            line += f"; {len(top) - 4} other reasons" if len(top) > 4 else ""
        terminalreporter.write_line(line)
        provided = _provided(name)
        if provided:
            missing = sorted(provided - exercised.get(name, set()))
            failing = " (a failure in strict mode)" if missing and focused(terminalreporter.config) and \
                strict(terminalreporter.config) else ""
            terminalreporter.write_line(
                f"  {name} provides {len(provided)} functions and rules by name ({', '.join(sorted(provided))}); "
                + (f"NOT EXERCISED by any passing check: {', '.join(missing)}{failing}" if missing
                   else "every one exercised"))


def _provided(name):
    """What a plug-in (or a worked example) declares it implements, by name; None for a built-in backend."""
    if name in backends.REGISTRY:
        return None
    try:
        driver = source.load_example(name) if name in source.EXAMPLES else backends.load(name)
    except Exception:  # noqa: BLE001  (its tests already say why it does not load)
        return None
    return driver.capability.provides() if driver.capability is not None else None


def focused(config):
    """Whether the session checks a user's code alone: --op given, or --implementation or --command with --backends
    naming only plug-ins. Then the suite's checks of itself (the registry, the docs, the built-in backends) are not
    run."""
    return bool(config.getoption("--op")) or bool(config.getoption("--implementation") or
                                                  config.getoption("--command")) and \
        all(name not in backends.REGISTRY for name in selected_backends(config))


def _checks_yours(item, config):
    """Whether item checks the user's code: their ops (--op), or, with --implementation or --command, the session's
    backends (parametrized over them, or running the report on them)."""
    if "user_op" in item.fixturenames:
        return True
    if not (config.getoption("--implementation") or config.getoption("--command")):
        return False
    callspec = getattr(item, "callspec", None)
    return (callspec is not None and "backend_name" in callspec.params) or "session_backends" in item.fixturenames


def pytest_collection_modifyitems(config, items):
    """Deselect tests of backends not chosen with --backends (in a focused session, the suite's checks of itself
    too); skip slow ones without --run-slow."""
    chosen = set(selected_backends(config))
    chosen |= set(source.EXAMPLES) if source.IN_SOURCE_TREE else set()  # tests/test_your_code.py's worked examples
    kept = [i for i in items if getattr(i, "callspec", None) is None or
            i.callspec.params.get("backend_name", backends.REFERENCE) in chosen]
    if focused(config):
        kept = [i for i in kept if _checks_yours(i, config)]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
    for item in items:  # which backend each test checks, carried by its reports (under xdist too) to the summary
        name = getattr(item, "callspec", None) and item.callspec.params.get("backend_name")
        if name:
            item.user_properties.append((BACKEND_PROPERTY, name))
        case = getattr(item, "callspec", None) and item.callspec.params.get("case")
        if name and case is not None and item.get_closest_marker("exercises"):
            item.user_properties.append((EXERCISED, sorted(features(case.config))))
    if config.getoption("--run-slow"):
        return
    deeper = pytest.mark.skip(reason=f"deeper tier: a case whose every trait one of the default's {len(DEFAULT)} cases "
                                     "covers (crosscheck/suite/tiers.py DEFAULT); pass --run-slow")
    for item in items:
        if "slow" in item.keywords:
            marker = item.get_closest_marker("slow")
            if marker and marker.kwargs.get("deeper") and config.getoption("--all-cases"):
                continue  # a sweep of the deeper tier, which --all-cases (tox -e portable) runs
            why = marker.kwargs.get("reason", "a long run") if marker else "a long run"
            item.add_marker(pytest.mark.skip(reason=f"slow: {why}; pass --run-slow"))
        elif _deeper(item) and not config.getoption("--all-cases"):
            item.add_marker(deeper)


IDS = {c.id for c in CASES}
SECOND = "a second case of what a first case already covers"


def _deeper(item):
    """Whether item checks a built-in backend (or none) on a first case outside the default tier: the default `pytest`
    runs each feature and trait of the cases once (cases.DEFAULT), a plug-in on every first case it supports."""
    params = getattr(item, "callspec", None) and item.callspec.params
    case = params and params.get("case")
    if not isinstance(case, Case) or case.id in DEFAULT or case.second or case.id not in IDS:
        return False
    return params.get("backend_name") not in backends.plugins() or params.get("backend_name") in backends.REGISTRY


def pytest_generate_tests(metafunc):
    """Parametrize from the registries: `driver` over backends, `case` over CASES, `dtype` over DTYPES,
    unless the test parametrizes that name itself."""
    explicit = {name.strip() for m in metafunc.definition.iter_markers("parametrize")
                for name in (m.args[0].split(",") if isinstance(m.args[0], str) else m.args[0])}
    if "driver" in metafunc.fixturenames and "backend_name" not in explicit:
        names = selected_backends(metafunc.config)
        if metafunc.definition.get_closest_marker("frameworks"):
            names = [n for n in names if n in backends.REGISTRY and n != backends.REFERENCE]
        elif metafunc.definition.get_closest_marker("builtin"):
            names = [n for n in names if n in backends.REGISTRY]
        metafunc.parametrize("backend_name", names, ids=names)
    if "case" in metafunc.fixturenames and "case" not in explicit:
        metafunc.parametrize("case", [pytest.param(c, marks=[pytest.mark.slow(reason=SECOND)] if c.second else [])
                                      for c in CASES],
                             ids=[c.id for c in CASES])
    if "dtype" in metafunc.fixturenames and "dtype" not in explicit:
        metafunc.parametrize("dtype", DTYPES)


@pytest.fixture(autouse=True)
def _plugins_end_with_the_test():
    """A plug-in a test registers (a report's --command, verify's result file) ends with the test: a later in-process
    report on the same worker would otherwise check it too, and fail on it in strict mode (it did, in one CI order).
    The session's own (--implementation, --command) were registered before and stay."""
    kept = dict(backends._plugins)
    yield
    backends._plugins.clear()
    backends._plugins.update(kept)


@pytest.fixture
def driver(request, backend_name):
    driver = load_or_skip(request.config, backend_name)
    case = request.getfixturevalue("case") if "case" in request.fixturenames else None
    if isinstance(case, Case):  # a sharded case: its world started, or a skip (strict mode: a failure)
        world_or_skip(request.config, driver, case.config)
    return driver


@pytest.fixture
def session_backends(request):
    """["--backends", the session's backends] for a test that runs the report over every backend: the session's
    --backends (a user's `--backends mine`) bounds it as it bounds every other test."""
    return ["--backends", ",".join(selected_backends(request.config))]


@pytest.fixture
def session_builtins(request):
    """["--backends", the session's built-in backends (the reference at least)] for a test of the report on them."""
    return ["--backends", ",".join(n for n in selected_backends(request.config) if n in backends.REGISTRY) or
            backends.REFERENCE]


@pytest.fixture
def device(request, driver):
    """--device for the frameworks; the NumPy reference and plug-ins run on the CPU."""
    framework = driver.name in backends.REGISTRY and driver.name != backends.REFERENCE
    if not framework:
        return "cpu"
    why = request.config.stash[DEVICE_MISSING].get(driver.name)
    if why:
        pytest.skip(why)
    return request.config.getoption("--device")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A configuration a plug-in declares unsupported is a skip with its reason, not a failure; code that does not fit
    its adapter fails with the adapter's one line; a plug-in that
    disagrees on a case gets a diagnosis under the diff (crosscheck/diagnosis/diagnose.py): where its first step parts
    from the reference's, and which known mistake it looks like."""
    __tracebackhide__ = True
    try:
        return (yield)
    except Unsupported as exc:
        pytest.skip(str(exc))
    except AdapterError as exc:  # code that does not fit its adapter: the adapter's line, not a traceback
        if not refusal(exc):
            raise
        pytest.fail(f"REFUSED: the code does not fit its adapter: {exc}", pytrace=False)
    except Disagreement as exc:
        params = getattr(item, "callspec", None) and item.callspec.params
        name, case = (params.get("backend_name"), params.get("case")) if params else (None, None)
        if (name is None or case is None or name not in backends.plugins() or name in backends.REGISTRY
                or not exc.diagnosable):
            raise
        try:
            found = diagnose(backends.load(name), case).text()
        except Exception as failure:  # noqa: BLE001  (the diff stands on its own)
            found = f"(no diagnosis: it raised {type(failure).__name__}: {failure})"
        raise Disagreement(f"{exc}\n\n{found}") from exc


@pytest.fixture
def mutate(monkeypatch):
    """mutate(module_name, old, new): plant a one-line bug for this test only (see
    crosscheck/diagnosis/mutations.py)."""
    yield partial(mutations.mutate, monkeypatch)
    monkeypatch.undo()
    mutations.clear_caches()
