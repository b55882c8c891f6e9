"""What the benchmarks time: workloads, and the FLOP model of one step.

CROSSCHECK_BENCH_DTYPE=float64 (or float32) runs every workload in that dtype instead of its own.
"""

import math
import os
from dataclasses import dataclass, replace

from crosscheck.reference import Config

BASELINE_ROW = "seeds-loop"  # the row every speed ratio divides by (also spelled in regression.py, standalone)


@dataclass(frozen=True)
class Workload:
    name: str
    config: Config
    samples: int | None  # None: XOR
    threads: int | None  # None: every core this process may use; else pinned (tiny problems run on one)
    # The row each row's ratio is taken over: the seeds' loop, or (for layers the seeds never had) "native", the same
    # framework training the same model with its own layers, autodiff and optimizer (torch's for the NumPy row), or
    # "float32", the same row on the workload in float32 (a 16-bit workload's).
    baseline: str = BASELINE_ROW

    def in_float32(self):
        """This workload in float32: a 16-bit workload's yardstick."""
        return replace(self, config=self.config.replace(dtype="float32"), baseline=BASELINE_ROW)


GPT_EMBED = (("embedding", 10, 128), ("positions", 64, 128))
GPT_BLOCK = (("residual", 2), ("layernorm", 128), ("attention", 128, 4),
             ("residual", 4), ("layernorm", 128), ("dense", 128, 512), "gelu_tanh", ("dense", 512, 128))
GPT_HEAD = (("layernorm", 128), ("unembed", 10, 128), "softmax")

WORKLOADS = {
    # The second seed's set-up: overhead-bound, every op works on a handful of numbers.
    "xor": Workload("xor", Config(layers=(2, 2, 1), init="uniform_pm1", lr=0.1, epochs=3200), None, 1),
    # In between: products of a few hundred rows, where per-op overhead and arithmetic are of one size.
    "mid": Workload("mid", Config(layers=(64, 128, 10), init="glorot_uniform", lr=0.01, epochs=320, dtype="float32"),
                    256, None),
    # Compute-bound: matrix products dominate.
    "wide": Workload("wide", Config(layers=(784, 512, 10), init="glorot_uniform", lr=0.001, epochs=10,
                                    dtype="float32"), 1024, None),
    # `wide` in bfloat16, each row beside itself in float32 (its speed over its own float32 run, timed right after it):
    # no target on CPU, where bfloat16 may be emulated. Not NumPy: it has no bfloat16 matrix product (ml_dtypes'
    # runs element by element, about 100x float32's time: docs/precision.md, "Low precision").
    "wide-bfloat16": Workload("wide-bfloat16", Config(layers=(784, 512, 10), init="glorot_uniform", lr=0.001, epochs=10,
                                                      dtype="bfloat16"), 1024, None, baseline="float32"),
    # The same two with Adam: its state and update beside the seeds' plain descent (the baseline row stays the
    # seeds' own loop), and beside the frameworks' own optimizers (torch.optim, optax).
    "xor-adam": Workload("xor-adam", Config(layers=(2, 2, 1), init="uniform_pm1", lr=0.01, epochs=3200,
                                            optimizer="adam"), None, 1),
    "wide-adam": Workload("wide-adam", Config(layers=(784, 512, 10), init="glorot_uniform", lr=0.001, epochs=10,
                                              dtype="float32", optimizer="adam"), 1024, None),
    # A small CNN at a size where the convolutions dominate (they do ~97% of the multiply-adds): 64 images of
    # 3x16x16 per batch, trained with Adam; each manual core beside its framework's own layers.
    "cnn": Workload("cnn", Config(model=(("conv2d", 3, 16, 3, 1, 1), "relu", ("maxpool2d", 2, 2),
                                         ("conv2d", 16, 32, 3, 1, 1), "relu", ("avgpool2d", 2, 2), "flatten",
                                         ("dense", 512, 10), "softmax"), input_shape=(3, 16, 16),
                                  loss="softmax_cross_entropy", init="he_normal", lr=0.001, epochs=3, batch_size=64,
                                  optimizer="adam", dtype="float32"), 256, None, baseline="native"),
    # The character RNN: 32 steps of a 128-wide tanh RNN over 32-dim embeddings of the generated text, batches of 128,
    # many-to-one, Adam; beside each framework's own layers (torch.nn.RNN; JAX has no RNN of its own: jax.grad of the
    # manual forward stands in).
    "rnn": Workload("rnn", Config(model=(("embedding", 10, 32), ("rnn", 32, 128), "last", ("dense", 128, 10),
                                         "softmax"),
                                  input_shape=(32,), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.001,
                                  epochs=2, batch_size=128, optimizer="adam", dtype="float32"), 512, None,
                    baseline="native"),
    # Two pre-norm GPT blocks (issue 29's) at a size where the matrix products dominate: width 128, 4 causal heads,
    # an MLP 4x wide, 64 tokens of context, batches of 16 windows (1,024 tokens a step), learned positions, scores
    # tied to the embedding, AdamW with clipping and a warmup-and-cosine schedule: 8 steps. Beside each framework
    # training it its own way (torch: F.scaled_dot_product_attention, F.layer_norm, F.gelu, autograd, torch.optim.AdamW,
    # clip_grad_norm_, its schedulers; JAX: jax.nn.dot_product_attention, jax.grad, optax).
    "gpt": Workload("gpt", Config(model=GPT_EMBED + GPT_BLOCK * 2 + GPT_HEAD, input_shape=(64,),
                                  loss="softmax_cross_entropy", init="glorot_uniform", lr=0.001, epochs=2,
                                  batch_size=16, optimizer="adamw", weight_decay=0.01, decay_biases=False, clip=1.0,
                                  schedule="warmup_cosine", warmup_steps=2, decay_steps=8, end_lr=0.0001,
                                  dtype="float32"), 64, None, baseline="native"),
}

