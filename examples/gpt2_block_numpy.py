"""A GPT-2 block written by hand in NumPy the way llm.c lays it out: its sixteen tensors by llm.c's names, biases on
attention's two projections (qkvb, attprojb), the output tied to the token embedding, and a vocabulary padded past
its size (wte has VP rows, the scores of the V real tokens alone reach the softmax). Every gradient by hand.

    crosscheck --implementation gpt2=examples.gpt2_block_numpy:DRIVER --backends gpt2 \
        --model embedding:16:8,positions:12:8,residual:2,layernorm:8,biased_attention:8:2,residual:4,layernorm:8,\
dense:8:32,gelu_tanh,dense:32:8,layernorm:8,unembed:16:8,vocabulary:10,softmax \
        --input-shape 12 --loss softmax_cross_entropy --samples 32 --epochs 20 --batch-size 16 \
        --optimizer adam --lr 0.01
"""

import math

import numpy as np

from crosscheck.adapters import named_gradients

NAMES = "wte wpe ln1w ln1b qkvw qkvb attprojw attprojb ln2w ln2b fcw fcb fcprojw fcprojb lnfw lnfb"
V, HEADS, EPS = 10, 2, 1e-5  # the real vocabulary (wte has more rows: padding), the heads, layer norm's eps
GELU = math.sqrt(2 / math.pi)


def flat(t):
    """(N, T, C) -> (N T, C): every position one more sample to a weight"""
    return t.reshape(-1, t.shape[-1])


def layernorm(x, w, b):
    xc = x - x.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + EPS)
    xhat = xc * rstd
    return xhat * w + b, (xhat, rstd, w)


def layernorm_backward(dy, cache):
    xhat, rstd, w = cache
    dxhat = dy * w
    dx = rstd * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return dx, flat(dy * xhat).sum(0), flat(dy).sum(0)


def heads(t):
    n, length, width = t.shape
    return t.reshape(n, length, HEADS, width // HEADS).transpose(0, 2, 1, 3)


def merged(t):
    n, h, length, d = t.shape
    return t.transpose(0, 2, 1, 3).reshape(n, length, h * d)


def attention(x, qkvw, qkvb, projw, projb):
    q, k, v = (heads(t) for t in np.split(x @ qkvw + qkvb, 3, axis=-1))
    scale = 1 / math.sqrt(q.shape[-1])
    s = q @ k.transpose(0, 1, 3, 2) * scale
    s = np.where(np.tril(np.ones(s.shape[-2:], dtype=bool)), s, -np.inf)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    o = merged(a @ v)
    return o @ projw + projb, (x, q, k, v, a, o, scale)


def attention_backward(dy, cache, qkvw, projw):
    x, q, k, v, a, o, scale = cache
    do = heads(dy @ projw.T)
    dv = a.transpose(0, 1, 3, 2) @ do
    da = do @ v.transpose(0, 1, 3, 2)
    ds = a * (da - (da * a).sum(-1, keepdims=True))
    dq, dk = ds @ k * scale, ds.transpose(0, 1, 3, 2) @ q * scale
    dqkv = np.concatenate([merged(dq), merged(dk), merged(dv)], axis=-1)
    return dqkv @ qkvw.T, flat(x).T @ flat(dqkv), flat(dqkv).sum(0), flat(o).T @ flat(dy), flat(dy).sum(0)


def gelu(x):
    t = np.tanh(GELU * (x + 0.044715 * x ** 3))
    return 0.5 * x * (1 + t), t


def gelu_backward(dy, x, t):
    return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU * (1 + 3 * 0.044715 * x * x))


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def block(p, X):
    """The forward, kept in pieces for the backward."""
    x0 = p["wte"][X] + p["wpe"][:X.shape[1]]
    h1, c1 = layernorm(x0, p["ln1w"], p["ln1b"])
    att, ca = attention(h1, p["qkvw"], p["qkvb"], p["attprojw"], p["attprojb"])
    x1 = x0 + att
    h2, c2 = layernorm(x1, p["ln2w"], p["ln2b"])
    f = h2 @ p["fcw"] + p["fcb"]
    g, t = gelu(f)
    x2 = x1 + g @ p["fcprojw"] + p["fcprojb"]
    hf, cf = layernorm(x2, p["lnfw"], p["lnfb"])
    probs = softmax((hf @ p["wte"].T)[..., :V])  # the padded rows' scores dropped
    return probs, (c1, ca, h2, f, g, t, c2, hf, cf)


def forward(p, X):
    return block(p, X)[0]


def tied(dwte_out, X, dx0):
    """The token embedding's gradient: the output layer's use plus the embedding's, repeated ids added up."""
    dwte = dwte_out.copy()
    np.add.at(dwte, X, dx0)
    return dwte


def grads(p, X, y, embedding=tied):
    n, length = X.shape
    probs, (c1, ca, h2, f, g, t, c2, hf, cf) = block(p, X)
    rows = np.arange(n)[:, None], np.arange(length)[None, :], y
    loss = -np.log(probs[rows]).mean()
    dz = probs.copy()
    dz[rows] -= 1
    dz /= n * length
    dlogits = np.zeros((n, length, p["wte"].shape[0]))
    dlogits[..., :V] = dz  # the padding's scores took no part: no gradient
    d = {}
    dhf = dlogits @ p["wte"]
    dx2, d["lnfw"], d["lnfb"] = layernorm_backward(dhf, cf)
    dg = dx2 @ p["fcprojw"].T
    d["fcprojw"], d["fcprojb"] = flat(g).T @ flat(dx2), flat(dx2).sum(0)
    df = gelu_backward(dg, f, t)
    d["fcw"], d["fcb"] = flat(h2).T @ flat(df), flat(df).sum(0)
    dx1_norm, d["ln2w"], d["ln2b"] = layernorm_backward(df @ p["fcw"].T, c2)
    dx1 = dx2 + dx1_norm
    dh1, d["qkvw"], d["qkvb"], d["attprojw"], d["attprojb"] = attention_backward(dx1, ca, p["qkvw"], p["attprojw"])
    dx0_norm, d["ln1w"], d["ln1b"] = layernorm_backward(dh1, c1)
    dx0 = dx1 + dx0_norm
    d["wte"] = embedding(flat(dlogits).T @ flat(hf), X, dx0)
    d["wpe"] = np.zeros_like(p["wpe"])
    d["wpe"][:length] = dx0.sum(0)
    return loss, d


def driver(grads=grads, name="gpt2"):
    return named_gradients(grads, params=NAMES, labels="index", forward=forward, name=name,
                           kinds=("embedding", "positions", "residual", "layernorm", "biased_attention", "unembed",
                                  "vocabulary"),
                           activations=("gelu_tanh", "softmax"), losses=("softmax_cross_entropy",))


DRIVER = driver()
