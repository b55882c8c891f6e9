"""Conventions are not mistakes (common/conventions.py): each registered convention, declared, is computed alike by the
reference and both mirrors (and by autodiff of each mirror's forward); code that follows one undeclared disagrees, and
the diagnosis names the convention and its declaration, never a mistake. The refusals of bad declarations."""

from dataclasses import replace

import pytest

from crosscheck import reference
from crosscheck.common.conventions import CONVENTIONS, alternatives, check
from crosscheck.common.driver import Unsupported
from crosscheck.diagnosis.diagnose import diagnose
from crosscheck.reference import Config
from crosscheck.suite.cases import BY_ID, under
from crosscheck.verdict import checks
from crosscheck.verdict.compare import Disagreement

from .source import needs_source_tree

# Two batch norms, minibatches of 24 with a last batch of 16 (Bessel's n / (n - 1) differs between them), momentum.
CASE = BY_ID["batchnorm-tanh-softplus-momentum-minibatch"]
EPOCHS = 15  # a quarter of the case's run: the running statistics move every step (60 epochs in tox -e all's slow run)
# Every value a source uses that is not the default, on a case that holds what it is about (a batch norm, the
# optimizer): numbers in the forms and at the rates of their sources (makemore's keep:0.999, Keras's keep:0.99), and
# one rate no source uses, which a declaration may still give.
BN, RMSPROP, ADAM = CASE.id, "rmsprop-minibatch", "adam-minibatch"
CE, BCE = "square-tanh-softmax-ce-minibatch", "relu-sigmoid-bce-minibatch"
# Momentum under a schedule: with a constant lr the velocity is -lr times the buffer, and the two forms meet.
SCHEDULED = "momentum-minibatch-scheduled"
NESTEROV = "nesterov-minibatch-scheduled"
EXTRA = {f"{name}-minibatch-scheduled": replace(BY_ID[f"{name}-minibatch"], id=f"{name}-minibatch-scheduled",
                                                config=BY_ID[f"{name}-minibatch"].config.replace(
                                                    schedule="warmup_cosine", warmup_steps=4, decay_steps=40))
         for name in ("momentum", "nesterov")}
# A summed mse on batches of 8 and 2 outputs: 16 times the mean's gradient, so a sixteenth of the mean's lr (the same
# steps). The same mse averaged over samples alone: twice the mean's gradient, at the case's own lr.
# Clipping by each leaf's own norm: a leaf of this case's (its output layer's weight) is past the norm alone at the
# first step, so per-tensor clipping differs there (Keras's clipnorm).
CLIPPED = "attention-grouped-tanh-momentum"
MSE = "tanh-identity-mse-minibatch"
SUMMED = f"{MSE}-summed"
EXTRA[SUMMED] = replace(BY_ID[MSE], id=SUMMED, config=BY_ID[MSE].config.replace(lr=BY_ID[MSE].config.lr / 16))
WITH_CASE = [("batchnorm.variance", "unbiased", BN), ("batchnorm.running_variance", "biased", BN),
             ("batchnorm.running_average", "keep:0.999", BN), ("batchnorm.running_average", "keep:0.99", BN),
             ("rmsprop.eps", "inside", RMSPROP), ("adam.eps", "efficient", ADAM),
             ("loss.log_guard", "add:1e-7", CE), ("loss.log_guard", "clip:1e-7", BCE),
             ("momentum.form", "velocity", SCHEDULED), ("nesterov.form", "velocity", NESTEROV),
             ("loss.reduction", "sum", SUMMED), ("mse.average", "samples", MSE),
             ("clip.norm", "per_tensor", CLIPPED), ("weight_decay.form", "decoupled", "momentum-minibatch"),
             ("batchnorm.running_average", "take:0.3", BN)]
DECLARED = [(key, value) for key, value, _ in WITH_CASE]


def by_key(pairs):
    """pairs as parameters: each key's first value in the default run, its other values with --run-slow."""
    first = {}
    return [pytest.param(key, value, id=f"{key}={value}", marks=[] if first.setdefault(key, value) == value else [
        pytest.mark.slow(reason="a convention's other values (each key's first value by default)")])
        for key, value in pairs]
# The diagnosis tries the values the sources use (Convention.tried), not any number; and a clip that never bites (no
# probability within E of 0 or 1, as on these cases) changes nothing, so there is nothing to name: the guards' values
# where they bite are test_the_guards_on_saturated_probabilities' below.
NAMED = [d for d in DECLARED if d not in (("loss.log_guard", "clip:1e-7"), ("batchnorm.running_average", "take:0.3"))]


