"""The independent oracle: gradients of the very same loss by torch.autograd."""

import torch

from crosscheck.common import registry
from crosscheck.common.conventions import in_force, log_guard, reduced
from crosscheck.common.driver import Unsupported
from crosscheck.common.problem import schedule

from . import layers
from .layers.attention import ROPE_BASE, attention_heads, projections
from .layers.norms import BATCHNORM_EPS, LAYERNORM_EPS, RMSNORM_EPS
from .losses import FUSED_WITH_OUTPUT, loss_forward, reduce
from .mlp import Run, batches, forward


def vjp(f, x, dy=None):
    """The vector-Jacobian product dy^T (df/dx) by torch.autograd (dy None: f is scalar, its gradient)."""
    x = x.detach().clone().requires_grad_(True)
    out = f(x)
    (grad,) = torch.autograd.grad(out, x, grad_outputs=dy)
    return grad.detach()


# {(kind, op): torch's own function}: the framework's activations and losses, oracles beside its autodiff
# (crosscheck/verdict/ops.py). Where torch's own differ from the suite's conventions (CS231n's and the maths'), adapted
# here: multi_margin_loss divides CS231n's hinge by the number of classes. softplus returns z itself above its threshold
# (20 by default): a convention, off by log(1 + e^-z) (2e-9 at z = 20, 9.4e-14 = 14 ulps at the checks' edge z = 30,
# beyond the derived bound); compared with threshold 37, where log(1 + e^-z) < 1e-16 z, half an ulp of z.
F = torch.nn.functional
NATIVE: dict = {
    ("activations", "identity"): lambda z: z,
    ("activations", "sigmoid"): torch.sigmoid,
    ("activations", "tanh"): torch.tanh,
    ("activations", "relu"): F.relu,
    ("activations", "softmax"): lambda z: F.softmax(z, dim=-1),
    ("activations", "leaky_relu"): F.leaky_relu,
    ("activations", "elu"): F.elu,
    ("activations", "softplus"): lambda z: F.softplus(z, threshold=37.0),
    ("activations", "gelu"): F.gelu,
    ("activations", "gelu_tanh"): lambda z: F.gelu(z, approximate="tanh"),
    ("activations", "silu"): F.silu,
    ("losses", "half_sse"): lambda a, y: 0.5 * F.mse_loss(a, y, reduction="sum"),
    ("losses", "mse"): F.mse_loss,
    ("losses", "bce"): F.binary_cross_entropy_with_logits,  # fused: from the logits
    # Losses over classes read (positions, classes): every step of a sequence is one more position.
    ("losses", "softmax_cross_entropy"): lambda z, y: F.cross_entropy(_positions(z), _positions(y)),  # fused; y as
    # class probabilities
    ("losses", "hinge"): lambda a, y: a.shape[-1] * F.multi_margin_loss(_positions(a), _positions(y).argmax(dim=1)),
    # A layer kind's: own(layer, x, *params).
    ("layers", "dense"): lambda layer, x, W, b: F.linear(x, W.T, b),  # torch keeps W as (fan_out, fan_in)
    ("layers", "linear"): lambda layer, x, W: F.linear(x, W.T),
    ("layers", "layernorm"): lambda layer, x, g, b: F.layer_norm(x, g.shape, g, b, eps=LAYERNORM_EPS),
    ("layers", "rmsnorm"): lambda layer, x, g: F.rms_norm(x, g.shape, g, eps=RMSNORM_EPS),
    ("layers", "swiglu"): lambda layer, x, W_g, W_u, W_d: F.linear(F.silu(F.linear(x, W_g.T)) * F.linear(x, W_u.T),
                                                                 W_d.T),
    ("layers", "batchnorm"): lambda layer, x, g, b: F.batch_norm(x, None, None, g, b, training=True,
                                                                 eps=BATCHNORM_EPS),
    ("layers", "conv2d"): lambda layer, x, W, b: F.conv2d(x, W, b, stride=layer.shape[3], padding=layer.shape[4]),
    ("layers", "maxpool2d"): lambda layer, x: F.max_pool2d(x, *layer.shape),
    ("layers", "avgpool2d"): lambda layer, x: F.avg_pool2d(x, *layer.shape),
    ("layers", "flatten"): lambda layer, x: torch.flatten(x, 1),
    ("layers", "embedding"): lambda layer, x, W: F.embedding(x, W),
    ("layers", "rnn"): lambda layer, x, *p: _recurrent(torch.nn.RNN, layer, x, *p),
    ("layers", "lstm"): lambda layer, x, *p: _recurrent(torch.nn.LSTM, layer, x, *p),
    ("layers", "attention"): lambda layer, x, *p: _attention(layer, x, *p),
    ("layers", "rope_attention"): lambda layer, x, *p: _attention(layer, x, *p),
    ("layers", "biased_attention"): lambda layer, x, *p: _attention(layer, x, *p),
    ("layers", "unembed"): lambda layer, x, E: F.linear(x, E),  # torch's layout is the embedding's, (out, in)
    ("layers", "positions"): lambda layer, x, P: x + F.embedding(torch.arange(x.shape[1], device=x.device), P),
    ("layers", "last"): lambda layer, x: x[:, -1],
    ("layers", "vocabulary"): lambda layer, x: x[..., :layer.shape[0]],
}


