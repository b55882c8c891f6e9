"""CS231n-style layer functions as a plug-in (crosscheck/adapters/layer_pairs.py): op by op, then assembled into models
and trained with their own update rules, against the reference; the assignment's own batch-norm convention as a
finding."""

import sys
from dataclasses import replace

import pytest

from crosscheck.adapters.layer_pair_ops import check_ops
from crosscheck.adapters.layer_pairs import DropoutMaskError, cs231n
from crosscheck.diagnosis.diagnose import diagnose
from crosscheck.suite.cases import BY_ID
from crosscheck.suite.plugin_cases import BY_ID as PLUGIN_BY_ID
from crosscheck.verdict import checks
from crosscheck.verdict.compare import Disagreement

from .source import IN_SOURCE_TREE, ROOT, needs_source_tree

if IN_SOURCE_TREE and str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # examples/
if IN_SOURCE_TREE:
    # Imported here, before any test patches cs231n_layers: the buggy copy takes a snapshot of that module's
    # functions when first imported, and a first import under a test's monkeypatch kept the patch for later tests.
    from examples import cs231n_layers_buggy  # noqa: F401

pytestmark = needs_source_tree


def example(buggy=False):
    from examples import cs231n_layers, cs231n_layers_buggy

    return (cs231n_layers_buggy if buggy else cs231n_layers).DRIVER


def bn_case(optimizer):
    """dense, relu, batch norm, dense, softmax on 30 synthetic samples in batches of 6 (crosscheck/suite/cases.py)."""
    return PLUGIN_BY_ID[f"cs231n-bn-{optimizer}-softmax_cross_entropy"]


def test_each_function_agrees_with_the_reference_op_by_op():
    from examples import cs231n_layers

    assert check_ops(cs231n_layers) == ["dense", "relu", "batchnorm", "conv2d", "maxpool2d", "dropout",
                                        "softmax_cross_entropy", "hinge"]


def dropout_case():
    """dense, relu, dropout, dense, softmax in batches of 6, the last of 2, with momentum
    (crosscheck/suite/cases.py)."""
    return PLUGIN_BY_ID["cs231n-dropout-momentum"]


# The models the functions assemble, trained with their own update rules in the report's stretches, are
# tests/test_your_code.py's (crosscheck/suite/plugin_cases.py), run there on this example and its in-place twin.


def test_the_planted_backward_fails_its_op_check_and_is_diagnosed():
    from examples import cs231n_layers_buggy

    with pytest.raises(Disagreement, match="cs231n op: batchnorm_backward: input gradient disagrees"):
        check_ops(cs231n_layers_buggy.LAYERS)
    found = diagnose(example(buggy=True), bn_case("sgd"))
    assert found.stage == "gradients" and [m[0] for m in found.matches] == ["batchnorm-backward-without-statistics"], \
        found.text()


def test_the_assignments_batch_norm_is_declared_and_torchs_is_a_convention_named(monkeypatch):
    """CS231n's batchnorm_forward keeps the biased batch variance in its running average (bn_param's momentum 0.9
    keeping that share), where PyTorch keeps the unbiased one: cs231n() declares the assignment's conventions, so the
    example, written as the assignment asks, agrees; code that keeps PyTorch's running variance instead disagrees
    under them, and the diagnosis names the convention it follows and how to declare it, not a mistake."""
    from examples import cs231n_layers

    def unbiased(x, gamma, beta, bn_param):
        out, cache = forward(x, gamma, beta, bn_param)
        if bn_param["mode"] == "train":
            n, momentum = x.shape[0], bn_param["momentum"]
            bn_param["running_var"] = (bn_param["running_var"] - (1 - momentum) * x.var(axis=0)
                                       + (1 - momentum) * x.var(axis=0) * n / (n - 1))
        return out, cache

    case = bn_case("sgd")
    checks.check_trajectory(example(), case, "float64")
    forward = cs231n_layers.batchnorm_forward
    monkeypatch.setattr(cs231n_layers, "batchnorm_forward", unbiased)
    with pytest.raises(Disagreement, match="cs231n: layer 2 running variance disagrees"):
        checks.check_trajectory(example(), case, "float64")
    found = diagnose(example(), case)
    assert found.conventions == [(("batchnorm.running_variance", "unbiased"),)] and not found.matches, found.text()
    assert "declare --convention batchnorm.running_variance=unbiased" in found.text(), found.text()
    declared = cs231n(cs231n_layers, conventions={"batchnorm.running_variance": "unbiased"})
    checks.check_trajectory(declared, case, "float64")


def test_what_the_functions_cannot_assemble_is_skipped_with_the_reason():
    from crosscheck.common.driver import Unsupported

    with pytest.raises(Unsupported, match="relu/softmax/identity activations only"):
        checks.check_gradients(example(), BY_ID["tanh-identity-mse-minibatch"], "float64")
    with pytest.raises(Unsupported, match="sgd/momentum/rmsprop/adam only, not adamw"):
        checks.check_gradients(example(), replace(bn_case("adam"), config=bn_case("adam").config.replace(
            optimizer="adamw", weight_decay=0.01)), "float64")


def test_a_max_pool_that_sends_ties_to_every_maximum_is_a_convention_finding():
    """CS231n's usual max_pool_backward_naive masks every entry equal to the maximum: at an exact tie (the op test's
    edge sample, all one value) each of them gets the gradient, where PyTorch (and the reference) give the first."""
    import numpy as np

    from examples import cs231n_layers

    def every_maximum(dout, cache):
        x, pool_param = cache
        ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
        dx = np.zeros_like(x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]
                mask = window == window.max(axis=(2, 3), keepdims=True)
                dx[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw] += mask * dout[:, :, i, j][:, :, None,
                                                                                                            None]
        return dx

    from types import SimpleNamespace

    layers = SimpleNamespace(**{**vars(cs231n_layers), "max_pool_backward_naive": every_maximum})
    with pytest.raises(Disagreement, match=r"max_pool_backward_naive: input gradient \(only at an exact tie, where "
                                           r"several entries hold the window's maximum: .*\) disagrees .* first at "
                                           r"\[0, "):
        check_ops(layers)


