"""The probes: checks that bring problems of their own, each worked by hand, for what the cases cannot show: the
unfused loss pieces, the finite-difference oracle itself, float32 really rounding in float32, the mixed-precision
step, the low-precision rule on every backend's own sums, and fused losses at saturation."""

from functools import partial
from typing import Any

import numpy as np

from crosscheck import reference
from crosscheck.common import dtypes, registry
from crosscheck.common.config import Config
from crosscheck.reference import gradcheck
from crosscheck.verdict import tolerances
from crosscheck.verdict.findings import Findings, backend_module, computed, flat, overflow_allowed

# Losses kept unfused beside their fused training form: name -> the output activation they fuse with.
UNFUSED_PIECES = {"bce": "sigmoid"}


def check_loss_pieces(driver, device="cpu", seed=0):
    """A built-in backend's unfused loss pieces, in float64, on its own functions.

    dL/da from <name>_backward against central differences of <name>_forward, and the chain
    f'(z) * dL/da against the fused backward that training uses (dL/dz), at random interior points.
    """
    losses, activations = backend_module(driver, "losses"), backend_module(driver, "activations")
    rng = np.random.default_rng(seed)
    found = Findings()
    for name, output in UNFUSED_PIECES.items():
        z = rng.uniform(-3, 3, size=(5, 3))
        a = reference.activations.activation_forward(output, z)
        y = rng.uniform(0, 1, size=z.shape)
        forward, backward = getattr(losses, f"{name}_forward"), getattr(losses, f"{name}_backward")
        native = [driver.to_native(arr, device) for arr in (z, a, y)]
        da = driver.to_numpy(backward(native[1], native[2]))

        def loss_of(a_, forward=forward, y_=native[2]):
            return float(driver.to_numpy(forward(driver.to_native(a_, device), y_)))

        numeric = gradcheck.central_differences(loss_of, a)
        found.compare(da, numeric, None, "finite_difference", what=f"{name}_backward (dL/da)",
                      backend=f"{driver.name} vs central differences")
        chained = driver.to_numpy(activations.activation_backward(output, driver.to_native(da, device), *native[:2]))
        fused = driver.to_numpy(losses.loss_backward(name, native[1], native[2]))
        found.compare(chained, fused, None, "gradient", what=f"{output}'(z) * {name}_backward against the fused dL/dz",
                      backend=driver.name)
    return found.result()


def check_oracle(seed=0):
    """The finite-difference oracle itself, on functions whose derivatives are known in closed form.

    f(x) = sum sin(x) x^2 has df/dx = cos(x) x^2 + 2 x sin(x); g(x) = log(sum exp(x)) has dg/dx = softmax(x).
    """
    x = np.random.default_rng(seed).uniform(-2, 2, size=(3, 4))
    known = {
        "d/dx sum sin(x) x^2": (lambda x: float(np.sum(np.sin(x) * x * x)), np.cos(x) * x * x + 2 * x * np.sin(x)),
        "d/dx log sum exp(x)": (lambda x: float(np.log(np.sum(np.exp(x)))), np.exp(x) / np.sum(np.exp(x))),
    }
    found = Findings()
    for what, (f, derivative) in known.items():
        found.compare(gradcheck.central_differences(f, x), derivative, None, "finite_difference", what=what,
                      backend="central differences vs the closed form")
    return found.result()


TAYLOR_STEPS = 2.0 ** -np.arange(3, 14)  # h from 1/8 to 1/8192: above round-off, inside the quadratic regime