def case_of(key, value):
    case_id = next(case for k, v, case in WITH_CASE if (k, v) == (key, value))
    return EXTRA.get(case_id) or BY_ID[case_id]


def test_every_registered_convention_is_planted_here():
    assert {key for key, _ in DECLARED} == set(CONVENTIONS)
    assert all(CONVENTIONS[key].applies(case_of(key, value).config) for key, value in DECLARED)
    assert all(value != CONVENTIONS[key].default for key, value in DECLARED)


@pytest.mark.builtin  # a plug-in's own declarations would override the one under test
@pytest.mark.parametrize(("key", "value"), by_key(DECLARED))
def test_a_declared_convention_agrees_on_every_backend(driver, device, dtype, key, value):
    case = under(case_of(key, value), {key: value})
    checks.check_gradients(driver, case, dtype, device)
    checks.check_trajectory(driver, case, dtype, device, epochs=EPOCHS)


AUTODIFF = [d for d in DECLARED if d[0] in ("batchnorm.variance", "loss.log_guard", "loss.reduction", "mse.average")]


@pytest.mark.frameworks
@pytest.mark.parametrize(("key", "value"), AUTODIFF, ids=[f"{k}={v}" for k, v in AUTODIFF])
def test_autodiff_of_the_declared_forward_agrees_with_its_manual_backward(driver, device, key, value):
    """The normalising variance and the reductions change the backward: autodiff of each mirror's forward under them
    is its own check of the manual c x^ mean(dx^ x^) term and of the loss's c (a sum's N K, K outputs). A guarded log
    changes the value alone: autodiff reports the guarded value beside the exact loss's gradient."""
    checks.check_gradients(driver, under(case_of(key, value), {key: value}), "float64", device, autodiff=True)


@pytest.mark.frameworks
@pytest.mark.parametrize(("key", "value"), [("loss.reduction", "sum"), ("mse.average", "samples")],
                         ids=["sum", "samples"])
def test_the_frameworks_own_losses_and_optimizers_under_a_reduction(driver, device, key, value):
    """torch.nn.functional's and JAX's own layers and losses (the mean times the reduction's c), trained by torch.optim
    and optax: the framework's run of the declared loss."""
    checks.check_framework_optimizer(driver, under(case_of(key, value), {key: value}), device, native=True)


def test_a_summed_loss_adds_the_ranks_and_the_micro_batches_up():
    """Under loss.reduction=sum the data-parallel ranks' and the micro-batches' losses and gradients add (each weighs
    1, not its share of the batch): two ranks, and three micro-batches, against the one whole batch, in the
    reference (the mirrors' sharded runs check themselves against it in test_parallel's cases)."""
    import numpy as np

    case = under(BY_ID["parallel-data-tanh-mse-momentum-minibatch"], {"loss.reduction": "sum"})
    config, params, X, y, _ = case.inputs()
    whole = config.replace(parallel=None)
    loss1, grads1 = reference.mlp.accumulated(params, X, y, whole)
    mean = reference.mlp.accumulated(params, X, y, whole.replace(conventions=()))[0]
    assert np.isclose(loss1, mean * y.size, rtol=1e-12), "the sum is N K times the mean"
    for split in (config, whole.replace(accumulate=3)):
        loss, grads = reference.mlp.accumulated(params, X, y, split)
        assert np.allclose(loss, loss1, rtol=1e-12, atol=0), split
        for mine, theirs in zip(grads, grads1):
            assert all(np.allclose(m, t, rtol=1e-12, atol=1e-15) for m, t in zip(mine, theirs)), split


class _Following:
    """An mlp module that computes under conventions of its own, whatever the config it is handed declares: code
    written to another framework's or course's convention."""

    def __init__(self, mlp, conventions):
        self._mlp, self._conventions = mlp, conventions

    def __getattr__(self, name):
        fn = getattr(self._mlp, name)
        if not callable(fn):
            return fn

        def follows(*args, **kwargs):
            args = [self._under(a) for a in args]
            return fn(*args, **{k: self._under(v) for k, v in kwargs.items()})

        return follows

    def _under(self, value):
        return value.replace(conventions=self._conventions) if isinstance(value, Config) else value


def following(conventions):
    """The reference as code that follows conventions without declaring them."""
    return replace(reference.DRIVER, name="follows", mlp=_Following(reference.mlp, conventions), reference=False)


