"""The GPT-2-small-scale check (issue 29): one AdamW step of a GPT-2-small-shaped model, checked on every backend.

    python tools/gpt_scale.py [--layers 12] [--width 768] [--heads 12] [--vocab 50257] [--context 64] [--batch 4]

12 pre-norm blocks of width 768 with 12 causal heads, learned positions, a GELU MLP of 3072, a final layer norm and
scores tied to the 50,257-row embedding (GPT-2 small, 124M parameters), on 4 random sequences of 64 tokens, trained
for one AdamW step in float32 on NumPy, torch and JAX: the loss, every gradient and the parameters after the step,
each within the low-precision bound of the float64 reference (4 x the NumPy float32 reference's own deviation, plus a
floor; crosscheck/verdict/tolerances.py). Central differences per entry cannot run at this size, so the float64
reference's own gradient is checked along random directions: (L(p + h v) - L(p - h v)) / 2h against <g, v>, two forward
passes per direction whatever the number of parameters. Prints each phase's time and the process's peak memory; a
benchmark, run by hand (docs/benchmarks.md has the figures), not a test.
"""

import argparse
import ctypes
import gc
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crosscheck import backends  # noqa: E402
from crosscheck.common.config import Config  # noqa: E402
from crosscheck.common.initializers import initial_params  # noqa: E402
from crosscheck.reference import mlp, optimizers  # noqa: E402
from crosscheck.reference.losses import loss_forward  # noqa: E402
from crosscheck.verdict.compare import assert_low_close, low_reference_diff  # noqa: E402
from crosscheck.verdict.findings import flat  # noqa: E402


def gpt_config(layers, width, heads, vocab, context, dtype="float64"):
    """GPT-2's shape: embedding and positions, layers pre-norm blocks, a final layer norm, scores tied to the
    embedding; one AdamW step (decay 0.1 on the matrices, GPT-2's) at lr 6e-4, gradients clipped to norm 1."""
    block = (("residual", 2), ("layernorm", width), ("attention", width, heads), ("residual", 4),
             ("layernorm", width), ("dense", width, 4 * width), "gelu_tanh", ("dense", 4 * width, width))
    model = (("embedding", vocab, width), ("positions", context, width), *block * layers, ("layernorm", width),
             ("unembed", vocab, width), "softmax")
    return Config(model=model, input_shape=(context,), loss="softmax_cross_entropy", init="glorot_uniform",
                  lr=6e-4, epochs=1, optimizer="adamw", weight_decay=0.1, decay_biases=False, clip=1.0, dtype=dtype)


def data(config, batch, seed=0):
    """batch random sequences of token ids and, as targets, the one-hot next token at every position."""
    vocab, context = config.model[0].shape[0], config.input_shape[0]
    ids = np.random.default_rng(seed).integers(0, vocab, (batch, context + 1))
    y = np.zeros((batch, context, vocab))
    np.put_along_axis(y, ids[:, 1:, None], 1.0, axis=-1)
    return ids[:, :-1], y


def loss(params, X, y, config):
    """The reference's loss alone: its forward pass, no backward."""
    z, a = mlp.forward(params, X, config)[-1]
    return loss_forward(config.loss, z, a, y)


def directional(params, X, y, config, grads, directions=3, h=1e-4, seed=1):
    """[(central difference of the loss along v, <g, v>)] for random unit directions v over every parameter: random
    signs over sqrt(n), n the number of parameters (drawn as int8, 8x cheaper than normal draws at this size); two
    forward passes each, one moved copy of the parameters held at a time."""
    rng = np.random.default_rng(seed)
    scale = 1 / np.sqrt(sum(p.size for p in flat(params)))
    found = []
    for _ in range(directions):
        signs = [tuple(2 * rng.integers(0, 2, p.shape, dtype=np.int8) - 1 for p in leaves) for leaves in params]
        up, down = (loss([tuple(p + (s * h * scale) * t for p, t in zip(leaves, dv))
                          for leaves, dv in zip(params, signs)], X, y, config) for s in (1, -1))
        claimed = scale * sum(np.vdot(g, t.astype(g.dtype)) for g, t in zip(flat(grads), flat(signs)))
        found.append(((up - down) / (2 * h), claimed))
    return found


