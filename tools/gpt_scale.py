"""The GPT-2-small-scale check (issue 29): one AdamW step of a GPT-2-small-shaped model, checked on every backend.

    python tools/gpt_scale.py [--layers 12] [--width 768] [--heads 12] [--vocab 50257] [--context 64] [--batch 4]

12 pre-norm blocks of width 768 with 12 causal heads, learned positions, a GELU MLP of 3072, a final layer norm and
scores tied to the 50,257-row embedding (GPT-2 small, 124M parameters), on 4 random sequences of 64 tokens, trained
for one AdamW step in float32 on NumPy, torch and JAX: the loss, every gradient and the parameters after the step,
each within the low-precision bound of the float64 reference (4 x the NumPy float32 reference's own deviation, plus a
floor; crosscheck/tolerances.py). Central differences per entry cannot run at this size, so the float64 reference's
own gradient is checked along random directions: (L(p + h v) - L(p - h v)) / 2h against <g, v>, two forward passes
per direction whatever the number of parameters. Prints each phase's time and the process's peak memory; a
benchmark, run by hand (docs/benchmarks.md has the figures), not a test.
"""

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backends  # noqa: E402
from common.config import Config  # noqa: E402
from common.initializers import initial_params  # noqa: E402
from crosscheck.compare import assert_low_close  # noqa: E402
from crosscheck.findings import flat  # noqa: E402
from reference import mlp, optimizers  # noqa: E402


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


def directional(params, X, y, config, grads, directions=3, h=1e-4, seed=1):
    """[(central difference of the loss along v, <g, v>)] for random unit directions v over every parameter."""
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(directions):
        v = [tuple(rng.standard_normal(p.shape) for p in leaves) for leaves in params]
        norm = np.sqrt(sum(np.sum(t * t) for t in flat(v)))
        v = [tuple(t / norm for t in leaves) for leaves in v]
        moved = [[tuple(p + s * h * t for p, t in zip(leaves, dv)) for leaves, dv in zip(params, v)] for s in (1, -1)]
        up, down = (mlp.gradients(m, X, y, config)[0] for m in moved)
        found.append(((up - down) / (2 * h), sum(np.vdot(g, t) for g, t in zip(flat(grads), flat(v)))))
    return found


def check_update(params, grads, after, config, ulps=16):
    """The largest fraction of its bound by which a backend's parameters after the step stray from the float64
    reference's AdamW step (clipping, decay) taken from the backend's own gradients: the update checked apart from the
    gradients (already checked). A whole-step comparison with the float64 run cannot hold here: Adam's first step,
    g / (|g| + eps), magnifies a gradient's rounding lr / eps = 6e4 times where |g| is near eps. Bound: ulps of
    float32 at |p| + lr."""
    up = [tuple(np.asarray(t, np.float64) for t in leaves) for leaves in params]
    expected, _ = mlp.update(up, [tuple(np.asarray(g, np.float64) for g in leaves) for leaves in grads],
                             optimizers.init(up, config), 1, config)
    worst = 0.0
    for a, e in zip(flat(after), flat(expected)):
        bound = ulps * np.finfo(np.float32).eps * (np.abs(e) + config.lr)
        worst = max(worst, float(np.max(np.abs(np.asarray(a, np.float64) - e) / bound)))
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
        print(f"{time.perf_counter() - started:7.1f} s  peak {peak:5.2f} GiB  {what}", flush=True)

    config64 = gpt_config(args.layers, args.width, args.heads, args.vocab, args.context)
    config32 = config64.replace(dtype="float32")
    params = initial_params(config64)
    X, y = data(config64, args.batch)
    count = sum(t.size for t in flat(params))
    said(f"{count:,} parameters drawn; {args.batch} sequences of {args.context} tokens")
    reference = backends.load(backends.REFERENCE)
    ref64 = step(reference, params, X, y, config64)
    said(f"float64 reference: loss {ref64[0]:.6f}")
    for found, claimed in directional(params, X, y, config64, ref64[1]):
        relative = abs(found - claimed) / abs(claimed)
        said(f"float64 reference along a random direction: {found:.9e} by central differences, {claimed:.9e} "
             f"by its gradient, relative difference {relative:.1e}")
        assert relative < 1e-5, "the reference's gradient is not the loss's slope"
    params32, y32 = [tuple(t.astype(np.float32) for t in leaves) for leaves in params], y.astype(np.float32)
    ref32 = step(reference, params32, X, y32, config32)
    said("float32 reference")
    for name in ("torch", "jax"):
        driver = backends.load(name)
        got = step(driver, params32, X, y32, config32)
        said(f"{name} float32")
        for what, ours, low, high in (("loss", [got[0]], [ref32[0]], [ref64[0]]),
                                      ("gradient", flat(got[1]), flat(ref32[1]), flat(ref64[1]))):
            for i, (a, lo, hi) in enumerate(zip(ours, low, high)):
                assert_low_close(np.asarray(a), np.asarray(lo), np.asarray(hi), what=f"{what} {i}", backend=name,
                                 dtype="float32")
        worst = check_update(params32, got[1], got[2], config64)
        said(f"{name}: the loss and {len(flat(got[1]))} gradients within float32's bound of the float64 reference; "
             f"the step, from its own gradients, within {worst:.2f} of the bound of float32 rounding")
    said("done")


if __name__ == "__main__":
    main()
