"""examples/nielsen_network2.py with one planted mistake: L2 regularization shrinks the biases too, where the book's
(and the declared weight decay) leaves them.

    pytest --pyargs crosscheck_tests --implementation n2=examples.nielsen_network2_buggy:DRIVER --backends n2
"""

from examples import nielsen_network2 as correct


class Network(correct.Network):
    def update_mini_batch(self, mini_batch, eta, lmbda, n):
        biases = self.biases
        super().update_mini_batch(mini_batch, eta, lmbda, n)
        self.biases = [b - eta * (lmbda / n) * old for b, old in zip(self.biases, biases)]  # planted: biases decayed


DRIVER = correct.nielsen(Network, name="nielsen2", cost="cross_entropy")
