"""The one registry of configurations the suite checks, and the inputs each one trains on.

Every test is parametrized from CASES; every input (parameters, data, minibatch
orders) comes from the reference, drawn once from the case's seed.
"""

from dataclasses import dataclass, replace

import numpy as np

from crosscheck.common import dtypes, registry
from crosscheck.common.problem import Problem
from crosscheck.reference import SEED1_XOR, SEED2_XOR, Config, batch_orders, initial_params
from crosscheck.reference.data import load, synthetic, xor


@dataclass(frozen=True)
class Case:
    id: str
    config: Config  # in float64; inputs() casts to the dtype asked for
    samples: int | None = None  # None: the XOR truth table; else that many synthetic samples (of data: its first)
    data: str | None = None  # a data set or file (crosscheck.reference.data.load): 'digits', 'iris', FILE.npz/.csv/.txt
    slow: bool = False  # a full run too long for the default `pytest`
    short_epochs: int | None = None  # a shorter run checked by default when the full one is slow
    n_checkpoints: int = 4  # epochs at which parameters are compared, evenly spaced
    second: bool = False  # a kind's second case: its checks run with --run-slow (tox -e all, CI); the default run keeps
    # one case per kind, to stay near a minute on two cores

    def problem(self, dtype="float64", epochs=None):
        """The case's Problem in dtype (common/problem.py): lower-precision values are the float64 ones rounded once;
        its dropout masks drawn from the seed when first asked for."""
        config = self.config.replace(dtype="float64", compute=None, loss_scale=None,
                                     epochs=epochs or self.config.epochs)
        params = initial_params(config)
        if self.data is not None:
            X, y = load(self.data, config, self.samples)
        else:
            X, y = xor() if self.samples is None else synthetic(config, self.samples)
        orders = batch_orders(config, len(X))
        if dtype != "float64":
            config = config.replace(dtype=dtype, compute=self.config.compute, loss_scale=self.config.loss_scale)
            params = [tuple(p.astype(dtype) for p in leaves) for leaves in params]
            X, y = X if X.dtype.kind == "i" else X.astype(dtype), y.astype(dtype)  # ids stay ids
        return Problem(config, params, X, y, orders)

    def inputs(self, dtype="float64", epochs=None):
        """(config, params, X, y, orders): the problem's pieces, for a test that calls functions of arrays."""
        return self.problem(dtype, epochs).pieces()

    def checkpoints(self, epochs=None):
        """n_checkpoints evenly spaced epochs at which parameters are compared, the last one included."""
        epochs = epochs or self.config.epochs
        n = self.n_checkpoints
        return tuple(sorted({max(1, epochs * k // n) for k in range(1, n + 1)}))


def under(case, conventions):
    """case with conventions declared beside its own (common/conventions.py): (key, value) pairs or a mapping."""
    merged = {**dict(case.config.conventions), **dict(conventions)}
    return replace(case, config=case.config.replace(conventions=merged))


def declared_by(driver, case):
    """case as driver is checked on it: under the conventions driver declares (an adapter's source's, or its own).
    A plug-in that does not support the case says so first (Unsupported), before the reference runs anything."""
    if not getattr(driver, "conventions", ()):
        return case
    driver.check_support(case.config)
    return under(case, driver.conventions)


def upcast(config, params, X, y):
    """The float64 problem holding exactly the same values as a lower-precision one (a mixed-precision one: computed
    in float64 throughout, unscaled)."""
    return (config.replace(dtype="float64", compute=None, loss_scale=None),
            [tuple(p.astype(np.float64) for p in leaves) for leaves in params],
            X if X.dtype.kind == "i" else X.astype(np.float64), y.astype(np.float64))


def upcast_problem(problem):
    """upcast of a whole Problem: its float64 twin, the same orders, its masks drawn in float64 from the same seed."""
    config, params, X, y = upcast(problem.config, problem.params, problem.X, problem.y)
    return Problem(config, params, X, y, problem.orders)


CASES = (
    Case("seed1-xor", SEED1_XOR),
    Case("seed2-xor", SEED2_XOR, slow=True, short_epochs=20_000),
    Case("tanh-identity-mse-minibatch",
         Config(layers=(3, 5, 2), hidden="tanh", output="identity", loss="mse", init="glorot_uniform",
                lr=0.05, epochs=300, batch_size=8, seed=3), samples=30),
    Case("relu-softmax-ce-minibatch",
         Config(layers=(8, 16, 16, 3), hidden="relu", output="softmax", loss="softmax_cross_entropy",
                init="he_normal", lr=0.1, epochs=100, batch_size=16, seed=4), samples=64),
    Case("sigmoid-bce",
         Config(layers=(4, 6, 1), hidden="sigmoid", output="sigmoid", loss="bce", init="glorot_uniform",
                lr=0.5, epochs=400, seed=5), samples=40),
    Case("deep-tanh-sigmoid-mse",
         Config(layers=(6, 8, 8, 8, 8), hidden="tanh", output="sigmoid", loss="mse", init="uniform_pm1",
                lr=0.5, epochs=200, batch_size=10, seed=6), samples=50),
    # Square hidden-to-hidden and hidden-to-output layers (a missing transpose runs instead of crashing), and a
    # batch size that does not divide N (the last batch of each epoch is partial).
    Case("square-tanh-softmax-ce-minibatch",
         Config(layers=(5, 6, 6, 6), hidden="tanh", output="softmax", loss="softmax_cross_entropy",
                init="glorot_uniform", lr=0.2, epochs=60, batch_size=7, seed=8), samples=30),
    Case("relu-sigmoid-bce-minibatch",
         Config(layers=(4, 12, 1), hidden="relu", output="sigmoid", loss="bce", init="he_normal", lr=0.3,
                epochs=60, batch_size=9, seed=9), samples=40),
    # An explicit model the shorthand cannot say: each hidden layer with an activation of its own.
    Case("mixed-tanh-relu-identity-mse-minibatch",
         Config(model=(("dense", 4, 6), "tanh", ("dense", 6, 6), "relu", ("dense", 6, 2), "identity"), loss="mse",
                init="glorot_uniform", lr=0.05, epochs=100, batch_size=8, seed=12), samples=30),
    # The smooth and leaky activations people swap in for relu, one per hidden layer, under CS231n's multiclass
    # hinge (SVM) loss on the raw scores.
    Case("leaky-elu-softplus-gelu-hinge-minibatch",
         Config(model=(("dense", 4, 8), "leaky_relu", ("dense", 8, 8), "elu", ("dense", 8, 8), "softplus",
                       ("dense", 8, 8), "gelu", ("dense", 8, 8), "gelu_tanh", ("dense", 8, 3), "identity"),
                loss="hinge", init="he_normal", lr=0.02, epochs=60, batch_size=20, seed=13), samples=30),
    Case("gelu-leaky-hinge-minibatch",
         Config(model=(("dense", 5, 7), "gelu", ("dense", 7, 7), "leaky_relu", ("dense", 7, 4), "identity"),
                loss="hinge", init="glorot_uniform", lr=0.05, epochs=80, batch_size=24, seed=14), samples=36),
    # Layer norm after each hidden dense layer, trained with Adam and weight decay on the dense weights only (the
    # registry keeps norms' scales and shifts undecayed). Smooth activations: relu's kinks would blur the Taylor
    # remainder's order (tests/test_verdict.py).
    Case("layernorm-tanh-softplus-softmax-adam",
         Config(model=(("dense", 5, 8), ("layernorm", 8), "tanh", ("dense", 8, 8), ("layernorm", 8), "softplus",
                       ("dense", 8, 3), "softmax"), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01,
                epochs=60, batch_size=24, seed=15, optimizer="adam", weight_decay=0.01, decay_biases=False),
         samples=40),
    # Batch norm after each hidden dense layer: its running statistics are compared along the trajectory, and the
    # network in evaluation mode (reading them) at the end. Batches of 24, the last of 16: with batches of 12 (the
    # last of 4, a variance from 4 samples), rounding grew along the run until float64 runs parted by 2e-10 after
    # 150 epochs; lr 0.02 with momentum 0.9, as at 0.05 float32's rounding grew to 6x NumPy float32's own.
    # The new kinds' cases take two steps an epoch, a full batch and a partial one: each step is traced into JAX's
    # compiled epoch, and compiling is most of their cost.
    Case("batchnorm-tanh-softplus-momentum-minibatch",
         Config(model=(("dense", 6, 10), ("batchnorm", 10), "tanh", ("dense", 10, 10), ("batchnorm", 10), "softplus",
                       ("dense", 10, 3), "softmax"), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.02,
                epochs=60, batch_size=24, seed=17, optimizer="momentum"), samples=40),
    Case("batchnorm-gelu-mse",
         Config(model=(("dense", 4, 6), ("batchnorm", 6), "gelu_tanh", ("dense", 6, 2), "identity"), loss="mse",
                init="he_normal", lr=0.05, epochs=80, seed=18), samples=24),
    # Batch norm and dropout, trained with momentum (issue 11's MLP): the reference draws every step's dropout masks
    # from the seed and hands them to each backend; the last batch (of 16) uses its step's first rows.
    Case("batchnorm-dropout-momentum-minibatch",
         Config(model=(("dense", 6, 12), ("batchnorm", 12), "tanh", ("dropout", 0.2), ("dense", 12, 12),
                       ("batchnorm", 12), "softplus", ("dropout", 0.3), ("dense", 12, 3), "softmax"),
                loss="softmax_cross_entropy", init="glorot_uniform", lr=0.02, epochs=60, batch_size=24, seed=19,
                optimizer="momentum"), samples=40),
    # Layer norm and dropout together (each kind's second case).
    Case("layernorm-dropout-gelu-mse-minibatch",
         Config(model=(("dense", 4, 8), ("layernorm", 8), "gelu_tanh", ("dropout", 0.25), ("dense", 8, 2), "identity"),
                loss="mse", init="he_normal", lr=0.05, epochs=60, batch_size=20, seed=20), samples=30),
    # RMS norm, SiLU and the SwiGLU MLP, the transformer block's (Llama's) norm, activation and feed-forward layer,
    # trained with AdamW (decoupled decay, the biases and the norm's scale left out) in minibatches, the learning rate
    # warmed up over 20 updates, then down a cosine to 0 at the last (the 180th).
    Case("rmsnorm-silu-swiglu-adamw-minibatch",
         Config(model=(("dense", 5, 8), ("rmsnorm", 8), "silu", ("dense", 8, 8), ("rmsnorm", 8), ("swiglu", 8, 12),
                       ("dense", 8, 3), "softmax"), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01,
                epochs=60, batch_size=16, seed=23, optimizer="adamw", weight_decay=0.01, decay_biases=False,
                schedule="warmup_cosine", warmup_steps=20, decay_steps=180), samples=40),
    # The kinds' second case: full batch, plain descent. At lr 0.05 this run crosses the edge of stability near epoch
    # 55 (round-off grows about fourfold an epoch, on every backend alike: the vote finds no majority); 0.02 trains
    # smoothly.
    Case("rmsnorm-silu-swiglu-mse",
         Config(model=(("dense", 4, 6), ("rmsnorm", 6), "silu", ("swiglu", 6, 8), ("dense", 6, 2), "identity"),
                loss="mse", init="he_normal", lr=0.02, epochs=60, seed=28), samples=24, second=True),
    # Causal self-attention over learned positions (the GPT block's, issue 29) on the generated text: each of 16
    # characters predicts the next from itself and those before it. The positions' table is longer than the sequence
    # (20 > 16), so its rows past the sequence must get a zero gradient; AdamW in minibatches, each step's gradient
    # accumulated over 3 micro-batches (of 6, 6 and 4 samples; the last batch's of 3, 3 and 2). The scores are tied
    # to the embedding (unembed): its matrix has two uses, and its gradient is their sum.
    Case("attention-positions-adamw-minibatch",
         Config(model=(("embedding", 10, 8), ("positions", 20, 8), ("attention", 8, 2), ("unembed", 10, 8), "softmax"),
                input_shape=(16,), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01, epochs=40,
                batch_size=16, seed=29, optimizer="adamw", weight_decay=0.01, decay_biases=False, accumulate=3),
         samples=40),
    # Grouped-query attention (4 query heads sharing 2 key-value heads) with a tanh after it, full batch, momentum,
    # the gradients clipped to norm 0.15 (it starts at 0.23 and falls to 0.11: the early steps are clipped), each
    # accumulated over 4 micro-batches (8, 8, 8 and 6 samples).
    Case("attention-grouped-tanh-momentum",
         Config(model=(("embedding", 10, 8), ("positions", 12, 8), ("attention", 8, 4, 2), "tanh", ("dense", 8, 10),
                       "softmax"), input_shape=(12,), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.05,
                epochs=40, seed=30, optimizer="momentum", clip=0.15, accumulate=4), samples=30, second=True),
    # A GPT block (pre-norm): positions added to the characters' embeddings, then x + attention(layernorm(x)) and
    # x + mlp(layernorm(x)) (dense, GELU's tanh form, dense), a final layer norm and the scores of the next character
    # at every position; each norm acts at every position. AdamW in minibatches, decay off the biases and the norms.
    Case("gpt-block-adamw-minibatch",
         Config(model=(("embedding", 10, 8), ("positions", 16, 8), ("residual", 2), ("layernorm", 8),
                       ("attention", 8, 2), ("residual", 4), ("layernorm", 8), ("dense", 8, 16), "gelu_tanh",
                       ("dense", 16, 8), ("layernorm", 8), ("dense", 8, 10), "softmax"), input_shape=(16,),
                loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01, epochs=30, batch_size=16, seed=31,
                optimizer="adamw", weight_decay=0.01, decay_biases=False, clip=1.0, schedule="warmup_cosine",
                warmup_steps=10, decay_steps=90, end_lr=0.001), samples=40),
    # GPT-2's block as llm.c writes it: biases on attention's two projections (biased_attention), the output tied to the
    # embedding, the vocabulary of 10 padded to 16 rows; Adam, which the key bias's round-off gradient makes
    # ill-conditioned.
    Case("gpt2-block-biased-attention-adam",
         Config(model=(("embedding", 16, 8), ("positions", 12, 8), ("residual", 2), ("layernorm", 8),
                       ("biased_attention", 8, 2), ("residual", 4), ("layernorm", 8), ("dense", 8, 16), "gelu_tanh",
                       ("dense", 16, 8), ("layernorm", 8), ("unembed", 16, 8), ("vocabulary", 10), "softmax"),
                input_shape=(12,),
                loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01, epochs=20, batch_size=16, seed=33,
                optimizer="adam"), samples=32),
    # Llama's block: no learned positions but rotary ones inside attention (RoPE), pre-norm RMS norm,
    # x + rope_attention(rmsnorm(x)), x + swiglu(rmsnorm(x)), a final RMS norm, no biases anywhere: the scores here by
    # the embedding's own matrix (GPT-2's tie; a dense output layer's bias would hit a JAX finding in bfloat16,
    # tests/test_precision.py). AdamW warmed up and decayed along a cosine, in minibatches.
    Case("llama-tied-rope-adamw-minibatch",
         Config(model=(("embedding", 10, 8), ("residual", 2), ("rmsnorm", 8), ("rope_attention", 8, 2),
                       ("residual", 2), ("rmsnorm", 8), ("swiglu", 8, 16), ("rmsnorm", 8), ("unembed", 10, 8),
                       "softmax"), input_shape=(16,), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01,
                epochs=30, batch_size=16, seed=34, optimizer="adamw", weight_decay=0.01, decay_biases=False,
                schedule="warmup_cosine", warmup_steps=9, decay_steps=90), samples=40),
    # The same untied (a bias-free output projection, linear, as llama-mini's) with grouped-query heads, full batch,
    # plain descent: the second case of RoPE.
    Case("llama-grouped-rope-sgd",
         Config(model=(("embedding", 10, 8), ("residual", 2), ("rmsnorm", 8), ("rope_attention", 8, 4, 2),
                       ("residual", 2), ("rmsnorm", 8), ("swiglu", 8, 16), ("rmsnorm", 8), ("linear", 8, 10),
                       "softmax"), input_shape=(12,), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.1,
                epochs=40, seed=33), samples=30, second=True),
    # Data parallelism (issue 31, docs/parallel.md): each step's batch on 2 shards (torch: 2 gloo processes; JAX: 2
    # devices), against the reference on one device. A mean loss (each shard's gradient weighted 1/2) in minibatches
    # with momentum; the seeds' XOR with its summed loss (weighted 1) on 2 shards of 2 samples.
    Case("parallel-data-tanh-mse-momentum-minibatch",
         Config(model=(("dense", 3, 8), "tanh", ("dense", 8, 2), "identity"), loss="mse", init="glorot_uniform",
                lr=0.1, epochs=30, batch_size=8, seed=41, optimizer="momentum", parallel="data:2"), samples=24),
    Case("parallel-data-seed2-xor", SEED2_XOR.replace(epochs=600, parallel="data:2")),
    # Dropout on shards: the batch's masks (the reference draws them) shared, each shard reading its own rows of them.
    Case("parallel-data-dropout-gelu-mse-minibatch",
         Config(model=(("dense", 4, 8), "gelu_tanh", ("dropout", 0.25), ("dense", 8, 2), "identity"), loss="mse",
                init="glorot_uniform", lr=0.05, epochs=20, batch_size=8, seed=46, parallel="data:2"), samples=24),
    # The second of each: a GPT block (token-level cross-entropy, AdamW, clipping and the schedule applied to the
    # all-reduced gradients), and a summed loss on 4 shards of minibatches of 8 with Adam.
    Case("parallel-data-gpt-block-adamw",
         Config(model=(("embedding", 10, 8), ("positions", 8, 8), ("residual", 2), ("layernorm", 8),
                       ("attention", 8, 2), ("residual", 4), ("layernorm", 8), ("dense", 8, 16), "gelu_tanh",
                       ("dense", 16, 8), ("layernorm", 8), ("unembed", 10, 8), "softmax"), input_shape=(8,),
                loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01, epochs=8, batch_size=8, seed=42,
                optimizer="adamw", weight_decay=0.01, decay_biases=False, clip=1.0, schedule="warmup_cosine",
                warmup_steps=2, decay_steps=16, parallel="data:2"), samples=16, second=True),
    Case("parallel-data4-dropout-adam",
         Config(model=(("dense", 3, 8), "tanh", ("dropout", 0.3), ("dense", 8, 8), "relu", ("dropout", 0.2),
                       ("dense", 8, 2), "identity"), loss="mse", init="glorot_uniform", lr=0.01, epochs=12, seed=47,
                optimizer="adam", parallel="data:4"), samples=16, second=True),
    Case("parallel-data4-half-sse-adam-minibatch",
         Config(layers=(3, 6, 2), hidden="tanh", output="sigmoid", loss="half_sse", init="glorot_uniform", lr=0.01,
                epochs=16, batch_size=8, seed=43, optimizer="adam", parallel="data:4"), samples=16, second=True),
    # Tensor parallelism (Megatron's MLP): each pair of dense layers split over the ranks, the first by columns, the
    # second by rows, every rank on the whole batch; four dense layers, so that a column layer's input gradient (the
    # third's) is all-reduced on its way down. On 2 ranks with momentum in minibatches; on 4 with Adam and clipping.
    Case("parallel-tensor-tanh-relu-mse-momentum-minibatch",
         Config(model=(("dense", 4, 8), "tanh", ("dense", 8, 6), "relu", ("dense", 6, 8), "tanh", ("dense", 8, 2),
                       "identity"), loss="mse", init="glorot_uniform", lr=0.05, epochs=30, batch_size=8, seed=44,
                optimizer="momentum", parallel="tensor:2"), samples=24),
    Case("parallel-tensor4-softmax-adam",
         Config(model=(("dense", 3, 8), "tanh", ("dense", 8, 4), "sigmoid", ("dense", 4, 8), "tanh", ("dense", 8, 3),
                       "softmax"), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01, epochs=16, seed=45,
                optimizer="adam", clip=0.5, parallel="tensor:4"), samples=20, second=True),
    # Tensor parallelism through a transformer block: attention split by its heads (each rank its heads' columns of q,
    # k and v and its rows of the output projection, the partial outputs all-reduced), the MLP as Megatron's pair, the
    # norms, embeddings, positions and the tied scores whole on every rank. A GPT block on 2 ranks in minibatches
    # with AdamW and clipping; Llama's (rotary positions, grouped-query heads: 8 query heads sharing 4 key-value heads,
    # 2 and 1 on each rank) on 4.
    Case("parallel-tensor-gpt-block-heads",
         Config(model=(("embedding", 10, 8), ("positions", 8, 8), ("residual", 2), ("layernorm", 8),
                       ("attention", 8, 4), ("residual", 4), ("layernorm", 8), ("dense", 8, 16), "gelu_tanh",
                       ("dense", 16, 8), ("layernorm", 8), ("unembed", 10, 8), "softmax"), input_shape=(8,),
                loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01, epochs=8, batch_size=8, seed=48,
                optimizer="adamw", weight_decay=0.01, decay_biases=False, clip=1.0, parallel="tensor:2"), samples=16),
    Case("parallel-tensor4-llama-grouped-rope",
         Config(model=(("embedding", 10, 16), ("residual", 2), ("rmsnorm", 16), ("rope_attention", 16, 8, 4),
                       ("residual", 2), ("rmsnorm", 16), ("swiglu", 16, 16), ("rmsnorm", 16), ("linear", 16, 10),
                       "softmax"), input_shape=(8,), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.05,
                epochs=10, seed=49, optimizer="adam", parallel="tensor:4"), samples=12, second=True),
    # Residual blocks without attention, one inside another (a ResNet-style MLP): full batch, plain descent.
    Case("residual-nested-tanh-mse",
         Config(model=(("dense", 4, 6), ("residual", 5), ("dense", 6, 6), "tanh", ("residual", 2), ("dense", 6, 6),
                       "tanh", ("dense", 6, 2), "identity"), loss="mse", init="glorot_uniform", lr=0.05, epochs=60,
                seed=32), samples=24, second=True),
    # A small convolutional network on synthetic 10x10 images (issue 11's): the second convolution strides and pads,
    # where a backward that mishandles either sends its input gradient to the wrong pixels; trained with Adam.
    Case("cnn-maxpool-avgpool-adam-minibatch",
         Config(model=(("conv2d", 1, 4, 3, 1, 1), "relu", ("maxpool2d", 2, 2), ("conv2d", 4, 6, 3, 2, 1), "relu",
                       ("avgpool2d", 2, 1), "flatten", ("dense", 24, 3), "softmax"), input_shape=(1, 10, 10),
                loss="softmax_cross_entropy", init="he_normal", lr=0.01, epochs=60, batch_size=24, seed=21,
                optimizer="adam"), samples=40),
    # Overlapping max-pooling windows (stride 1 < kernel 3), a convolution padded by more than it strides, smooth
    # activations (no ties after relu's zeros); full batch, momentum, mean squared error on tanh outputs.
    Case("cnn-overlapping-maxpool-tanh-momentum",
         Config(model=(("conv2d", 2, 3, 2, 1, 0), "tanh", ("maxpool2d", 3, 1), ("conv2d", 3, 4, 3, 2, 2), "tanh",
                       ("avgpool2d", 2, 1), "flatten", ("dense", 16, 2), "tanh"), input_shape=(2, 7, 7),
                loss="mse", init="glorot_uniform", lr=0.1, epochs=60, seed=22, optimizer="momentum"), samples=24,
         second=True),
    # Character-level recurrent networks (issue 11's): an embedding of the generated text's 10 characters, a recurrent
    # layer over 16 to 20 steps, a dense layer and softmax cross-entropy predicting the next character
    # (crosscheck.reference.data.char_windows): many-to-one (`last`: the character after the sequence) or many-to-many
    # (the character after every step, the loss averaged over them). Sixteen steps and more, so that a gradient not
    # carried back through time shows. The RNN's cases are many-to-many (where its catalogue's mistakes in carrying
    # gradients back matter most); the LSTM's are one of each.
    Case("char-rnn-many-to-many-adam-minibatch",
         Config(model=(("embedding", 10, 8), ("rnn", 8, 16), ("dense", 16, 10), "softmax"), input_shape=(16,),
                loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01, epochs=40, batch_size=32, seed=23,
                optimizer="adam"), samples=48),
    # Full batch with momentum at lr 0.01: at 0.1 the run turns chaotic, rounding grown to 1e-3 between the backends
    # by epoch 21 (1e-9 at 0.03), as recurrent networks do at a high learning rate.
    Case("char-rnn-many-to-many-momentum",
         Config(model=(("embedding", 10, 6), ("rnn", 6, 10), ("dense", 10, 10), "softmax"), input_shape=(20,),
                loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01, epochs=40, seed=24,
                optimizer="momentum"), samples=30, second=True),
    Case("char-lstm-adam-minibatch",
         Config(model=(("embedding", 10, 8), ("lstm", 8, 12), "last", ("dense", 12, 10), "softmax"), input_shape=(16,),
                loss="softmax_cross_entropy", init="glorot_uniform", lr=0.01, epochs=40, batch_size=32, seed=25,
                optimizer="adam"), samples=48),
    Case("char-lstm-many-to-many-sgd",
         Config(model=(("embedding", 10, 6), ("lstm", 6, 8), ("dense", 8, 10), "softmax"), input_shape=(18,),
                loss="softmax_cross_entropy", init="glorot_uniform", lr=0.5, epochs=40, seed=26), samples=30,
         second=True),
    Case("relu-identity-half-sse",
         Config(layers=(4, 10, 1), hidden="relu", output="identity", loss="half_sse", init="he_normal",
                lr=0.002, epochs=300, seed=7), samples=25),
)


def _optimizer_cases():
    """Two cases per registered optimizer, for its own tests (tests/test_optimizers.py) and the bug catalogue:
    a minibatch problem whose last batch is partial, and the seeds' XOR, both with weight decay on the weights
    only (coupled, or decoupled for adamw). Their forward passes and gradients are those of the cases above."""
    for name in registry.OPTIMIZERS:
        yield Case(f"{name}-minibatch",
                   Config(layers=(3, 5, 2), hidden="tanh", output="identity", loss="mse", init="glorot_uniform",
                          lr=0.01, epochs=30, batch_size=8, seed=11, optimizer=name, weight_decay=0.01,
                          decay_biases=False), samples=20)
        yield Case(f"{name}-xor", SEED2_XOR.replace(lr=0.05, epochs=300, optimizer=name, weight_decay=0.001,
                                                    decay_biases=False))


OPTIMIZER_CASES = tuple(_optimizer_cases())
DTYPES = dtypes.WIDE  # every case is checked in each; the 16-bit floats on HALF_CASES (tests/test_precision.py)

# The cases checked in bfloat16 and float16: the seeds' XOR run (seed 1's; seed 2's is 180,000 epochs), the MLP cases
# and every layer kind's first cases (not the second ones). Only the XOR run is in the default `pytest`; the others
# run with --run-slow. Not the data-parallel cases: 16-bit shards are not built yet (mixed precision is refused there).
HALF_CASES = tuple(case for case in CASES
                   if case.id != "seed2-xor" and not case.second and case.config.parallel is None)


def mixed(case, compute, loss_scale=None):
    """The case in mixed precision: computed in compute, float32 master weights and state (common/config.py); each step
    on its batch whole (gradient accumulation is not supported in mixed precision yet)."""
    return replace(case, id=f"{case.id}-mixed-{compute}" + (f"-scaled-{loss_scale}" if loss_scale else ""),
                   config=case.config.replace(dtype="float32", compute=compute, loss_scale=loss_scale, accumulate=1))


# Every 16-bit case in mixed precision in bfloat16 without loss scaling (its range is float32's); in float16 with
# dynamic loss scaling (torch.amp's usual pairing), the seeds' XOR, the MLP case of small gradients (half_sse, lr
# 0.002) and the first case of each layer kind (the other cases add nothing new to it: the same dense layers,
# activations and layers, already run in mixed bfloat16); and one with a static scale. XOR's 10,000 epochs take
# seconds a step on torch in mixed precision (a cast per leaf and a check for overflow per step): by default its
# first 2,500.
def _mixed_cases():
    for compute, scale in (("bfloat16", None), ("float16", "dynamic")):
        seen = {"dense", *registry.ACTIVATIONS}
        for case in HALF_CASES:
            kinds = {layer.kind for layer in case.config.model or ()} - seen
            seen |= kinds
            if scale and not kinds and case.id not in ("seed1-xor", "relu-identity-half-sse"):
                continue
            if case.id == "seed1-xor":
                yield replace(mixed(case, compute, scale), slow=True, short_epochs=2_500)
            else:
                yield mixed(case, compute, scale)
    yield mixed(next(c for c in CASES if c.id == "relu-softmax-ce-minibatch"), "float16", 1024.0)


MIXED_CASES = tuple(_mixed_cases())


def half_failure(case, dtype):
    """Why a case cannot train in dtype alone (no float32 master weights or state), as measured; None if it can.

    Adam in float16: its eps (1e-8) rounds to 0 and its second moment (1 - b2) g^2 underflows for gradients below
    about 8e-3, so m / (sqrt(v) + eps) is 0 / 0 and the run turns NaN in the NumPy reference itself, as on every
    backend: a finding about float16, not a disagreement. Mixed precision (float32 state) is the way it trains.
    """
    if dtype == "float16" and case.config.optimizer in ("adam", "adamw"):
        return "Adam's state underflows in float16 (eps 1e-8 rounds to 0): the run diverges"
    return None




def features(config):
    """What a configuration exercises, by name: its layer kinds, activations, loss, optimizer, and any weight decay."""
    return {*(layer.kind for layer in config.model), config.loss, config.optimizer} | (
        {"weight decay"} if config.weight_decay else set())


BY_ID = {case.id: case for case in CASES + OPTIMIZER_CASES + MIXED_CASES}  # the plug-ins' are plugin_cases.py's
