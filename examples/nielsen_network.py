"""A network in the style of Michael Nielsen's network.py ("Neural Networks and Deep Learning", chapter 1): lists
of biases and weights, samples as column vectors, backprop for one sample, update_mini_batch for a mini-batch.

    pytest --pyargs crosscheck_tests --implementation nielsen=examples.nielsen_network:DRIVER --backends nielsen

Written here from the book's equations (BP1-BP4), not copied: sigmoid throughout, the quadratic cost.
"""

import numpy as np

from crosscheck.adapters import nielsen


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


class Network:
    def __init__(self, sizes):
        rng = np.random.default_rng()
        self.num_layers, self.sizes = len(sizes), sizes
        self.biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
        self.weights = [rng.standard_normal((n, m)) for m, n in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(w @ a + b)
        return a

    def update_mini_batch(self, mini_batch, eta):
        """One step of gradient descent at rate eta on the cost averaged over mini_batch, a list of (x, y)."""
        sum_b = [np.zeros(b.shape) for b in self.biases]
        sum_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_b, delta_w = self.backprop(x, y)
            sum_b = [s + d for s, d in zip(sum_b, delta_b)]
            sum_w = [s + d for s, d in zip(sum_w, delta_w)]
        rate = eta / len(mini_batch)
        self.weights = [w - rate * s for w, s in zip(self.weights, sum_w)]
        self.biases = [b - rate * s for b, s in zip(self.biases, sum_b)]

    def backprop(self, x, y):
        """(nabla_b, nabla_w): the gradient of the quadratic cost of one sample, layer by layer."""
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights):
            z = w @ activation + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        delta = self.output_error(activations, zs, y)  # BP1
        nabla_b[-1], nabla_w[-1] = delta, delta @ activations[-2].T  # BP3, BP4
        for layer in range(2, self.num_layers):
            delta = (self.weights[-layer + 1].T @ delta) * sigmoid_prime(zs[-layer])  # BP2
            nabla_b[-layer], nabla_w[-layer] = delta, delta @ activations[-layer - 1].T
        return nabla_b, nabla_w

    def output_error(self, activations, zs, y):
        """BP1: the output layer's delta, the cost's gradient times the sigmoid's slope at the output's z."""
        return self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])

    def cost_derivative(self, output_activations, y):
        return output_activations - y


DRIVER = nielsen(Network, name="nielsen")
