"""Classic manual-backprop mistakes, each a one-line mutation of a backend's source, spelled per backend.

tests/test_bug_catalogue.py plants each one in each backend in turn (test-side: the
files are never edited), on each of its cases, and requires the suite to fail with a
message naming the quantity the mistake touches, and not naming the quantities the
maths says it leaves untouched.
"""

from dataclasses import dataclass, field

from crosscheck import backends


@dataclass(frozen=True)
class Expect:
    """What the failure on one case must name, and what it must not (quantities the mistake cannot touch)."""

    names: str
    untouched: tuple = ()


# Checks that compare against hand-worked values or closed forms rather than against the reference: a mistake
# planted in the reference is caught by the reference's own check there, not by the frameworks disagreeing with it.
PROBES = ("kink", "pieces", "float32", "saturation", "oracle", "mixed", "rule")


@dataclass(frozen=True)
class Bug:
    id: str
    what: str
    module: str  # activations, losses, layers.<family> (layers.dense, layers.norms...), mlp, optimizers, parallel...
    old: str  # the correct line, as the reference spells it
    new: str  # the mistake
    check: str  # forward, gradients or trajectory against the reference; or one of PROBES
    cases: dict  # crosscheck.suite.cases id -> Expect; a probe has one entry, "" (it brings its own problems)
    dtype: str = "float64"
    spellings: dict = field(default_factory=dict)  # backend -> (old, new) where it spells the line otherwise
    only: tuple = ()  # the backends the mistake can live in (default: every built-in one)
    # Where the frameworks' cross-check cannot catch the mistake in the reference, the probe that does: a mistake in
    # the reference's mixed step widens its own deviation from float64, and with it the bound every backend gets.
    probe: str = ""

    def spelled(self, backend):
        return self.spellings.get(backend, (self.old, self.new))

    def plant(self, mutate, backend):
        """Plant this mistake in backend's module with mutate(module_name, old, new)
        (crosscheck/diagnosis/mutations.py)."""
        mutate(f"{backends.REGISTRY[backend][0]}.{self.module}", *self.spelled(backend))


def _torch_jax(torch_pair, jax_pair=None):
    return {"torch": torch_pair, **({"jax": jax_pair} if jax_pair else {})}


def grads(*layers, loss=True, weights=True, biases=True):
    """The gradient quantities of the given layers (and the loss), as the checks name them."""
    names = ("loss",) if loss else ()
    kinds = (("weight",) if weights else ()) + (("bias",) if biases else ())
    return names + tuple(f"layer {l} {kind} gradient" for l in layers for kind in kinds)


LOSS_ONLY = ("loss",)


# The transformer block's kinds' two cases: layer 5 (layer 3 in the second) is the SwiGLU MLP, 6 (4) the output layer
BLOCK, BLOCK_2 = "rmsnorm-silu-swiglu-adamw-minibatch", "rmsnorm-silu-swiglu-mse"


def swiglu(layer, *leaves):
    """A SwiGLU layer's gradient quantities (its gate, up and down weights, or those named)."""
    return tuple(f"layer {layer} {leaf} weight gradient" for leaf in leaves or ("gate", "up", "down"))


# The attention cases: layer 1 the embedding, 2 the positions, 3 the attention, then the output layer. A mistake in
# attention's backward leaves its output weight's gradient and all above it right; one in the positions' gradient
# leaves everything but it right (their input gradient passes straight through).
ATTENTION, ATTENTION_2 = "attention-positions-adamw-minibatch", "attention-grouped-tanh-momentum"
# The first case's output layer is tied to its embedding (unembed: no layer 4, and layer 1's gradient holds both
# uses); the second's is a dense layer 4.
ATTENTION_ABOVE, ATTENTION_2_ABOVE = ("loss", "layer 3 output weight gradient"), grads(4) + ("layer 3 output weight "
                                                                                            "gradient",)
POSITIONS_ABOVE, POSITIONS_2_ABOVE = ((above + ("layer 1 weight gradient", "layer 3 qkv weight gradient"))
                                      for above in (ATTENTION_ABOVE, ATTENTION_2_ABOVE))
# The GPT block's case: 1 embedding, 2 positions, then x + attention(layernorm(x)) (layers 3, 4) and x + mlp(
# layernorm(x)) (5, 6, 7), a final layer norm (8) and the output layer (9).
GPT = "gpt-block-adamw-minibatch"
# Llama's blocks: 1 embedding, then x + rope_attention(rmsnorm(x)) (2, 3), x + swiglu(rmsnorm(x)) (4, 5), a final
# RMS norm (6) and the output layer, tied to the embedding (the first case) or linear 7 (the second).
LLAMA, LLAMA_2 = "llama-tied-rope-adamw-minibatch", "llama-grouped-rope-sgd"
LLAMA_ABOVE = ("loss", "layer 3 output weight gradient", "layer 4 scale gradient", "layer 5 gate weight gradient",
               "layer 5 up weight gradient", "layer 5 down weight gradient", "layer 6 scale gradient")
LAYERNORM_8 = ("layer 8 scale gradient", "layer 8 shift gradient")
JAX_MASKED = "a = activations.softmax_forward(jnp.where(jnp.tri(x.shape[1], dtype=bool), s, -jnp.inf))"
# a norm layer's own gradients (layer norm's, batch norm's), which a mistake in its input gradient leaves untouched
# a mistake in the second convolution's input gradient: the first convolution's gradients go, the rest stay right
CNN_INPUT_GRADIENT = {"cnn-maxpool-avgpool-adam-minibatch": Expect("layer 1 weight gradient", grads(2, 3)),
                      "cnn-overlapping-maxpool-tanh-momentum": Expect("layer 1 weight gradient", grads(2, 3))}
# a mistake inside the recurrent layer (layer 2 of the character models): the dense layer above it and the loss stay
DENSE_3 = ("loss", "layer 3 weight gradient", "layer 3 bias gradient")
# a mistake in the embedding (layer 1): the recurrent layer's gradients stay right too
RNN_ABOVE = DENSE_3 + tuple(f"layer 2 {leaf} gradient" for leaf in ("input weight", "hidden weight", "bias",
                                                                   "initial state"))
LAYERNORM_2, LAYERNORM_4 = (("layer 2 scale gradient", "layer 2 shift gradient"),
                            ("layer 4 scale gradient", "layer 4 shift gradient"))


# The data-parallel cases: a mean loss on 2 shards (and its GPT block), the seeds' summed loss on 2 (and on 4).
DATA, DATA_XOR = "parallel-data-tanh-mse-momentum-minibatch", "parallel-data-seed2-xor"
DATA_GPT, DATA_4 = "parallel-data-gpt-block-adamw", "parallel-data4-half-sse-adam-minibatch"
DATA_DROPOUT, DATA_DROPOUT_4 = "parallel-data-dropout-gelu-mse-minibatch", "parallel-data4-dropout-adam"
# The tensor-parallel cases: four dense layers (column, row, column, row) on 2 ranks and on 4; what a mistake in the
# third layer's input gradient cannot touch: the loss and the two layers above it.
TENSOR, TENSOR_4 = "parallel-tensor-tanh-relu-mse-momentum-minibatch", "parallel-tensor4-softmax-adam"
BELOW_THE_THIRD = ("loss", *grads(3, 4, loss=False))
# Tensor parallelism through transformer blocks (attention by its heads): a GPT block on 2 ranks, Llama's (rotary,
# grouped-query heads) on 4. A wrong gather of the fused projection's gradient touches that leaf alone.
TENSOR_GPT, TENSOR_LLAMA_4 = "parallel-tensor-gpt-block-heads", "parallel-tensor4-llama-grouped-rope"
QKV_ONLY = {TENSOR_GPT: ("loss", "layer 4 output weight gradient", "layer 6 weight gradient",
                         "layer 7 weight gradient", "layer 1 weight gradient"),
            TENSOR_LLAMA_4: ("loss", "layer 3 output weight gradient", "layer 5 gate weight gradient",
                             "layer 7 weight gradient")}


