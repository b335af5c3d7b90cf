"""The README stays a front door and the documents it leads to hold together: every relative link reaches a file
and a heading in the repository, each document of docs/ has a table of contents, and none cites a document the
repository does not hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCUMENTS = [README, ROOT / "RELIABILITY.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def github_anchor(heading: str) -> str:
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCED.sub("", path.read_text(encoding="utf-8"))
    return {github_anchor(line) for line in text.splitlines() if line.startswith("#")}


def relative_links(path: Path) -> list[str]:
    text = FENCED.sub("", path.read_text(encoding="utf-8"))
    return [link for link in LINK.findall(text) if not re.match(r"[a-z]+:", link)]


def test_the_readme_is_read_in_five_minutes() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 120, f"README.md has {len(lines)} lines: move the depth to docs/"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file_and_heading_of_the_repository(document: Path) -> None:
    for link in relative_links(document):
        target, _, fragment = link.partition("#")
        resolved = (document.parent / target).resolve() if target else document
        assert resolved.is_relative_to(ROOT), f"{link} leaves the repository"
        assert resolved.exists(), f"{link}: no such file"
        if fragment and resolved.suffix == ".md":
            assert fragment in anchors(resolved), f"{link}: no such heading in {resolved.name}"


@pytest.mark.parametrize("document", sorted((ROOT / "docs").glob("*.md")), ids=lambda path: path.name)
def test_every_document_of_docs_has_a_table_of_contents(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert re.search(r"^(## )?Contents$", text, re.MULTILINE), f"{document.name} has no table of contents"
    assert re.search(r"\]\(#[^)]+\)", text), f"{document.name}'s contents link no section"


@pytest.mark.parametrize("document", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda path: path.name)
def test_no_document_cites_a_design_document_outside_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert not re.search(r"\bDESIGN\b|\.\./shared/", text), f"{document.name} cites a document outside the repository"
