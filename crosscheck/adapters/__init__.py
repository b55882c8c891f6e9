"""Adapters: check an implementation as it is written, without rewriting it.

Each builds a Driver around code in one of the forms people write backprop in:

- seed_style(factory) (crosscheck/adapters/loops.py, with the next two): a class in the first seed's style, weights as
attributes, feedforward(X) returning the
  output and backward(X, y, learning_rate) updating the weights in place;
- step_function(step): the second seed's loop body as a function of arrays,
  step(w1, b1, w2, b2, X, d, lr) -> (w1, b1, w2, b2), or updating them in place;
- nielsen(factory): Michael Nielsen's Network (lists of biases and weights, samples as columns,
  backprop(x, y) -> (nabla_b, nabla_w) per sample, update_mini_batch(mini_batch, eta)).
- gradient_function(grads) (crosscheck/adapters/gradients.py): manual backprop as a function of framework
  tensors, grads(params, X, y) -> (loss, [(dW, db), ...]), makemore's "backprop ninja" style;
- named_gradients(grads, params=...) (the same module): any model the registry builds, its leaves by name,
  running statistics included (makemore part 4);
- cs231n(layers, optim) (crosscheck/adapters/layer_pairs.py): CS231n assignment 2's layer functions and update rules;
- autograd_function(Fn, kind=...), custom_vjp(f, kind=...), numpy_pair(forward, backward, kind=...)
  (crosscheck/adapters/custom_ops.py): a custom backward pass for one op, checked by the op checks alone.

An adapter sets the parameters from the shared seed, runs the code, and reads the parameters back. Where the
code only updates (seed_style, step_function) the gradients are implied by the update: W_before - W_after at a
learning rate of 1 (exact in binary, so only W's rounding remains), and the same step at a learning rate of 1/2
must move half as far; one that does not is a wrong update rule (the learning rate missing, or applied twice),
reported as such rather than as a wrong gradient. Each declares what it supports (its layers, activation, loss,
batching, dtypes); every other configuration is skipped with the reason.

    from crosscheck.adapters import seed_style
    DRIVER = seed_style(lambda layers: NeuralNetwork(*layers), name="mine")

then `pytest --pyargs crosscheck_tests --implementation mine=my_module:DRIVER --backends mine`.

The room: the adapters import the verdict (compare, findings, the op checks), backends, the reference and common; the
verdict never imports them (AdapterError, which both raise, lives in common/errors.py).
"""

from crosscheck.adapters.custom_ops import autograd_function, custom_vjp, numpy_pair
from crosscheck.adapters.gradients import gradient_function, named_gradients
from crosscheck.adapters.layer_pairs import cs231n
from crosscheck.adapters.loops import nielsen, seed_style, step_function
from crosscheck.common.errors import AdapterError

__all__ = ["AdapterError", "autograd_function", "cs231n", "custom_vjp", "gradient_function", "named_gradients",
           "nielsen", "numpy_pair", "seed_style", "step_function"]