def taylor_order(driver, case, device="cpu", seed=0):
    """(order, remainders): how |L(p + h v) - L(p) - h <grad L, v>| shrinks with h along a random direction v.

    With the right gradient the remainder is O(h^2) (order 2); with a wrong one it is dominated by
    h <grad L - g, v> (order 1). No step size to tune: the slope of log remainder over log h is the verdict.
    """
    problem = case.problem("float64")
    config, params, X, y = problem.config, problem.params, problem.X, problem.y
    loss, grads = driver.run_gradients(params, X, y, config, device)
    rng = np.random.default_rng(seed)
    direction = [tuple(rng.standard_normal(t.shape) for t in layer) for layer in params]
    slope = sum(float(np.vdot(g, v)) for g, v in zip(flat(grads), flat(direction)))
    remainders = []
    for h in TAYLOR_STEPS:
        moved = [tuple(t + h * v for t, v in zip(layer, step)) for layer, step in zip(params, direction)]
        remainders.append(abs(float(driver.run_gradients(moved, X, y, config, device)[0]) - float(loss) - h * slope))
    # The median of the local slopes, not one fit: where a relu kink is crossed between two steps, that one
    # slope is off, and a median of ten ignores it.
    local = np.diff(np.log(np.maximum(remainders, 1e-300))) / np.diff(np.log(TAYLOR_STEPS))
    return float(np.median(local)), remainders


# A problem on which float32 and float64 arithmetic give different answers by construction, worked by hand.
# One dense layer, identity output, half_sse. Forward: z = 1 * 1 + 2^-30 * 1 - 1. In float32, 1 + 2^-30 rounds
# to 1 (half an ulp of 1 is 2^-24), so z = 0 and the loss 0; in float64 z = 2^-30, which float32 holds exactly.
ROUNDING_FORWARD: dict[str, Any] = dict(X=[[1.0, 2.0**-30]], W=[[1.0], [1.0]], b=[-1.0], y=[[0.0]])


# Training: W = 1, b = 0, x = 1, y = 1 - 2^-20, lr 2^-10, 64 epochs. dz = z - y stays near 2^-20, so each step
# moves W by about 2^-30, below half an ulp of 1: float32 rounds every step away and W stays exactly 1.0.
# In float64 the steps add up to about 64 * 2^-30 = 2^-24, one float32 ulp below 1, which survives the cast.
ROUNDING_TRAIN: dict[str, Any] = dict(X=[[1.0]], W=[[1.0]], b=[0.0], y=[[1.0 - 2.0**-20]], lr=2.0**-10, epochs=64)


def check_float32_rounding(driver, device="cpu"):
    """A float32 run must round in float32: a backend that computes in float64 inside and casts back at the end
    has a smaller deviation than the NumPy float32 reference and passes every bound, but not this."""
    found = Findings()
    p = ROUNDING_FORWARD
    config = Config(layers=(2, 1), output="identity", loss="half_sse", init="standard_normal", epochs=1,
                    dtype="float32")
    params = [(np.array(p["W"], np.float32), np.array(p["b"], np.float32))]
    X, y = np.array(p["X"], np.float32), np.array(p["y"], np.float32)
    zero = np.zeros((1, 1), np.float32)
    found.compare(driver.run_forward(params, X, config, device), zero, None, "forward",
                  what="float32 rounding probe: network output (1 + 2^-30 - 1 is 0 in float32)", backend=driver.name)
    loss, _ = driver.run_gradients(params, X, y, config, device)
    found.compare(loss, np.float32(0), None, "forward", what="float32 rounding probe: loss", backend=driver.name)
    p = ROUNDING_TRAIN
    config = Config(layers=(1, 1), output="identity", loss="half_sse", init="standard_normal", lr=p["lr"],
                    epochs=p["epochs"], dtype="float32")
    params = [(np.array(p["W"], np.float32), np.array(p["b"], np.float32))]
    run = driver.run_train(params, np.array(p["X"], np.float32), np.array(p["y"], np.float32), config, device=device)
    found.compare(run.params[0][0], np.ones((1, 1), np.float32), None, "forward",
                  what="float32 rounding probe: layer 1 weight after 64 sub-ulp updates (stays 1.0 in float32)",
                  backend=driver.name)
    return found.result()


