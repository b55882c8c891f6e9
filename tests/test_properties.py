"""Property-based cross-checks over random models (widths and each layer's activation), losses, batch sizes and seeds.

The budget is bounded (max_examples) so the default run stays quick; a failing example
is shrunk by hypothesis and printed as a configuration to reproduce.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from crosscheck import reference
from crosscheck.common import registry
from crosscheck.common.driver import Capability
from crosscheck.reference import Config
from crosscheck.suite.cases import Case
from crosscheck.verdict import checks

BUDGET = settings(max_examples=12, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def cases(draw, capability=None):
    """A random case; with a plug-in's capability (crosscheck.common.driver.Capability), only inside it: a plug-in gets
    as many examples as a built-in backend, not a run of unsupported ones that hypothesis gives up on."""
    cap = capability
    fixed = None if cap is None or cap.layers is None else cap.layers - 1  # the hidden layers a plug-in has
    hidden_layers = draw(st.lists(st.integers(1, 6), min_size=fixed or 0, max_size=3 if fixed is None else fixed))
    losses = list(registry.LOSSES) if cap is None else [loss for loss in cap.losses if loss in registry.LOSSES]
    loss = draw(st.sampled_from(losses))
    n_in = draw(st.integers(1, 5))
    outputs = registry.output_activations(loss) if cap is None else \
        [a for a in registry.output_activations(loss) if a in cap.activations]
    output = draw(st.sampled_from(outputs))
    n_out = draw(st.integers(2, 4)) if registry.ACTIVATIONS[output].outputs == "simplex" else draw(st.integers(1, 3))
    if cap is not None and cap.outputs is not None:
        n_out = cap.outputs
    samples = draw(st.integers(1, 12))
    batch = draw(st.one_of(st.none(), st.integers(1, samples))) if cap is None or cap.minibatch else None
    hidden_kinds = registry.hidden_activations() if cap is None else \
        [a for a in registry.hidden_activations() if a in cap.activations]
    # A model drawn layer by layer: each hidden layer its own activation (the shorthand gives them all one).
    widths = (n_in, *hidden_layers, n_out)
    model = []
    for l, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
        last = l == len(widths) - 2
        model += [("dense", fan_in, fan_out), output if last else draw(st.sampled_from(hidden_kinds))]
    # A plug-in whose update rules are its own gets them drawn (an optimizer object's adam, CS231n's rules): each is
    # code of its own to exercise; the reference's optimizer on a plug-in's gradients, or a built-in, plain descent.
    own = cap is not None and cap.own_updates
    optimizer = draw(st.sampled_from([o for o in cap.optimizers if o in registry.OPTIMIZERS])) if own else "sgd"
    config = Config(model=tuple(model), loss=loss, init=draw(st.sampled_from(list(registry.INITS))),
                    lr=draw(st.sampled_from([0.01, 0.1])), epochs=draw(st.integers(1, 6)), batch_size=batch,
                    seed=draw(st.integers(0, 2**16)), optimizer=optimizer)
    return Case("hypothesis", config, samples=samples)


def near_a_kink(case, margin=1e-4):
    """Whether an activation's input lies within margin of a kink the registry records for it (relu's, leaky_relu's
    and elu's at 0), where central differences straddle the jump in f'."""
    config, params, X, _, _ = case.inputs()
    cache = reference.mlp.forward(params, X, config)
    return any(np.min(np.abs(layer_cache[0] - registry.ACTIVATIONS[layer.kind].kink)) < margin  # the layer's input
               for layer_cache, layer in zip(cache, config.model)
               if layer.kind in registry.ACTIVATIONS and registry.ACTIVATIONS[layer.kind].kink is not None)


@BUDGET
@given(case=cases())
def test_reference_gradients_match_finite_differences(case):
    assume(not near_a_kink(case))  # a dead relu with zero bias puts z exactly on the kink: no derivative there
    checks.check_finite_differences(case)


@pytest.mark.parametrize("capability", [
    Capability(activations=("sigmoid",), losses=("half_sse",), layers=2),
    Capability(activations=("sigmoid", "tanh", "relu"), losses=("half_sse", "mse"), minibatch=True, outputs=1),
    Capability(activations=("tanh", "softmax"), losses=("softmax_cross_entropy",), layers=3, dtypes=("float32",)),
], ids=["seed-class", "step-function", "three-layer-classifier"])
@BUDGET
@given(data=st.data())
def test_a_plugin_is_drawn_only_what_it_supports(capability, data):
    """A plug-in's property test draws inside its declared capability: hypothesis would give up on one that drew
    unsupported configurations (each a skip), and the plug-in would get no property test at all."""
    case = data.draw(cases(capability))
    dtype = data.draw(st.sampled_from(capability.dtypes))  # drawn apart, as test_backend_gradients_and_runs_agree does
    assert capability.reason(case.config.replace(dtype=dtype)) is None, case.config


@BUDGET
@given(data=st.data())
def test_backend_gradients_and_runs_agree(driver, device, data):
    cap = driver.capability
    case = data.draw(cases(cap), label="case")
    dtype = data.draw(st.sampled_from(["float64", "float32"] if cap is None else list(cap.dtypes)), label="dtype")
    checks.check_forward(driver, case, dtype, device)
    checks.check_gradients(driver, case, dtype, device)
    checks.check_trajectory(driver, case, dtype, device)


@pytest.mark.parametrize("kind", [name for name, a in registry.ACTIVATIONS.items() if a.kink is not None])
def test_the_kink_guard_covers_every_kink_the_registry_records(kind):
    """XOR's first sample is (0, 0) and the biases start at 0: the first hidden layer's input to the activation is
    exactly its kink there, for relu, leaky_relu and elu alike (the guard once knew relu's alone)."""
    config = Config(model=(("dense", 2, 3), kind, ("dense", 3, 1), "identity"), loss="mse", init="he_normal",
                    epochs=1)
    assert near_a_kink(Case(f"kink-{kind}", config))
    smooth = Config(model=(("dense", 2, 3), "tanh", ("dense", 3, 1), "identity"), loss="mse", init="he_normal",
                    epochs=1)
    assert not near_a_kink(Case("smooth", smooth))
