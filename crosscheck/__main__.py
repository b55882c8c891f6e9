"""python -m crosscheck: the report (crosscheck/report.py), as the `crosscheck` command runs it."""

import sys

from .report import main

sys.exit(main())
