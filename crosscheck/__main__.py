"""python -m crosscheck: the `crosscheck` command (crosscheck/report/main.py: the report, export, verify)."""

import sys

from crosscheck.report.main import main

sys.exit(main())
