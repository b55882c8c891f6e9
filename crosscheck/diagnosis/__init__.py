"""What went wrong, when the verdict says something did: the catalogue of mistakes people make in backprop
(catalogue.py), the way each is planted in a backend's source in memory (mutations.py), and the diagnosis that plants
them in the reference and matches the disagreeing implementation's results (diagnose.py).

The room: imports the verdict, the suite's cases, the backends, the reference and common; only the report above it.
"""