def _dropout(monkeypatch, forward):
    from examples import cs231n_layers

    monkeypatch.setattr(cs231n_layers, "dropout_forward", forward)
    return cs231n_layers


def test_a_dropout_taking_p_as_the_drop_probability_is_told_so(monkeypatch):
    """CS231n's 2016 dropout_forward dropped each unit with probability p; the assignment (and the adapter) keep it
    with probability p. The masks cannot be the reference's, and the error says why, before anything is compared."""
    import numpy as np

    def drops_with_p(x, dropout_param):
        p = dropout_param["p"]
        mask = (np.random.rand(*x.shape) >= p) / (1 - p) if dropout_param["mode"] == "train" else None
        return (x * mask, (dropout_param, mask)) if mask is not None else (x, (dropout_param, None))

    layers = _dropout(monkeypatch, drops_with_p)
    with pytest.raises(DropoutMaskError, match="p taken as the probability of dropping"):
        check_ops(layers)
    with pytest.raises(DropoutMaskError, match="p taken as the probability of dropping"):
        checks.check_trajectory(example(), dropout_case(), "float64")


def test_a_dropout_drawing_its_mask_another_way_is_told_how_to_draw_it(monkeypatch):
    import numpy as np

    def binomial(x, dropout_param):
        p = dropout_param["p"]
        mask = np.random.binomial(1, p, x.shape) / p
        return x * mask, (dropout_param, mask)

    layers = _dropout(monkeypatch, binomial)
    with pytest.raises(DropoutMaskError, match=r"np.random.rand\(\*x.shape\) < p"):
        check_ops(layers)


def test_a_dropout_without_its_scale_fails_in_its_op_and_its_run(monkeypatch):
    import numpy as np

    def unscaled(x, dropout_param):
        mask = np.random.rand(*x.shape) < dropout_param["p"] if dropout_param["mode"] == "train" else None
        return (x * mask, (dropout_param, mask)) if mask is not None else (x, (dropout_param, None))

    layers = _dropout(monkeypatch, unscaled)
    with pytest.raises(Disagreement, match="cs231n op: dropout_forward disagrees"):
        check_ops(layers)
    with pytest.raises(Disagreement):
        checks.check_trajectory(example(), dropout_case(), "float64")
    found = diagnose(example(), dropout_case())  # gradients are taken without noise: the first epoch parts
    assert found.stage == "update" and "or the dropout layers, which act in training alone" in found.text()
    assert not found.matches, found.text()  # unscaled both ways: not the catalogue's dropout-scale-missing (the
    # reference's forward alone), and the diagnosis does not pretend it is


def test_keepdims_statistics_undeclared_are_refused_saying_how_to_declare_them():
    """The student example's batch norm keeps (1, D) statistics and returns (1, D) dgamma: declared keepdims=True it
    agrees (tests/test_your_code.py); undeclared, nothing is reshaped silently, and the refusal says what fits."""
    from crosscheck.adapters import AdapterError, cs231n
    from examples import cs231n_student

    undeclared = cs231n(cs231n_student.LAYERS, cs231n_student, name="undeclared")
    with pytest.raises(AdapterError, match=r"undeclared: batchnorm_forward gives bn_param\['running_mean'\] as "
                                           r"\(1, 8\), for a parameter of shape \(8,\): CS231n's keepdims convention .*"
                                           r"declare cs231n\(\.\.\., keepdims=True\)"):
        checks.check_trajectory(undeclared, bn_case("sgd"), "float64")
    with pytest.raises(AdapterError, match=r"batchnorm_backward gives dgamma as \(1, 4\), for a parameter of shape "
                                           r"\(4,\).*keepdims=True"):
        check_ops(cs231n_student.LAYERS)


def test_a_crash_inside_a_function_names_it_and_what_it_was_handed(monkeypatch):
    from examples import cs231n_layers

    def affine_forward(x, w, b):
        return x @ w.T + b, (x, w, b)  # the transpose the wrong way: a crash of the code, reported as a finding

    monkeypatch.setattr(cs231n_layers, "affine_forward", affine_forward)
    with pytest.raises(Disagreement, match=r"cs231n: affine_forward raised ValueError: .*; it was called with an array "
                                           r"\(30, 4\), an array \(4, 8\), an array \(8,\)"):
        checks.check_gradients(example(), bn_case("sgd"), "float64")


def test_a_max_pool_backward_wrong_away_from_ties_is_not_called_a_tie():
    """The tie note is for a mismatch that lies wholly in tied windows; a backward that always sends a window's
    gradient to its top-left entry is wrong elsewhere too, and the message says nothing of ties."""
    import numpy as np

    from examples import cs231n_layers

    def top_left(dout, cache):
        x, pool_param = cache
        stride = pool_param["stride"]
        dx = np.zeros_like(x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                dx[:, :, i * stride, j * stride] += dout[:, :, i, j]
        return dx

    from types import SimpleNamespace

    layers = SimpleNamespace(**{**vars(cs231n_layers), "max_pool_backward_naive": top_left})
    with pytest.raises(Disagreement, match=r"max_pool_backward_naive: input gradient disagrees") as info:
        check_ops(layers)
    assert "exact tie" not in str(info.value)
