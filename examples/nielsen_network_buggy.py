"""examples/nielsen_network.py with one planted mistake: the output layer's delta (BP1) takes the sigmoid's slope at
the activation instead of at z.

    pytest --pyargs crosscheck_tests --implementation nielsen=examples.nielsen_network_buggy:DRIVER --backends nielsen
"""

from crosscheck.adapters import nielsen
from examples.nielsen_network import Network, sigmoid_prime


class BuggyNetwork(Network):
    def output_error(self, activations, zs, y):
        return self.cost_derivative(activations[-1], y) * sigmoid_prime(activations[-1])  # planted: zs[-1]


DRIVER = nielsen(BuggyNetwork, name="nielsen")
