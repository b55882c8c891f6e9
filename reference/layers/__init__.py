"""Layer kinds, each a forward and a backward, in NumPy; the model (mlp.py) walks them in order.

forward(layer, p, x) -> (y, cache): the layer's output, and what its backward needs. Every cache
begins with (input, output).
backward(layer, p, cache, dy) -> (dx, dp): the gradient for the layer's input, and for its own
parameters p (a tuple shaped like p; () for a layer without parameters). The first layer's input is the
data, whose gradient nobody needs: there (layer.input_grad False) dx may be None.

The kinds live by family, a file each (FAMILIES: dense, norms, conv, recurrent, attention, shapes), and each backend's
layers/ mirrors them file for file. A new layer kind is a pair in its family's file, the same pair in each backend's,
and an entry in common/registry.py LAYERS; the tables below find it, and the walk does not change.
"""

from crosscheck.common import walk
from crosscheck.common.registry import ACTIVATIONS

from . import attention, conv, dense, norms, recurrent, shapes

FAMILIES = (dense, norms, conv, recurrent, attention, shapes)  # in the order the families' files are read


def _functions():
    """Every family's functions in one namespace, for the tables."""
    return {"__name__": __name__, **{name: fn for family in FAMILIES for name, fn in vars(family).items()}}


# One pair serves the three attentions: the rotation and the biases are branches of attention's.
ALIASES = {"rope_attention": "attention", "biased_attention": "attention"}
FORWARD: dict = {**walk.table(_functions(), walk.KINDS, "forward", aliases=ALIASES),
                 **dict.fromkeys(ACTIVATIONS, shapes.activation_layer_forward)}
BACKWARD = {**walk.table(_functions(), walk.KINDS, "backward", aliases=ALIASES),
            **dict.fromkeys(ACTIVATIONS, shapes.activation_layer_backward)}
# The kinds with buffers (registry LayerKind.buffers): the forward of evaluation mode, which reads them; their
# update after a training step, from the step's cache; their value before training.
EVALUATE = walk.table(_functions(), walk.BUFFERED, "evaluate")
RUNNING = walk.table(_functions(), walk.BUFFERED, "running")
BUFFERS = walk.table(_functions(), walk.BUFFERED, "buffers")
