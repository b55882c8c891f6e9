"""Every registered op (common/registry.py), one line each: forward and backward on every built-in backend against
the reference, the framework's own vector-Jacobian product and central differences along random directions,
with edge values (kinks, saturation, large logits) in the inputs (crosscheck/ops.py)."""

import pytest

from crosscheck import ops


@pytest.mark.builtin
@pytest.mark.parametrize(("kind", "name"), ops.registered_ops(), ids=[n for _, n in ops.registered_ops()])
def test_op(driver, device, kind, name):
    assert ops.check_op(driver, kind, name, device)
