"""Every registered op (common/registry.py), one line each: forward and backward on every built-in backend against
the reference, the framework's own vector-Jacobian product and central differences along random directions,
with edge values (kinks, saturation, large logits) in the inputs (crosscheck/verdict/ops.py)."""

import importlib

import numpy as np
import pytest

from crosscheck import backends
from crosscheck.common import dtypes
from crosscheck.common.config import Config
from crosscheck.diagnosis.catalogue import BY_ID as BUGS
from crosscheck.verdict import checks, ops
from crosscheck.verdict.compare import Disagreement

# float64 and float32 by default; the 16-bit sweep of every op with --run-slow (tox -e all, and tox -e portable's
# --all-cases under two more vector units).
SIXTEEN_BITS = pytest.mark.slow(reason="the 16-bit sweeps (every op, the seeds' runs in bfloat16 and float16)",
                                deeper=True)
DTYPES = [pytest.param(d, marks=[SIXTEEN_BITS] if d in dtypes.HALF else []) for d in dtypes.ALL]


@pytest.mark.builtin
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kind", "name"), ops.registered_ops(), ids=[f"{k}-{n}" for k, n in ops.registered_ops()])
def test_op(driver, device, kind, name, dtype):
    assert ops.check_op(driver, kind, name, device, dtype=dtype)


@pytest.mark.builtin
@pytest.mark.parametrize(("bug", "name"), [("missing-transpose", "dense"), ("bias-gradient-averaged", "dense"),
                                           ("missing-hidden-derivative", "tanh"), ("conv-kernel-not-flipped", "conv2d"),
                                           ("maxpool-gradient-to-every-position", "maxpool2d")])
def test_a_layer_mistake_fails_its_op_check(driver, device, mutate, bug, name):
    """The layer kinds' op checks can fail: a catalogue mistake planted in a layer (in the reference too, where
    central differences catch it) fails that layer's check, as a disagreement (a crash included), naming it."""
    BUGS[bug].plant(mutate, driver.name)
    with pytest.raises(Disagreement, match=f"{name} layer backward"):
        ops.check_op(driver, "layers", name, device)


@pytest.mark.frameworks
@pytest.mark.parametrize(("kind", "name", "wrong"),
                         [("activations", "gelu", "gelu_tanh"), ("losses", "mse", "half_sse")])
def test_the_frameworks_own_op_is_an_oracle(driver, device, monkeypatch, kind, name, wrong):
    """Each framework's own activation or loss (torch.nn.functional, jax.nn, optax) is compared with: swapped for
    a neighbour (the tanh approximation for the exact gelu, the half sum for the mean), the op's check fails on it."""
    native = importlib.import_module(f"{backends.REGISTRY[driver.name][0]}.autodiff").NATIVE
    monkeypatch.setitem(native, (kind, name), native[kind, wrong])
    with pytest.raises(Disagreement, match=f"{name} forward against {driver.name}'s own"):
        ops.check_op(driver, kind, name, device)


@pytest.mark.frameworks
@pytest.mark.parametrize(("ulps", "fails"), [(1, False), (16, True)])
def test_the_float64_op_bound_is_derived_and_can_fail(driver, device, monkeypatch, ulps, fails):
    """A float64 op is held to 4 x the reference's own deviation from its extended twin plus 8 ulps at its scale
    (tolerances.LOW["float64"]), not a typed-in rtol: the framework's own tanh nudged by one ulp (what a vectorised
    math library may legitimately differ by) passes; nudged by 16 ulps it fails, naming the bound's parts."""
    native = importlib.import_module(f"{backends.REGISTRY[driver.name][0]}.autodiff").NATIVE
    right = native["activations", "tanh"]
    monkeypatch.setitem(native, ("activations", "tanh"), lambda z: right(z) * (1 + ulps * 2.0 ** -52))
    from crosscheck.verdict.op_vote import op_vote

    line = op_vote("activations", "tanh", device).splitlines()[0]  # the vote holds the forward to the same bound
    assert line.endswith(f"the odd one out: {driver.name}'s own") if fails else line.endswith("all agree"), line
    if not fails:
        assert ops.check_op(driver, "activations", "tanh", device)
        return
    with pytest.raises(Disagreement, match=r"tanh forward against .*'s own disagrees with the reference: it strays "
                                           r".* from it in extended precision, more than .* \(4 x the float64"):
        ops.check_op(driver, "activations", "tanh", device)


def test_an_own_op_in_a_lower_dtype_casts_no_float64_ballot(request):
    """JAX's own attention computes its softmax in float32 (autodiff.NATIVE_DTYPE), which its check bounds in float32:
    in the float64 vote it is no voter, so it is never the odd one out for being float32 (on an Intel CPU the vote had
    blamed it while the check blamed torch)."""
    from .strictness import load_or_skip

    load_or_skip(request.config, "jax")
    from crosscheck.verdict.op_vote import op_vote

    line = op_vote("layers", "rope_attention").splitlines()[0]
    assert "jax's own" not in line and line.endswith("all agree"), line


