"""The independent oracle: gradients of the very same loss by jax.grad."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from crosscheck.common import registry
from crosscheck.common.conventions import in_force, log_guard, reduced, value
from crosscheck.common.driver import Unsupported
from crosscheck.common.problem import schedule

from . import layers
from .layers.attention import ROPE_BASE, attention_heads, projections
from .losses import FUSED_WITH_OUTPUT, loss_forward, reduce
from .mlp import UNROLL, Run, batches, forward, update


def vjp(f, x, dy=None):
    """The vector-Jacobian product dy^T (df/dx) by jax.vjp (dy None: f is scalar, its gradient)."""
    out, pullback = jax.vjp(f, x)
    (grad,) = pullback(jnp.ones_like(out) if dy is None else dy)
    return grad


def _optax():
    import optax  # the jax extra installs it; only the oracles need it

    return optax.losses


# {(kind, op): JAX's own function}: jax.nn's activations and optax's losses, oracles beside its autodiff
# (crosscheck/verdict/ops.py). Where they differ from the suite's conventions: jax.nn.leaky_relu's derivative at 0 is 1
# (torch's and the suite's: the slope), so the checks compare derivatives away from kinks; jax.nn.gelu is the tanh
# approximation unless approximate=False (torch's default is exact); optax's multiclass_hinge_loss is the largest
# margin (Crammer and Singer), not CS231n's sum of margins, so the hinge has no JAX oracle. JAX itself has no
# layer norm nor RMS norm (Flax's and Haiku's are libraries on top), so those have none either; nor RNN or LSTM
# cells.
NATIVE: dict = {
    ("activations", "identity"): lambda z: z,
    ("activations", "sigmoid"): jax.nn.sigmoid,
    ("activations", "tanh"): jnp.tanh,
    ("activations", "relu"): jax.nn.relu,
    ("activations", "softmax"): lambda z: jax.nn.softmax(z, axis=-1),
    ("activations", "leaky_relu"): jax.nn.leaky_relu,
    ("activations", "elu"): jax.nn.elu,
    ("activations", "softplus"): jax.nn.softplus,
    ("activations", "gelu"): lambda z: jax.nn.gelu(z, approximate=False),
    ("activations", "gelu_tanh"): lambda z: jax.nn.gelu(z, approximate=True),
    ("activations", "silu"): jax.nn.silu,
    ("losses", "half_sse"): lambda a, y: _optax().l2_loss(a, y).sum(),
    ("losses", "mse"): lambda a, y: _optax().squared_error(a, y).mean(),
    ("losses", "bce"): lambda z, y: _optax().sigmoid_binary_cross_entropy(z, y).mean(),  # fused: from the logits
    ("losses", "softmax_cross_entropy"): lambda z, y: _optax().softmax_cross_entropy(z, y).mean(),
    # A layer kind's: own(layer, x, *params).
    ("layers", "dense"): lambda layer, x, W, b: lax.dot_general(x, W, (((x.ndim - 1,), (0,)), ((), ()))) + b,
    ("layers", "linear"): lambda layer, x, W: _matmul(x, W),
    ("layers", "conv2d"): lambda layer, x, W, b: lax.conv_general_dilated(
        x, W, layer.shape[3:4] * 2, [layer.shape[4:5] * 2] * 2, dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision=lax.Precision.HIGHEST) + b[:, None, None],
    ("layers", "maxpool2d"): lambda layer, x: _pool(x, layer, -jnp.inf, lax.max),
    ("layers", "avgpool2d"): lambda layer, x: _pool(x, layer, 0.0, lax.add) / layer.shape[0] ** 2,
    ("layers", "flatten"): lambda layer, x: jnp.reshape(x, (x.shape[0], -1)),
    ("layers", "embedding"): lambda layer, x, W: jnp.take(W, x, axis=0),
    ("layers", "swiglu"): lambda layer, x, W_g, W_u, W_d: _matmul(jax.nn.silu(_matmul(x, W_g)) * _matmul(x, W_u), W_d),
    ("layers", "attention"): lambda layer, x, *p: _attention(layer, x, *p),
    ("layers", "rope_attention"): lambda layer, x, *p: _attention(layer, x, *p),
    ("layers", "biased_attention"): lambda layer, x, *p: _attention(layer, x, *p),
    ("layers", "unembed"): lambda layer, x, E: _matmul(x, E.T),
    ("layers", "positions"): lambda layer, x, P: x + jnp.take(P, jnp.arange(x.shape[1]), axis=0),
    ("layers", "last"): lambda layer, x: x[:, -1],
    ("layers", "vocabulary"): lambda layer, x: x[..., :layer.shape[0]],
}


# The own ops that compute in a lower dtype whatever they are given: jax.nn.dot_product_attention casts the scores to
# float32 for its softmax (its source: "always carried out in fp32"), so on float64 inputs its output strays 3.7e-6
# relative from the float64 attention (the op check's example); the op check holds it to float32's bound instead of
# float64's (a finding, docs/conventions.md).
NATIVE_DTYPE = {("layers", "attention"): "float32", ("layers", "rope_attention"): "float32",
                ("layers", "biased_attention"): "float32"}


def _matmul(a, b):
    """a @ b over a's last axis, as lax.dot_general states it (the dense oracle's form)."""
    return lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())))


def _attention(layer, x, *p):
    """jax.nn.dot_product_attention (is_causal, its default scale 1/sqrt(d); fewer key-value heads than query heads
    are shared by groups of them) between the fused projection and the output one, each a dot_general"""
    W_qkv, b_qkv, W_o, b_o = projections(p)  # biased_attention's biases, or None
    width, heads, kv = attention_heads(layer)
    d = width // heads
    qkv = _matmul(x, W_qkv) if b_qkv is None else _matmul(x, W_qkv) + b_qkv
    q, k, v = qkv[..., :width], qkv[..., width:width + kv * d], qkv[..., width + kv * d:]
    q, k, v = (t.reshape(*t.shape[:2], -1, d) for t in (q, k, v))  # (N, T, heads, d): JAX's layout
    if layer.kind == "rope_attention":
        q, k = _rope(q), _rope(k)
    o = jax.nn.dot_product_attention(q, k, v, is_causal=True)
    out = _matmul(o.reshape(*o.shape[:2], width), W_o)
    return out if b_o is None else out + b_o


def _rope(x):
    """RoPE by complex multiplication (Llama's reference form): the pair (x_i, x_{i + d/2}) as a complex number times
    e^{i t theta_i}; x (N, T, heads, d), JAX's layout"""
    t, d = x.shape[1], x.shape[3]
    angle = jnp.arange(t, dtype=jnp.float64)[:, None] * ROPE_BASE ** (-jnp.arange(0, d, 2, dtype=jnp.float64) / d)
    z = lax.complex(x[..., :d // 2].astype(jnp.float64), x[..., d // 2:].astype(jnp.float64)) * \
        jnp.exp(1j * angle)[None, :, None, :]
    return jnp.concatenate([z.real, z.imag], axis=-1).astype(x.dtype)


def _pool(x, layer, init, op):
    """lax.reduce_window of op over each (kernel, kernel) window at the stride, per sample and channel"""
    k, stride = layer.shape
    # The initial value as a NumPy constant: JAX differentiates reduce_window only where it recognises a max or a sum
    # from a known start, which a traced jnp value under jit is not.
    return lax.reduce_window(x, np.array(init, x.dtype), op, (1, 1, k, k), (1, 1, stride, stride), "VALID")


def native_loss(params, X, y, config):
    """The loss computed by JAX's own layers, activations and loss (NATIVE), and the manual forward for a kind JAX has
    none of (rnn, lstm, layernorm). With jax.grad, the framework training the model its own way (benchmarks/: the
    manual core's yardstick)."""
    x, skips = X, []
    for layer in config.model[:-1]:
        p = () if layer.slot is None else params[layer.slot]
        if ("layers", layer.kind) in NATIVE:
            x = NATIVE["layers", layer.kind](layer, x, *p)
        elif layer.kind in registry.ACTIVATIONS:
            x = NATIVE["activations", layer.kind](x)
        elif layer.kind == "residual":  # a block begins: y = x + f(x) where it ends
            skips.append(x)
        else:  # a kind the framework lacks: the manual forward's
            x, _ = layers.FORWARD[layer.kind](layer, p, x)
        for _ in range(layer.closes):
            x = x + skips.pop()
    if config.loss not in FUSED_WITH_OUTPUT:
        x = NATIVE["activations", config.output](x)
    return reduce(NATIVE["losses", config.loss](x, y), reduced(config, x))


def autodiff_gradients(params, X, y, config):
    """(L, [(dW_l, db_l)]) from jax.value_and_grad of loss(forward(params)); under a loss guard (loss.log_guard) L
    is the guarded value, the gradient the exact loss's, as the convention has it."""

    def loss_of(params):
        z, a = forward(params, X, config)[-1]
        guard = log_guard(config)
        c = reduced(config, a)
        value = None if guard is None else loss_forward(config.loss, z, lax.stop_gradient(a), y, guard, c)
        return loss_forward(config.loss, z, a, y, c=c), value

    (loss, guarded), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    return loss if guarded is None else guarded, [tuple(layer) for layer in grads]


def train(params, X, y, config, orders=None, checkpoints=()):
    """Full-batch gradient descent with jax.grad's gradients, compiled the same way as mlp.train."""
    if orders is not None or checkpoints or config.optimizer != "sgd":
        raise ValueError("the autodiff training loop is full batch plain descent, without checkpoints")
    params, losses = _train_epochs(params, X, y, config, config.epochs)
    return Run(losses=losses, checkpoints={}, params=params)


@partial(jax.jit, static_argnames=("config", "length"))
def _train_epochs(params, X, y, config, length):
    def epoch(params, _):
        loss, grads = autodiff_gradients(params, X, y, config)
        return update(params, grads, {}, 0, config)[0], loss[None]

    return lax.scan(epoch, params, None, length=length, unroll=min(UNROLL, length))


def framework_optimizer(config):
    """optax's own optimizer for config, set to torch.optim's conventions where optax offers the choice, and to the
    declared ones (rmsprop.eps=inside: optax's own default); Adam's efficient form it cannot say.

    Quirks, each a finding: optax.rmsprop puts eps inside the root unless eps_in_sqrt=False; optax.adagrad
    starts its sum of squares at 0.1 (torch: 0) and always puts eps inside the root, rsqrt(G + eps) (torch:
    1 / (sqrt(G) + eps)), so the two agree only where eps is negligible beside sqrt(G); optax.clip_by_global_norm
    scales a gradient of norm |g| > c by c / |g|, torch's clip_grad_norm_ by c / (|g| + 1e-6).
    """
    import optax  # the jax extra installs it; only this oracle needs it

    if in_force(config).get("adam.eps", "outside") != "outside":
        raise Unsupported("optax.adam has adam.eps=outside only: no optax oracle for adam.eps=efficient")
    if "velocity" in (in_force(config).get("momentum.form"), in_force(config).get("nesterov.form")):
        raise Unsupported("optax.sgd keeps a buffer (momentum.form, nesterov.form=buffer) only: no optax oracle for "
                          "velocity")
    if in_force(config).get("weight_decay.form", "coupled") != "coupled":
        raise Unsupported("optax.add_decayed_weights before the step is coupled decay: no optax oracle for "
                          "weight_decay.form=decoupled beside adamw")
    if in_force(config).get("clip.norm", "global") != "global":
        raise Unsupported("optax clips by the global norm (clip_by_global_norm) only: no optax oracle for "
                          "clip.norm=per_tensor")
    if log_guard(config) is not None:  # optax's losses read logits; a guarded value is the manual forward's
        raise Unsupported("optax's losses take no log guard: no optax oracle under loss.log_guard")

    wd, name = config.weight_decay, config.optimizer
    mask = [tuple(config.decays(l, i) for i in range(len(registry.LAYERS[layer.kind].params)))
            for l, layer in enumerate(config.parametrized)]
    b1, b2 = config.betas or (None, None)  # adam's and adamw's alone
    lr = config.lr if config.schedule is None else _float_count(optax.warmup_cosine_decay_schedule(
        0.0, config.lr, config.warmup_steps, config.decay_steps, config.end_lr))  # called with the updates made
    if name == "adamw":  # decoupled: p <- p - lr (adam step + wd p), as torch's p (1 - lr wd) - lr adam step
        tx = optax.adamw(lr, b1, b2, config.eps, weight_decay=wd, mask=mask)
    else:
        base = {"sgd": lambda: optax.sgd(lr),
                "momentum": lambda: optax.sgd(lr, momentum=config.momentum),
                "nesterov": lambda: optax.sgd(lr, momentum=config.momentum, nesterov=True),
                "rmsprop": lambda: optax.rmsprop(lr, decay=config.alpha, eps=config.eps,
                                                 eps_in_sqrt=value(config, "rmsprop.eps") == "inside"),
                "adagrad": lambda: optax.adagrad(lr, initial_accumulator_value=0.0, eps=config.eps),
                "adam": lambda: optax.adam(lr, b1, b2, config.eps)}[name]()
        tx = optax.chain(optax.add_decayed_weights(wd, mask), base) if wd else base  # coupled L2, as torch
    return tx if config.clip is None else optax.chain(optax.clip_by_global_norm(config.clip), tx)


def _float_count(schedule):
    """The schedule evaluated on the updates made as a float64 count. Finding: optax keeps its count as int32, and its
    schedules then compute in float32 even with float64 enabled (warmup_cosine_decay_schedule at int32 5 of 10 gives
    0.004999999888 for 0.005), so a float64 run parts by about 1e-9; on a float64 count the same formula is exact."""
    return lambda count: schedule(jnp.asarray(count, jnp.float64))


def optimizer_train(params, X, y, config, orders=None, checkpoints=(), native=False):
    """mlp.train's contract with jax.grad's gradients and optax's optimizer: the framework's own run. With native, of
    the loss by JAX's own layers (native_loss) instead of the manual forward."""
    tx, step = _optax_step(config, native)
    opt_state = tx.init(params)
    steps = batches(X.shape[0], config.batch_size)
    losses, saved = [], {}
    for _, _, idx, _, done in schedule(config, X.shape[0], orders):
        params, opt_state, loss = step(params, opt_state, X[idx], y[idx])
        losses.append(loss)
        if done in checkpoints:
            saved[done] = params
    return Run(losses=jnp.stack(losses).reshape(config.epochs, len(steps)), checkpoints=saved, params=params)


_OPTAX_STEPS: dict = {}


def _optax_step(config, native=False):
    """(optax transformation, its compiled step) for config, built once (else every run would recompile)."""
    if (config, native) not in _OPTAX_STEPS:
        import optax

        tx = framework_optimizer(config)

        @jax.jit
        def step(params, opt_state, Xb, yb):
            if native:
                loss, grads = jax.value_and_grad(native_loss)(params, Xb, yb, config)
            else:
                loss, grads = autodiff_gradients(params, Xb, yb, config)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        _OPTAX_STEPS[config, native] = tx, step
    return _OPTAX_STEPS[config, native]


def native_train(params, X, y, config, orders=None, checkpoints=()):
    """JAX training the model its own way: its layers (lax), jax.grad and optax."""
    return optimizer_train(params, X, y, config, orders, checkpoints, native=True)
