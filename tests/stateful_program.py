"""A program in the exchange protocol (docs/other-languages.md) whose optimizer keeps state, for tests/test_bounds.py:
dense -> tanh -> dense -> identity under mean squared error, trained by momentum (b <- mu b + g; w <- w - lr b), in
NumPy of its own. stateful_program.py [--planted] [--float32-only] [--planted-backward] PROBLEM RESULT; --planted
drops the momentum buffer after every step (each step starts from b = 0): its first step is right, its second parts;
--float32-only answers float32 problems alone, computing in float32 (as a C or CUDA trainer such as llm.c's does);
--planted-backward leaves tanh's derivative out of the hidden layer's gradient.
"""

import sys

import numpy as np
import safetensors.numpy as st
from safetensors import safe_open

MODEL = "dense:{n}:{h},tanh,dense:{h}:{k},identity"


FLOAT32_ONLY = "--float32-only" in sys.argv
PLANTED_BACKWARD = "--planted-backward" in sys.argv


def unsupported(meta, tensors):
    n, h = tensors["layer1.weight"].shape if "layer1.weight" in tensors else (0, 0)
    k = tensors["layer2.weight"].shape[1] if "layer2.weight" in tensors else 0
    if meta["model"] != MODEL.format(n=n, h=h, k=k):
        return f"dense-tanh-dense-identity only, not {meta['model']}"
    if meta["loss"] != "mse" or meta["optimizer"] != "momentum":
        return "mse and momentum only"
    if meta["dtype"] != ("float32" if FLOAT32_ONLY else "float64"):
        return "float32 only" if FLOAT32_ONLY else "float64 only"
    if meta.get("clip") or meta.get("schedule") or float(meta["weight_decay"]) or meta.get("compute") \
            or meta["accumulate"] != "1":
        return "no clipping, schedule, weight decay, mixed precision or accumulation"
    return None


def gradients(p, X, y):
    W1, b1, W2, b2 = p
    a1 = np.tanh(X @ W1 + b1)
    out = a1 @ W2 + b2
    r = out - y
    dz2 = 2 * r / r.size
    dz1 = (dz2 @ W2.T) if PLANTED_BACKWARD else (dz2 @ W2.T) * (1 - a1 * a1)
    return np.sum(r * r) / r.size, [X.T @ dz1, dz1.sum(axis=0), a1.T @ dz2, dz2.sum(axis=0)]


def main():
    planted = "--planted" in sys.argv
    problem, result = [a for a in sys.argv[1:] if not a.startswith("--")]
    tensors = st.load_file(problem)
    with safe_open(problem, "np") as f:
        meta = f.metadata()
    why = unsupported(meta, tensors)
    tasks = [t for t in meta["tasks"].split(",") if t in ("gradients", "train")]  # forward and evaluate: not here
    if why or not tasks:
        st.save_file({}, result, metadata={"unsupported": why} if why else {"supports": "gradients,train"})
        return 0
    names = ["layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias"]
    p = [tensors[n] for n in names]
    X, y = tensors["X"], tensors["y"]
    out = {}
    if "gradients" in tasks:
        loss, g = gradients(p, X, y)
        out["loss"] = np.asarray(loss, dtype=X.dtype)
        out.update({f"grad.{n}": t for n, t in zip(names, g)})
    if "train" in tasks:
        lr, mu, epochs = float(meta["lr"]), float(meta["momentum"]), int(meta["epochs"])
        n, bs = len(X), int(meta["batch_size"]) or len(X)
        starts = list(range(0, n, bs))
        checkpoints = {int(e) for e in meta["checkpoints"].split(",") if e}
        buffers = [np.zeros_like(t) for t in p]
        losses = np.empty((epochs, len(starts)), dtype=X.dtype)
        for epoch in range(epochs):
            order = tensors["orders"][epoch] if "orders" in tensors else np.arange(n)
            for s, start in enumerate(starts):
                rows = order[start:start + bs]
                losses[epoch, s], g = gradients(p, X[rows], y[rows])
                buffers = [mu * b + d for b, d in zip(buffers, g)]
                p = [t - lr * b for t, b in zip(p, buffers)]
                if planted:
                    buffers = [np.zeros_like(b) for b in buffers]
            if epoch + 1 in checkpoints:
                out.update({f"epoch{epoch + 1}.{nm}": t for nm, t in zip(names, p)})
                out.update({f"epoch{epoch + 1}.state.momentum_buffer.{nm}": b for nm, b in zip(names, buffers)})
        out["losses"] = losses
        out.update({f"final.{nm}": t for nm, t in zip(names, p)})
    st.save_file({k: np.asarray(v).copy(order="C") for k, v in out.items()}, result,
                 metadata={"supports": "gradients,train"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
