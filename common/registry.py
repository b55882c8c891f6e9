"""Every name the suite knows, registered once, with what the rest of the suite needs to know about it.

Validation (common/config.py, common/validate.py), the data (reference/data.py), the CLI's
choices (crosscheck/report/cli.py), the hypothesis strategies (tests/test_properties.py) and the
dispatch tables of every backend (common/walk.py builds them) read these; nothing else lists a name by
hand. Framework-free: importing it needs nothing but the standard library.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Activation:
    name: str
    hidden: bool  # may be used in a hidden layer (softmax is an output only, with cross-entropy)
    outputs: str  # the range of a = f(z): "real", "unit" (0, 1), "signed" (-1, 1) or "simplex" (rows sum to 1)
    # a row of inputs for its per-op check (crosscheck/verdict/ops.py): kinks, saturation
    edges: tuple = (30.0, -30.0, 0.0)
    kink: float | None = None  # where f' jumps: central differences straddle it, so the checks step around it there


@dataclass(frozen=True)
class Loss:
    name: str
    output: str | None  # the output activation it needs (and is fused with, see fused); None: any hidden-kind one
    targets: str  # the domain of y: "real", "unit" [0, 1], "labels" {0, 1} or "one_hot" (rows of the identity)
    fused: bool  # its forward reads the logits z and its backward returns dL/dz (the activation folded in)
    tie: bool = False  # dL/da jumps where a margin is exactly 0: its per-op check puts an exact tie in one row
    averaged: bool = True  # averaged over the samples (False: summed, as the seeds' half_sse), for the diagnosis


@dataclass(frozen=True)
class LayerKind:
    """A layer kind: its forward and backward live in its family's file of each backend's layers/, by the same names."""

    name: str
    params: tuple  # the names of its parameter leaves, in the order its params tuple holds them; () if it has none
    doc: str
    shapes: Callable = lambda *shape: ()  # (*layer.shape) -> the shape of each parameter leaf, in params' order
    # a layer.shape for its per-op check (crosscheck/verdict/ops.py); () for a kind that keeps its input's
    example: tuple = ()
    decayed: tuple = ()  # the leaves weight decay applies to (the others only with decay_biases)
    width: str = "keeps"  # "changes": its shape is (fan_in, fan_out); "features": (features,), its input's width;
    # "block": (N,), the number of layers after it that make its residual block;
    # "rate": (p,), a probability in [0, 1), and it keeps the width; "reshapes": reshape gives its output shape;
    # "keeps": it has no shape of its own
    fills: tuple = ()  # the value each leaf starts at, for a kind the initialisation scheme does not draw (dense's)
    edges: tuple = ()  # the first row of its per-op check's input, where it is hardest: e.g. zero variance
    edge_feature: bool = False  # the edges go down the first feature (column) instead: batch norm's zero variance
    buffers: tuple = ()  # the names of its state that training updates without gradients (batch norm's running
    # statistics): kept in TrainState.buffers, compared along the trajectory like parameters
    min_batch: int = 1  # the fewest samples a training batch may hold (batch norm: 2, for a variance over n - 1)
    noise: bool = False  # its training forward reads a mask the reference draws for each step (dropout's)
    # For a kind that reshapes its input ("reshapes" width): (layer.shape, its input's per-sample shape) -> its
    # output's, raising ValueError naming what does not fit; and the per-sample input shape of its per-op check.
    reshape: Callable | None = None
    example_input: tuple = ()
    fans: Callable | None = None  # (*layer.shape) -> (fan_in, fan_out), for a kind the initialisation scheme draws
    # its edges sit where central differences cannot resolve the derivative (max-pooling's ties, where it jumps; RMS
    # norm's zero sample, where it curves on the scale of sqrt(eps)): they step around them, the other oracles do not
    kink: bool = False
    ids: bool = False  # it reads integer ids (embedding): the first layer only; X holds int64 ids, not values
    # its per-op check's parameters are drawn N(0, example_scale^2): attention's at 1 / sqrt(width), as initialised,
    # so that its scores are O(1) (unit weights make them near 100, where a row's softmax is one-hot and exp's rounding
    # is amplified a hundredfold, past the fixed float64 table's "handful of roundings")
    example_scale: float = 1.0
    ties: bool = False  # its matrix is the embedding's (an output layer tied to the first layer), not its own
    per_position: bool = False  # a "features" kind that also reads a sequence, (T, features), acting at each position
    # alike (layer and RMS norm; batch norm's statistics are over the batch, one sample one row)


def _positive(name, values, what):
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise ValueError(f"{'an' if name[0] in 'aeiou' else 'a'} {name} layer needs {what}, positive integers, "
                         f"got {values}")


def _windowed(name, x, k, stride, pad=0):
    """(C, H_out, W_out) of a k x k window sliding by stride over a (C, H, W) input padded by pad on each side."""
    if len(x) != 3:
        raise ValueError(f"a {name} layer needs (channels, height, width) inputs, got per-sample shape {x}")
    if min(x[1:]) + 2 * pad < k:
        raise ValueError(f"a {name} layer's {k}x{k} window does not fit its {x[1]}x{x[2]} input (padding {pad})")
    return tuple((n + 2 * pad - k) // stride + 1 for n in x[1:])


def conv2d_shape(shape, x):
    """(c_in, c_out, k, stride, pad) on (C, H, W) -> (c_out, (H + 2 pad - k) // stride + 1, ...)"""
    if len(shape) != 5:
        raise ValueError(f"a conv2d layer needs (in_channels, out_channels, kernel, stride, padding), got {shape}")
    _positive("conv2d", shape[:4], "(in_channels, out_channels, kernel, stride)")
    c_in, c_out, k, stride, pad = shape
    if not isinstance(pad, int) or isinstance(pad, bool) or not 0 <= pad < k:
        raise ValueError(f"a conv2d layer's padding must be an integer in [0, kernel), got {pad}")
    if len(x) == 3 and x[0] != c_in:
        raise ValueError(f"conv2d layer takes {c_in} input channels, but {x[0]} reach it")
    return (c_out, *_windowed("conv2d", x, k, stride, pad))


def pool2d_shape(name):
    def shape_of(shape, x):
        """(k, stride) on (C, H, W) -> (C, (H - k) // stride + 1, ...)"""
        if len(shape) != 2:
            raise ValueError(f"a {name} layer needs (kernel, stride), got {shape}")
        _positive(name, shape, "(kernel, stride)")
        out = _windowed(name, x, *shape)
        return (x[0], *out)
    return shape_of


def flatten_shape(shape, x):
    """(C, H, W) -> (C H W,), row-major as torch.flatten"""
    if shape:
        raise ValueError(f"a flatten layer takes no shape, got {shape}")
    return (math.prod(x),)


def embedding_shape(shape, x):
    """(vocabulary, dim) on (T,) ids -> (T, dim)"""
    if len(shape) != 2:
        raise ValueError(f"an embedding layer needs (vocabulary, dim), got {shape}")
    _positive("embedding", shape, "(vocabulary, dim)")
    if len(x) != 1:
        raise ValueError(f"an embedding layer reads a sequence of ids per sample, input_shape (T,), got {x}")
    return (x[0], shape[1])


def recurrent_shape(name):
    def shape_of(shape, x):
        """(n_in, hidden) on (T, n_in) -> (T, hidden): every step's hidden state (many-to-many; `last` after it gives
        many-to-one)"""
        if len(shape) != 2:
            raise ValueError(f"a {name} layer needs (inputs, hidden), got {shape}")
        _positive(name, shape, "(inputs, hidden)")
        if len(x) != 2 or x[1] != shape[0]:
            raise ValueError(f"a {name} layer takes sequences of {shape[0]} inputs per step, (T, {shape[0]}), "
                             f"but {x} reach it")
        return (x[0], shape[1])
    return shape_of


def swiglu_shape(shape, x):
    """(width, hidden) on (..., width) -> the same: SwiGLU maps each position's width back to itself"""
    if len(shape) != 2:
        raise ValueError(f"a swiglu layer needs (width, hidden), got {shape}")
    _positive("swiglu", shape, "(width, hidden)")
    if not x or x[-1] != shape[0]:
        raise ValueError(f"a swiglu layer reads {shape[0]} features per position, but {x} reach it")
    return x


def attention_shape(shape, x, name="attention"):
    """(width, heads[, kv_heads]) on (T, width) -> the same: each position attends to itself and those before it"""
    if len(shape) not in (2, 3):
        raise ValueError(f"an {name} layer needs (width, heads) or (width, heads, kv_heads), got {shape}")
    _positive(name, shape, "(width, heads[, kv_heads])")
    width, heads, kv = (*shape, shape[1])[:3]
    if width % heads:
        raise ValueError(f"an {name} layer's {heads} heads do not divide its width {width}")
    if heads % kv:
        raise ValueError(f"an {name} layer's {kv} key-value heads do not divide its {heads} heads")
    if name == "rope_attention" and (width // heads) % 2:
        raise ValueError(f"a rope_attention layer rotates each head's features in pairs: its heads' width "
                         f"{width // heads} must be even")
    if len(x) != 2 or x[1] != width:
        raise ValueError(f"an {name} layer reads sequences of {width} features per position, (T, {width}), "
                         f"but {x} reach it")
    return x


def attention_params(width, heads, kv=None):
    """The fused projection's width: the queries' (width), then the keys' and the values' (kv_heads heads each)"""
    return width + 2 * (kv or heads) * (width // heads)


def unembed_shape(shape, x):
    """(vocabulary, dim) on (T, dim) -> (T, vocabulary): each position's scores over the vocabulary"""
    if len(shape) != 2:
        raise ValueError(f"an unembed layer needs (vocabulary, dim), its embedding's, got {shape}")
    _positive("unembed", shape, "(vocabulary, dim)")
    if len(x) != 2 or x[1] != shape[1]:
        raise ValueError(f"an unembed layer reads sequences of {shape[1]} features per position, (T, {shape[1]}), "
                         f"but {x} reach it")
    return (x[0], shape[0])


def vocabulary_shape(shape, x):
    """(V,) on (..., Vp), V <= Vp -> (..., V): the first V scores"""
    if len(shape) != 1:
        raise ValueError(f"a vocabulary layer needs (V,), the vocabulary's size past which the scores are padding, "
                         f"got {shape}")
    _positive("vocabulary", shape, "(V,)")
    if not x or shape[0] > x[-1]:
        raise ValueError(f"a vocabulary layer keeps the first {shape[0]} scores, but {x} reach it")
    return (*x[:-1], shape[0])


def positions_shape(shape, x):
    """(context, width) on (T, width), T <= context -> the same"""
    if len(shape) != 2:
        raise ValueError(f"a positions layer needs (context, width), got {shape}")
    _positive("positions", shape, "(context, width)")
    if len(x) != 2 or x[1] != shape[1] or x[0] > shape[0]:
        raise ValueError(f"a positions layer adds {shape[1]} features to each of at most {shape[0]} positions, "
                         f"(T <= {shape[0]}, {shape[1]}), but {x} reach it")
    return x


def last_shape(shape, x):
    """(T, n) -> (n,): the last step of a sequence"""
    if shape:
        raise ValueError(f"a last layer takes no shape, got {shape}")
    if len(x) != 2:
        raise ValueError(f"a last layer takes a sequence, per-sample shape (T, n), got {x}")
    return x[1:]


@dataclass(frozen=True)
class Init:
    name: str
    doc: str


# Causal self-attention: one fused projection to queries, keys and values, the heads' scaled scores masked so that no
# position sees a later one, softmax, the heads merged and projected back. No biases (nanoGPT's bias=False, Llama's):
# GPT-2's key bias adds q . b_k to every score of a row, which softmax ignores, so its gradient is 0 up to round-off,
# and Adam turns that round-off into steps of about lr that no two backends share. A third number groups the heads
# (grouped-query attention: each key and value head serves heads / kv_heads query heads). rope_attention (LAYERS) is
# this kind with rotary positions.
ATTENTION = LayerKind(
    "attention", params=("qkv weight", "output weight"),
    doc="y = merge_h(softmax(q_h k_h^T / sqrt(d) + causal mask) v_h) W_o, [q, k, v] = x W_qkv split into heads of "
        "width d = width / heads, no biases (as torch's scaled_dot_product_attention with is_causal between two "
        "bias-free projections); shape (width, heads) or (width, heads, kv_heads)",
    shapes=lambda width, heads, kv=None: ((width, attention_params(width, heads, kv)), (width, width)),
    example=(8, 4, 2), decayed=("qkv weight", "output weight"), width="reshapes", reshape=attention_shape,
    example_input=(5, 8), example_scale=8 ** -0.5,
    fans=lambda width, heads, kv=None: (width, attention_params(width, heads, kv)))


ACTIVATIONS = {a.name: a for a in (
    Activation("sigmoid", hidden=True, outputs="unit"),
    Activation("tanh", hidden=True, outputs="signed"),
    Activation("relu", hidden=True, outputs="real", edges=(0.0, 0.0, -0.0), kink=0.0),
    Activation("identity", hidden=True, outputs="real", edges=(0.0, 1.0, -1.0)),
    Activation("softmax", hidden=False, outputs="simplex", edges=(800.0, -800.0, 0.0)),
    Activation("leaky_relu", hidden=True, outputs="real", edges=(0.0, -0.0, -3.0), kink=0.0),
    # alpha 1: f' is continuous at 0, but f'' jumps there, which puts central differences off by O(step)
    Activation("elu", hidden=True, outputs="real", edges=(0.0, -30.0, 30.0), kink=0.0),
    Activation("softplus", hidden=True, outputs="real"),
    Activation("gelu", hidden=True, outputs="real"),  # exact: z Phi(z)
    Activation("gelu_tanh", hidden=True, outputs="real"),  # the tanh approximation
    Activation("silu", hidden=True, outputs="real"),  # z sigmoid(z): swish, SwiGLU's gate
)}

LOSSES = {loss.name: loss for loss in (
    Loss("half_sse", output=None, targets="real", fused=False, averaged=False),
    Loss("mse", output=None, targets="real", fused=False),
    Loss("bce", output="sigmoid", targets="labels", fused=True),
    Loss("softmax_cross_entropy", output="softmax", targets="one_hot", fused=True),
    Loss("hinge", output="identity", targets="one_hot", fused=False, tie=True),  # CS231n's multiclass SVM loss
)}

# Dense, and each activation as a layer of its own (its kind is the activation's name).
LAYERS = {k.name: k for k in (
    LayerKind("dense", params=("weight", "bias"), doc="z = x W + b",
              shapes=lambda fan_in, fan_out: ((fan_in, fan_out), (fan_out,)), example=(3, 4), decayed=("weight",),
              width="changes", fans=lambda fan_in, fan_out: (fan_in, fan_out)),
    LayerKind("linear", params=("weight",), doc="z = x W: dense without a bias (Llama's projections); shape (fan_in, "
              "fan_out)", shapes=lambda fan_in, fan_out: ((fan_in, fan_out),), example=(3, 4), decayed=("weight",),
              width="changes", fans=lambda fan_in, fan_out: (fan_in, fan_out)),
    LayerKind("layernorm", params=("scale", "shift"), doc="y = g (x - mean) / sqrt(var + eps) + b over each sample's "
              "features (biased variance, eps 1e-5, as torch.nn.functional.layer_norm)",
              shapes=lambda features: ((features,), (features,)), example=(4,), width="features", fills=(1.0, 0.0),
              edges=(1.5, 1.5, 1.5, 1.5), per_position=True),  # a sample whose features are all equal: zero variance
    LayerKind("rmsnorm", params=("scale",), doc="y = g x / sqrt(mean(x^2) + eps) over each sample's features (the "
              "last axis), no centring and no shift (eps 1e-6, Llama's; torch.nn.functional.rms_norm's default eps is "
              "the dtype's machine epsilon, so the oracle is given 1e-6)",
              shapes=lambda features: ((features,),), example=(4,), width="features", fills=(1.0,),
              edges=(0.0, 0.0, 0.0, 0.0), kink=True, per_position=True),  # a sample of zeros: the mean of squares is 0,
    # eps alone keeps it finite, and the slope is 1 / sqrt(eps) (central differences at step 1e-6 stray 2e-4 there: see
    # kink)
    LayerKind("batchnorm", params=("scale", "shift"), doc="y = g (x - mean) / sqrt(var + eps) + b over the batch, "
              "per feature (training: the batch's biased variance; evaluation: the running statistics, which "
              "training updates with momentum 0.1, the variance unbiased, as torch.nn.functional.batch_norm)",
              shapes=lambda features: ((features,), (features,)), example=(4,), width="features", fills=(1.0, 0.0),
              edges=(1.5, 1.5, 1.5, 1.5, 1.5), edge_feature=True, buffers=("running mean", "running variance"),
              min_batch=2),
    LayerKind("dropout", params=(), doc="y = x m / (1 - p), m a keep mask drawn by the reference for each training "
              "step (inverted dropout); y = x in evaluation", width="rate", example=(0.25,), noise=True),
    LayerKind("conv2d", params=("weight", "bias"), doc="z = W * x + b: each output channel correlates a kernel with "
              "the zero-padded input at a stride, summed over input channels (NCHW, weight (c_out, c_in, k, k), as "
              "torch.nn.functional.conv2d); shape (c_in, c_out, kernel, stride, padding)",
              shapes=lambda c_in, c_out, k, stride, pad: ((c_out, c_in, k, k), (c_out,)), example=(2, 3, 3, 2, 1),
              decayed=("weight",), width="reshapes", reshape=conv2d_shape, example_input=(2, 6, 7),
              fans=lambda c_in, c_out, k, stride, pad: (c_in * k * k, c_out)),
    # Windows overlap (stride 1 < kernel 2) in the examples, so a gradient must add up where two windows share an input.
    LayerKind("maxpool2d", params=(), doc="y = the max of each k x k window at a stride, per channel (no padding); the "
              "gradient goes to the window's first maximum, in row-major order; shape (kernel, stride)", example=(2, 1),
              width="reshapes", reshape=pool2d_shape("maxpool2d"), example_input=(2, 5, 6),
              edges=(1.5, 1.5, 1.5, 1.5, 1.5, 1.5), kink=True),  # a sample all one value: every window ties
    LayerKind("avgpool2d", params=(), doc="y = the mean of each k x k window at a stride, per channel (no padding); "
              "shape (kernel, stride)", example=(2, 1), width="reshapes", reshape=pool2d_shape("avgpool2d"),
              example_input=(2, 5, 6)),
    LayerKind("flatten", params=(), doc="y = x reshaped to (N, C H W), row-major", width="reshapes",
              reshape=flatten_shape, example_input=(2, 3, 4)),
    LayerKind("embedding", params=("weight",), doc="y[n, t] = W[x[n, t]]: integer ids to vectors, the first layer "
              "(X holds int64 ids); its backward adds up the rows of repeated ids; shape (vocabulary, dim)",
              shapes=lambda vocab, dim: ((vocab, dim),), example=(5, 3), decayed=("weight",), width="reshapes",
              reshape=embedding_shape, example_input=(6,), fans=lambda vocab, dim: (vocab, dim), ids=True),
    # The recurrent kinds read (T, n_in) sequences and give every step's hidden state, (T, hidden), as torch.nn.RNN and
    # CS231n's rnn_forward do: a dense layer after one scores every step (many-to-many), `last` keeps the last step
    # (many-to-one). The initial state is a parameter of its own, so its gradient (through every step) is checked.
    LayerKind("rnn", params=("input weight", "hidden weight", "bias", "initial state"),
              doc="h_t = tanh(x_t W_x + h_(t-1) W_h + b) over the sequence from h_0, giving every h_t; trained "
                  "through time; shape (inputs, hidden)",
              shapes=lambda n_in, hidden: ((n_in, hidden), (hidden, hidden), (hidden,), (hidden,)), example=(3, 4),
              decayed=("input weight", "hidden weight"), width="reshapes", reshape=recurrent_shape("rnn"),
              example_input=(5, 3), fans=lambda n_in, hidden: (n_in, hidden)),
    LayerKind("lstm", params=("input weight", "hidden weight", "bias", "initial state", "initial cell"),
              doc="gates [i, f, g, o] = x_t W_x + h_(t-1) W_h + b (torch's order), c_t = s(f) c_(t-1) + s(i) tanh(g), "
                  "h_t = s(o) tanh(c_t), s the sigmoid; gives every h_t; shape (inputs, hidden)",
              shapes=lambda n_in, hidden: ((n_in, 4 * hidden), (hidden, 4 * hidden), (4 * hidden,), (hidden,),
                                           (hidden,)), example=(3, 2),
              decayed=("input weight", "hidden weight"), width="reshapes", reshape=recurrent_shape("lstm"),
              example_input=(5, 3), fans=lambda n_in, hidden: (n_in, 4 * hidden)),
    LayerKind("swiglu", params=("gate weight", "up weight", "down weight"),
              doc="y = (silu(x W_g) * x W_u) W_d: Llama's MLP, the SiLU of the gate times the up projection, then the "
                  "down projection back to the width, no biases; shape (width, hidden)",
              shapes=lambda width, hidden: ((width, hidden), (width, hidden), (hidden, width)), example=(3, 4),
              decayed=("gate weight", "up weight", "down weight"), width="reshapes", reshape=swiglu_shape,
              example_input=(3,), fans=lambda width, hidden: (width, hidden)),
    ATTENTION,
    # The output layer tied to the token embedding (GPT-2's lm_head): scores y = x E^T with E the embedding's own
    # matrix, so that matrix has two uses and its gradient is the sum of both (the walk adds the second). Its per-op
    # check gives it a matrix of its own.
    LayerKind("unembed", params=("weight",), doc="y = x E^T, E the model's embedding matrix (vocabulary, dim), shared: "
              "the output projection tied to the token embedding, its gradient added to the embedding's; shape "
              "(vocabulary, dim), the embedding's", shapes=lambda vocab, dim: ((vocab, dim),), example=(5, 3),
              width="reshapes", reshape=unembed_shape, example_input=(4, 3), ties=True),
    # A vocabulary padded past its size (llm.c pads GPT-2's 50257 tokens to 50304): the embedding and the tied output
    # have Vp rows, and the scores of the rows past the V real tokens are dropped before the softmax.
    LayerKind("vocabulary", params=(), doc="y = x[..., :V]: the scores of a padded vocabulary's V real tokens, the "
              "padding's dropped (no probability; the padded rows of the tied matrix get no gradient through them); "
              "shape (V,)", width="reshapes", reshape=vocabulary_shape, example=(3,), example_input=(4, 5)),
    # Llama's attention: the same, with q and k rotated by their position (RoPE) after the projection, in place of
    # learned positions; a head's width must be even (its features rotate in pairs).
    replace(ATTENTION, name="rope_attention",
            doc="attention (as attention) with rotary position embedding: each head's q and k at position t turned by "
                "t theta_i, features i and i + d/2 a pair (rotate-half, GPT-NeoX's and Hugging Face Llama's), "
                "theta_i = 10000^(-2i/d); shape (width, heads) or (width, heads, kv_heads)",
            example=(8, 2, 1), reshape=lambda shape, x: attention_shape(shape, x, "rope_attention")),
    # GPT-2's attention as llm.c and Hugging Face write it: the same, with a bias on the fused projection (c_attn) and
    # on the output one (c_proj). The key bias's gradient is 0 up to round-off (see ATTENTION): under Adam that leaf
    # is ill-conditioned, and its bounds follow the reference's own runs under rounding.
    replace(ATTENTION, name="biased_attention", params=("qkv weight", "qkv bias", "output weight", "output bias"),
            doc="attention (as attention) with biases on both projections, GPT-2's: [q, k, v] = x W_qkv + b_qkv, y = "
                "merge_h(...) W_o + b_o; shape (width, heads) or (width, heads, kv_heads)",
            shapes=lambda width, heads, kv=None: ((width, attention_params(width, heads, kv)),
                                                  (attention_params(width, heads, kv),), (width, width), (width,)),
            example=(8, 2), reshape=lambda shape, x: attention_shape(shape, x, "biased_attention")),
    LayerKind("positions", params=("weight",), doc="y[n, t] = x[n, t] + P[t]: a learned vector per position added "
              "(GPT-2's position embedding); shape (context, width), the sequence at most context long",
              shapes=lambda context, width: ((context, width),), example=(6, 3), decayed=("weight",),
              width="reshapes", reshape=positions_shape, example_input=(5, 3),
              fans=lambda context, width: (context, width)),
    # A residual block, y = x + f(x), f the N layers after it (a model stays a sequence; blocks nest): the walk keeps
    # the block's input and adds it to the output of the block's last layer, and in the backward adds the gradient
    # arriving there to the one that comes back through f (common/config.py Layer.closes).
    LayerKind("residual", params=(), doc="y = x + f(x), f the next N layers (the block; blocks nest, and the block's "
              "output has its input's shape); its backward adds the gradient that skips f to the one through f; "
              "shape (N,)", width="block"),
    LayerKind("last", params=(), doc="y = x[:, -1]: a sequence's last step (after a recurrent layer: many-to-one)",
              width="reshapes", reshape=last_shape, example_input=(5, 3)),
    *(LayerKind(name, params=(), doc=f"a = {name}(z), elementwise" if a.outputs != "simplex" else
                f"a = {name}(z), row by row") for name, a in ACTIVATIONS.items()),
)}

INITS = {i.name: i for i in (
    Init("standard_normal", "seed 1: W ~ N(0, 1), b = 0"),
    Init("uniform_pm1", "seed 2: W, b ~ U[-1, 1)"),
    Init("glorot_uniform", "W ~ U[-r, r), r = sqrt(6 / (fan_in + fan_out)), b = 0"),
    Init("he_normal", "W ~ N(0, 2 / fan_in), b = 0"),
)}

@dataclass(frozen=True)
class Optimizer:
    """An optimizer: the default of every hyperparameter it reads beyond lr and weight_decay (torch.optim's, but
    momentum's 0.9), its state (one array per parameter leaf per name), and whether its weight decay is decoupled
    from the gradient (AdamW) or coupled (L2). A configuration gives an optimizer only the hyperparameters it reads,
    each its own default unless given: no optimizer inherits another's."""

    name: str
    defaults: dict
    state: tuple
    decoupled_decay: bool = False

    @property
    def hyper(self) -> tuple:
        """The hyperparameters it reads, lr first."""
        return ("lr", *self.defaults, *(("weight_decay",) if self.decoupled_decay else ()))


HYPERPARAMETERS = ("momentum", "betas", "alpha", "eps")  # the Config fields an optimizer's defaults may name


OPTIMIZERS = {o.name: o for o in (
    Optimizer("sgd", defaults={}, state=()),
    Optimizer("momentum", defaults={"momentum": 0.9}, state=("momentum buffer",)),
    Optimizer("nesterov", defaults={"momentum": 0.9}, state=("momentum buffer",)),
    Optimizer("rmsprop", defaults={"alpha": 0.99, "eps": 1e-8}, state=("square average",)),
    Optimizer("adagrad", defaults={"eps": 1e-10}, state=("sum of squares",)),
    Optimizer("adam", defaults={"betas": (0.9, 0.999), "eps": 1e-8}, state=("first moment", "second moment")),
    Optimizer("adamw", defaults={"betas": (0.9, 0.999), "eps": 1e-8}, state=("first moment", "second moment"),
              decoupled_decay=True),
)}

DTYPES = ("float64", "float32", "bfloat16", "float16")  # common/dtypes.py says what each means

# A dynamic loss scaler's state, carried with the optimizer's (one scalar each): the scale, the steps since it last
# changed without an overflow (torch's growth tracker), and the updates made (a skipped step makes none: the
# optimizer's own count, as torch.optim keeps it, for Adam's bias corrections).
SCALER = ("loss scale", "steps without overflow", "updates made")
SCALE_START, SCALE_GROWTH, SCALE_BACKOFF = 2.0 ** 16, 2.0, 0.5  # torch.amp.GradScaler's defaults


def hidden_activations():
    return tuple(name for name, a in ACTIVATIONS.items() if a.hidden)


def output_activations(loss):
    """The output activations loss may follow."""
    wanted = LOSSES[loss].output
    return (wanted,) if wanted is not None else hidden_activations()


def fused_losses():
    return tuple(name for name, loss in LOSSES.items() if loss.fused)