# The mixed-precision probe's problems, each worked by hand (a mixed run's mistakes widen the NumPy reference's own
# deviation, and with it the bound, so a mistake planted in the reference's mixed step needs a check of its own).
# Hinge: CS231n's multiclass hinge on one sample of class 0, x = 1, scores W + b = (1, 1): the margin of class 1 is
# 1, active, and stays so (it only shrinks to 3/4), so dL/ds = (-1, 1) at every step; W += lr (1, -1) and b likewise.
# With lr 2^-10 and 64 steps: W = (1 + 2^-4, 1 - 2^-4), b = (2^-4, -2^-4). Each step moves W by a quarter of
# bfloat16's half ulp at 1 (2^-8), so weights kept in bfloat16 never move, and the float32 master copy must.
MIXED_HINGE: dict[str, Any] = dict(X=[[1.0]], W=[[1.0, 1.0]], b=[0.0, 0.0], y=[[1.0, 0.0]], lr=2.0 ** -10, epochs=64)


# Tiny: half_sse of one output z = x W + b with x = 2^-12, W = 1/4, b = 0 and y = 0: dz = z = 2^-14, float16's
# smallest normal, and dW = x dz = 2^-26, below half of float16's smallest subnormal (2^-24): 0 unscaled. Scaled by
# 2^16 it is 2^-10, then 2^-26 again in float32: one step of lr 1 gives W = 1/4 - 2^-26, b = -2^-14.
MIXED_TINY: dict[str, Any] = dict(X=[[2.0 ** -12]], W=[[0.25]], b=[0.0], y=[[0.0]], lr=1.0, epochs=1)


def check_mixed_precision(driver, device="cpu"):
    """Mixed precision against hand-worked runs (MIXED_HINGE, MIXED_TINY above): float32 master weights that keep
    sub-ulp bfloat16 updates; float16's dynamic loss scale skipping its first step, whose scaled gradient (2^16)
    overflows, then halving to 2^15 and undoing itself in the other 63; and a float16 gradient of 2^-26, lost
    without the scale, kept with it."""
    found = Findings()
    f32 = partial(np.array, dtype=np.float32)
    # compute, problem, loss, loss scale; expected: weight, bias, final loss scale (dynamic), updates made
    for compute, p, loss, scale, weight, bias, final_scale, made in (
            ("bfloat16", MIXED_HINGE, "hinge", None, 2.0 ** -4 * np.array([[1, -1]]) + 1, [2.0 ** -4, -2.0 ** -4],
             None, 64),
            ("float16", MIXED_HINGE, "hinge", "dynamic", 63 * 2.0 ** -10 * np.array([[1, -1]]) + 1,
             [63 * 2.0 ** -10, -63 * 2.0 ** -10], 2.0 ** 15, 63),
            ("float16", MIXED_TINY, "half_sse", "dynamic", [[0.25 - 2.0 ** -26]], [-2.0 ** -14], 2.0 ** 16, 1)):
        if dtypes.available(compute) is None:
            continue
        config = Config(layers=(1, len(p["b"])), output="identity", loss=loss, init="standard_normal", lr=p["lr"],
                        epochs=p["epochs"], dtype="float32", compute=compute, loss_scale=scale)
        label = f"mixed-precision probe ({compute}{', dynamic loss scale' if scale else ''}, {made} updates made):"
        with overflow_allowed(config):
            run = computed(driver.name, "training", driver.run_train, [(f32(p["W"]), f32(p["b"]))], f32(p["X"]),
                           f32(p["y"]), config, None, (p["epochs"],), device)
        found.compare(run.params[0][0], f32(weight), None, "forward", what=f"{label} layer 1 weight",
                      backend=driver.name)
        found.compare(run.params[0][1], f32(bias), None, "forward", what=f"{label} layer 1 bias", backend=driver.name)
        if scale:
            state = run.checkpoints[p["epochs"]].opt_state
            for name, value in zip(registry.SCALER[::2], (final_scale, made)):
                found.compare(state[name][0][0], f32(value), None, "forward", what=f"{label} {name}",
                              backend=driver.name)
    return found.result()


