"""examples/nielsen_network.py with one planted mistake: the output layer's delta (BP1) takes the sigmoid's slope at
the activation instead of at z.

    pytest --pyargs crosscheck_tests --implementation nielsen=examples.nielsen_network_buggy:DRIVER --backends nielsen
"""

import numpy as np

from crosscheck.adapters import nielsen
from examples.nielsen_network import Network, sigmoid, sigmoid_prime


class BuggyNetwork(Network):
    def backprop(self, x, y):
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights):
            z = w @ activation + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(activations[-1])  # planted: zs[-1]
        nabla_b[-1], nabla_w[-1] = delta, delta @ activations[-2].T
        for layer in range(2, self.num_layers):
            delta = (self.weights[-layer + 1].T @ delta) * sigmoid_prime(zs[-layer])
            nabla_b[-layer], nabla_w[-layer] = delta, delta @ activations[-layer - 1].T
        return nabla_b, nabla_w


DRIVER = nielsen(BuggyNetwork, name="nielsen")