@pytest.mark.parametrize(("key", "value"), by_key(NAMED))
def test_an_undeclared_convention_is_named_with_its_declaration_not_called_a_mistake(key, value):
    follows, case = following({key: value}), case_of(key, value)
    with pytest.raises(Disagreement):
        checks.check_trajectory(follows, case, "float64", epochs=EPOCHS)
    found = diagnose(follows, case)
    assert found.conventions == [((key, value),)] and not found.matches, found.text()
    assert "not a mistake" in found.text() and f"--convention {key}={value}" in found.text(), found.text()
    checks.check_trajectory(replace(follows, conventions=check({key: value})), case, "float64", epochs=EPOCHS)


@pytest.mark.frameworks
def test_optaxs_rmsprop_is_the_oracle_of_eps_inside_the_root(driver, device):
    """optax.rmsprop's eps_in_sqrt says either form (its default is inside); torch.optim.RMSprop says outside only,
    and so has no oracle for inside: a skip that says so, not a pass."""
    case = under(BY_ID[RMSPROP], {"rmsprop.eps": "inside"})
    if driver.name == "torch":
        with pytest.raises(Unsupported, match="no torch oracle for rmsprop.eps=inside"):
            checks.check_framework_optimizer(driver, case, device)
        return
    checks.check_framework_optimizer(driver, case, device)


@pytest.mark.frameworks
def test_torchs_clip_grad_norm_per_parameter_is_the_oracle_of_per_tensor_clipping(driver, device):
    """clip_grad_norm_ called on each parameter alone is Keras's clipnorm in torch's formula; optax clips by the
    global norm alone, and so has no oracle for per_tensor: a skip that says so, not a pass."""
    case = under(BY_ID[CLIPPED], {"clip.norm": "per_tensor"})
    if driver.name == "jax":
        with pytest.raises(Unsupported, match="no optax oracle for clip.norm=per_tensor"):
            checks.check_framework_optimizer(driver, case, device)
        return
    checks.check_framework_optimizer(driver, case, device)


def test_makemore_part_4s_two_conventions_are_named_together():
    """makemore part 4 normalises with Bessel's variance and moves its running statistics by 0.001: no single
    convention reproduces it, the two together do."""
    makemore = {"batchnorm.variance": "unbiased", "batchnorm.running_average": "keep:0.999"}
    found = diagnose(following(makemore), CASE)
    assert [dict(change) for change in found.conventions] == [makemore] and not found.matches, found.text()


def test_the_alternatives_tried_are_every_other_value_of_what_the_model_holds():
    config = CASE.config.replace(conventions={"batchnorm.running_variance": "biased"})
    singles = alternatives(config)
    assert ("batchnorm.running_variance", "unbiased") in singles and ("batchnorm.variance", "unbiased") in singles
    assert set(alternatives(BY_ID[MSE].config)) == {("loss.reduction", "sum"), ("mse.average", "samples")}, \
        "no batch norm, no convention of it; its loss's"
    assert not list(alternatives(BY_ID["seed1-xor"].config)), "half_sse is a sum by definition, plain descent"


