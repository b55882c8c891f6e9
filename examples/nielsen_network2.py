"""A network in the style of Nielsen's network2.py ("Neural Networks and Deep Learning", chapter 3): the
cross-entropy cost, whose output error is a - y (the sigmoid's slope cancels), and L2 regularization, each step
shrinking the weights by (1 - eta lmbda / n) and leaving the biases.

    pytest --pyargs crosscheck_tests --implementation nielsen2=examples.nielsen_network2:DRIVER --backends nielsen2

Written here from the book's equations, not copied. nielsen(cost="cross_entropy") reads the cost as bce and the
regularization as weight decay lmbda / n on the weights alone (decay_biases=False).
"""

import numpy as np

from crosscheck.adapters import nielsen


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class CrossEntropyCost:
    @staticmethod
    def fn(a, y):
        return np.sum(np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a)))

    @staticmethod
    def delta(z, a, y):
        """The output layer's error: for cross-entropy on a sigmoid, a - y."""
        return a - y


class Network:
    def __init__(self, sizes, cost=CrossEntropyCost):
        rng = np.random.default_rng()
        self.num_layers, self.sizes, self.cost = len(sizes), sizes, cost
        self.biases = [rng.standard_normal((n, 1)) for n in sizes[1:]]
        self.weights = [rng.standard_normal((n, m)) / np.sqrt(m) for m, n in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(w @ a + b)
        return a

    def update_mini_batch(self, mini_batch, eta, lmbda, n):
        """One step at rate eta on the cost averaged over mini_batch, the weights shrunk by L2 (lmbda over n, the
        training set's size), the biases not."""
        sum_b = [np.zeros(b.shape) for b in self.biases]
        sum_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in mini_batch:
            delta_b, delta_w = self.backprop(x, y)
            sum_b = [s + d for s, d in zip(sum_b, delta_b)]
            sum_w = [s + d for s, d in zip(sum_w, delta_w)]
        rate = eta / len(mini_batch)
        self.weights = [(1 - eta * (lmbda / n)) * w - rate * s for w, s in zip(self.weights, sum_w)]
        self.biases = [b - rate * s for b, s in zip(self.biases, sum_b)]

    def backprop(self, x, y):
        """(nabla_b, nabla_w): the gradient of one sample's cost, layer by layer."""
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights):
            z = w @ activation + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        delta = self.cost.delta(zs[-1], activations[-1], y)
        nabla_b[-1], nabla_w[-1] = delta, delta @ activations[-2].T
        for layer in range(2, self.num_layers):
            s = sigmoid(zs[-layer])
            delta = (self.weights[-layer + 1].T @ delta) * s * (1 - s)
            nabla_b[-layer], nabla_w[-layer] = delta, delta @ activations[-layer - 1].T
        return nabla_b, nabla_w


DRIVER = nielsen(Network, name="nielsen2", cost="cross_entropy")