def check_update(params, grads, after, config, ulps=16):
    """The largest fraction of its bound by which a backend's parameters after the step stray from the float64
    reference's AdamW step (clipping, decay) taken from the backend's own gradients: the update checked apart from the
    gradients (already checked). A whole-step comparison with the float64 run cannot hold here: Adam's first step,
    g / (|g| + eps), magnifies a gradient's rounding lr / eps = 6e4 times where |g| is near eps. Bound: ulps of
    float32 at |p| + lr. Leaf by leaf (the reference's leaf_update, after mlp.clipped's factor of the global norm),
    so that no float64 copy of the whole model, its moments or its step is held."""
    norm = np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in flat(grads)))
    factor = min(1.0, config.clip / (norm + 1e-6))  # mlp.clipped's
    k = optimizers.scalars(1, config)
    worst = 0.0
    for l, (leaves, leaf_grads, leaves_after) in enumerate(zip(params, grads, after)):
        for which, (p, g, a) in enumerate(zip(leaves, leaf_grads, leaves_after)):
            p = np.asarray(p, np.float64)
            state = optimizers.INIT[config.optimizer](p)
            expected, _ = optimizers.leaf_update(p, np.asarray(g, np.float64) * factor, state, k, config, l, which)
            bound = ulps * np.finfo(np.float32).eps * (np.abs(expected) + config.lr)
            worst = max(worst, float(np.max(np.abs(np.asarray(a, np.float64) - expected) / bound)))
    assert worst <= 1.0, f"the step strays {worst:.2f} times its bound"
    return worst


def step(driver, params, X, y, config):
    """(loss, gradients, parameters after one step) on driver, as NumPy."""
    loss, grads = driver.run_gradients(params, X, y, config)
    run = driver.run_train(params, X, y, config)
    return loss, grads, run.params


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("layers", 12), ("width", 768), ("heads", 12), ("vocab", 50257), ("context", 64),
                          ("batch", 4)):
        p.add_argument(f"--{name}", type=int, default=default)
    args = p.parse_args(argv)
    started = time.perf_counter()

    def said(what):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        now = int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**30
        print(f"{time.perf_counter() - started:7.1f} s  peak {peak:5.2f} GiB  now {now:5.2f} GiB  {what}", flush=True)

    def released():
        """Hand freed memory back to the system: glibc keeps freed blocks under its (grown) mmap threshold, which
        left 3.2 GiB of torch's step resident through JAX's."""
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)

    config64 = gpt_config(args.layers, args.width, args.heads, args.vocab, args.context)
    config32 = config64.replace(dtype="float32")
    params = initial_params(config64)
    X, y = data(config64, args.batch)
    count = sum(t.size for t in flat(params))
    said(f"{count:,} parameters drawn; {args.batch} sequences of {args.context} tokens")
    reference = backends.load(backends.REFERENCE)
    # The references' loss and gradients alone: each backend's step is checked against the float64 update of its own
    # gradients (check_update), so the references take no step.
    ref64 = reference.run_gradients(params, X, y, config64)
    said(f"float64 reference: loss {ref64[0]:.6f}")
    for found, claimed in directional(params, X, y, config64, ref64[1]):
        relative = abs(found - claimed) / abs(claimed)
        said(f"float64 reference along a random direction: {found:.9e} by central differences, {claimed:.9e} "
             f"by its gradient, relative difference {relative:.1e}")
        assert relative < 1e-5, "the reference's gradient is not the loss's slope"
    params32, y32 = [tuple(t.astype(np.float32) for t in leaves) for leaves in params], y.astype(np.float32)
    del params
    ref32 = reference.run_gradients(params32, X, y32, config32)
    # The float32 reference's own deviation from the float64 one, which scales each bound: once for every backend.
    high = [ref64[0], *flat(ref64[1])]
    names = ["loss", *(f"gradient {i}" for i in range(len(high) - 1))]
    theirs = [low_reference_diff(np.asarray(lo), np.asarray(hi), what=what, dtype="float32")
              for what, lo, hi in zip(names, [ref32[0], *flat(ref32[1])], high)]
    said("float32 reference")
    # NumPy's float32 step, from its gradients (they scale the bounds, so they are the float32 reference's own).
    worst = check_update(params32, ref32[1], reference.run_train(params32, X, y32, config32).params, config64)
    said(f"numpy: the step, from its own gradients, within {worst:.2f} of the bound of float32 rounding")
    del ref32
    released()
    for name in ("torch", "jax"):
        driver = backends.load(name)
        got = step(driver, params32, X, y32, config32)
        said(f"{name} float32")
        for what, a, hi, own in zip(names, [got[0], *flat(got[1])], high, theirs):
            assert_low_close(np.asarray(a), None, np.asarray(hi), what=what, backend=name, dtype="float32", theirs=own)
        worst = check_update(params32, got[1], got[2], config64)
        said(f"{name}: the loss and {len(flat(got[1]))} gradients within float32's bound of the float64 reference; "
             f"the step, from its own gradients, within {worst:.2f} of the bound of float32 rounding")
        del got
        released()
    said("done")


if __name__ == "__main__":
    main()
