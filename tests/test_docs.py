"""The README's and docs' links: every relative link and picture names a file of the project, and every #anchor a
heading of the file it points into (a README section that moves to docs/ must not leave dead links behind)."""
import glob
import os
import re

import pytest

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = ["README.md", "bench/NOTES.md", "tests/MUTATION.md"] + sorted(
    os.path.relpath(path, PROJECT) for path in glob.glob(os.path.join(PROJECT, "docs", "*.md")))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading):
    """GitHub's id for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    with open(path, encoding="utf-8") as handle:
        text = re.sub(r"```.*?```", "", handle.read(), flags=re.S)
    return {github_anchor(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def relative_links(document):
    with open(os.path.join(PROJECT, document), encoding="utf-8") as handle:
        text = re.sub(r"```.*?```", "", handle.read(), flags=re.S)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def test_github_anchor_follows_githubs_rule():
    assert github_anchor(" Other pictures, same defaults (512 px, CPU)") == "other-pictures-same-defaults-512-px-cpu"
    assert github_anchor("The `--jobs` file: one row per job") == "the---jobs-file-one-row-per-job"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_relative_link_names_a_file_and_a_heading_that_exist(document):
    folder = os.path.dirname(os.path.join(PROJECT, document))
    dead = []
    for target in relative_links(document):
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(folder, path)) if path else os.path.join(PROJECT, document)
        if not os.path.exists(full):
            dead.append(f"{target}: no such file")
        elif anchor and full.endswith(".md") and anchor not in anchors(full):
            dead.append(f"{target}: no such heading")
    assert not dead, f"{document}: " + "; ".join(dead)
