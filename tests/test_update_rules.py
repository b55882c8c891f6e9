"""Update rules as people write them (crosscheck/adapters/update_rules.py): an optimizer object, update(params, grads)
over dicts by name, its state read back as the reference's; d2l's in-place sgd(params, lr, batch_size) on .grad. Each
agrees where right, is caught (and named where the catalogue knows it) where wrong, and an interface it cannot call
is refused before anything trains."""

import re

import numpy as np
import pytest

from crosscheck.adapters import gradient_function
from crosscheck.common.errors import AdapterError
from crosscheck.diagnosis.diagnose import diagnose
from crosscheck.reference import Config
from crosscheck.suite.cases import Case
from crosscheck.verdict import checks
from crosscheck.verdict.compare import Disagreement

from .source import needs_source_tree

ADAM = Case("two-layer-adam", Config(layers=(4, 8, 3), hidden="tanh", output="softmax", init="glorot_uniform",
                                     loss="softmax_cross_entropy", optimizer="adam", lr=0.01, epochs=40, batch_size=20,
                                     seed=3), samples=60)
LINEAR = Case("d2l-linear", Config(layers=(3, 2), hidden="identity", output="identity", init="glorot_uniform",
                                   loss="mse", lr=0.05, epochs=30, batch_size=10, seed=4), samples=40)


def examples():
    import sys

    from .source import ROOT

    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from examples import optimizer_object_numpy

    return optimizer_object_numpy


@needs_source_tree
def test_an_optimizer_object_agrees_and_its_moments_are_read_back_as_adams_state():
    """check_trajectory compares every optimizer-state leaf at each checkpoint (adam first moment of layer 1 weight,
    ...): the object's m and v dicts, read back by name, are held to the reference's moments."""
    example = examples()
    checks.check_gradients(example.DRIVER, ADAM, "float64")
    checks.check_trajectory(example.DRIVER, ADAM, "float64")
    run = example.DRIVER.train(ADAM.problem(), (ADAM.config.epochs,))
    from crosscheck.reference.mlp import train

    config, params, X, y, orders = ADAM.inputs()
    ref = train(params, X, y, config, orders, checkpoints=(config.epochs,))
    for key in ("first moment", "second moment"):
        for mine, theirs in zip(run.state.opt_state[key], ref.state.opt_state[key]):
            assert all(np.allclose(a, b, rtol=1e-10, atol=1e-16) for a, b in zip(mine, theirs)), key


@needs_source_tree
def test_a_wrong_moment_is_named_where_it_parts():
    example = examples()

    class Absolute(example.Adam):
        def update(self, params, grads):
            super().update(params, {n: g for n, g in grads.items()})
            for n, g in grads.items():  # the second moment kept of |g|, not g^2: the steps use the right one
                self.v[n] = self.v[n] - (1 - self.beta2) * g * g + (1 - self.beta2) * np.abs(g)

    with pytest.raises(Disagreement, match="adam second moment of layer 1 weight"):
        checks.check_trajectory(example.driver(Absolute, "absolute"), ADAM, "float64")


@needs_source_tree
def test_the_planted_optimizer_object_is_named():
    import examples.optimizer_object_numpy_buggy as buggy

    with pytest.raises(Disagreement):
        checks.check_trajectory(buggy.DRIVER, ADAM, "float64")
    found = diagnose(buggy.DRIVER, ADAM)
    assert [m[0] for m in found.matches] == ["adam-bias-correction-off-by-one"], found.text()


@needs_source_tree
def test_a_run_continued_across_a_stretch_boundary_is_the_run_trained_at_once():
    """The object rides in the state (a copy), so that a run trained in stretches, as the report's, keeps its t and
    its moments: 20 epochs then 20 more against 40 at once."""
    example = examples()
    config, params, X, y, orders = ADAM.inputs()
    mlp = example.DRIVER.mlp
    whole = mlp.train(params, X, y, config, orders)
    first = mlp.train(params, X, y, config.replace(epochs=20), orders[:20])
    second = mlp.train(first.state.params, X, y, config.replace(epochs=20), orders[20:],
                       opt_state=first.state.opt_state, step=first.state.step)
    for a, b in zip(checks.flat(whole.params), checks.flat(second.params)):
        assert np.array_equal(a, b)


