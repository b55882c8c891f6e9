"""The worked notebooks in examples/notebooks, executed headless as a user runs them (`tox -e notebook`, in .ci/run).

Each notebook is copied into an empty temporary folder and run there with nbclient on the environment's own Python
kernel (ipykernel), so nothing of the checkout is importable: the installed wheel alone. A notebook fails on any cell
that raises (their asserts included: a correct network agrees, a planted copy does not). Then what a reader sees is
checked: every cell that shows a Report (`report`, `slipped`) renders HTML holding the table and the plot as an inline
PNG, and the planted copy's diagnosis names its mistake. Exits 1, saying which, if any of this does not hold.
"""

import shutil
import sys
import tempfile
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "examples" / "notebooks"
# What each notebook must show, beyond running clean: (a string in some cell's HTML or text output, why).
EXPECTED = {"check_your_net.ipynb": [
    ("<table>", "the report's table, as HTML"),
    ("data:image/png;base64,", "the plot, inline"),
    ("AGREE: mine matches the NumPy reference", "the correct network agrees"),
    ("DISAGREE: planted did not match the NumPy reference", "the planted copy disagrees"),
    ("[sigmoid-derivative-from-z]", "the planted copy's mistake, named"),
    ("assert_agrees raised: DISAGREE", "assert_agrees() raises on the planted copy"),
]}


def _outputs(notebook):
    """Every output of every code cell, as text: HTML, plain text, printed streams and errors."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            yield "".join(data.get("text/html", "")) + "".join(data.get("text/plain", "")) + output.get("text", "")


def main():
    import nbformat
    from nbclient import NotebookClient

    failures = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        with tempfile.TemporaryDirectory(prefix="crosscheck-notebook-") as folder:
            copy = Path(folder) / path.name
            shutil.copy(path, copy)
            notebook = nbformat.read(copy, as_version=4)
            try:
                NotebookClient(notebook, timeout=600, kernel_name="python3",
                               resources={"metadata": {"path": folder}}).execute()
            except Exception as exc:  # noqa: BLE001  (a cell raised: report it, go on to the next notebook)
                failures.append(f"{path.name}: {type(exc).__name__}: {str(exc)[-2000:]}")
                continue
        shown = "\n".join(_outputs(notebook))
        for needle, why in EXPECTED.get(path.name, []):
            print(f"{path.name}: {why}: {'yes' if needle in shown else 'NO'}")
            if needle not in shown:
                failures.append(f"{path.name}: {why}: {needle!r} is in no output")
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"\nthe notebooks in {NOTEBOOKS.name}/ ran clean and show what they should")
    return 0


if __name__ == "__main__":
    sys.exit(main())