def test_torchs_softplus_threshold_is_a_convention_the_float64_bound_sees(request, monkeypatch):
    """torch's F.softplus returns z itself above threshold 20, 14 ulps from log(1 + e^z) at the checks' edge z = 30:
    the derived bound tells that convention from rounding (the fixed rtol 1e-13 it replaced did not); the oracle
    therefore calls it with threshold 37, where the linear branch is exact to half an ulp."""
    from .strictness import load_or_skip

    load_or_skip(request.config, "torch")
    import torch

    from crosscheck.backends.torch import DRIVER
    from crosscheck.backends.torch.autodiff import NATIVE

    monkeypatch.setitem(NATIVE, ("activations", "softplus"), torch.nn.functional.softplus)
    with pytest.raises(Disagreement, match="softplus forward against torch's own disagrees .* it strays 9.3"):
        ops.check_op(DRIVER, "activations", "softplus")


@pytest.mark.frameworks
def test_the_frameworks_own_layer_is_an_oracle(driver, device, monkeypatch):
    """The framework's own dense layer (torch.nn.functional.linear, jax.lax.dot_general) is compared with: with its
    bias left out, the dense layer's check fails on it."""
    native = importlib.import_module(f"{backends.REGISTRY[driver.name][0]}.autodiff").NATIVE
    right = native["layers", "dense"]
    monkeypatch.setitem(native, ("layers", "dense"), lambda layer, x, W, b: right(layer, x, W, 0 * b))
    with pytest.raises(Disagreement, match=f"dense layer forward against {driver.name}'s own"):
        ops.check_op(driver, "layers", "dense", device)


# torch.nn.functional.batch_norm's momentum is the batch statistic's share (take:M); keep:K is its momentum 1 - K.
# Its running variance is always the unbiased one: the biased convention has no torch oracle (the mirrors and the
# reference's extended twin check it, tests/test_conventions.py).
TORCH_RUNNING = {"take:0.1": 0.1, "keep:0.9": 1.0 - 0.9, "keep:0.999": 1.0 - 0.999}


@pytest.mark.parametrize("average", TORCH_RUNNING)
def test_batchnorm_running_statistics_and_evaluation_match_torchs_own(request, average):
    """The reference's running-statistics update and evaluation mode against torch.nn.functional.batch_norm, which
    updates its running_mean and running_var in place (the variance unbiased) and, with training=False, normalises
    with them: under each running-average convention torch can say."""
    from .strictness import load_or_skip

    load_or_skip(request.config, "torch")
    import numpy as np
    import torch

    from crosscheck.reference import layers

    rng = np.random.default_rng(0)
    layer = Config(model=(("dense", 3, 4), ("batchnorm", 4), "identity"), loss="mse",
                   conventions={"batchnorm.running_average": average}).model[1]
    x, g, b = rng.standard_normal((6, 4)), rng.standard_normal(4), rng.standard_normal(4)
    r = (rng.standard_normal(4), rng.random(4) + 0.5)

    def running(x, g, b, mean, var, which):  # the reference's running statistic number which, after a step on x
        norms = layers.norms
        return norms.batchnorm_running(layer, (mean, var), norms.batchnorm_forward(layer, (g, b), x)[1])[which]

    mean, var = (torch.tensor(t) for t in r)
    torch.nn.functional.batch_norm(torch.tensor(x), mean, var, torch.tensor(g), torch.tensor(b), training=True,
                                   momentum=TORCH_RUNNING[average], eps=layers.norms.BATCHNORM_EPS)
    # each within the derived float64 bound (4 x the reference's distance from its extended twin, plus 8 ulps)
    ops.assert_within_twin(mean.numpy(), lambda *a: running(*a, 0), x, g, b, *r, what="running mean")
    ops.assert_within_twin(var.numpy(), lambda *a: running(*a, 1), x, g, b, *r, what="running variance")
    theirs = torch.nn.functional.batch_norm(torch.tensor(x), *(torch.tensor(t) for t in r), torch.tensor(g),
                                            torch.tensor(b), training=False, eps=layers.norms.BATCHNORM_EPS)
    evaluate = layers.norms.batchnorm_evaluate
    ops.assert_within_twin(theirs.numpy(), lambda x, g, b, m, v: evaluate(layer, (g, b), (m, v), x)[0],
                           x, g, b, *r, what="evaluation mode")


@pytest.mark.frameworks
@pytest.mark.parametrize("case_id", ["cnn-maxpool-avgpool-adam-minibatch",
                                     pytest.param("cnn-overlapping-maxpool-tanh-momentum", marks=pytest.mark.slow)])
def test_the_frameworks_own_layers_train_the_cnn_alike(driver, device, case_id):
    """The whole CNN trained the framework's way, its own layers (torch.nn.functional.conv2d and max_pool2d, lax's
    conv_general_dilated and reduce_window), autodiff and optimizer (torch.optim, optax), against the reference's
    manual run: losses at every step and parameters at the checkpoints, in float64."""
    from crosscheck.suite.cases import BY_ID

    checks.check_framework_optimizer(driver, BY_ID[case_id], device, native=True)