@pytest.mark.parametrize(("declared", "message"), [
    ({"batchnorm.varience": "biased"}, "unknown convention 'batchnorm.varience'; choose one of batchnorm.variance"),
    ({"batchnorm.variance": "bessel"}, "convention batchnorm.variance: unknown value 'bessel'; choose one of biased"),
    ({"batchnorm.running_average": "keep:1.5"}, "choose one of take:M, keep:K"),
    ({"batchnorm.running_average": "0.9"}, "choose one of take:M, keep:K"),
    (["batchnorm.variance=biased", "batchnorm.variance=unbiased"], "declared twice"),
])
def test_a_bad_declaration_is_refused_naming_it(declared, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Config(conventions=declared)


def test_declaring_a_default_changes_nothing():
    assert Config(conventions={"batchnorm.running_variance": "unbiased"}) == Config()
    assert check({"batchnorm.running_average": "keep:0.90"}) == (("batchnorm.running_average", "keep:0.9"),)


BN_MODEL = "dense:2:4,batchnorm:4,tanh,dense:4:1,sigmoid"


def test_the_command_line_and_a_model_file_declare_conventions_and_the_header_names_them(tmp_path):
    from crosscheck.report import cli, summary

    _, case, _ = cli.parse_args(["--model", BN_MODEL, "--convention", "batchnorm.variance=unbiased"])
    assert case.config.conventions == (("batchnorm.variance", "unbiased"),)
    assert "conventions batchnorm.variance=unbiased (declared), batchnorm.running_variance=unbiased" in \
        summary.title(case.config)
    model = tmp_path / "bn.toml"
    model.write_text(f'model = "{BN_MODEL}"\n[conventions]\n"batchnorm.running_variance" = "biased"\n'
                     '"batchnorm.running_average" = "keep:0.9"\n')
    _, case, _ = cli.parse_args(["--model", str(model), "--convention", "batchnorm.running_average=keep:0.999"])
    assert dict(case.config.conventions) == {"batchnorm.running_variance": "biased",
                                             "batchnorm.running_average": "keep:0.999"}, "the command line wins"


@pytest.mark.parametrize(("argv", "message"), [
    (["--convention", "batchnorm.variance"], "--convention must be KEY=VALUE"),
    (["--convention", "batchnorm.variance=bessel"], "unknown value 'bessel'"),
    (["--convention", "adam.epsilon=inside"], "unknown convention 'adam.epsilon'"),
])
def test_a_bad_convention_on_the_command_line_exits_2_naming_it(capsys, argv, message):
    from crosscheck.report import cli

    with pytest.raises(SystemExit) as exit_:
        cli.parse_args(["--model", BN_MODEL, *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_conventions_lists_every_key_its_values_and_their_sources(capsys):
    from crosscheck.report import cli

    with pytest.raises(SystemExit) as exit_:
        cli.parse_args(["--conventions"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and all(f"{key}: " in out for key in CONVENTIONS), out
    assert "CS231n's assignment 2" in out and "makemore part 4" in out


def test_pytests_convention_option_reaches_every_plug_in_over_its_own():
    """pytest --convention KEY=VALUE (backends.declare_conventions) is laid over what a plug-in's adapter declares."""
    from crosscheck import backends
    from crosscheck.adapters.layer_pairs import cs231n

    from .test_cs231n import example

    layers = example().mlp.layers
    backends.register("declared-here", lambda: cs231n(layers))
    try:
        backends.declare_conventions(["batchnorm.running_variance=unbiased"])
        assert dict(backends.load("declared-here").conventions) == {"batchnorm.running_average": "keep:0.9",
                                                                     "momentum.form": "velocity"}
        with pytest.raises(ValueError, match="unknown convention"):
            backends.declare_conventions(["batchnorm.momentum=0.9"])
    finally:
        backends.declare_conventions([])
        backends._plugins.pop("declared-here", None)


@pytest.mark.parametrize("guard", [("add", 1e-7), ("clip", 1e-7)], ids=["add", "clip"])
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "bce"])
def test_the_guards_on_saturated_probabilities(request, loss, guard):
    """Where a probability rounds to 0 or 1 the guard bites: the reference's and both mirrors' guarded values against
    the formula written out here element by element with math.log (float64: within a few ulps of the sum)."""
    import importlib
    import math

    import numpy as np

    from crosscheck.reference import losses

    from .strictness import load_or_skip

    a = np.array([[1e-12, 1.0 - 1e-12], [0.25, 0.75], [0.0, 1.0]])
    y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    form, eps = guard

    def g(p):
        return p + eps if form == "add" else min(max(p, eps), 1.0 - eps)

    if loss == "softmax_cross_entropy":
        want = -sum(t * math.log(g(p)) for t, p in zip(y.ravel(), a.ravel()) if t) / len(a)
    else:
        want = -sum(t * math.log(g(p)) + (1 - t) * math.log(g(1 - p)) for t, p in zip(y.ravel(), a.ravel())) / a.size
    got = {"numpy": losses.guarded_forward(loss, a, y, guard)}
    for name in ("torch", "jax"):
        load_or_skip(request.config, name)
        mirror = importlib.import_module(f"crosscheck.backends.{name}.losses")
        native = importlib.import_module(f"crosscheck.backends.{name}").DRIVER.to_native
        got[name] = float(mirror.guarded_forward(loss, native(a, "cpu"), native(y, "cpu"), guard))
    for name, value in got.items():
        assert abs(value - want) <= 8 * np.spacing(abs(want)) * a.size, (name, value, want)  # a sum's rounding


@needs_source_tree
def test_the_textbooks_guarded_cross_entropy_agrees_declared_and_is_named_undeclared():
    """examples/guarded_ce_numpy.py: -log(p + 1e-7) in the value, the exact gradient; declared, it agrees over its
    run; undeclared, the loss alone parts and the diagnosis names the guard; its planted copy is named under it."""
    import sys

    from .source import ROOT

    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from crosscheck.suite.cases import Case
    from examples import guarded_ce_numpy, guarded_ce_numpy_buggy

    case = Case("textbook-guarded-ce", Config(layers=(4, 8, 3), hidden="tanh", output="softmax", init="glorot_uniform",
                                              loss="softmax_cross_entropy", lr=0.1, epochs=100, seed=5), samples=60)
    checks.check_gradients(guarded_ce_numpy.DRIVER, case, "float64")
    checks.check_trajectory(guarded_ce_numpy.DRIVER, case, "float64")
    undeclared = replace(guarded_ce_numpy.DRIVER, conventions=())
    with pytest.raises(Disagreement, match="guarded: loss disagrees"):
        checks.check_gradients(undeclared, case, "float64")
    found = diagnose(undeclared, case)
    assert found.conventions == [(("loss.log_guard", "add:1e-7"),)], found.text()
    found = diagnose(guarded_ce_numpy_buggy.DRIVER, case)
    assert [m[0] for m in found.matches] == ["cross-entropy-not-averaged"], found.text()


def test_an_exported_problem_carries_the_conventions_in_force(tmp_path):
    """A program in another language reads what to compute from the problem's metadata: every convention in force on
    the model, declared or default, and the manifest keeps them with the run (and the --convention in its argv)."""
    import json

    from crosscheck.report import main

    out = tmp_path / "bn"
    argv = ["export", "--model", BN_MODEL, "--epochs", "5", "--convention", "batchnorm.running_variance=biased",
            "--out", str(out)]
    assert main.main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run"]["conventions"] == ("batchnorm.variance=biased,batchnorm.running_variance=biased,"
                                              "batchnorm.running_average=take:0.1")
    assert manifest["run"]["config"]["conventions"]["batchnorm.running_variance"] == "biased"
    assert "--convention" in manifest["argv"] and "batchnorm.running_variance=biased" in manifest["argv"]


def test_the_python_api_takes_conventions_as_a_dict():
    import json

    import crosscheck

    report = crosscheck.check(model=BN_MODEL, epochs=5, batch_size=2, backends="numpy", no_progress=True,
                              conventions={"batchnorm.variance": "unbiased"})
    data = json.loads(report.to_json())
    assert data["conventions"]["batchnorm.variance"] == "unbiased", data["conventions"]
    assert "batchnorm.variance=unbiased (declared)" in data["title"]
    with pytest.raises(TypeError, match="conventions must be a dict"):
        crosscheck.check(model=BN_MODEL, epochs=5, conventions=["batchnorm.variance=unbiased"])


def summed_mse_step(w1, b1, w2, b2, X, y, lr):
    """A two-layer sigmoid net in rows, trained on L = sum (a - y)^2: dL/da = 2 (a - y), no 1/(N K) (loss.reduction=
    sum, as PyTorch's reduction='sum' writes it)."""
    import numpy as np

    h = 1 / (1 + np.exp(-(X @ w1 + b1)))
    a = 1 / (1 + np.exp(-(h @ w2 + b2)))
    dz2 = 2 * (a - y) * a * (1 - a)
    dz1 = dz2 @ w2.T * h * (1 - h)
    return w1 - lr * X.T @ dz1, b1 - lr * dz1.sum(0, keepdims=True), w2 - lr * h.T @ dz2, \
        b2 - lr * dz2.sum(0, keepdims=True)


def summed_mse_forward(w1, b1, w2, b2, X):
    import numpy as np

    h = 1 / (1 + np.exp(-(X @ w1 + b1)))
    return 1 / (1 + np.exp(-(h @ w2 + b2)))


def test_a_step_function_declares_its_summed_loss():
    """step_function(conventions=...): the summed mse agrees declared; undeclared, the diagnosis names the sum and
    its declaration, never 'mse-not-averaged' or any other mistake."""
    from crosscheck.adapters import step_function

    case = replace(BY_ID["seed1-xor"], id="xor-summed-mse", config=BY_ID["seed1-xor"].config.replace(loss="mse",
                                                                                                 epochs=300))
    kwargs = {"layout": "rows", "forward": summed_mse_forward, "loss": "mse", "name": "summed"}
    declared = step_function(summed_mse_step, conventions={"loss.reduction": "sum"}, **kwargs)
    checks.check_gradients(declared, case, "float64")
    checks.check_trajectory(declared, case, "float64")
    undeclared = step_function(summed_mse_step, **kwargs)
    with pytest.raises(Disagreement):
        checks.check_trajectory(undeclared, case, "float64")
    found = diagnose(undeclared, case)
    assert found.conventions == [(("loss.reduction", "sum"),)] and not found.matches, found.text()
    assert "--convention loss.reduction=sum" in found.text()
