"""Your implementation, exercised whole: every function and update rule it provides, trained as the report trains it.

The rest of the suite runs its cases on every backend, a plug-in included; most of them use activations and layers
that CS231n-style functions lack. Here each plug-in (--implementation; in a checkout without one, the worked
examples in tests/source.py's EXAMPLES) is checked op by op where it is CS231n-style, and trained on the cases such
functions can assemble (crosscheck/suite/plugin_cases.py: batch norm, dropout, convolution and max-pooling under
plain descent, momentum, RMSprop and Adam) in the report's stretches between checkpoints, so that its whole training
state (optimizer state, step count, running statistics) must cross each boundary. Each passing test records what it
exercised; the summary names what a plug-in provides that nothing exercised (tests/conftest.py).
"""

import pytest

from crosscheck import backends
from crosscheck.adapters.layer_pair_ops import check_ops
from crosscheck.adapters.layer_pairs import Assembled
from crosscheck.report import run as report
from crosscheck.suite.cases import declared_by, features
from crosscheck.suite.plugin_cases import PLUGIN_CASES
from crosscheck.verdict import checks

from .conftest import EXERCISED, selected_backends
from .source import EXAMPLES, IN_SOURCE_TREE, load_example
from .strictness import load_or_skip


def plugin_names(config):
    """The plug-ins chosen for this session; in a checkout without one, the worked examples."""
    chosen = [n for n in selected_backends(config) if n in backends.plugins() and n not in backends.REGISTRY]
    if chosen or not IN_SOURCE_TREE or config.getoption("--implementation"):
        return chosen
    return list(EXAMPLES)


def pytest_generate_tests(metafunc):
    if "backend_name" in metafunc.fixturenames:
        names = plugin_names(metafunc.config)
        metafunc.parametrize("backend_name", names or [pytest.param(None, marks=pytest.mark.skip(
            reason="no implementation of yours to exercise: pass --implementation NAME=module:object"))],
            ids=names or ["none"])


@pytest.fixture
def plugin(request, backend_name):
    if backend_name in backends.plugins():
        return load_or_skip(request.config, backend_name)
    try:
        return load_example(backend_name)
    except ModuleNotFoundError as exc:  # an example in a framework's tensors, that framework not installed
        pytest.skip(f"the example {backend_name} needs {exc.name}, which is not installed")


def test_its_functions_agree_with_the_reference_op_by_op(plugin, record_property):
    """Each CS231n-style function it provides against the reference's op, on the op tests' inputs (edge values
    included)."""
    if not isinstance(plugin.mlp, Assembled):
        pytest.skip(f"{plugin.name} is not CS231n-style layer functions: its ops are checked in the models it trains")
    checked = check_ops(plugin.mlp.layers, name=plugin.name, keepdims=plugin.mlp.keepdims)
    record_property(EXERCISED, sorted({*checked, "dense"}))


@pytest.mark.parametrize("case", PLUGIN_CASES, ids=lambda c: c.id)
def test_it_trains_as_the_reference_in_the_reports_stretches(plugin, case, record_property):
    """Forward, gradients, then the run the report makes (a stretch between each pair of checkpoints, each continuing
    the last one's training state): losses, parameters, optimizer state and running statistics at every checkpoint,
    and the network in evaluation mode at the end."""
    case = declared_by(plugin, case)  # under the conventions it declares (its adapter's source's), as the report runs
    checks.check_forward(plugin, case, "float64")
    checks.check_gradients(plugin, case, "float64")
    run, diverged_at = report._train_stretches(plugin, case, case.problem("float64"), "cpu", None)
    checks.check_trajectory(plugin, case, "float64", run=run)
    record_property(EXERCISED, sorted(features(case.config)))


@pytest.mark.parametrize("case", [c for c in PLUGIN_CASES if c.config.optimizer != "sgd"], ids=lambda c: c.id)
def test_a_run_continued_from_its_state_is_the_run_trained_at_once(plugin, case):
    """Two halves, the second handed the first's TrainState (optimizer state, step count, buffers), end where the
    whole run ends, bit for bit; a train that cannot take the state is refused, never silently restarted."""
    case = declared_by(plugin, case)
    config, params, X, y, orders = case.inputs("float64")
    whole = plugin.run_train(params, X, y, config, orders)
    if not plugin.continues():
        half = plugin.run_train(params, X, y, config.replace(epochs=1), orders[:1])
        with pytest.raises(ValueError, match="cannot continue"):
            plugin.run_train(half.params, X, y, config.replace(epochs=1), orders[1:2], state=half.state)
        return
    first = config.epochs // 2
    masks = None
    if config.noise_widths():
        from crosscheck.common.initializers import dropout_masks

        masks = dropout_masks(config, len(X))
    a = plugin.run_train(params, X, y, config.replace(epochs=first), orders[:first],
                         masks=None if masks is None else [m[:first] for m in masks])
    b = plugin.run_train(a.params, X, y, config.replace(epochs=config.epochs - first), orders[first:],
                         state=a.state,
                         masks=None if masks is None else [m[first:] for m in masks])
    assert b.state.step == whole.state.step
    for got, want in zip(checks.flat(b.params), checks.flat(whole.params)):
        assert (got == want).all(), f"{plugin.name}: the continued run's parameters differ from the whole run's"