@pytest.mark.frameworks
def test_the_frameworks_own_layers_train_the_llama_block_alike(driver, device):
    """Llama's block trained the framework's way: torch's rms_norm, scaled_dot_product_attention after RoPE by complex
    multiplication, SwiGLU from F.linear and F.silu, the tied scores by F.linear and cross_entropy, with autograd,
    AdamW and torch's schedulers, against the reference's manual run, in float64. JAX's own attention computes its
    softmax in float32 (docs/conventions.md), so its run parts from the reference's from the first step (1e-8 relative
    on the loss, 1e-8 on the parameters)."""
    from crosscheck.suite.cases import BY_ID

    case = BY_ID["llama-tied-rope-adamw-minibatch"]
    if driver.name == "jax":
        with pytest.raises(Disagreement, match="disagrees with the reference's run"):
            checks.check_framework_optimizer(driver, case, device, native=True)
        return
    checks.check_framework_optimizer(driver, case, device, native=True)


@pytest.mark.frameworks
@pytest.mark.parametrize(("dtype", "wrong"), [("float32", "returned in float64"), ("float32", "off by a relative 1e-4"),
                                              ("float16", "returned in float64"),
                                              ("float16", "off by a relative 5e-2")])
def test_the_low_precision_op_check_can_fail(driver, device, monkeypatch, dtype, wrong):
    """In float32 or float16 an op is held to the low-precision rule: dense's weight gradient fails it when returned in
    float64, and when off by a relative 1e-4 in float32 (about a thousand float32 roundings) or 5e-2 in float16 (about
    fifty float16 roundings): both far past the NumPy reference's own deviation in the dtype."""
    layers = importlib.import_module(f"{backends.REGISTRY[driver.name][0]}.layers")
    right = layers.BACKWARD["dense"]

    def spoiled(*args):
        dx, (dW, db) = right(*args)
        if wrong == "returned in float64":
            return dx, (dW.double() if hasattr(dW, "double") else dW.astype("float64"), db)
        return dx, (dW * (1 + float(wrong.rsplit(" ", 1)[1])), db)

    monkeypatch.setitem(layers.BACKWARD, "dense", spoiled)
    with pytest.raises(Disagreement, match="dense backward: weight gradient"):
        ops.check_op(driver, "layers", "dense", device, dtype=dtype)


@pytest.mark.builtin
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dropout_at_rate_0_keeps_everything(driver, device, monkeypatch, dtype):
    """Dropout's edge: at p = 0 every unit is kept and nothing is scaled, y = x and dx = dy, on every backend."""
    from dataclasses import replace

    from crosscheck.common import registry

    monkeypatch.setitem(registry.LAYERS, "dropout", replace(registry.LAYERS["dropout"], example=(0.0,)))
    layer, p, x, dy, mask = ops.layer_inputs("dropout")
    assert layer.shape == (0.0,) and mask.all()
    assert ops.check_op(driver, "layers", "dropout", device, dtype=dtype)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_the_reference_sums_16_bit_floats_in_float32(dtype):
    """The low-precision rule's reductions (reference/precision.py): 4096 ones sum to 4096, exact in either dtype,
    where a bfloat16 accumulator stalls at 256 (256 + 1 rounds back to 256 with 8 bits of significand); their mean
    is 1, and the result keeps the dtype."""
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes")
    from crosscheck.common.dtypes import numpy_dtype
    from crosscheck.reference.precision import average, total

    ones = np.ones((4096, 2), numpy_dtype(dtype))
    assert total(ones).dtype == ones.dtype and float(total(ones)) == 8192.0
    assert np.array_equal(total(ones, axis=0).astype(np.float64), [4096.0, 4096.0])
    assert average(ones, axis=0).dtype == ones.dtype and np.array_equal(average(ones, axis=0).astype(float), [1, 1])


@pytest.mark.frameworks
@pytest.mark.parametrize(("bug", "kind", "name"), [("avgpool-gradient-not-averaged", "layers", "avgpool2d"),
                                                   ("tanh-derivative", "activations", "tanh")])
@pytest.mark.parametrize("where", ["numpy", "framework"])
def test_an_op_failure_blames_the_side_that_is_wrong(driver, device, mutate, bug, kind, name, where):
    """A mistake planted in the reference's op: the framework's check of that op fails (it compares with the
    reference), and its failure ends with the vote, which names the reference as the odd one out; planted in the
    framework, the vote names the framework."""
    planted = "numpy" if where == "numpy" else driver.name
    BUGS[bug].plant(mutate, planted)
    with pytest.raises(Disagreement) as info:
        ops.check_op(driver, kind, name, device)
    votes = "\n".join(str(info.value).splitlines()[-2:])  # the forward's and the backward's
    blamed = "numpy (the reference)" if where == "numpy" else driver.name
    assert "vote on the" in votes and f"the odd one out: {blamed}\n" in votes + "\n", votes
    assert "the odd one out: central differences" not in votes, votes
