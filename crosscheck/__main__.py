"""python -m crosscheck: the `crosscheck` command (crosscheck/main.py: the report, export, verify)."""

import sys

from .main import main

sys.exit(main())
