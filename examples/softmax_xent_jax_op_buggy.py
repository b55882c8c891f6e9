"""examples/softmax_xent_jax_op.py with one planted mistake: its gradient is not divided by the number of rows.

    crosscheck op xent=examples.softmax_xent_jax_op_buggy:OP

L = -1/N sum_n sum_k y log softmax(z), N the rows (every position of a sequence a row); dL/dz = (softmax(z) - y) / N.
"""

import jax
import jax.numpy as jnp

from crosscheck.adapters import custom_vjp


@jax.custom_vjp
def softmax_xent(z, y):
    return -jnp.sum(y * jax.nn.log_softmax(z, axis=-1)) / (z.size // z.shape[-1])


def _forward(z, y):
    return softmax_xent(z, y), (jax.nn.softmax(z, axis=-1), y)


def _backward(saved, dloss):
    p, y = saved
    return dloss * (p - y), None  # planted: the mean's 1/N left out of the gradient


softmax_xent.defvjp(_forward, _backward)

OP = custom_vjp(softmax_xent, kind="softmax_cross_entropy", name="xent-buggy",
                dtypes=("float64", "float32", "bfloat16"))
