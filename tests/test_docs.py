"""README.md is the front page and docs/ the reference: the front page stays short, every page is in the site's
navigation, every link between them lands on a page and a heading that exist, and the figures they quote from the
registries are the registries' own."""

import re

import pytest

from crosscheck.diagnosis.catalogue import BUGS
from crosscheck.suite.cases import CASES
from crosscheck.suite.tiers import DEFAULT

from .source import ROOT, needs_source_tree

pytestmark = needs_source_tree

FRONT_PAGE_LIMIT = 20_000  # characters: what it is, the two commands, an example, where to read on
LINK = re.compile(r"\]\(([^)#\s]*\.md)?(?:#([^)\s]+))?\)")


def _text(name):
    return (ROOT / name).read_text(encoding="utf-8")


def _anchors(markdown):
    """The ids MkDocs' toc extension gives the headings: lower case, punctuation dropped, spaces as dashes."""
    headings = re.findall(r"^#{1,6} (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.S), flags=re.M)
    return {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", h.strip().lower())) for h in headings}


def _pages():
    return sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))


def test_the_front_page_is_short():
    assert len(_text("README.md")) <= FRONT_PAGE_LIMIT, "README.md is the front page: move the detail to docs/"


def test_every_page_is_in_the_sites_navigation_and_every_entry_is_a_page():
    nav = re.findall(r"^\s*- [^:]+: (\S+\.md)\s*$", _text("mkdocs.yml"), flags=re.M)
    assert sorted(nav) == _pages()


@pytest.mark.parametrize("source", ["README.md", *(f"docs/{page}" for page in _pages())])
def test_every_link_lands_on_a_page_and_a_heading(source):
    base = (ROOT / source).parent
    text = _text(source)
    broken = []
    for target, anchor in LINK.findall(text):
        path = (base / target).resolve() if target else ROOT / source
        if target and not path.is_file():
            broken.append(f"{target} (no such page)")
        elif anchor and anchor not in _anchors(path.read_text(encoding="utf-8")):
            broken.append(f"{target}#{anchor} (no such heading)")
    assert not broken, f"{source}: " + "; ".join(broken)


def test_the_catalogues_size_is_quoted_as_it_is():
    for source in ("README.md", "docs/index.md", "docs/catalogue.md"):
        quoted = {int(n) for n in re.findall(r"(\d+) (?:classic )?(?:manual-backprop )?mistakes", _text(source))}
        assert quoted == {len(BUGS)}, f"{source} quotes {sorted(quoted)} mistakes; the catalogue holds {len(BUGS)}"


def test_the_default_tiers_size_is_quoted_as_it_is():
    quoted = re.findall(r"(\d+) of the (\d+), in float64 and float32", _text("docs/contributing.md"))
    first = [c for c in CASES if not c.second]
    assert quoted == [(str(len(DEFAULT)), str(len(first)))], f"tiers.py makes {len(DEFAULT)} of {len(first)}"


def test_the_ci_script_runs_the_front_pages_test_command_and_builds_the_docs():
    readme, ci = _text("README.md"), _text(".ci/run")
    command = re.search(r"# Set up and pass the tests.*\n.*&& (tox -e \w+)", readme).group(1)
    # .ci/run runs each environment through tox_env, which removes it once it has passed (disk, not reuse)
    assert 'tox_env() { python3 -m tox -e "$1"; rm -rf ".tox/$1"; }\n' in ci
    assert f"\n{command.replace('tox -e', 'tox_env')}\n" in ci
    assert "\ntox_env docs\n" in ci
