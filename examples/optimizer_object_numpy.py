"""A two-layer net with its own Adam, written as an object the way many write one after the paper: it keeps its
moments in dicts by parameter name and steps every parameter in update(params, grads). The suite hands it the run's
hyperparameters by name (lr, beta1, beta2, eps), applies it to the net's gradients each step, and reads its moments
back as Adam's state (adam first moment of layer 1 weight, ...), so a wrong moment is named where it parts.

    crosscheck --implementation mine=examples.optimizer_object_numpy:DRIVER --backends mine \
        --model dense:4:8,tanh,dense:8:3,softmax --loss softmax_cross_entropy --optimizer adam --lr 0.01 \
        --samples 60 --epochs 100 --batch-size 20
"""

import numpy as np

from crosscheck.adapters import gradient_function


class Adam:
    """Kingma & Ba's Adam, bias-corrected, eps outside the root (as torch.optim.Adam)."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m, self.v, self.t = {}, {}, 0

    def corrections(self):
        """1 - beta^t of each moment: the bias correction at step t (1 on the first)"""
        return 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t

    def update(self, params, grads):
        self.t += 1
        for name, g in grads.items():
            m = self.beta1 * self.m.get(name, 0.0) + (1 - self.beta1) * g
            v = self.beta2 * self.v.get(name, 0.0) + (1 - self.beta2) * g * g
            self.m[name], self.v[name] = m, v
            c1, c2 = self.corrections()
            m_hat, v_hat = m / c1, v / c2
            params[name] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def forward(params, X):
    (W1, b1), (W2, b2) = params
    return softmax(np.tanh(X @ W1 + b1) @ W2 + b2)


def grads(params, X, y):
    (W1, b1), (W2, b2) = params
    h = np.tanh(X @ W1 + b1)
    p = softmax(h @ W2 + b2)
    loss = -np.sum(y * np.log(p)) / len(y)
    dz = (p - y) / len(y)
    dh = dz @ W2.T * (1 - h ** 2)
    return loss, [(X.T @ dh, dh.sum(axis=0, keepdims=True)), (h.T @ dz, dz.sum(axis=0, keepdims=True))]


def driver(optimizer_class=Adam, name="adam-object"):
    return gradient_function(grads, name=name, forward=forward, activations=("tanh", "softmax"),
                             losses=("softmax_cross_entropy",), layers=2, update=optimizer_class, optimizer="adam")


DRIVER = driver()
