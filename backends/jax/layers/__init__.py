"""Layer kinds in JAX, by family, mirroring reference/layers/ file for file and function for function."""

from crosscheck.common import walk
from crosscheck.common.registry import ACTIVATIONS
from crosscheck.reference.layers import ALIASES  # one definition: the reference's

from . import attention, conv, dense, norms, recurrent, shapes

FAMILIES = (dense, norms, conv, recurrent, attention, shapes)  # in the order the families' files are read


def _functions():
    """Every family's functions in one namespace, for the tables."""
    return {"__name__": __name__, **{name: fn for family in FAMILIES for name, fn in vars(family).items()}}


FORWARD: dict = {**walk.table(_functions(), walk.KINDS, "forward", aliases=ALIASES),
                 **dict.fromkeys(ACTIVATIONS, shapes.activation_layer_forward)}
BACKWARD = {**walk.table(_functions(), walk.KINDS, "backward", aliases=ALIASES),
            **dict.fromkeys(ACTIVATIONS, shapes.activation_layer_backward)}
# The kinds with buffers (registry LayerKind.buffers): the forward of evaluation mode, which reads them; their
# update after a training step, from the step's cache; their value before training.
EVALUATE = walk.table(_functions(), walk.BUFFERED, "evaluate")
RUNNING = walk.table(_functions(), walk.BUFFERED, "running")
BUFFERS = walk.table(_functions(), walk.BUFFERED, "buffers")
