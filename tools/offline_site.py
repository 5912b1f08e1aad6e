"""Check that a built documentation site loads nothing from the network.

``python -m tools.offline_site site/`` lists every asset (script, stylesheet, font, image,
frame) that a page or stylesheet of the built site would fetch over http(s), and exits 1
if there is any: the docs must read offline. Links a reader may follow (``<a href>``) are
not assets and are allowed.
"""

import re
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
# url(...) and @import "..." in stylesheets, quoted or not.
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)|@import\s+['"]([^'"]+)""", re.IGNORECASE)
# The attributes through which a browser fetches something by itself.
FETCHED = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "audio": ("src",),
    "video": ("src", "poster"),
    "embed": ("src",),
    "object": ("data",),
}
# <link> relations a browser fetches (a canonical or alternate link is only an address).
FETCHED_LINKS = {"stylesheet", "icon", "preload", "prefetch", "modulepreload", "manifest",
                 "apple-touch-icon", "preconnect", "dns-prefetch"}  # fmt: skip


class _Assets(HTMLParser):
    """The addresses of what a page's tags would fetch, and its inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "link" and FETCHED_LINKS & set(values.get("rel", "").lower().split()):
            self.addresses.append(values.get("href", ""))
        for name in FETCHED.get(tag, ()):
            if name in values:
                self.addresses.extend(part.split()[0] for part in values[name].split(",") if part)
        if "style" in values:
            self.styles.append(values["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def _css_addresses(text: str) -> Iterator[str]:
    for found in CSS_URL.finditer(text):
        yield found.group(1) or found.group(2)


def remote_assets(site: Path) -> list[str]:
    """``file: address`` for every asset of ``site`` fetched over the network, sorted."""
    found: list[str] = []
    for page in sorted(site.rglob("*.html")):
        parser = _Assets()
        parser.feed(page.read_text(encoding="utf-8"))
        addresses = [*parser.addresses, *(a for s in parser.styles for a in _css_addresses(s))]
        found += [f"{page.relative_to(site)}: {a}" for a in addresses if REMOTE.match(a)]
    for sheet in sorted(site.rglob("*.css")):
        in_sheet = _css_addresses(sheet.read_text(encoding="utf-8"))
        found += [f"{sheet.relative_to(site)}: {a}" for a in in_sheet if REMOTE.match(a)]
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m tools.offline_site SITE_DIR (a built site)", file=sys.stderr)
        return 2
    found = remote_assets(Path(args[0]))
    for line in found:
        print(f"fetched from the network: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
