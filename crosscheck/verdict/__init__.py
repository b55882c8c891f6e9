"""The verdict: whether two implementations agree, and by how much they may differ.

tolerances.py (the one table of bounds and the float32 rule), compare.py (shape, dtype, finiteness, then values),
findings.py (every result computed once, and the reference's runs under rounding that derive the bounds), checks.py
(gradients, first steps, trajectories, evaluation), vote.py (which implementation is the odd one out), probes.py
(precision and gradient-check probes), and the op checks: ops.py, op_inputs.py, op_vote.py.

The room: imports the suite's cases, the backends, the reference and common; nothing above it (the adapters, the
exchange, the diagnosis and the report all draw on it).
"""
