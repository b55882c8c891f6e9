"""examples/optimizer_object_numpy.py with one planted mistake in its Adam: the bias correction one step ahead,
1 - beta^(t + 1) where it is 1 - beta^t.

    crosscheck --implementation mine=examples.optimizer_object_numpy_buggy:DRIVER --backends mine ...
"""

from examples import optimizer_object_numpy as correct


class Adam(correct.Adam):
    def corrections(self):
        return 1 - self.beta1 ** (self.t + 1), 1 - self.beta2 ** (self.t + 1)  # planted: should be ** self.t


DRIVER = correct.driver(Adam)
