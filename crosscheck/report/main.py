"""The `crosscheck` command: the report (crosscheck/report/run.py), or one of its subcommands.

    crosscheck [options]                       the cross-check report
    crosscheck export [options] --out DIR      a problem for code in any language (crosscheck/report/export.py)
    crosscheck verify DIR RESULT.safetensors   the verdict on that code's result
    crosscheck op NAME=module:object [--kind]  one op's custom backward pass, by the op checks (crosscheck/report/op.py)
"""

import sys

from crosscheck.report import export, op
from crosscheck.report import run as report

SUBCOMMANDS = {"export": export.export_main, "verify": export.verify_main, "op": op.op_main}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    return report.main(argv)


if __name__ == "__main__":
    sys.exit(main())
