"""A program in any language as a backend: tensor files in and out (tensors.py: safetensors, the manifest's shapes
and dtypes) and the command driver that runs a program on them (command.py).

The room: imports the adapters' read-back machinery, the verdict's comparisons, the backends, the reference and
common; the diagnosis and the report (crosscheck export and verify) draw on it.
"""
