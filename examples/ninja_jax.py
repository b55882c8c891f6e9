"""Manual backprop written in JAX arrays (jax.grad is not used): the same network as examples/ninja_torch.py.

    pytest --pyargs crosscheck_tests --implementation ninja-jax=examples.ninja_jax:DRIVER --backends ninja-jax
"""

import jax.numpy as jnp

from crosscheck.adapters import gradient_function


def forward(params, X):
    h = X
    for W, b in params[:-1]:
        h = jnp.tanh(h @ W + b)
    W, b = params[-1]
    logits = h @ W + b
    e = jnp.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def grads(params, X, Y):
    hs = [X]
    for W, b in params[:-1]:
        hs.append(jnp.tanh(hs[-1] @ W + b))
    W, b = params[-1]
    logits = hs[-1] @ W + b
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - jnp.log(jnp.exp(shifted).sum(axis=1, keepdims=True))
    n = X.shape[0]
    loss = -(Y * log_probs).sum() / n
    out, d = [], (jnp.exp(log_probs) - Y) / n
    for l in reversed(range(len(params))):
        W, b = params[l]
        out.append((hs[l].T @ d, d.sum(axis=0, keepdims=True)))
        if l:
            d = (d @ W.T) * (1 - hs[l] ** 2)
    return loss, out[::-1]


DRIVER = gradient_function(grads, name="ninja-jax", framework="jax", forward=forward, activations=("tanh", "softmax"),
                           losses=("softmax_cross_entropy",), dtypes=("float64", "float32"))