def test_d2ls_in_place_sgd_agrees_and_its_planted_copy_is_caught(request):
    from .strictness import load_or_skip

    load_or_skip(request.config, "torch")
    import sys

    from .source import IN_SOURCE_TREE, ROOT

    if not IN_SOURCE_TREE:
        pytest.skip("examples/ is in the source tree")
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from examples import d2l_sgd_torch, d2l_sgd_torch_buggy

    checks.check_trajectory(d2l_sgd_torch.DRIVER, LINEAR, "float64")
    with pytest.raises(Disagreement, match="layer 1 weight"):
        checks.check_trajectory(d2l_sgd_torch_buggy.DRIVER, LINEAR, "float64")
    assert diagnose(d2l_sgd_torch_buggy.DRIVER, LINEAR).stage == "update"


def test_a_numpy_in_place_step_reads_grad_as_d2ls_does():
    """The NumPy form of d2l's step: each parameter an array with its .grad, changed in place."""

    def grads(params, X, y):
        ((W, b),) = params
        r = X @ W + b - y
        dz = 2 * r / r.size
        return np.mean(r * r), [(X.T @ dz, dz.sum(axis=0, keepdims=True))]

    def sgd(params, lr, batch_size):
        for param in params:
            param -= lr * param.grad / batch_size

    driver = gradient_function(grads, forward=lambda p, X: X @ p[0][0] + p[0][1], activations=("identity",),
                               losses=("mse",), layers=1, update=sgd, optimizer="sgd")
    checks.check_trajectory(driver, LINEAR, "float64")


class NoUpdate:
    def __init__(self, lr):
        self.lr = lr

    def step(self, params, grads):
        pass


class NeedsSchedule:
    def __init__(self, lr, warmup):
        self.lr = lr

    def update(self, params, grads):
        pass


class Unread:
    """Adam's moments kept in a list, not by name: nothing to read back."""

    def __init__(self, lr, betas, eps):
        self.moments = []

    def update(self, params, grads):
        pass


def _grads(params, X, y):
    return 0.0, [tuple(np.zeros_like(p) for p in pair) for pair in params]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"update": NoUpdate, "optimizer": "sgd"}, r"NoUpdate has no method update\(params, grads\)"),
    ({"update": NeedsSchedule, "optimizer": "sgd"}, r"NeedsSchedule\(lr, warmup\) requires warmup"),
    ({"update": Unread, "optimizer": "adam"}, "Unread keeps no adam first moment by parameter name under m, exp_avg"),
])
def test_an_update_rule_it_cannot_call_is_refused_before_training(kwargs, message):
    """Driver.misfit's probe (the report's exit 2, pytest's usage error): one step of a throwaway copy."""
    case = Case("refused", ADAM.config.replace(optimizer=kwargs["optimizer"], layers=(4, 3)), samples=20)
    driver = gradient_function(_grads, activations=("softmax",), losses=("softmax_cross_entropy",), **kwargs)
    said = driver.misfit(case.problem())
    assert said is not None and re.search(message, said), said


def test_an_in_place_step_is_plain_descent_and_update_needs_its_optimizer():
    def sgd(params, lr, batch_size):
        pass

    with pytest.raises(AdapterError, match="an in-place step rule.* is plain descent"):
        gradient_function(_grads, update=sgd, optimizer="adam")
    with pytest.raises(ValueError, match="update= needs optimizer="):
        gradient_function(_grads, update=sgd)
    with pytest.raises(AdapterError, match=r"cannot be called as the adapter calls it, \(params, lr, batch_size\)"):
        gradient_function(_grads, update=lambda params, grads: None, optimizer="sgd")  # refused as it is declared
    driver = gradient_function(_grads, update=sgd, optimizer="sgd", losses=("softmax_cross_entropy",),
                               activations=("tanh", "softmax"))
    assert driver.supports(ADAM.config) == "sgd only, not adam"
