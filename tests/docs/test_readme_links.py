"""The README's links into the repository (docs pages, CHANGELOG.md) lead somewhere.

``mkdocs build --strict`` checks the links inside docs/; the README lies outside the site,
so its links are checked here."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# [text](target) where target is not a web address or an anchor of the same page.
LINK = re.compile(r"\]\((?!https?://|#)([^)\s]+)\)")


def test_every_relative_link_of_the_readme_names_a_file_of_the_repository() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [target.split("#")[0] for target in LINK.findall(text)]

    assert targets, "the README links to its docs"
    missing = [target for target in targets if not (ROOT / target).is_file()]
    assert missing == []
