"""A student's network, the classic class-based way: checked by the suite without being rewritten.

    pytest --implementation student=examples.student_nn:DRIVER --backends student

Samples are rows. The update is written the seeds' way (W += lr * ...(y - out)...),
which is gradient descent on half the sum of squared errors.
"""

import numpy as np

from crosscheck.adapters import seed_style


class TwoLayerNet:
    def __init__(self, n_inputs, n_hidden, n_outputs):
        rng = np.random.default_rng()
        self.weights_input_hidden = rng.standard_normal((n_inputs, n_hidden))
        self.weights_hidden_output = rng.standard_normal((n_hidden, n_outputs))
        self.bias_hidden = np.zeros((1, n_hidden))
        self.bias_output = np.zeros((1, n_outputs))

    @staticmethod
    def squash(v):
        return 1.0 / (1.0 + np.exp(-v))

    @staticmethod
    def slope(s):
        """The logistic function's slope, written in terms of its own output s."""
        return s * (1.0 - s)

    def feedforward(self, X):
        self.hidden_in = X @ self.weights_input_hidden + self.bias_hidden
        self.hidden_out = self.squash(self.hidden_in)
        self.out = self.squash(self.hidden_out @ self.weights_hidden_output + self.bias_output)
        return self.out

    def output_delta(self, y):
        return (y - self.out) * self.slope(self.out)

    def hidden_delta(self, back):
        return back * self.slope(self.hidden_out)

    def backward(self, X, y, learning_rate):
        delta_out = self.output_delta(y)
        delta_hidden = self.hidden_delta(delta_out @ self.weights_hidden_output.T)
        self.weights_hidden_output += learning_rate * (self.hidden_out.T @ delta_out)
        self.bias_output += learning_rate * delta_out.sum(axis=0, keepdims=True)
        self.weights_input_hidden += learning_rate * (X.T @ delta_hidden)
        self.bias_hidden += learning_rate * delta_hidden.sum(axis=0, keepdims=True)


DRIVER = seed_style(lambda layers: TwoLayerNet(*layers), name="student")
