"""Classic manual-backprop mistakes, each a one-line mutation of a backend's source, spelled per backend.

tests/test_bug_catalogue.py plants each one in each backend in turn (test-side: the
files are never edited) and requires the suite to fail with a message naming the
quantity in `names`.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bug:
    id: str
    what: str
    module: str  # activations, losses or mlp
    old: str  # the correct line, as the reference spells it
    new: str  # the mistake
    case: str  # the crosscheck.cases id on which the mistake shows
    check: str  # forward, gradients, trajectory, kink, or pieces (the unfused loss pieces, checks.check_loss_pieces)
    names: str  # what the failure message must name
    dtype: str = "float64"
    spellings: dict = field(default_factory=dict)  # backend -> (old, new) where it spells the line otherwise

    def spelled(self, backend):
        return self.spellings.get(backend, (self.old, self.new))


def _torch_jax(torch_pair, jax_pair=None):
    return {"torch": torch_pair, **({"jax": jax_pair} if jax_pair else {})}


BUGS = (
    Bug("sigmoid-derivative-from-z", "sigmoid'(z) computed from z where the output a is meant", "activations",
        "return da * a * (1 - a)", "return da * z * (1 - z)", "seed1-xor", "gradients", "layer 1 weight gradient"),
    Bug("tanh-derivative", "tanh'(z) written as 1 - a instead of 1 - a^2", "activations",
        "return da * (1 - a * a)", "return da * (1 - a)", "tanh-identity-mse-minibatch", "gradients",
        "layer 1 weight gradient"),
    Bug("relu-kink", "relu'(0) taken as 1 (z >= 0) against the documented 0", "activations",
        "return da * (z > 0)", "return da * (z >= 0)", "", "kink", "layer 1 weight gradient at the kink"),
    Bug("relu-derivative-is-relu", "relu'(z) written as relu(z) itself", "activations",
        "return da * (z > 0)", "return da * a", "relu-identity-half-sse", "gradients", "layer 1 weight gradient"),
    Bug("loss-gradient-sign", "dL/da = y - a: the seeds' error term used as the gradient", "losses",
        "return a - y", "return y - a", "seed1-xor", "gradients", "layer 2 weight gradient"),
    Bug("mse-not-divided", "mean squared error's gradient not divided by N K (mean/sum confusion)", "losses",
        "return 2 * (a - y) / a.size", "return 2 * (a - y)", "tanh-identity-mse-minibatch", "gradients",
        "layer 2 weight gradient", spellings=_torch_jax(("return 2 * (a - y) / a.numel()", "return 2 * (a - y)"))),
    Bug("bce-derivative", "binary cross-entropy's gradient missing its 1 / (1 - a) factor", "losses",
        "return (a - y) / (a * (1 - a)) / a.size", "return (a - y) / a / a.size", "", "pieces",
        "bce_backward (dL/da)",
        spellings=_torch_jax(("return (a - y) / (a * (1 - a)) / a.numel()", "return (a - y) / a / a.numel()"))),
    Bug("bce-not-averaged", "fused bce's dL/dz not divided by N K (mean/sum confusion)", "losses",
        "return (a - y) / a.size", "return (a - y)", "sigmoid-bce", "gradients", "layer 2 weight gradient",
        spellings=_torch_jax(("return (a - y) / a.numel()", "return (a - y)"))),
    Bug("cross-entropy-not-averaged", "softmax cross-entropy's gradient not divided by the batch size", "losses",
        "return (a - y) / a.shape[0]\n", "return (a - y)\n", "relu-softmax-ce-minibatch", "gradients",
        "layer 3 weight gradient"),
    Bug("float64-accumulation", "a float32 loss accumulated in float64 and returned as such", "losses",
        "return 0.5 * np.vdot(r, r)", "return 0.5 * np.vdot(r.astype(np.float64), r.astype(np.float64))",
        "seed1-xor", "gradients", "loss: dtype float64", dtype="float32",
        spellings=_torch_jax(("return 0.5 * torch.sum((a - y) ** 2)", "return 0.5 * torch.sum((a - y).double() ** 2)"),
                             ("return 0.5 * jnp.sum((a - y) ** 2)",
                              "return 0.5 * jnp.sum((a - y).astype(jnp.float64) ** 2)"))),
    Bug("missing-transpose", "da = dz W instead of dz W^T (silent where W is square)", "mlp",
        "da = np.dot(dz, W.T)", "da = np.dot(dz, W)", "deep-tanh-sigmoid-mse", "gradients", "layer 3 weight gradient",
        spellings=_torch_jax(("da = dz @ W.T", "da = dz @ W"), ("da = dot(dz, W.T)", "da = dot(dz, W)"))),
    Bug("bias-gradient-not-summed", "the bias gradient of the first sample only, not summed over the batch", "mlp",
        "dz.sum(axis=0)))", "dz[0]))", "seed1-xor", "gradients", "layer 2 bias gradient",
        spellings=_torch_jax(("dz.sum(dim=0)))", "dz[0]))"))),
    Bug("bias-gradient-averaged", "the bias gradient averaged over the batch where the loss sums", "mlp",
        "dz.sum(axis=0)))", "dz.mean(axis=0)))", "seed1-xor", "gradients", "layer 2 bias gradient",
        spellings=_torch_jax(("dz.sum(dim=0)))", "dz.mean(dim=0)))"))),
    Bug("pre-activation-as-input", "dW from the previous layer's z where its output a is meant", "mlp",
        "a_prev = cache[l - 1][1] if l > 0 else X", "a_prev = cache[l - 1][0] if l > 0 else X", "seed1-xor",
        "gradients", "layer 2 weight gradient"),
    Bug("activation-of-wrong-layer", "dW from this layer's own output, an off-by-one in the cache", "mlp",
        "a_prev = cache[l - 1][1] if l > 0 else X", "a_prev = cache[l][1] if l > 0 else X",
        "deep-tanh-sigmoid-mse", "gradients", "layer 4 weight gradient"),
    Bug("missing-hidden-derivative", "the hidden layer's f'(z) left out of the chain rule", "mlp",
        "dz = activation_backward(config.hidden, da, z_prev, a_prev)", "dz = da", "seed1-xor", "gradients",
        "layer 1 weight gradient"),
    Bug("missing-output-derivative", "the output layer's f'(z) left out of the chain rule", "mlp",
        "dz = activation_backward(config.output, loss_backward(config.loss, a, y), z, a)",
        "dz = loss_backward(config.loss, a, y)", "seed1-xor", "gradients", "layer 2 weight gradient"),
    Bug("forgotten-bias", "z = a W without + b in the forward pass", "mlp",
        "z = np.dot(a, W) + b", "z = np.dot(a, W)", "seed2-xor", "forward", "network output",
        spellings=_torch_jax(("z = a @ W + b", "z = a @ W"), ("z = dot(a, W) + b", "z = dot(a, W)"))),
    Bug("hidden-activation-at-output", "the hidden activation applied to the output layer too", "mlp",
        "zip(params, config.activations)", "zip(params, [config.hidden] * len(params))",
        "deep-tanh-sigmoid-mse", "forward", "network output"),
    Bug("learning-rate-twice", "the learning rate applied twice in the update", "mlp",
        "(W - lr * dW, b - lr * db)", "(W - lr * lr * dW, b - lr * db)", "seed1-xor", "trajectory",
        "loss [epoch, step]", spellings=_torch_jax(("W.sub_(lr * dW)", "W.sub_(lr * lr * dW)"))),
    Bug("gradient-ascent", "the update adds the gradient instead of subtracting it", "mlp",
        "(W - lr * dW, b - lr * db)", "(W + lr * dW, b + lr * db)", "seed1-xor", "trajectory",
        "loss [epoch, step]", spellings=_torch_jax(("W.sub_(lr * dW)", "W.add_(lr * dW)"))),
)
