"""The suite's generators: the cases the agreement tests and the report run (cases.py), the seeds' own loops retraced
(seedloops.py), and the pytest plug-in that gives `pytest --pyargs crosscheck_tests` its options (pytest_plugin.py).

The room: imports the reference and common only (the cases are data; every room above draws on them).
"""
