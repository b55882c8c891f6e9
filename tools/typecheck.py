"""mypy over the package as it installs (`tox -e lint`): crosscheck/ with the repository's common/, reference/ and
backends/ in their installed places, crosscheck.common, .reference and .backends (pyproject.toml's package-dir).

mypy has no notion of package-dir: run on the checkout as it lies, it would check common/ as a package called
`common` and leave every `crosscheck.common` import unresolved. So this lays the installed tree out in a temporary
folder of links, runs mypy there with pyproject.toml's settings, and prints its findings under the checkout's paths.
Exits with mypy's status.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAPPED = ("common", "reference", "backends")


def main():
    with tempfile.TemporaryDirectory(prefix="crosscheck-typecheck-") as stage:
        tree = Path(stage) / "crosscheck"
        tree.mkdir()
        for entry in (ROOT / "crosscheck").iterdir():
            if entry.name != "__pycache__":
                (tree / entry.name).symlink_to(entry)
        for name in MAPPED:
            (tree / name).symlink_to(ROOT / name)
        done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                               "crosscheck", *sys.argv[1:]], cwd=stage, capture_output=True, text=True, check=False)
    out = done.stdout + done.stderr
    for name in MAPPED:  # crosscheck/common/x.py is the checkout's common/x.py
        out = out.replace(f"crosscheck/{name}/", f"{name}/")
    print(out, end="")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