# The low-precision rule on each backend's own sums, worked by hand over 4096 terms, where a 16-bit accumulator stalls
# (at 256 in bfloat16, at 2048 in float16; XLA's tree of partial sums strays less, but strays). Each problem is one
# dense layer from inputs 0, so that its logits are its bias, r(.) rounds to the dtype, and every sum is taken in
# float32 (exactly, here) and rounded once:
# - half_sse of z = 0 against y = -1 over 4096 rows of 2 outputs: the loss 8192 / 2 = 4096, the bias gradient 4096;
# - softmax cross-entropy of 2 classes at logits 0 over 4096 rows of class 0: the loss is the mean of 4096 terms
#   r(log 2), that term, and the bias gradient sums (0.5 - y) / 4096: -1/2 and 1/2;
# - softmax cross-entropy of one row of 4096 classes at logits (0, -3/8, ..., -3/8), class 0: with e = r(exp(-3/8))
#   and S = r(1 + 4095 e), the loss r(log S) and the bias gradient a - y, a = (r(1 / S), r(e / S), ...) (the
#   softmax's own normalizing sum, and cross-entropy's log-sum-exp).
RULE_TERMS = 4096


def check_low_precision_rule(driver, device="cpu"):
    """Each 16-bit dtype's sums accumulated in float32 (common/dtypes.py): loss reductions, a bias gradient, and a
    softmax's normalizing sum, against RULE_TERMS's hand-worked values above."""
    found = Findings()
    n = RULE_TERMS
    for dtype in dtypes.HALF:
        low = dtypes.available(dtype)
        if low is None:
            continue
        r = lambda v, low=low: np.asarray(v, np.float64).astype(low).astype(np.float64)  # noqa: E731
        e = r(np.exp(-0.375))
        S = r(1 + (n - 1) * e)
        a = np.array([r(1 / S)] + [r(e / S)] * (n - 1))
        one_hot = np.zeros(n)  # class 0 (not np.eye(n)[0]: a 4096 x 4096 matrix for one row took 0.8 s)
        one_hot[0] = 1.0
        for loss, output, rows, width, bias, y, value, gradient in (
                ("half_sse", "identity", n, 2, [0.0, 0.0], [-1.0, -1.0], n, [n, n]),
                ("softmax_cross_entropy", "softmax", n, 2, [0.0, 0.0], [1.0, 0.0], r(np.log(2.0)), [-0.5, 0.5]),
                ("softmax_cross_entropy", "softmax", 1, n, -0.375 * (1 - one_hot), one_hot, r(np.log(S)),
                 r(a - one_hot))):
            config = Config(layers=(2, width), output=output, loss=loss, init="standard_normal", epochs=1, dtype=dtype)
            params = [(np.zeros((2, width), low), np.array(bias, low))]
            X, Y = np.zeros((rows, 2), low), np.broadcast_to(np.array(y, low), (rows, width)).copy()
            with overflow_allowed(config):
                got, ((_, db),) = computed(driver.name, "gradients", driver.run_gradients, params, X, Y, config, device)
            label = f"low-precision rule probe ({loss}, {rows} x {width}, in {dtype}):"
            tol = tolerances.probe(dtype)
            found.compare(got, np.array(value, low)[()], None, tol, what=f"{label} loss", backend=driver.name)
            found.compare(db, np.array(gradient, low), None, tol, what=f"{label} layer 1 bias gradient",
                          backend=driver.name)
    _float32_rule(driver, device, found)
    return found.result()


RULE32_SUMS = 32  # independent float32 sums: float32 accumulation rounds ~40% of them off the correct rounding here


