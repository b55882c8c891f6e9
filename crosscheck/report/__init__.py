"""The `crosscheck` command: its options (cli.py), the report's run (run.py) and its table and plot (summary.py),
crosscheck export and verify for code in any language (export.py), and the entry that chooses among them (main.py).

The room: the top; it may import every room below (diagnosis, exchange, adapters, verdict, suite, backends,
reference, common), and nothing imports it.
"""