def _on(*optimizers):
    """An optimizer mistake's cases: each optimizer's minibatch and XOR runs; the recorded losses always move."""
    cases = {f"{name}-{kind}": Expect("loss [epoch, step]") for kind in ("minibatch", "xor") for name in optimizers}
    return dict(sorted(cases.items(), key=lambda item: "xor" in item[0]))  # the minibatch runs first (by default)

BUGS = (
    Bug("sigmoid-derivative-from-z", "sigmoid'(z) computed from z where the output a is meant", "activations",
        "return da * a * (1.0 - a)", "return da * z * (1.0 - z)", "gradients",
        {"seed1-xor": Expect("layer 1 weight gradient", LOSS_ONLY),
         "sigmoid-bce": Expect("layer 1 weight gradient", grads(2))}),  # bce fuses the output sigmoid
    Bug("sigmoid-derivative-at-a", "sigmoid'(z) evaluated at the output a, sigmoid(a) (1 - sigmoid(a)), where z is "
        "meant (sigmoid_prime(activation))", "activations", "return da * a * (1.0 - a)",
        "return da * sigmoid_forward(a) * (1.0 - sigmoid_forward(a))", "gradients",
        {"seed1-xor": Expect("layer 1 weight gradient", LOSS_ONLY),
         "sigmoid-bce": Expect("layer 1 weight gradient", grads(2))}),  # bce fuses the output sigmoid
    Bug("tanh-derivative", "tanh'(z) written as 1 - a instead of 1 - a^2", "activations",
        "return da * (1.0 - a * a)", "return da * (1.0 - a)", "gradients",
        {"tanh-identity-mse-minibatch": Expect("layer 1 weight gradient", grads(2)),
         "deep-tanh-sigmoid-mse": Expect("layer 1 weight gradient", grads(4))}),
    Bug("relu-kink", "relu'(0) taken as 1 (z >= 0) against the documented 0", "activations",
        "return da * (z > 0)", "return da * (z >= 0)", "kink", {"": Expect("layer 1 weight gradient at the kink")}),
    Bug("relu-derivative-is-relu", "relu'(z) written as relu(z) itself", "activations",
        "return da * (z > 0)", "return da * a", "gradients",
        {"relu-identity-half-sse": Expect("layer 1 weight gradient", grads(2)),
         "relu-softmax-ce-minibatch": Expect("layer 1 weight gradient", grads(3))}),
    Bug("leaky-relu-slope-dropped", "leaky_relu's backward passing nothing for z < 0, as relu's would", "activations",
        "return np.where(z > 0, da, NEGATIVE_SLOPE * da)", "return np.where(z > 0, da, 0 * da)", "gradients",
        {"leaky-elu-softplus-gelu-hinge-minibatch": Expect("layer 1 weight gradient", grads(2, 3, 4, 5, 6)),
         "gelu-leaky-hinge-minibatch": Expect("layer 2 weight gradient", grads(3))},
        spellings={lib: (f"return {m}.where(z > 0, da, NEGATIVE_SLOPE * da)", f"return {m}.where(z > 0, da, 0 * da)")
                   for lib, m in (("torch", "torch"), ("jax", "jnp"))}),
    Bug("gelu-density-term-dropped", "gelu'(z) taken as Phi(z) alone, the z phi(z) term of the product rule dropped",
        "activations", "return da * (0.5 * (1.0 + _erf(z / math.sqrt(2.0))) + z * phi)",
        "return da * (0.5 * (1.0 + _erf(z / math.sqrt(2.0))))", "gradients",
        {"leaky-elu-softplus-gelu-hinge-minibatch": Expect("layer 4 weight gradient", grads(5, 6)),
         "gelu-leaky-hinge-minibatch": Expect("layer 1 weight gradient", grads(2, 3))},
        spellings={"torch": ("return da * (0.5 * (1.0 + torch.erf(z / math.sqrt(2.0))) + z * phi)",
                             "return da * (0.5 * (1.0 + torch.erf(z / math.sqrt(2.0))))"),
                   "jax": ("return da * (0.5 * (1.0 + jax.scipy.special.erf(z / math.sqrt(2.0))) + z * phi)",
                           "return da * (0.5 * (1.0 + jax.scipy.special.erf(z / math.sqrt(2.0))))")}),
    Bug("silu-derivative-as-sigmoid", "silu'(z) taken as sigmoid(z) alone, the z sigmoid'(z) term of the product rule "
        "dropped (in SwiGLU, the gate's derivative as the sigmoid's)", "activations",
        "return da * s * (1.0 + z * (1.0 - s))", "return da * s", "gradients",
        {BLOCK: Expect("layer 1 weight gradient", grads(6) + swiglu(5, "up", "down")),  # inside SwiGLU too
         BLOCK_2: Expect("layer 1 weight gradient", grads(4) + swiglu(3, "up", "down"))}),
    Bug("rmsnorm-scale-gradient-not-summed", "RMS norm's scale gradient of the first sample only, not summed over the "
        "batch (and the steps of a sequence)", "layers.norms",
        "return dx, (total(dy * x_hat, axis=tuple(range(dy.ndim - 1))),)", "return dx, ((dy * x_hat)[0],)",
        "gradients", {BLOCK: Expect("layer 2 scale gradient", grads(1, 3, 6) + swiglu(5)),
                      BLOCK_2: Expect("layer 2 scale gradient", grads(1, 4) + swiglu(3))},
        spellings=_torch_jax(("return dx, ((dy * x_hat).sum(dim=tuple(range(dy.ndim - 1))),)",
                              "return dx, ((dy * x_hat)[0],)"),
                             ("return dx, ((dy * x_hat).sum(axis=tuple(range(dy.ndim - 1))),)",
                              "return dx, ((dy * x_hat)[0],)"))),
    Bug("rmsnorm-backward-without-mean-term", "RMS norm's backward missing the term through the mean of squares "
        "(dx = dx^ / rms)", "layers.norms",
        "dx = inv_rms * (dx_hat - x_hat * average(dx_hat * x_hat, axis=-1, keepdims=True))", "dx = inv_rms * dx_hat",
        "gradients",
        {BLOCK: Expect("layer 3 weight gradient", grads(6) + swiglu(5) + ("layer 4 scale gradient",)),
         BLOCK_2: Expect("layer 1 weight gradient", grads(4) + swiglu(3) + ("layer 2 scale gradient",))},
        spellings=_torch_jax(("dx = inv_rms * (dx_hat - x_hat * (dx_hat * x_hat).mean(dim=-1, keepdim=True))",
                              "dx = inv_rms * dx_hat"),
                             ("dx = inv_rms * (dx_hat - x_hat * (dx_hat * x_hat).mean(axis=-1, keepdims=True))",
                              "dx = inv_rms * dx_hat"))),
    Bug("swiglu-up-gradient-without-gate", "SwiGLU's up-projection gradient without the gate's factor (du = dh, "
        "where h = silu(g) u makes it dh silu(g))", "layers.attention",
        "dg, du = activations.silu_backward(dh * u, g, s), dh * s",
        "dg, du = activations.silu_backward(dh * u, g, s), dh", "gradients",
        {BLOCK: Expect("layer 5 up weight gradient", grads(6) + swiglu(5, "gate", "down")),
         BLOCK_2: Expect("layer 3 up weight gradient", grads(4) + swiglu(3, "gate", "down"))}),
    Bug("attention-mask-after-softmax", "attention's causal mask applied after the softmax (the masked weights set to "
        "0, the rest no longer summing to 1) instead of to the scores before it", "layers.attention",
        "a = activations.softmax_forward(np.where(np.tri(x.shape[1], dtype=bool), s, -np.inf))  # masked: j > i gets 0",
        "a = np.where(np.tri(x.shape[1], dtype=bool), activations.softmax_forward(s), 0.0)", "gradients",
        {ATTENTION: Expect("loss"), ATTENTION_2: Expect("loss")},
        spellings=_torch_jax(("a = activations.softmax_forward(torch.where(causal(x), s, -math.inf))",
                              "a = torch.where(causal(x), activations.softmax_forward(s), 0.0)"),
                             (JAX_MASKED, "a = jnp.where(jnp.tri(x.shape[1], dtype=bool), "
                                          "activations.softmax_forward(s), 0.0)"))),
    Bug("attention-causal-mask-diagonal", "attention's causal mask off by one: the diagonal masked too, so no position "
        "sees itself (and the first sees nothing: its softmax is 0/0)", "layers.attention",
        "a = activations.softmax_forward(np.where(np.tri(x.shape[1], dtype=bool), s, -np.inf))  # masked: j > i gets 0",
        "a = activations.softmax_forward(np.where(np.tri(x.shape[1], k=-1, dtype=bool), s, -np.inf))", "gradients",
        {ATTENTION: Expect("loss"), ATTENTION_2: Expect("loss")},
        spellings=_torch_jax(("return torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device).tril()",
                              "return torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device).tril(-1)"),
                             (JAX_MASKED, JAX_MASKED.replace("dtype=bool", "k=-1, dtype=bool")))),
    Bug("attention-heads-merged-in-wrong-order", "attention's heads merged feature-major (each head's first feature, "
        "then each one's second...) where they were split head-major", "layers.attention",
        "return x.transpose(0, 2, 1, 3).reshape(n, t, h * d)", "return x.transpose(0, 2, 3, 1).reshape(n, t, h * d)",
        "gradients", {ATTENTION: Expect("loss"), ATTENTION_2: Expect("loss")},
        spellings=_torch_jax(("return x.transpose(1, 2).reshape(n, t, h * d)",
                              "return x.permute(0, 2, 3, 1).reshape(n, t, h * d)"))),
    Bug("attention-backward-without-scale", "attention's backward without the scores' 1/sqrt(d) (dq = ds k, "
        "dk = ds^T q), which the forward applies", "layers.attention",
        "dq, dk = np.matmul(ds, k) / math.sqrt(d), np.matmul(ds.transpose(0, 1, 3, 2), q) / math.sqrt(d)",
        "dq, dk = np.matmul(ds, k), np.matmul(ds.transpose(0, 1, 3, 2), q)", "gradients",
        {ATTENTION: Expect("layer 3 qkv weight gradient", ATTENTION_ABOVE),
         ATTENTION_2: Expect("layer 3 qkv weight gradient", ATTENTION_2_ABOVE)},
        spellings=_torch_jax(("dq, dk = (ds @ k) / math.sqrt(d), (ds.transpose(-2, -1) @ q) / math.sqrt(d)",
                              "dq, dk = ds @ k, ds.transpose(-2, -1) @ q"),
                             ("dq, dk = jnp.matmul(ds, k) / math.sqrt(d), jnp.matmul(ds.transpose(0, 1, 3, 2), q) / "
                              "math.sqrt(d)", "dq, dk = jnp.matmul(ds, k), jnp.matmul(ds.transpose(0, 1, 3, 2), q)"))),
    Bug("attention-softmax-backward-without-row-sum", "attention's softmax backward without its row-sum term "
        "(ds = a da, where it is a (da - sum_j da a))", "layers.attention",
        "ds = a * (da - total(da * a, axis=-1, keepdims=True))", "ds = a * da", "gradients",
        {ATTENTION: Expect("layer 3 qkv weight gradient", ATTENTION_ABOVE),
         ATTENTION_2: Expect("layer 3 qkv weight gradient", ATTENTION_2_ABOVE)},
        spellings=_torch_jax(("ds = a * (da - (da * a).sum(dim=-1, keepdim=True))", "ds = a * da"),
                             ("ds = a * (da - (da * a).sum(axis=-1, keepdims=True))", "ds = a * da"))),
    Bug("residual-gradient-not-added", "a residual block's input gradient taken through f alone (dx = df(x)), the "
        "dy that skips f not added", "mlp", "dy = dy + skipped.pop()  # dx = df(x) + dy: the residual's own term",
        "skipped.pop()", "gradients",
        {GPT: Expect("layer 4 qkv weight gradient", grads(9) + LAYERNORM_8 + grads(6, 7, loss=False)
                     + ("layer 5 scale gradient", "layer 5 shift gradient")),
         "residual-nested-tanh-mse": Expect("layer 1 weight gradient", grads(4))}),
    Bug("clipping-after-the-step", "gradients clipped after the update has used them (clip_grad_norm_ called after "
        "optimizer.step()): no step is clipped", "mlp",
        'grads = clipped(grads, config.clip, value(config, "clip.norm") == "per_tensor")',
        'clipped(grads, config.clip, value(config, "clip.norm") == "per_tensor")', "trajectory",
        {ATTENTION_2: Expect("loss [epoch, step]"), GPT: Expect("loss [epoch, step]")}),  # past the norm at step 1
    Bug("warmup-off-by-one", "the learning-rate schedule read at the update's own number where it is read at the "
        "updates made before it (the first update at lr / warmup where the schedule gives 0)", "optimizers",
        "count = t - 1", "count = t", "trajectory",
        {GPT: Expect("loss [epoch, step]"), BLOCK: Expect("loss [epoch, step]")}),
    Bug("micro-batches-summed", "accumulated micro-batch gradients summed where each is weighted by its share of the "
        "batch (the mean loss's gradient is their average: the step is accumulate times too long)", "mlp",
        "share = 1.0 if summed(config) else (stop - start) / n", "share = 1.0",
        "trajectory",
        {ATTENTION: Expect("loss [epoch, step]"), ATTENTION_2: Expect("loss [epoch, step]")}),
    Bug("tied-weight-one-gradient", "a tied matrix given one of its two gradients: the embedding's use overwrites the "
        "output layer's (its gradient is the sum of both)", "mlp",
        "grads[layer.slot] = dp if not grads[layer.slot] else tuple(a + b for a, b in zip(grads[layer.slot], dp))",
        "grads[layer.slot] = dp", "gradients",
        {ATTENTION: Expect("layer 1 weight gradient", ("loss", "layer 2 weight gradient", "layer 3 qkv weight gradient",
                                                       "layer 3 output weight gradient")),
         LLAMA: Expect("layer 1 weight gradient", ("loss", "layer 2 scale gradient", "layer 3 qkv weight gradient",
                                                   "layer 5 gate weight gradient", "layer 6 scale gradient"))}),
    Bug("rope-backward-turning-forward", "RoPE's backward turning q's and k's gradients by +t theta (the forward's "
        "rotation) where its transpose turns them back, by -t theta", "layers.attention",
        "dq, dk = rotary(dq, -1.0), rotary(dk, -1.0)", "dq, dk = rotary(dq, 1.0), rotary(dk, 1.0)", "gradients",
        {LLAMA: Expect("layer 3 qkv weight gradient", LLAMA_ABOVE),
         LLAMA_2: Expect("layer 3 qkv weight gradient", LLAMA_ABOVE + ("layer 7 weight gradient",))}),
    Bug("positions-gradient-of-one-sample", "the position embedding's gradient taken from the first sample only, not "
        "summed over the batch", "layers.attention", "dP[:dy.shape[1]] = total(dy, axis=0)", "dP[:dy.shape[1]] = dy[0]",
        "gradients", {ATTENTION: Expect("layer 2 weight gradient", POSITIONS_ABOVE),
                      ATTENTION_2: Expect("layer 2 weight gradient", POSITIONS_2_ABOVE)},
        spellings=_torch_jax(("dP[:dy.shape[1]] = dy.sum(dim=0)", "dP[:dy.shape[1]] = dy[0]"),
                             ("dP = jnp.zeros_like(P).at[:dy.shape[1]].set(dy.sum(axis=0))",
                              "dP = jnp.zeros_like(P).at[:dy.shape[1]].set(dy[0])"))),
    Bug("layernorm-over-the-batch", "layer norm's mean taken over the batch instead of each sample's features",
        "layers.norms",
        "mu = average(x, axis=-1, keepdims=True)", "mu = average(x, axis=0, keepdims=True)", "gradients",
        {"layernorm-tanh-softplus-softmax-adam": Expect("loss"),
         "layernorm-dropout-gelu-mse-minibatch": Expect("loss")},
        spellings=_torch_jax(("mu = x.mean(dim=-1, keepdim=True)", "mu = x.mean(dim=0, keepdim=True)"),
                             ("mu = x.mean(axis=-1, keepdims=True)", "mu = x.mean(axis=0, keepdims=True)"))),
    Bug("layernorm-backward-without-statistics", "layer norm's backward missing the terms through the mean and the "
        "variance (dx = dx^ / std)", "layers.norms",
        "dx = inv_std * (dx_hat - average(dx_hat, axis=-1, keepdims=True)\n"
        "                    - x_hat * average(dx_hat * x_hat, axis=-1, keepdims=True))", "dx = inv_std * dx_hat",
        "gradients",
        {"layernorm-tanh-softplus-softmax-adam": Expect("layer 3 weight gradient", grads(5) + LAYERNORM_4),
         "layernorm-dropout-gelu-mse-minibatch": Expect("layer 1 weight gradient", grads(3) + LAYERNORM_2)},
        spellings=_torch_jax(("dx = inv_std * (dx_hat - dx_hat.mean(dim=-1, keepdim=True) - x_hat * (dx_hat * x_hat)"
                              ".mean(dim=-1, keepdim=True))", "dx = inv_std * dx_hat"),
                             ("dx = inv_std * (dx_hat - dx_hat.mean(axis=-1, keepdims=True)\n"
                              "                    - x_hat * (dx_hat * x_hat).mean(axis=-1, keepdims=True))",
                              "dx = inv_std * dx_hat"))),
    Bug("batchnorm-evaluation-with-batch-statistics", "batch norm in evaluation mode normalising with the batch's "
        "statistics instead of the running ones", "layers.norms", "running_mean, running_var = r",
        "running_mean, running_var = x.mean(axis=0), x.var(axis=0)", "trajectory",
        {"batchnorm-tanh-softplus-momentum-minibatch": Expect("network output in evaluation mode",
                                                              ("loss [epoch, step]", "running")),
         "batchnorm-gelu-mse": Expect("network output in evaluation mode", ("loss [epoch, step]", "running"))},
        spellings={"torch": ("running_mean, running_var = r",
                             "running_mean, running_var = x.mean(dim=0), x.var(dim=0, unbiased=False)")}),
    Bug("batchnorm-backward-without-statistics", "batch norm's backward missing the terms through the batch's mean "
        "and variance (dx = dx^ / std)", "layers.norms",
        "dx = inv_std * (dx_hat - average(dx_hat, axis=0) - x_hat * average(dx_hat * x_hat, axis=0) * c)",
        "dx = inv_std * dx_hat", "gradients",
        {"batchnorm-tanh-softplus-momentum-minibatch": Expect("layer 3 weight gradient", grads(5) + LAYERNORM_4),
         "batchnorm-gelu-mse": Expect("layer 1 weight gradient", grads(3) + LAYERNORM_2)},
        spellings=_torch_jax(("dx = inv_std * (dx_hat - dx_hat.mean(dim=0) - x_hat * (dx_hat * x_hat).mean(dim=0) "
                              "* c)", "dx = inv_std * dx_hat"),
                             ("dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0) "
                              "* c)", "dx = inv_std * dx_hat"))),
    Bug("dropout-scale-missing", "inverted dropout without its 1 / (1 - p): kept units not scaled up in training",
        "layers.shapes", "y = x * mask / (1.0 - layer.shape[0])", "y = x * mask", "trajectory",
        {"batchnorm-dropout-momentum-minibatch": Expect("loss [epoch, step]"),
         "layernorm-dropout-gelu-mse-minibatch": Expect("loss [epoch, step]")}),
    Bug("dropout-fresh-mask-in-backward", "dropout's backward drawing a fresh mask of its own instead of the "
        "forward's", "layers.shapes", "_, _, mask = cache",
        "mask = (np.random.default_rng(0).random(dy.shape) >= layer.shape[0]).astype(dy.dtype)", "trajectory",
        {"batchnorm-dropout-momentum-minibatch": Expect("loss [epoch, step]"),
         "layernorm-dropout-gelu-mse-minibatch": Expect("loss [epoch, step]")},
        spellings={"torch": ("_, _, mask = cache",
                             "mask = (torch.rand(dy.shape, generator=torch.Generator().manual_seed(0), "
                             "dtype=dy.dtype) >= layer.shape[0]).to(dy.dtype)"),
                   "jax": ("_, _, mask = cache",
                           "mask = (__import__('jax').random.uniform(__import__('jax').random.key(0), dy.shape, "
                           "dy.dtype) >= layer.shape[0]).astype(dy.dtype)")}),
    # Convolution and pooling: each mistake sits below the second convolution (or the pool), so the layers above
    # it and the loss stay right; the first convolution's gradients, reached through the mistaken input gradient, go.
    Bug("conv-kernel-not-flipped", "the convolution's input gradient taken with the kernel as the forward reads it "
        "(a correlation), where the full convolution of dz needs it flipped: in im2col's form, the kernel read "
        "flipped", "layers.conv", "dcols = np.matmul(W.reshape(len(W), -1).T, dz)",
        "dcols = np.matmul(W[:, :, ::-1, ::-1].reshape(len(W), -1).T, dz)", "gradients", CNN_INPUT_GRADIENT,
        spellings=_torch_jax(("dcols = (W.reshape(len(W), -1).T @ dz)",
                              "dcols = (W.flip((2, 3)).reshape(len(W), -1).T @ dz)"),
                             ("dcols = jnp.matmul(W.reshape(len(W), -1).T, dz)",
                              "dcols = jnp.matmul(W[:, :, ::-1, ::-1].reshape(len(W), -1).T, dz)"))),
    Bug("conv-input-gradient-stride-ignored", "the convolution's input gradient sent back as if the stride were 1",
        "layers.conv", "dx = unwindows(dcols, (n, c, h + 2 * pad, w + 2 * pad), k, stride)",
        "dx = unwindows(dcols, (n, c, h + 2 * pad, w + 2 * pad), k, 1)", "gradients", CNN_INPUT_GRADIENT),
    Bug("conv-input-gradient-padding-misplaced", "the convolution's input gradient cut from the padded one at the "
        "corner instead of inside the padding", "layers.conv", "return dx[:, :, pad:pad + h, pad:pad + w], (dW, db)",
        "return dx[:, :, :h, :w], (dW, db)", "gradients", CNN_INPUT_GRADIENT),
    Bug("maxpool-gradient-to-every-position", "max-pooling's gradient sent to every position of the window, not "
        "only to its maximum", "layers.conv",
        "np.put_along_axis(dcols, arg[:, :, None], dy[:, :, None], axis=2)",
        "dcols[:] = dy[:, :, None]", "gradients",
        {"cnn-maxpool-avgpool-adam-minibatch": Expect("layer 1 weight gradient", grads(2, 3)),
         "cnn-overlapping-maxpool-tanh-momentum": Expect("layer 1 weight gradient", grads(2, 3))},
        spellings=_torch_jax(("dcols.scatter_(2, arg[:, :, None], dy[:, :, None])", "dcols[:] = dy[:, :, None]"),
                             ("dcols = jnp.put_along_axis(dcols, arg[:, :, None], dy[:, :, None], axis=2,\n"
                              "                               inplace=False)",
                              "dcols = jnp.broadcast_to(dy[:, :, None], dcols.shape)"))),
    Bug("avgpool-gradient-not-averaged", "average pooling's gradient not divided by the window's k^2 entries",
        "layers.conv", "dcols = np.repeat(dy[:, :, None] / (k * k), k * k, axis=2)",
        "dcols = np.repeat(dy[:, :, None], k * k, axis=2)", "gradients",
        {"cnn-maxpool-avgpool-adam-minibatch": Expect("layer 2 weight gradient", grads(3)),
         "cnn-overlapping-maxpool-tanh-momentum": Expect("layer 2 weight gradient", grads(3))},
        spellings=_torch_jax(("dcols = torch.repeat_interleave(dy[:, :, None] / (k * k), k * k, dim=2)",
                              "dcols = torch.repeat_interleave(dy[:, :, None], k * k, dim=2)"),
                             ("dcols = jnp.repeat(dy[:, :, None] / (k * k), k * k, axis=2)",
                              "dcols = jnp.repeat(dy[:, :, None], k * k, axis=2)"))),
    # Embeddings and recurrent layers, on the character-level cases: the dense layer above and the loss stay right.
    Bug("embedding-repeated-ids-overwritten", "the embedding's gradient written per id instead of added up: a "
        "repeated id keeps one position's gradient", "layers.dense", "np.add.at(dW, ids, dy)", "dW[ids] = dy",
        "gradients",
        {"char-rnn-many-to-many-adam-minibatch": Expect("layer 1 weight gradient", RNN_ABOVE),
         "char-lstm-adam-minibatch": Expect("layer 1 weight gradient", RNN_ABOVE)},
        spellings=_torch_jax(("dW.index_put_((ids,), dy, accumulate=True)", "dW.index_put_((ids,), dy)"),
                             ("dW = jnp.zeros_like(W).at[ids].add(dy)", "dW = jnp.zeros_like(W).at[ids].set(dy)"))),
    Bug("rnn-hidden-gradient-not-carried", "the RNN's hidden-state gradient not carried to the previous step "
        "(each step's loss gradient stays at its own step)", "layers.recurrent", "dh = np.dot(dz, W_h.T)",
        "dh = np.zeros_like(dh)", "gradients",
        {"char-rnn-many-to-many-adam-minibatch": Expect("layer 2 hidden weight gradient", DENSE_3),
         "char-rnn-many-to-many-momentum": Expect("layer 2 hidden weight gradient", DENSE_3)},
        spellings=_torch_jax(("dh = dz @ W_h.T", "dh = torch.zeros_like(dh)"),
                             ("return (dot(dz, W_h.T), dW_x", "return (jnp.zeros_like(dh), dW_x"))),
    Bug("rnn-bptt-one-step-short", "backprop through time stopped one step early: the first step's gradients "
        "left out", "layers.recurrent", "for t in reversed(range(x.shape[1])):",
        "for t in reversed(range(1, x.shape[1])):",
        "gradients",
        {"char-rnn-many-to-many-adam-minibatch": Expect("layer 2 input weight gradient", DENSE_3),
         "char-rnn-many-to-many-momentum": Expect("layer 2 input weight gradient", DENSE_3)},
        spellings={"jax": ("dh, dW_x, dW_h, db, dx = lax.fori_loop(0, steps, step",
                           "dh, dW_x, dW_h, db, dx = lax.fori_loop(0, steps - 1, step")}),
    Bug("rnn-output-gradient-only-at-last-step", "each step's own output gradient dropped but the last step's (a "
        "many-to-one backward reused for a many-to-many layer)", "layers.recurrent",
        "dh = dh + dy[:, t]  # the step's own",
        "dh = dh + (dy[:, t] if t == x.shape[1] - 1 else 0.0)  # the step's own",
        "gradients",
        {"char-rnn-many-to-many-adam-minibatch": Expect("layer 2 input weight gradient", DENSE_3),
         "char-rnn-many-to-many-momentum": Expect("layer 2 input weight gradient", DENSE_3)},
        spellings={"jax": ("dh = dh + dy[:, t]  # the step's own",
                           "dh = dh + jnp.where(t == steps - 1, dy[:, t], 0.0)  # the step's own")}),
    Bug("lstm-forget-derivative-from-input", "the LSTM forget gate's derivative taken from its pre-activation z, "
        "z (1 - z), instead of from the gate s(z), f (1 - f)", "layers.recurrent", "dc * cs[t] * f * (1.0 - f)",
        "dc * cs[t] * z[:, f.shape[1]:2 * f.shape[1]] * (1.0 - z[:, f.shape[1]:2 * f.shape[1]])", "gradients",
        {"char-lstm-adam-minibatch": Expect("layer 2 hidden weight gradient", DENSE_3),
         "char-lstm-many-to-many-sgd": Expect("layer 2 hidden weight gradient", DENSE_3)}),
    Bug("loss-gradient-sign", "dL/da = y - a: the seeds' error term used as the gradient", "losses",
        "return a - y", "return y - a", "gradients",
        {"seed1-xor": Expect("layer 2 weight gradient", LOSS_ONLY),
         "relu-identity-half-sse": Expect("layer 2 weight gradient", LOSS_ONLY)}),
    Bug("mse-not-divided", "mean squared error's gradient not divided by N K (mean/sum confusion)", "losses",
        "return 2 * (a - y) / a.size", "return 2 * (a - y)", "gradients",
        {"tanh-identity-mse-minibatch": Expect("layer 2 weight gradient", LOSS_ONLY),
         "deep-tanh-sigmoid-mse": Expect("layer 4 weight gradient", LOSS_ONLY)},
        spellings=_torch_jax(("return 2 * (a - y) / a.numel()", "return 2 * (a - y)"))),
    Bug("bce-derivative", "the unfused binary cross-entropy's dL/da missing its 1 / (1 - a) factor", "losses",
        "return (a - y) / (a * (1 - a)) / a.size", "return (a - y) / a / a.size", "pieces",
        {"": Expect("bce_backward (dL/da)")},
        spellings=_torch_jax(("return (a - y) / (a * (1 - a)) / a.numel()", "return (a - y) / a / a.numel()"))),
    Bug("bce-not-averaged", "fused bce's dL/dz not divided by N K (mean/sum confusion)", "losses",
        "return (a - y) / a.size", "return (a - y)", "gradients",
        {"sigmoid-bce": Expect("layer 2 weight gradient", LOSS_ONLY),
         "relu-sigmoid-bce-minibatch": Expect("layer 2 weight gradient", LOSS_ONLY)},
        spellings=_torch_jax(("return (a - y) / a.numel()", "return (a - y)"))),
    Bug("cross-entropy-not-averaged", "softmax cross-entropy's gradient not divided by the batch size", "losses",
        "return (a - y) / positions(a)\n", "return (a - y)\n", "gradients",
        {"relu-softmax-ce-minibatch": Expect("layer 3 weight gradient", LOSS_ONLY),
         "square-tanh-softmax-ce-minibatch": Expect("layer 3 weight gradient", LOSS_ONLY)}),
    Bug("hinge-true-class-gradient", "the hinge loss's gradient not counted for the true class, only for the others",
        "losses", "return (active - y * total(active, axis=-1, keepdims=True)) / positions(a)",
        "return active / positions(a)",
        "gradients", {"leaky-elu-softplus-gelu-hinge-minibatch": Expect("layer 6 weight gradient", LOSS_ONLY),
                      "gelu-leaky-hinge-minibatch": Expect("layer 3 weight gradient", LOSS_ONLY)},
        spellings=_torch_jax(("return (active - y * active.sum(dim=-1, keepdim=True)) / positions(a)",
                              "return active / positions(a)"),
                             ("return (active - y * active.sum(axis=-1, keepdims=True)) / positions(a)",
                              "return active / positions(a)"))),
    Bug("float64-accumulation", "a float32 loss accumulated in float64 and returned as such", "losses",
        "return 0.5 * np.vdot(r, r)", "return 0.5 * np.vdot(r.astype(np.float64), r.astype(np.float64))",
        "gradients",
        {"seed1-xor": Expect("loss: dtype float64", grads(1, 2, loss=False)),
         "relu-identity-half-sse": Expect("loss: dtype float64", grads(1, 2, loss=False))}, dtype="float32",
        spellings=_torch_jax(("return 0.5 * torch.sum((a - y) ** 2)", "return 0.5 * torch.sum((a - y).double() ** 2)"),
                             ("return 0.5 * jnp.sum((a - y) ** 2)",
                              "return 0.5 * jnp.sum((a - y).astype(jnp.float64) ** 2)"))),
    # The layers (dense, and the activation layers around the activations above) and the walk over them.
    Bug("missing-transpose", "dx = dz W instead of dz W^T (silent where W is square)", "layers.dense",
        "dx = dot(dz, W.T)", "dx = dot(dz, W)", "gradients",
        {"deep-tanh-sigmoid-mse": Expect("layer 3 weight gradient", grads(4)),
         "square-tanh-softmax-ce-minibatch": Expect("layer 2 weight gradient", grads(3))},
        spellings=_torch_jax(("dx = dz @ W.T", "dx = dz @ W"), ("dx = dot(dz, W.T)", "dx = dot(dz, W)"))),
    Bug("bias-gradient-not-summed", "the bias gradient of the first sample only, not summed over the batch",
        "layers.dense", "total(dz, axis=0))", "dz[0])", "gradients",
        {"seed1-xor": Expect("layer 2 bias gradient", grads(1, 2, biases=False)),
         "tanh-identity-mse-minibatch": Expect("layer 2 bias gradient", grads(1, 2, biases=False))},
        spellings=_torch_jax(("dz.sum(dim=0))", "dz[0])"), ("dz.sum(axis=0))", "dz[0])"))),
    Bug("bias-gradient-averaged", "the bias gradient averaged over the batch where the loss sums", "layers.dense",
        "total(dz, axis=0))", "dz.mean(axis=0))", "gradients",
        {"seed1-xor": Expect("layer 2 bias gradient", grads(1, 2, biases=False)),
         "tanh-identity-mse-minibatch": Expect("layer 2 bias gradient", grads(1, 2, biases=False))},
        spellings=_torch_jax(("dz.sum(dim=0))", "dz.mean(dim=0))"), ("dz.sum(axis=0))", "dz.mean(axis=0))"))),
    Bug("pre-activation-as-input", "dW from the layer's pre-activation z where its input a is meant (cache misread)",
        "layers.dense", "x, _ = cache", "_, x = cache", "gradients",
        # Every dense layer's dW reads its own z; dx and so every dz, and the bias gradients, stay right.
        {"seed1-xor": Expect("layer 2 weight gradient", grads(1, 2, weights=False)),
         "relu-identity-half-sse": Expect("layer 2 weight gradient", grads(1, 2, weights=False))}),
    Bug("activation-of-wrong-layer", "each layer's backward handed the cache of the layer above (an off-by-one)",
        "mlp", "zip(reversed(config.model[:-1]), reversed(caches[:-1]))",
        "zip(reversed(config.model[:-1]), reversed(caches[1:]))", "gradients",
        # Every layer below the output reads a wrong cache; the output's dz, and so its bias gradient, stays right.
        {"deep-tanh-sigmoid-mse": Expect("layer 4 weight gradient", ("loss", "layer 4 bias gradient")),
         "seed1-xor": Expect("layer 2 weight gradient", ("loss", "layer 2 bias gradient"))}),
    Bug("missing-hidden-derivative", "the hidden layer's f'(z) left out of the chain rule", "layers.shapes",
        "return activations.BACKWARD[layer.kind](da, z, a), ()", "return da, ()", "gradients",
        {"seed1-xor": Expect("layer 1 weight gradient", grads(2)),
         "deep-tanh-sigmoid-mse": Expect("layer 3 weight gradient", grads(4))}),
    Bug("missing-output-derivative", "the output layer's f'(z) left out of the chain rule", "mlp",
        "dz = activation_backward(config.output, dL, z, a)", "dz = dL", "gradients",
        {"seed1-xor": Expect("layer 2 weight gradient", LOSS_ONLY),
         "deep-tanh-sigmoid-mse": Expect("layer 4 weight gradient", LOSS_ONLY)}),
    Bug("forgotten-bias", "z = x W without + b in the forward pass", "layers.dense",
        "z = dot(x, W) + b", "z = dot(x, W)", "forward",
        {"seed2-xor": Expect("network output"), "deep-tanh-sigmoid-mse": Expect("network output")},  # nonzero biases
        spellings=_torch_jax(("z = x @ W + b", "z = x @ W"), ("z = dot(x, W) + b", "z = dot(x, W)"))),
    Bug("hidden-activation-at-output", "the hidden activation applied to the output layer too", "mlp",
        "for layer in config.model:", "for layer in config.model[:-1] + config.model[1:2]:", "forward",
        {"deep-tanh-sigmoid-mse": Expect("network output"), "tanh-identity-mse-minibatch": Expect("network output")}),
    Bug("learning-rate-twice", "the learning rate applied twice in the update", "mlp",
        "(W - lr * dW, b - lr * db)", "(W - lr * lr * dW, b - lr * db)", "trajectory",
        {"seed1-xor": Expect("loss [epoch, step]"), "tanh-identity-mse-minibatch": Expect("loss [epoch, step]")},
        spellings=_torch_jax(("p.sub_(g, alpha=lr)", "p.sub_(g, alpha=lr * lr)"))),
    Bug("gradient-ascent", "the update adds the gradient instead of subtracting it", "mlp",
        "(W - lr * dW, b - lr * db)", "(W + lr * dW, b + lr * db)", "trajectory",
        {"seed1-xor": Expect("loss [epoch, step]"), "relu-identity-half-sse": Expect("loss [epoch, step]")},
        spellings=_torch_jax(("p.sub_(g, alpha=lr)", "p.add_(g, alpha=lr)"))),
    # The training loop, precision and the oracle.
    Bug("partial-batch-dropped", "the last, partial minibatch of each epoch dropped (on purpose in torch's "
        "DataLoader(drop_last=True); the suite's runs keep it: a batch size that divides N compares such a trainer)",
        "mlp",
        "steps = batches(len(X), config.batch_size)",
        "steps = batches(len(X), config.batch_size)[:len(X) // (config.batch_size or len(X))]", "trajectory",
        {"tanh-identity-mse-minibatch": Expect("loss [epoch, step]"),
         "square-tanh-softmax-ce-minibatch": Expect("loss [epoch, step]"),
         "relu-sigmoid-bce-minibatch": Expect("loss [epoch, step]")},
        spellings={"jax": ("steps = batches(X.shape[0], config.batch_size)",
                           "steps = batches(X.shape[0], config.batch_size)[:X.shape[0] // (config.batch_size or "
                           "X.shape[0])]")}),
    Bug("own-shuffle", "the backend shuffles with a generator of its own instead of the shared orders", "mlp",
        "idx = orders[epoch, start:stop]", "idx = np.random.default_rng(epoch).permutation(len(X))[start:stop]",
        "trajectory",
        {"tanh-identity-mse-minibatch": Expect("loss [epoch, step]"),
         "relu-softmax-ce-minibatch": Expect("loss [epoch, step]")},
        spellings=_torch_jax(("idx = orders[epoch, start:stop]",
                              "idx = torch.randperm(len(X), generator=torch.Generator().manual_seed(epoch))"
                              "[start:stop]"),
                             ("idx = lax.dynamic_slice_in_dim(order, start, size)",
                              "idx = lax.dynamic_slice_in_dim(jax.random.permutation(jax.random.PRNGKey(0), "
                              "X.shape[0]), start, size)"))),
    Bug("loss-after-update", "the loss recorded after the update instead of before it", "mlp",
        "return (loss, *update(params, grads, opt_state, t, config))",
        "return (lambda p, s: (gradients(p, X, y, config)[0], p, s))(*update(params, grads, opt_state, t, config))",
        "trajectory",
        # The parameters follow the right path: only the recorded losses are off (by one step).
        {"seed1-xor": Expect("loss [epoch, step]", ("layer 1 weight", "layer 1 bias", "layer 2 weight",
                                                    "layer 2 bias")),
         "tanh-identity-mse-minibatch": Expect("loss [epoch, step]", ("layer 1 weight", "layer 1 bias",
                                                                      "layer 2 weight", "layer 2 bias"))},
        spellings={"jax": ("return (loss, *update(params, grads, opt_state, t, config, k))",
                           "return (lambda p, s: (gradients(p, X, y, config)[0], p, s))(*update(params, grads, "
                           "opt_state, t, config, k))")}),
    Bug("float32-computed-in-float64", "a float32 run computed in float64 inside and cast back to float32",
        "layers.dense", "z = dot(x, W) + b", "z = (dot(x.astype(np.float64), W) + b).astype(x.dtype)", "float32",
        {"": Expect("float32 rounding probe: network output")},
        spellings=_torch_jax(("z = x @ W + b", "z = (x.double() @ W.double() + b).to(x.dtype)"),
                             ("z = dot(x, W) + b",
                              'z = (dot(x.astype("float64"), W.astype("float64")) + b).astype(x.dtype)'))),
    Bug("softmax-without-max", "softmax computed without subtracting the row's max: exp overflows", "activations",
        "e = np.exp(z - z.max(axis=-1, keepdims=True))", "e = np.exp(z)", "saturation",
        {"": Expect("softmax_cross_entropy at saturated logits")},
        spellings=_torch_jax(("e = torch.exp(z - z.amax(dim=-1, keepdim=True))", "e = torch.exp(z)"),
                             ("e = jnp.exp(z - z.max(axis=-1, keepdims=True))", "e = jnp.exp(z)"))),
    Bug("oracle-one-sided", "the finite-difference oracle made one-sided with a step of 1e-2", "gradcheck",
        "g[i] = (f(_bumped(x, i, eps)) - f(_bumped(x, i, -eps))) / (2 * eps)",
        "g[i] = (f(_bumped(x, i, 1e-2)) - f(x)) / 1e-2", "oracle",
        {"": Expect("central differences vs the closed form")}, only=("numpy",)),
    # Optimizers with state: each on its optimizer's minibatch and XOR cases (crosscheck/suite/cases.py).
    Bug("adam-bias-correction-off-by-one", "adam's bias correction with the step count off by one", "optimizers",
        "return 1 - b1**t, 1 - b2**t", "return 1 - b1**(t + 1), 1 - b2**(t + 1)", "trajectory", _on("adam")),
    Bug("adam-eps-inside-root", "adam's epsilon inside the square root, where the convention puts it outside",
        "optimizers", "m_hat / (np.sqrt(v_hat) + c.eps)",
        "m_hat / np.sqrt(v_hat + c.eps)", "trajectory", _on("adam"),
        spellings=_torch_jax(("m_hat / (torch.sqrt(v_hat) + c.eps)",
                              "m_hat / torch.sqrt(v_hat + c.eps)"),
                             ("m_hat / (jnp.sqrt(v_hat) + c.eps)",
                              "m_hat / jnp.sqrt(v_hat + c.eps)"))),
    Bug("momentum-buffer-not-carried", "momentum's buffer not carried from one step to the next", "optimizers",
        'return p - c.lr * b, {"momentum buffer": b}', "return p - c.lr * b, s", "trajectory", _on("momentum")),
    Bug("optimizer-state-reset-at-checkpoint", "the optimizer's state reset after each checkpoint", "mlp",
        "saved[epoch + 1] = TrainState(params, opt_state, step, buffers)",
        "saved[epoch + 1], opt_state = TrainState(params, opt_state, step, buffers), optimizers.init(params, config)",
        "trajectory", _on("adam"),
        spellings={"torch": ("saved[epoch + 1] = TrainState(kept, opt_state, step, buffers)",
                             "saved[epoch + 1], opt_state = TrainState(kept, opt_state, step, buffers), "
                             "optimizers.init(params, config)"),
                   "jax": ("saved[done] = state",
                           "saved[done], state = state, TrainState(state.params, optimizers.init(state.params, "
                           "config), state.step, state.buffers)")}),
    Bug("weight-decay-on-excluded-biases", "weight decay applied to the biases where the configuration excludes them",
        "optimizers", "wd = config.weight_decay if config.decays(l, which) else 0.0",
        "wd = config.weight_decay", "trajectory", _on("adam", "momentum")),
    Bug("adamw-decay-coupled", "adamw's decay coupled into the gradient (that is adam with L2) instead of decoupled",
        "optimizers", "return adam_update(p * (1 - c.lr * wd), g, s, k, c, 0.0)",
        "return adam_update(p, g + wd * p, s, k, c, 0.0)", "trajectory", _on("adamw")),
    Bug("rmsprop-rho-on-the-wrong-term", "rmsprop's running average with (1 - alpha) on the old average", "optimizers",
        'v = c.alpha * s["square average"] + (1 - c.alpha) * g * g',
        'v = (1 - c.alpha) * s["square average"] + c.alpha * g * g', "trajectory",
        _on("rmsprop")),
    Bug("nesterov-lookahead-missing", "nesterov without its look-ahead: plain momentum", "optimizers",
        'return p - c.lr * (g + c.momentum * b), {"momentum buffer": b}',
        'return p - c.lr * b, {"momentum buffer": b}', "trajectory", _on("nesterov")),
    # Mixed precision (issue 13): compute in bfloat16 or float16 on float32 master weights, the loss scaled.
    Bug("no-master-weights", "the weights kept in the compute dtype (no float32 master copy): an update below half an "
        "ulp of a bfloat16 weight vanishes", "mlp",
        "        return loss, *update(params, grads, opt_state, t, config)\n",
        "        return loss, *(lambda p, s: (cast_all(cast_all(p, low.dtype), config.dtype), s))(*update(params, "
        "grads, opt_state, t, config))\n", "trajectory",
        {"relu-softmax-ce-minibatch-mixed-bfloat16": Expect("layer 1 weight"),
         "tanh-identity-mse-minibatch-mixed-bfloat16": Expect("layer 1 weight")}, dtype="float32", probe="mixed",
        spellings={"jax": ("        return loss, *update(params, grads, opt_state, t, config, k)\n",
                           "        return loss, *(lambda p, s: (cast_all(cast_all(p, low.dtype), config.dtype), s))("
                           "*update(params, grads, opt_state, t, config, k))\n")}),
    Bug("master-not-updated", "the update applied to the compute-dtype copy and the float32 master weights left as "
        "they were (the optimizer's state moves, the weights never do)", "mlp",
        "        return loss, *update(params, grads, opt_state, t, config)\n",
        "        return loss, params, update(copy, grads, opt_state, t, config)[1]\n", "trajectory",
        {"relu-softmax-ce-minibatch-mixed-bfloat16": Expect("layer 1 weight"),
         "cnn-maxpool-avgpool-adam-minibatch-mixed-bfloat16": Expect("layer 1 weight")}, dtype="float32",
        probe="mixed",
        spellings={"jax": ("        return loss, *update(params, grads, opt_state, t, config, k)\n",
                           "        return loss, params, update(copy, grads, opt_state, t, config, k)[1]\n")}),
    Bug("loss-scale-not-undone", "the gradients not divided by the loss scale before the update", "mlp",
        "grads = [tuple(cast(g, config.dtype) / S if S is not None else cast(g, config.dtype) for g in leaves)",
        "grads = [tuple(cast(g, config.dtype) for g in leaves)", "trajectory",
        {"relu-identity-half-sse-mixed-float16-scaled-dynamic": Expect("loss [epoch, step]"),
         "relu-softmax-ce-minibatch-mixed-float16-scaled-1024.0": Expect("loss [epoch, step]")}, dtype="float32",
        probe="mixed"),
    Bug("no-loss-scaling", "float16 computed without loss scaling (the scale taken as 1): gradients below float16's "
        "smallest subnormal flush to 0, and the scaled gradient that should overflow and be skipped is applied",
        "mlp", 'S = config.loss_scale if not config.dynamic else opt_state["loss scale"][0][0]', "S = 1.0",
        "trajectory",
        {"relu-identity-half-sse-mixed-float16-scaled-dynamic": Expect("dynamic loss scaler's loss scale"),
         "char-lstm-adam-minibatch-mixed-float16-scaled-dynamic": Expect("dynamic loss scaler's loss scale")},
        dtype="float32", probe="mixed"),
    Bug("overflow-not-skipped", "a step whose scaled gradients overflowed applied instead of skipped", "mlp",
        "if all(np.isfinite(g).all() for leaves in grads for g in leaves):", "if True:", "trajectory",
        {"relu-identity-half-sse-mixed-float16-scaled-dynamic": Expect("loss [epoch, step]"),
         "char-lstm-adam-minibatch-mixed-float16-scaled-dynamic": Expect("loss [epoch, step]")}, dtype="float32",
        spellings={"torch": ("if all(bool(torch.isfinite(g).all()) for leaves in grads for g in leaves):", "if True:"),
                   "jax": ("finite = jnp.all(jnp.stack([jnp.isfinite(g).all() for leaves in grads for g in leaves]))",
                           "finite = jnp.bool_(True)")}),
    Bug("loss-sum-in-low-precision", "softmax cross-entropy's loss reduced over positions in the 16-bit dtype, not "
        "in float32", "losses",
        "    return -total(y * (s - np.log(total(np.exp(s), axis=-1, keepdims=True)))) / positions(z)",
        "    return -(y * (s - np.log(total(np.exp(s), axis=-1, keepdims=True)))).sum() / positions(z)", "rule",
        {"": Expect("(softmax_cross_entropy, 4096 x 2, in bfloat16): loss", ("low-precision rule probe (half_sse, "
                    "4096 x 2, in bfloat16): loss",))},
        spellings=_torch_jax(
            ("    return -torch.sum(y * (s - torch.log(torch.sum(torch.exp(s), dim=-1, keepdim=True)))) / positions(z)",
             "    return -sum((y * (s - torch.log(torch.sum(torch.exp(s), dim=-1, keepdim=True)))).flatten()) / "
             "positions(z)"),
            ("    return -jnp.sum(y * (s - jnp.log(jnp.sum(jnp.exp(s), axis=-1, keepdims=True)))) / positions(z)",
             "    return -jnp.add.reduce((y * (s - jnp.log(jnp.sum(jnp.exp(s), axis=-1, keepdims=True)))).ravel(), "
             "dtype=z.dtype) / positions(z)"))),
    Bug("float32-sum-in-float64", "a float32 bias gradient summed in float64 and cast back: more accurate than the "
        "float32 rule, which every framework follows, and so passes every bound", "layers.dense",
        "    return dx, (np.dot(x.T, dz), total(dz, axis=0))",
        "    return dx, (np.dot(x.T, dz), total(dz.astype(np.float64), axis=0).astype(dz.dtype))", "rule",
        {"": Expect("float32 rule probe (32 sums of 4096 terms): layer 1 bias gradient: all 32 sums came out "
                    "correctly rounded")},
        spellings=_torch_jax(("    return dx, (x.T @ dz, dz.sum(dim=0))",
                              "    return dx, (x.T @ dz, dz.double().sum(dim=0).to(dz.dtype))"),
                             ("    return dx, (dot(x.T, dz), dz.sum(axis=0))",
                              "    return dx, (dot(x.T, dz), dz.astype(jnp.float64).sum(axis=0).astype(dz.dtype))"))),
    Bug("softmax-sum-in-low-precision", "a softmax normalized by a sum accumulated in the 16-bit dtype", "activations",
        "    return e / total(e, axis=-1, keepdims=True)", "    return e / e.sum(axis=-1, keepdims=True)", "rule",
        {"": Expect("(softmax_cross_entropy, 1 x 4096, in bfloat16): layer 1 bias gradient",
                    ("low-precision rule probe (softmax_cross_entropy, 1 x 4096, in bfloat16): loss",))},
        spellings=_torch_jax(("    return e / e.sum(dim=-1, keepdim=True)",
                              "    return e / sum(e.unbind(-1)).unsqueeze(-1)"),
                             ("    return e / e.sum(axis=-1, keepdims=True)",
                              "    return e / jnp.add.reduce(e, axis=-1, keepdims=True, dtype=e.dtype)"))),
    # Data and tensor parallelism (parallel.py in each: the reference's ranks as threads, torch's processes, JAX's
    # devices). Planted in the reference, the simulation is what carries it (reference.SHARDS): its own check against
    # the reference's run on one device catches it (tests/test_bug_catalogue.py), and the diagnosis plants it there.
    Bug("gradient-all-reduce-missing", "the gradients not all-reduced across the data-parallel ranks: each steps on "
        "its own shard's share (rank 0's is what it reports)", "parallel",
        "grads = [tuple(all_reduce(g) for g in leaves) for leaves in grads]",
        "grads = [tuple(g for g in leaves) for leaves in grads]", "gradients",
        {DATA: Expect("layer 1 weight gradient", LOSS_ONLY), DATA_XOR: Expect("layer 1 weight gradient", LOSS_ONLY)}),
    Bug("gradients-summed-over-the-world", "each rank's gradient summed over the world where the mean loss averages "
        "them (weight 1 where 1/N is due: the step N times too long)", "parallel",
        "share = 1.0 if summed(config) else 1.0 / config.world", "share = 1.0",
        "gradients",
        {DATA: Expect("loss"), DATA_GPT: Expect("loss")}),
    Bug("gradients-averaged-over-the-world", "each rank's gradient averaged over the world where the summed loss "
        "(half_sse) adds them up (weight 1/N where 1 is due)", "parallel",
        "share = 1.0 if summed(config) else 1.0 / config.world",
        "share = 1.0 / config.world",
        "gradients", {DATA_XOR: Expect("loss"), DATA_4: Expect("loss")}),
    # Dropout's masks show only in training (the gradient checks run without them, as evaluation does).
    Bug("dropout-masks-of-the-first-shard", "every data-parallel rank applying the first shard's rows of the dropout "
        "masks (each drawing from the same seed) where each reads its own rows of the batch's masks", "parallel",
        "masks = None if noise is None else [m[start:start + size] for m in noise]",
        "masks = None if noise is None else [m[:size] for m in noise]", "trajectory",
        {DATA_DROPOUT: Expect("loss [epoch, step]"), DATA_DROPOUT_4: Expect("loss [epoch, step]")},
        spellings={"jax": ("[lax.dynamic_slice_in_dim(m, start, size) for m in noise]", "[m[:size] for m in noise]")}),
    Bug("row-parallel-all-reduce-missing", "a row-parallel layer's partial products not all-reduced in the forward: "
        "each rank goes on with its own block's share of z", "parallel", "x = all_reduce(z) + b", "x = z + b",
        "gradients", {TENSOR: Expect("loss"), TENSOR_4: Expect("loss")}),
    Bug("column-parallel-input-gradient-not-all-reduced", "a column-parallel layer's input gradient not all-reduced "
        "in the backward: the layers below it get one rank's block's part of dx", "parallel", "dy = all_reduce(dy)",
        "dy = dy", "gradients", {TENSOR: Expect("layer 1 weight gradient", BELOW_THE_THIRD),
                                 TENSOR_4: Expect("layer 1 weight gradient", BELOW_THE_THIRD)}),
    # The biases start at 0 (N x 0 is 0): the first step cannot show it, the run does from the second.
    Bug("bias-added-on-every-shard", "a row-parallel layer's bias added by every rank before the all-reduce (N times) "
        "where it is added once, after it", "parallel", "x = all_reduce(z) + b", "x = all_reduce(z + b)", "trajectory",
        {TENSOR: Expect("loss [epoch, step]"), TENSOR_4: Expect("loss [epoch, step]")}),
    Bug("attention-heads-output-not-all-reduced", "an attention layer split by its heads whose output projection's "
        "partial products are not all-reduced in the forward: each rank goes on with its own heads' share", "parallel",
        "x = all_reduce(y)", "x = y", "gradients", {TENSOR_GPT: Expect("loss"), TENSOR_LLAMA_4: Expect("loss")}),
    # The fused projection's columns are [q | k | v], each split by heads: joined as plain columns, rank 0's q, k and v
    # come first (Megatron's checkpoints interleave them per rank for this reason).
    Bug("fused-qkv-gradient-gathered-as-plain-columns", "the gradient of attention's fused q, k, v projection gathered "
        "from the ranks as one block of columns (rank 0's q, k, v, then rank 1's) where q's, k's and v's blocks are "
        "each gathered", "parallel",
        "np.concatenate([all_gather(part, axis=-1) for part in qkv_parts(g, share(layer, role, world))], axis=-1)",
        "all_gather(g, axis=-1)", "gradients",
        {TENSOR_GPT: Expect("layer 4 qkv weight gradient", QKV_ONLY[TENSOR_GPT]),
         TENSOR_LLAMA_4: Expect("layer 3 qkv weight gradient", QKV_ONLY[TENSOR_LLAMA_4])},
        spellings=_torch_jax(("torch.cat([all_gather(part, axis=-1) for part in qkv_parts(g, share(layer, role, "
                              "world))], dim=-1)", "all_gather(g, axis=-1)"),
                             ("jnp.concatenate([all_gather(part, axis=-1) for part in qkv_parts(g, share(layer, role, "
                              "world))], axis=-1)", "all_gather(g, axis=-1)"))),
    Bug("shards-overlapping", "data-parallel shards that overlap (rank r reads from r x size / 2): some rows counted "
        "twice, others never", "parallel", "start = rank * size", "start = rank * size // 2", "gradients",
        {DATA: Expect("loss"), DATA_XOR: Expect("loss")}),
)
BY_ID = {bug.id: bug for bug in BUGS}