def _float32_rule(driver, device, found):
    """float32 sums accumulate in float32, not more accurately: RULE32_SUMS bias gradients of RULE_TERMS rows (half_sse
    at zero parameters: db_k = -sum_n y_nk), y multiples of 2^-20 in [0.5, 1), whose exact sums float64 holds. Each
    must be within RULE_TERMS ulps of the exact sum, and not every one correctly rounded: float32 accumulation (any
    order: NumPy's, torch's, XLA's) rounds partial sums past 16 and so misses the correct rounding in some of them,
    where a sum accumulated in float64 and cast back gets every one right (measured: numpy 0, torch 10, jax 9 of 16
    correctly rounded; float64 accumulation 16 of 16)."""
    n, k = RULE_TERMS, RULE32_SUMS
    rng = np.random.default_rng(32)
    Y = (0.5 + rng.integers(0, 2 ** 19, (n, k)) * 2.0 ** -20).astype(np.float32)
    exact = -Y.astype(np.float64).sum(axis=0)  # exact: multiples of 2^-20 below 2^12
    config = Config(layers=(2, k), output="identity", loss="half_sse", init="standard_normal", epochs=1,
                    dtype="float32")
    params = [(np.zeros((2, k), np.float32), np.zeros(k, np.float32))]
    _, ((_, db),) = computed(driver.name, "gradients", driver.run_gradients, params, np.zeros((n, 2), np.float32), Y,
                             config, device)
    label = f"float32 rule probe ({k} sums of {n} terms):"
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    bound = tolerances.SUM_ULPS_PER_TERM * n * float(ulp.max())
    found.compare(db, exact.astype(np.float32), None, tolerances.Tol(rtol=0.0, atol=bound),
                  what=f"{label} layer 1 bias gradient", backend=driver.name)
    rounded = int(np.sum(np.asarray(db) == exact.astype(np.float32)))
    if rounded == k and np.asarray(db).dtype == np.float32:
        found.failures.append(f"{driver.name}: {label} layer 1 bias gradient: all {k} sums came out correctly rounded, "
                              f"as a sum accumulated in float64 and cast back gives; float32 accumulation misses some "
                              f"(the rule: float32 sums accumulate in float32)")


# Fused losses where the output saturates, worked by hand: one sample, x = 1, no bias, z = (c, -c) with c large
# enough that softmax underflows (and exp(c) overflows) in the dtype, and targets (0, 1) that the saturated output
# gets wrong. softmax CE: L = -log softmax(z)_2 = 2c, dz = a - y = (1, -1). bce: L = (logaddexp(0, c) + logaddexp(0,
# -c) + c) / 2 = c (to the last bit), dz = (a - y) / 2 = (1/2, -1/2).
SATURATION = {"float64": 800.0, "float32": 100.0}


SATURATED_LOSS = {"softmax_cross_entropy": (2.0, 1.0), "bce": (1.0, 2.0)}  # loss: (L / c, N K)


def check_saturation(driver, device="cpu"):
    """Each fused loss at saturated logits, in each dtype, against the hand-worked values above: a softmax
    without its max subtracted gives inf / inf = NaN here, and an unfused bce 0 / 0."""
    found = Findings()
    for dtype, c in SATURATION.items():
        for loss, (per_c, nk) in SATURATED_LOSS.items():
            output = "softmax" if loss == "softmax_cross_entropy" else "sigmoid"
            config = Config(layers=(1, 2), output=output, loss=loss, init="he_normal", epochs=1, dtype=dtype)
            params = [(np.array([[c, -c]], dtype), np.zeros(2, dtype))]
            X, y = np.ones((1, 1), dtype), np.array([[0.0, 1.0]], dtype)
            # The reference's sigmoid keeps the seeds' 1 / (1 + exp(-z)): exp(c) overflows, harmlessly, to a = 0.
            with np.errstate(over="ignore"):
                value, ((dW, db),) = computed(driver.name, "gradients", driver.run_gradients, params, X, y, config,
                                              device)
            dz = np.array([1.0, -1.0], dtype) / nk
            label = f"{loss} at saturated logits ±{c:g} ({dtype}):"
            found.compare(value, np.array(per_c * c, dtype)[()], None, "forward", what=f"{label} loss",
                          backend=driver.name)
            found.compare(db, dz, None, "forward", what=f"{label} layer 1 bias gradient", backend=driver.name)
            found.compare(dW, dz[None, :], None, "forward", what=f"{label} layer 1 weight gradient",
                          backend=driver.name)
    return found.result()