def _positions(a):
    """(N, K), or (N, T, K) as (N T, K)"""
    return a.reshape(-1, a.shape[-1])


def _attention(layer, x, *p):
    """torch's scaled_dot_product_attention (is_causal, its default scale 1/sqrt(d); enable_gqa where key-value heads
    are shared) between the fused projection and the output one, F.linear each"""
    W_qkv, b_qkv, W_o, b_o = projections(p)  # biased_attention's biases, or None
    width, heads, kv = attention_heads(layer)
    d = width // heads
    q, k, v = F.linear(x, W_qkv.T, b_qkv).split([width, kv * d, kv * d], dim=-1)
    q, k, v = (t.unflatten(-1, (-1, d)).transpose(1, 2) for t in (q, k, v))  # (N, heads, T, d)
    if layer.kind == "rope_attention":
        q, k = _rope(q), _rope(k)
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=kv != heads)
    return F.linear(o.transpose(1, 2).flatten(2), W_o.T, b_o)


def _rope(x):
    """RoPE as Llama's reference writes it, by complex multiplication: the pair (x_i, x_{i + d/2}) as the complex
    number x_i + i x_{i + d/2} times e^{i t theta_i} (torch.polar), then back to the two halves"""
    t, d = x.shape[2], x.shape[3]
    theta = ROPE_BASE ** (-torch.arange(0, d, 2, dtype=torch.float64, device=x.device) / d)
    turn = torch.polar(torch.ones(t, d // 2, dtype=torch.float64, device=x.device),
                       torch.arange(t, dtype=torch.float64, device=x.device)[:, None] * theta)
    z = torch.complex(x[..., :d // 2].double(), x[..., d // 2:].double()) * turn
    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)


def _recurrent(module, layer, x, W_x, W_h, b, *states):
    """torch.nn.RNN or LSTM (batch first) with the layer's parameters, through torch.func.functional_call (so that
    autograd reaches them): torch keeps W_x and W_h transposed and two biases (the second one 0 here), and takes the
    initial state per sample (ours is one for all, expanded); every step's hidden state."""
    weights = {"weight_ih_l0": W_x.T, "weight_hh_l0": W_h.T, "bias_ih_l0": b, "bias_hh_l0": torch.zeros_like(b)}
    start = tuple(s.expand(1, len(x), -1).contiguous() for s in states)
    rnn = module(*layer.shape, batch_first=True, dtype=x.dtype, device=x.device)
    out, _ = torch.func.functional_call(rnn, weights, (x, start if len(start) > 1 else start[0]))
    return out


def native_loss(params, X, y, config):
    """The loss computed by torch's own layers, activations and loss (NATIVE), and the manual forward only for a kind
    torch has none of (dropout, whose masks torch would draw itself). With autograd, the framework training the model
    its own way (benchmarks/: the manual core's yardstick)."""
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
    """(L, [(dW_l, db_l)]) from torch.autograd.grad of loss(forward(params)); under a loss guard (loss.log_guard) L
    is the guarded value, the gradient the exact loss's, as the convention has it."""
    leaves = [tuple(p.detach().clone().requires_grad_(True) for p in leaves) for leaves in params]
    z, a = forward(leaves, X, config)[-1]
    loss = loss_forward(config.loss, z, a, y, c=reduced(config, a))
    flat = torch.autograd.grad(loss, [t for layer in leaves for t in layer])
    grads = iter(flat)
    if log_guard(config) is not None:
        loss = loss_forward(config.loss, z, a.detach(), y, log_guard(config), reduced(config, a))
    return loss.detach(), [tuple(next(grads) for _ in layer) for layer in leaves]


def train(params, X, y, config, orders=None, checkpoints=()):
    """Full-batch gradient descent with torch.autograd's gradients: what manual backprop is measured against."""
    if orders is not None or checkpoints or config.optimizer != "sgd" or config.weight_decay:
        raise ValueError("the autodiff training loop is full batch plain descent, without checkpoints")
    losses = torch.empty((config.epochs, 1), dtype=y.dtype, device=y.device)
    params = [tuple(p.detach().clone().requires_grad_(True) for p in leaves) for leaves in params]
    flat_params = [t for layer in params for t in layer]
    for epoch in range(config.epochs):
        z, a = forward(params, X, config)[-1]
        loss = loss_forward(config.loss, z, a, y, c=reduced(config, a))
        grads = torch.autograd.grad(loss, flat_params)
        with torch.no_grad():
            for p, g in zip(flat_params, grads):
                p.sub_(config.lr * g)
            losses[epoch, 0] = loss
    return Run(losses=losses, checkpoints={}, params=[tuple(p.detach() for p in layer) for layer in params])


def framework_optimizer(params, config):
    """torch.optim's own optimizer for config: weights and biases in two groups, biases undecayed if asked. A
    convention torch.optim cannot say (RMSprop's eps inside the root, Adam's efficient form, momentum as velocity) has
    no oracle here."""
    for key, theirs in (("rmsprop.eps", "outside"), ("adam.eps", "outside"), ("loss.log_guard", "none"),
                        ("momentum.form", "buffer"), ("nesterov.form", "buffer"), ("weight_decay.form", "coupled")):
        if key in in_force(config) and in_force(config)[key] != theirs:
            raise Unsupported(f"torch.optim has {key}={theirs} only: no torch oracle for {key}={in_force(config)[key]}")
    wd, name = config.weight_decay, config.optimizer
    decayed = [config.decays(l, i) for l, leaves in enumerate(params) for i in range(len(leaves))]
    flat = [p for leaves in params for p in leaves]
    groups = [{"params": [p for p, d in zip(flat, decayed) if d], "weight_decay": wd},
              {"params": [p for p, d in zip(flat, decayed) if not d], "weight_decay": 0.0}]
    if name in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.0 if name == "sgd" else config.momentum,
                               nesterov=name == "nesterov")
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=config.lr, alpha=config.alpha, eps=config.eps)
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=config.lr, eps=config.eps)
    optimizer = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    return optimizer(groups, lr=config.lr, betas=config.betas, eps=config.eps)


