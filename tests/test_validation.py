"""Bad input gets a clear error naming what is wrong, raised before any training starts."""

import numpy as np
import pytest

from crosscheck import reference
from crosscheck.common import initializers
from crosscheck.reference import Config
from crosscheck.reference.data import char_windows, xor

GOOD = Config(layers=(2, 3, 1), epochs=5)


@pytest.mark.parametrize(("changes", "message"), [
    ({"layers": (2,)}, "at least an input and an output"),
    ({"layers": (2, 0, 1)}, r"layers\[1\] must be a positive integer"),
    ({"layers": (2, 2.5, 1)}, r"layers\[1\] must be a positive integer"),
    ({"layers": (2, -3, 1)}, r"layers\[1\] must be a positive integer"),
    ({"hidden": "swish"}, "unknown hidden activation 'swish'"),
    ({"hidden": "softmax"}, "unknown hidden activation 'softmax'"),
    ({"output": "swish"}, "unknown output activation 'swish'"),
    ({"loss": "squared_hinge"}, "unknown loss 'squared_hinge'"),
    ({"loss": "bce", "output": "identity"}, "loss 'bce' needs output activation 'sigmoid'"),
    ({"loss": "softmax_cross_entropy", "layers": (2, 3, 2)}, "needs output activation 'softmax'"),
    ({"output": "softmax", "layers": (2, 3, 2)}, "softmax output is only supported"),
    ({"output": "softmax", "loss": "softmax_cross_entropy"}, "at least 2 classes"),
    ({"init": "orthogonal"}, "unknown initialisation 'orthogonal'"),
    ({"lr": 0}, "lr must be a positive finite number"),
    ({"lr": -0.1}, "lr must be a positive finite number"),
    ({"lr": float("nan")}, "lr must be a positive finite number"),
    ({"lr": float("inf")}, "lr must be a positive finite number"),
    ({"lr": "0.1"}, "lr must be a number"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"epochs": 10.0}, "epochs must be a positive integer"),
    ({"batch_size": 0}, "batch_size must be None"),
    ({"dtype": "half"}, "unsupported dtype 'half'"),
    ({"dtype": "int64"}, "unsupported dtype 'int64'"),
    ({"seed": -1}, "seed must be a non-negative integer"),
])
def test_bad_configuration_is_named(changes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        GOOD.replace(**changes)


MIXED = (("dense", 2, 3), "tanh", ("dense", 3, 3), "relu", ("dense", 3, 1), "sigmoid")


@pytest.mark.parametrize(("model", "message"), [
    ((), "at least one layer"),
    ("dense", "must be a sequence of layers"),
    ((("dense", 2, 3), "tanh", ("dense", 4, 1), "sigmoid"), r"model\[2\]: dense layer takes 4 inputs, but 3 reach it"),
    ((("dense", 2, 3), "swish", ("dense", 3, 1), "sigmoid"), r"model\[1\]: unknown layer kind 'swish'"),
    ((("dense", 2), "sigmoid"), r"model\[0\]: a dense layer needs \(fan_in, fan_out\)"),
    ((("dense", 2, 0), "sigmoid"), r"model\[0\]: a dense layer needs"),
    ((("dense", 2, 3), ("tanh", 3), ("dense", 3, 1), "sigmoid"), r"model\[1\]: a tanh layer keeps its input's shape"),
    ((("dense", 2, 3), "softmax", ("dense", 3, 1), "sigmoid"), r"model\[1\]: softmax may only be the output"),
    (("tanh", ("dense", 2, 1), "sigmoid"), "must begin with a dense layer"),
    ((("dense", 2, 3), "tanh", ("dense", 3, 1)), "must end with an activation layer"),
    ((("dense", 2, 3), 7, ("dense", 3, 1), "sigmoid"), r"model\[1\] must be a Layer, a layer kind or"),
])
def test_bad_model_is_named(model, message):
    with pytest.raises(ValueError, match=message):
        Config(model=model)


CNN = (("conv2d", 1, 2, 3, 1, 1), "relu", ("maxpool2d", 2, 2), "flatten", ("dense", 8, 2), "softmax")


@pytest.mark.parametrize(("model", "input_shape", "message"), [
    (CNN, None, "must begin with a dense layer .*, or give input_shape"),
    (CNN, (2, 4, 4), r"model\[0\]: conv2d layer takes 1 input channels, but 2 reach it"),
    (CNN, (4, 4), r"model\[0\]: a conv2d layer needs \(channels, height, width\) inputs"),
    ((("conv2d", 1, 2, 3, 1, 0), *CNN[1:]), (1, 2, 5),
     r"model\[0\]: a conv2d layer's 3x3 window does not fit its 2x5 input \(padding 0\)"),
    (CNN, (1, 4, 0), "input_shape must be a per-sample shape of positive integers"),
    (CNN, (1, 6, 6), r"model\[4\]: dense layer takes 8 inputs, but 18 reach it"),
    ((("conv2d", 1, 2, 3, 1), *CNN[1:]), (1, 4, 4), r"a conv2d layer needs \(in_channels, out_channels, kernel, "),
    ((("conv2d", 1, 2, 3, 1, 3), *CNN[1:]), (1, 4, 4), r"padding must be an integer in \[0, kernel\)"),
    ((("conv2d", 1, 2, 3, 0, 1), *CNN[1:]), (1, 4, 4), r"needs \(in_channels, out_channels, kernel, stride\), "
                                                       "positive integers"),
    ((CNN[0], ("maxpool2d", 2), *CNN[2:]), (1, 4, 4), r"model\[1\]: a maxpool2d layer needs \(kernel, stride\)"),
    ((CNN[0], ("flatten", 2), *CNN[2:]), (1, 4, 4), r"model\[1\]: a flatten layer takes no shape"),
    ((*CNN[:3], ("dense", 8, 2), "softmax"), (1, 4, 4), r"model\[3\]: dense layer takes 8 inputs, but \(2, 2, 2\)"),
    ((*CNN[:3], "softmax"), (1, 4, 4), "must hold a dense layer"),
    ((("dense", 2, 3), "tanh", ("dense", 3, 1), "sigmoid"), (3,), r"model\[0\]: dense layer takes 2 inputs, but 3"),
])
def test_bad_image_model_is_named(model, input_shape, message):
    with pytest.raises(ValueError, match=message):
        Config(model=model, input_shape=input_shape, loss="softmax_cross_entropy")


CHAR = (("embedding", 10, 4), ("rnn", 4, 6), "last", ("dense", 6, 10), "softmax")


@pytest.mark.parametrize(("model", "input_shape", "message"), [
    (CHAR, None, "must begin with a dense layer .*, or give input_shape"),
    (CHAR, (4, 2), r"model\[0\]: an embedding layer reads a sequence of ids per sample, input_shape \(T,\)"),
    ((CHAR[0], ("rnn", 5, 6), *CHAR[2:]), (7,), r"model\[1\]: a rnn layer takes sequences of 5 inputs per step"),
    ((CHAR[0], ("lstm", 4), *CHAR[2:]), (7,), r"model\[1\]: a lstm layer needs \(inputs, hidden\)"),
    ((("dense", 3, 4), ("embedding", 10, 4), ("rnn", 4, 6), *CHAR[2:]), None,
     r"model\[1\]: an embedding layer reads integer ids: it can only be the first layer"),
    ((CHAR[0], CHAR[1], ("dense", 4, 10), "softmax"), (7,), r"model\[2\]: dense layer takes 4 inputs, but "
                                                           r"\(7, 6\) reach it"),
    ((("dense", 3, 4), "last", ("dense", 4, 2), "softmax"), None, r"model\[1\]: a last layer takes a sequence, "
                                                                 r"per-sample shape \(T, n\), got \(4,\)"),
    ((CHAR[0], CHAR[1], "last", "last", *CHAR[3:]), (7,), r"model\[3\]: a last layer takes a sequence"),
    ((CHAR[0], ("rnn", 4, 6), ("rnn", 6, 3), ("dense", 3, 10), "softmax"), (7,), None),  # stacked, every step scored
    ((CHAR[0], ("dense", 4, 10), "softmax"), (7,), None),  # a bigram model: every step scored, no recurrence
])
def test_bad_sequence_model_is_named(model, input_shape, message):
    """A bad sequence model is named; the good ones beside them (message None) are accepted, their output a score per
    class at every step."""
    if message is None:
        assert Config(model=model, input_shape=input_shape, loss="softmax_cross_entropy").output_shape == (7, 10)
        return
    with pytest.raises(ValueError, match=message):
        Config(model=model, input_shape=input_shape, loss="softmax_cross_entropy")


GPT = (("embedding", 10, 8), ("positions", 16, 8), ("attention", 8, 2), ("dense", 8, 10), "softmax")


@pytest.mark.parametrize(("model", "input_shape", "message"), [
    (GPT, (17,), r"model\[1\]: a positions layer adds 8 features to each of at most 16 positions, \(T <= 16, 8\), "
                 r"but \(17, 8\) reach it"),
    ((GPT[0], ("positions", 16, 6), *GPT[2:]), (12,), r"model\[1\]: a positions layer adds 6 features"),
    ((GPT[0], ("positions", 16), *GPT[2:]), (12,), r"model\[1\]: a positions layer needs \(context, width\)"),
    ((*GPT[:2], ("attention", 8, 3), *GPT[3:]), (12,), r"model\[2\]: an attention layer's 3 heads do not divide its "
                                                       r"width 8"),
    ((*GPT[:2], ("attention", 8, 4, 3), *GPT[3:]), (12,), r"model\[2\]: an attention layer's 3 key-value heads do "
                                                          r"not divide its 4 heads"),
    ((*GPT[:2], ("attention", 6, 2), *GPT[3:]), (12,), r"model\[2\]: an attention layer reads sequences of 6 "
                                                       r"features per position, \(T, 6\), but \(12, 8\) reach it"),
    ((*GPT[:2], ("attention", 8), *GPT[3:]), (12,), r"model\[2\]: an attention layer needs \(width, heads\)"),
    ((*GPT[:2], ("attention", 8, 0), *GPT[3:]), (12,), r"model\[2\]: an attention layer needs \(width, heads"),
    ((("dense", 3, 8), ("attention", 8, 2), ("dense", 8, 2), "softmax"), None,
     r"model\[1\]: an attention layer reads sequences of 8 features per position, \(T, 8\), but \(8,\) reach it"),
    ((*GPT[:3], ("unembed", 10, 8), "softmax"), (12,), None),  # scores by the embedding's own matrix
    ((*GPT[:3], ("unembed", 12, 8), "softmax"), (12,), r"model\[3\]: an unembed layer \(12, 8\) shares the "
                                                       r"embedding's matrix: the model must begin with an embedding of "
                                                       r"the same \(vocabulary, dim\), got embedding \(10, 8\)"),
    ((("dense", 3, 8), ("unembed", 10, 8), "softmax"), None, r"model\[1\]: an unembed layer \(10, 8\) shares the "
                                                            r"embedding's matrix"),
    (GPT, (12,), None),
    ((*GPT[:2], ("attention", 8, 4, 1), *GPT[3:]), (16,), None),  # every query head shares one key-value head
])
def test_bad_attention_model_is_named(model, input_shape, message):
    """A bad attention or positions layer is named before anything trains; the good ones are accepted, scoring every
    position."""
    if message is None:
        assert Config(model=model, input_shape=input_shape, loss="softmax_cross_entropy").output_shape[-1] == 10
        return
    with pytest.raises(ValueError, match=message):
        Config(model=model, input_shape=input_shape, loss="softmax_cross_entropy")


RES = (("dense", 4, 6), ("residual", 2), ("dense", 6, 6), "tanh", ("dense", 6, 2), "identity")


@pytest.mark.parametrize(("model", "message"), [
    ((RES[0], ("residual", 4), *RES[2:]), r"model\[1\]: a residual block of 4 layers runs past the layers before the "
                                          r"output activation"),
    ((RES[0], ("residual", 0), *RES[2:]), r"model\[1\]: a residual layer needs the number of layers its block holds"),
    ((RES[0], ("residual",), *RES[2:]), r"model\[1\]: a residual layer needs the number of layers"),
    ((RES[0], ("residual", 2), ("dense", 6, 5), "tanh", ("dense", 5, 2), "identity"),
     r"model\[3\] ends a residual block with per-sample shape \(5,\), which cannot be added to the block's input, "
     r"\(6,\)"),
    ((RES[0], ("residual", 3), ("residual", 3), ("dense", 6, 6), "tanh", "tanh", ("dense", 6, 2), "identity"),
     r"model\[2\]: a residual block of 3 layers ends at model\[5\], past the end of the block around it "
     r"\(model\[4\]\): blocks nest"),
    (((("dense", 4, 6), ("residual", 1), ("batchnorm", 6), ("dense", 6, 2), "identity")), None),
    ((RES[0], ("residual", 3), ("residual", 1), ("dense", 6, 6), "tanh", ("dense", 6, 2), "identity"), None),
])
def test_bad_residual_block_is_named(model, message):
    """A residual block must end before the output activation, inside any block around it, and give its input's shape
    back; good blocks (message None), nested or ending together, are accepted."""
    if message is None:
        assert Config(model=model, loss="mse").output_shape == (2,)
        return
    with pytest.raises(ValueError, match=message):
        Config(model=model, loss="mse")


def test_a_norm_acts_at_every_position_but_batch_norm_does_not():
    """Layer and RMS norm read a sequence, normalising each position; batch norm's statistics are over a batch of
    rows, so a sequence reaching it is refused, named."""
    seq = (("embedding", 10, 4), ("layernorm", 4), ("rmsnorm", 4), ("dense", 4, 10), "softmax")
    assert Config(model=seq, input_shape=(6,), loss="softmax_cross_entropy").output_shape == (6, 10)
    with pytest.raises(ValueError, match=r"model\[1\]: batchnorm layer has 4 features, but \(6, 4\) reach it"):
        Config(model=(seq[0], ("batchnorm", 4), *seq[3:]), input_shape=(6,), loss="softmax_cross_entropy")


def test_per_step_targets_are_checked_before_training(driver):
    """A many-to-many model scores every step, so y holds a one-hot row per step, (N, T, K): the many-to-one targets
    (N, K), or rows that are not distributions, are named before training."""
    config = Config(model=(CHAR[0], CHAR[1], *CHAR[3:]), input_shape=(7,), loss="softmax_cross_entropy", epochs=1)
    params = reference.initial_params(config)
    X, y = char_windows(config, 5)
    assert y.shape == (5, 7, 10) and np.array_equal(y[:, :-1], np.eye(10)[X[:, 1:]])  # the next character at each step
    with pytest.raises(ValueError, match="y must be 3-D with one sample per row, got shape"):
        driver.run_train(params, X, y[:, -1], config)
    with pytest.raises(ValueError, match=r"y has per-sample shape \(6, 10\), but the model scores every step: "
                                         r"\(7, 10\)"):
        driver.run_train(params, X, y[:, 1:], config)
    with pytest.raises(ValueError, match="each row of y must sum to 1"):
        driver.run_train(params, X, y * 2, config)


def test_ids_are_checked_before_training(driver):
    """A model that begins with an embedding reads int64 ids within its vocabulary: floats, or an id past the end, are
    named before training (NumPy would wrap a negative id around, torch would fail mid-run)."""
    config = Config(model=CHAR, input_shape=(7,), loss="softmax_cross_entropy", epochs=1)
    params = reference.initial_params(config)
    X, y = char_windows(config, 5)
    assert X.dtype == np.int64 and X.shape == (5, 7) and y.shape == (5, 10)
    with pytest.raises(TypeError, match="X has dtype float64, but a model that begins with embedding reads int64 ids"):
        driver.run_train(params, X.astype(np.float64), y, config)
    for bad in (-1, 10):
        wrong = X.copy()
        wrong[2, 3] = bad
        with pytest.raises(ValueError, match=r"X holds ids outside \[0, 10\), the embedding layer's vocabulary"):
            driver.run_train(params, wrong, y, config)
    with pytest.raises(ValueError, match="a character model's output width must be 10, got 9"):
        char_windows(Config(model=(*CHAR[:2], ("dense", 6, 9), "softmax"), input_shape=(7,),
                            loss="softmax_cross_entropy"), 5)
    assert np.all(np.isfinite(driver.run_train(params, X, y, config).losses))


def test_image_inputs_are_checked_against_input_shape(driver):
    config = Config(model=CNN, input_shape=(1, 4, 4), loss="softmax_cross_entropy", epochs=1)
    assert config.shapes == ((1, 4, 4), (2, 4, 4), (2, 4, 4), (2, 2, 2), (8,), (2,), (2,))
    params = reference.initial_params(config)
    X, y = np.zeros((3, 1, 4, 4)), np.eye(2)[[0, 1, 0]]
    with pytest.raises(ValueError, match=r"X has per-sample shape \(1, 4, 5\), but the model's input_shape is "
                                         r"\(1, 4, 4\)"):
        driver.run_train(params, np.zeros((3, 1, 4, 5)), y, config)
    with pytest.raises(ValueError, match="X must be 4-D with one sample per row"):
        driver.run_train(params, X.reshape(3, 16), y, config)
    assert np.all(np.isfinite(driver.run_train(params, X, y, config).losses))


def test_explicit_model_is_described_and_kept_through_replace():
    config = Config(model=MIXED, epochs=5)
    assert (config.layers, config.hidden, config.output) == ((2, 3, 3, 1), "tanh,relu", "sigmoid")
    assert [(layer.kind, layer.slot) for layer in config.model] == [
        ("dense", 0), ("tanh", None), ("dense", 1), ("relu", None), ("dense", 2), ("sigmoid", None)]
    assert config.replace(lr=0.5).model == config.model
    with pytest.raises(ValueError, match="contradicts the model given"):
        Config(model=MIXED, layers=(2, 4, 1))
    with pytest.raises(ValueError, match="change it through model="):
        config.replace(hidden="relu")
    # The shorthand is expanded afresh on replace; it and the explicit model it implies are one configuration.
    assert GOOD.replace(layers=(2, 5, 1)).model[0].shape == (2, 5)
    assert Config(model=(("dense", 2, 3), "sigmoid", ("dense", 3, 1), "sigmoid"), epochs=5) == GOOD
    # A new optimizer gets its own default epsilon, not the old one's.
    assert Config(optimizer="adam").replace(optimizer="adagrad").eps == 1e-10


def _problem():
    X, y = xor()
    return reference.initial_params(GOOD), X, y


def _bad_inputs():
    params, X, y = _problem()
    W1, b1 = params[0]
    nan_X = X.copy()
    nan_X[1, 0] = np.nan
    inf_y = y.copy()
    inf_y[2, 0] = np.inf
    yield "X as int", (params, X.astype(np.int64), y, None), "X has dtype int64"
    yield "X as float32", (params, X.astype(np.float32), y, None), "X has dtype float32"
    yield "X as list", (params, X.tolist(), y, None), "X must be a NumPy array"
    yield "X 1-D", (params, X.ravel(), y, None), "X must be 2-D"
    yield "X empty", (params, X[:0], y[:0], None), "X has no samples"
    yield "X NaN", (params, nan_X, y, None), "X contains NaN"
    yield "y inf", (params, X, inf_y, None), "y contains NaN or infinity"
    yield "X features", (params, np.ones((4, 3)), y, None), "X has 3 features per sample, but layers\\[0\\] is 2"
    yield "y targets", (params, X, np.ones((4, 2)), None), "y has 2 targets per sample"
    yield "X/y lengths", (params, X, y[:3], None), "X has 4 samples but y has 3"
    yield "weight shape", ([(W1.T, b1), params[1]], X, y, None), r"layer 1 weight has shape \(3, 2\), expected \(2, 3\)"
    yield "bias dtype", ([(W1, b1.astype(np.float32)), params[1]], X, y, None), "layer 1 bias has dtype float32"
    yield "layers", (params[:1], X, y, None), "params has 1 layers, but the configuration has 2"
    yield "bias missing", ([(W1,), params[1]], X, y, None), \
        r"layer 1 has 1 parameter arrays, but a dense layer has 2 \(weight, bias\)"
    yield "NaN weight", ([(W1 * np.nan, b1), params[1]], X, y, None), "layer 1 weight contains NaN"
    yield "orders shape", (params, X, y, np.zeros((5, 3), dtype=np.int64)), r"orders must have shape"
    yield "orders repeat", (params, X, y, np.zeros((5, 4), dtype=np.int64)), "must be a permutation"


BAD_INPUTS = list(_bad_inputs())


@pytest.mark.parametrize(("args", "message"), [(a, m) for _, a, m in BAD_INPUTS], ids=[i for i, _, _ in BAD_INPUTS])
def test_bad_input_is_named_before_training(driver, device, monkeypatch, args, message):
    def must_not_train(*_, **__):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(driver.mlp, "train", must_not_train)
    params, X, y, orders = args
    with pytest.raises((ValueError, TypeError), match=message):
        driver.run_train(params, X, y, GOOD, orders, device=device)


def test_target_ranges_are_checked():
    X, y = xor()
    bce = GOOD.replace(loss="bce")
    with pytest.raises(ValueError, match="bce targets must lie in"):
        reference.check_inputs(reference.initial_params(bce), X, y * 2, bce)
    ce = GOOD.replace(layers=(2, 3, 2), output="softmax", loss="softmax_cross_entropy")
    with pytest.raises(ValueError, match="each row of y must sum to 1"):
        reference.check_inputs(reference.initial_params(ce), X, np.ones((4, 2)), ce)


def test_minibatch_needs_orders_and_a_batch_that_fits():
    params, X, y = _problem()
    with pytest.raises(ValueError, match="needs orders"):
        reference.check_inputs(params, X, y, GOOD.replace(batch_size=2))
    big = GOOD.replace(batch_size=5)
    with pytest.raises(ValueError, match="batch_size 5 exceeds the 4 samples"):
        reference.check_inputs(params, X, y, big, reference.batch_orders(big, 4))


def test_batch_norm_needs_two_samples_in_every_batch():
    """A batch of one has no variance (torch refuses it too): the partial last batch is checked, before training."""
    X, y = xor()
    bn = Config(model=(("dense", 2, 3), ("batchnorm", 3), "tanh", ("dense", 3, 1), "sigmoid"), batch_size=3)
    with pytest.raises(ValueError, match=r"a batchnorm layer needs at least 2 samples per training batch, but the last "
                                         r"batch of each epoch holds 1 \(4 samples in batches of 3\)"):
        reference.check_inputs(reference.initial_params(bn), X, y, bn, reference.batch_orders(bn, 4))
    fits = bn.replace(batch_size=2)
    reference.check_inputs(reference.initial_params(fits), X, y, fits, reference.batch_orders(fits, 4))


@pytest.mark.parametrize(("rate", "message"), [(1.0, r"rate, a probability in \[0, 1\)"),
                                              (-0.1, r"rate, a probability in \[0, 1\)"),
                                              ("half", r"rate, a probability in \[0, 1\)")])
def test_a_dropout_rate_outside_0_1_is_refused(rate, message):
    with pytest.raises(ValueError, match=r"model\[2\]: a dropout layer needs its " + message):
        Config(model=(("dense", 2, 3), "tanh", ("dropout", rate), ("dense", 3, 1), "sigmoid"))


def test_dropout_masks_come_from_the_seed_one_per_step_and_layer():
    """Drawn once by the reference (initializers.dropout_masks): keep masks of 0 and 1, one (batch, width)
    block per epoch, step and dropout layer, the same for the same seed and another for another seed, keeping about
    1 - p of the units."""
    config = Config(model=(("dense", 3, 5), "tanh", ("dropout", 0.25), ("dense", 5, 4), "tanh", ("dropout", 0.5),
                           ("dense", 4, 1), "sigmoid"), epochs=200, batch_size=8)
    masks = initializers.dropout_masks(config, 20)
    assert [m.shape for m in masks] == [(200, 3, 8, 5), (200, 3, 8, 4)]
    assert all(m.dtype == np.float64 and set(np.unique(m)) == {0.0, 1.0} for m in masks)
    assert abs(masks[0].mean() - 0.75) < 0.01 and abs(masks[1].mean() - 0.5) < 0.01
    again = initializers.dropout_masks(config, 20)
    assert all(np.array_equal(a, b) for a, b in zip(masks, again))
    other = initializers.dropout_masks(config.replace(seed=1), 20)
    assert not np.array_equal(masks[0], other[0])
    assert initializers.dropout_masks(config.replace(model=None, layers=(3, 5, 1)), 20) is None


@pytest.mark.parametrize("device_name", ["tpu", "cuda"])
def test_unavailable_device_is_named(driver, device_name):
    if device_name in driver.devices:
        pytest.skip(f"{driver.name} does have {device_name}")
    params, X, y = _problem()
    with pytest.raises(ValueError, match=f"device '{device_name}'"):
        driver.run_train(params, X, y, GOOD, device=device_name)