if os.environ.get("CROSSCHECK_BENCH_DTYPE"):
    WORKLOADS = {name: replace(w, config=w.config.replace(dtype=os.environ["CROSSCHECK_BENCH_DTYPE"]))
                 for name, w in WORKLOADS.items() if w.baseline != "float32"}  # a 16-bit workload stays 16-bit


def step_flops(config, samples):
    """Multiply-adds x 2 of the matrix products of one epoch's steps (elementwise work and pooling not counted).

    Per dense layer: forward a W (2 N in out), dW = a^T dz (2 N in out), and for every layer but the
    first, da = dz W^T (2 N in out). A convolution likewise, with in = c_in k^2 and N the number of windows
    (samples x output positions): im2col's three products. Over a sequence N counts its positions. Attention: its
    two projections (3W and W outputs) as dense layers, and the scores q k^T and their weighting of v, T^2 W each per
    sample, each with two products in the backward (the causal mask's zeros are counted: every backend computes them).
    SwiGLU: its three matrices as dense layers.
    """
    total = 0
    for i, (layer, out) in enumerate(zip(config.model, config.shapes[1:])):
        rows = samples * math.prod(config.shapes[i][:-1])  # a dense layer's rows: samples, or samples x positions
        if layer.kind in ("dense", "linear", "unembed"):  # unembed: the scores by the embedding's (vocabulary, width)
            macs = rows * layer.shape[0] * layer.shape[1]
        elif layer.kind in ("attention", "rope_attention"):
            (width, heads, *kv), steps = layer.shape, config.shapes[i][0]
            qkv = width + 2 * width * (kv[0] if kv else heads) // heads  # grouped heads: fewer keys and values
            macs = rows * (qkv + width) * width + samples * 2 * steps * steps * width
        elif layer.kind == "swiglu":  # gate, up (width x hidden) and down (hidden x width)
            macs = rows * 3 * layer.shape[0] * layer.shape[1]
        elif layer.kind == "conv2d":
            c_in, c_out, k = layer.shape[:3]
            macs = samples * out[1] * out[2] * c_in * k * k * c_out
        elif layer.kind in ("rnn", "lstm"):  # every step: x_t W_x and h W_h
            steps, gates = config.shapes[i][0], 4 if layer.kind == "lstm" else 1
            macs = samples * steps * (layer.shape[0] + layer.shape[1]) * layer.shape[1] * gates
        else:
            continue
        total += (3 if i > 0 else 2) * 2 * macs
    return total
