"""The same student network with one planted mistake, to show what the suite says about it.

    pytest --implementation buggy=examples.student_nn_buggy:DRIVER --backends buggy

The mistake: the hidden layer's slope is taken from its input (the pre-activation)
where the formula s (1 - s) needs its output, a classic slip.
"""

from crosscheck.adapters import seed_style
from examples.student_nn import TwoLayerNet


class BuggyNet(TwoLayerNet):
    def hidden_delta(self, back):
        return back * self.slope(self.hidden_in)  # planted: should be self.hidden_out


DRIVER = seed_style(lambda layers: BuggyNet(*layers), name="buggy")