def framework_schedule(optimizer, config):
    """torch's own schedulers for config's warmup_cosine: LambdaLR's linear warmup (count / warmup_steps: torch's
    LinearLR cannot start at 0), then CosineAnnealingLR down to end_lr at decay_steps, one after the other
    (SequentialLR). Finding: CosineAnnealingLR is periodic, so past decay_steps it climbs again where optax's
    schedule (and the suite's) holds end_lr; the cases end their decay at their last update."""
    lr_scheduler = torch.optim.lr_scheduler
    warmup = lr_scheduler.LambdaLR(optimizer, lambda count: count / config.warmup_steps if config.warmup_steps else 1.0)
    cosine = lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.decay_steps - config.warmup_steps,
                                            eta_min=config.end_lr)
    return lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[config.warmup_steps])


def optimizer_train(params, X, y, config, orders=None, checkpoints=(), native=False):
    """mlp.train's contract with torch.autograd's gradients and torch.optim's optimizer: the framework's own run. With
    native, of the loss by torch's own layers (native_loss) instead of the manual forward."""
    leaves = [tuple(p.detach().clone().requires_grad_(True) for p in leaves) for leaves in params]
    optimizer = framework_optimizer(leaves, config)
    scheduler = None if config.schedule is None else framework_schedule(optimizer, config)
    steps = batches(len(X), config.batch_size)
    losses = torch.empty((config.epochs, len(steps)), dtype=y.dtype, device=y.device)
    saved = {}
    for epoch, s, idx, _, done in schedule(config, len(X), orders):
        optimizer.zero_grad()
        if native:
            loss = native_loss(leaves, X[idx], y[idx], config)
        else:
            z, a = forward(leaves, X[idx], config)[-1]
            loss = loss_forward(config.loss, z, a, y[idx], c=reduced(config, a))
        loss.backward()
        if config.clip is not None and in_force(config)["clip.norm"] == "per_tensor":  # Keras's clipnorm: each own
            for p in (p for layer in leaves for p in layer):
                torch.nn.utils.clip_grad_norm_([p], config.clip)
        elif config.clip is not None:  # one norm over every leaf, then the step
            torch.nn.utils.clip_grad_norm_([p for layer in leaves for p in layer], config.clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses[epoch, s] = loss.detach()
        if done in checkpoints:
            saved[done] = [tuple(p.detach().clone() for p in layer) for layer in leaves]
    return Run(losses=losses, checkpoints=saved, params=[tuple(p.detach() for p in layer) for layer in leaves])


def native_train(params, X, y, config, orders=None, checkpoints=()):
    """torch training the model its own way: its layers (torch.nn.functional), autograd and torch.optim."""
    return optimizer_train(params, X, y, config, orders, checkpoints, native=True)
