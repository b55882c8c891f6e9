"""Adapters: check an implementation in the seeds' style without rewriting it.

A seed-style class keeps its weights as attributes, has feedforward(X) return the
network's output and backward(X, y, learning_rate) update the weights in place
(after a feedforward). seed_style() wraps such a class in a Driver: it sets the
class's weights from the shared seed, runs it, reads the weights back after each
step, and derives the gradients it implies, (W_before - W_after) / learning_rate.

    from crosscheck.adapters import seed_style
    DRIVER = seed_style(lambda layers: NeuralNetwork(*layers), name="mine")

then `pytest --implementation mine=my_module:DRIVER`.
"""

import numpy as np

from common.driver import Driver, Run
from reference.losses import loss_forward

IMPLIED_LR = 1.0  # the step whose effect is read back as a gradient: exact in binary, so only W's rounding remains


class SeedStyle:
    """The mlp protocol (forward, gradients, train) on top of a seed-style object."""

    def __init__(self, factory, layout, weights, biases):
        if layout not in ("rows", "columns"):
            raise ValueError(f"layout must be 'rows' (samples as rows) or 'columns', got {layout!r}")
        if len(weights) != len(biases):
            raise ValueError("give one bias attribute per weight attribute")
        self.factory, self.layout, self.weights, self.biases = factory, layout, weights, biases

    def _net(self, params, config):
        net = self.factory(config.layers)
        self._set(net, params)
        return net

    def _set(self, net, params):
        for (W, b), w_name, b_name in zip(params, self.weights, self.biases):
            if self.layout == "rows":  # W (in, out), b (1, out)
                setattr(net, w_name, W.copy())
                setattr(net, b_name, b[None, :].copy())
            else:  # W (out, in), b (out, 1)
                setattr(net, w_name, W.T.copy())
                setattr(net, b_name, b[:, None].copy())

    def _get(self, net):
        params = []
        for w_name, b_name in zip(self.weights, self.biases):
            W, b = np.asarray(getattr(net, w_name)), np.asarray(getattr(net, b_name))
            params.append((W.copy(), b[0].copy()) if self.layout == "rows" else (W.T.copy(), b[:, 0].copy()))
        return params

    def _feedforward(self, net, X):
        out = net.feedforward(X if self.layout == "rows" else X.T)
        return np.asarray(out) if self.layout == "rows" else np.asarray(out).T

    def _backward(self, net, X, y, lr):
        if self.layout == "rows":
            net.backward(X, y, lr)
        else:
            net.backward(X.T, y.T, lr)

    def forward(self, params, X, config):
        return [(None, self._feedforward(self._net(params, config), X))]

    def gradients(self, params, X, y, config):
        net = self._net(params, config)
        loss = loss_forward(config.loss, None, self._feedforward(net, X), y)  # no logits: seeds' loss
        self._backward(net, X, y, IMPLIED_LR)
        after = self._get(net)
        return loss, [((W0 - W1) / IMPLIED_LR, (b0 - b1) / IMPLIED_LR) for (W0, b0), (W1, b1) in zip(params, after)]

    def train(self, params, X, y, config, orders=None, checkpoints=()):
        net = self._net(params, config)
        losses = np.empty((config.epochs, 1), dtype=config.dtype)
        saved = {}
        for epoch in range(config.epochs):
            losses[epoch, 0] = loss_forward(config.loss, None, self._feedforward(net, X), y)
            self._backward(net, X, y, config.lr)
            if epoch + 1 in checkpoints:
                saved[epoch + 1] = self._get(net)
        return Run(losses=losses, checkpoints=saved, params=self._get(net))


def seed_style(factory, *, name="seed-style", layout="rows",
               weights=("weights_input_hidden", "weights_hidden_output"), biases=("bias_hidden", "bias_output"),
               activation="sigmoid", loss="half_sse", dtypes=("float64",), version="-"):
    """A Driver around a seed-style class; factory(layers) builds one for layers, e.g. (2, 4, 1).

    It declares what it supports: len(weights) layers, `activation` everywhere, `loss`
    (the seeds' backward is descent on half_sse), full batch, `dtypes`. Every other
    configuration is skipped with the reason.
    """

    def supports(config):
        if len(config.layers) != len(weights) + 1:
            return f"{len(weights)} layers only, not {len(config.layers) - 1}"
        if config.hidden != activation or config.output != activation:
            return f"{activation} activations only, not {config.hidden}/{config.output}"
        if config.loss != loss:
            return f"loss {loss} only, not {config.loss}"
        if config.batch_size is not None:
            return "full batch only"
        if config.optimizer != "sgd" or config.weight_decay:
            return f"plain gradient descent only (the seeds' update), not {config.optimizer}"
        if config.dtype not in dtypes:
            return f"dtypes {', '.join(dtypes)} only, not {config.dtype}"
        return None

    return Driver(name=name, version=version, devices=("cpu",), mlp=SeedStyle(factory, layout, weights, biases),
                  to_native=lambda arr, device: arr, to_numpy=np.asarray, supports=supports)
