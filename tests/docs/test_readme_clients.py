"""The client code of the README and of docs/api/clients.md (curl, Python, JavaScript), run
as written against a live server of the embedded model: each block must print what its page
shows it prints."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import EMBEDDED_MODEL_DIR
from tests.helpers import ServerFactory, require_program
from tools.process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
# Each page with client code, and the languages of its blocks, in order.
PAGES = {
    "README.md": ["bash"],
    "docs/api/clients.md": ["bash", "python", "javascript"],
}
START, END = "<!-- clients:start -->", "<!-- clients:end -->"
README_URL = "http://127.0.0.1:8000"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
PRINTS = re.compile(r"^(?:#|//) prints:$", re.MULTILINE)
NODE_MAJOR = 18


def client_blocks(page: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block between the page's client markers."""
    text = (ROOT / page).read_text(encoding="utf-8")
    section = text[text.index(START) + len(START) : text.index(END)]
    return BLOCK.findall(section)


def expected_output(code: str) -> list[str]:
    """The lines shown after the block's ``prints:`` comment, without the comment mark."""
    found = PRINTS.search(code)
    assert found, "every client block ends with what it prints"
    lines = code[found.end() :].strip().splitlines()
    return [re.sub(r"^(#|//) ?", "", line) for line in lines]


def matches(shown: str, printed: str) -> bool:
    """``printed`` is ``shown``, where each ``…`` in ``shown`` stands for any text."""
    pattern = ".*".join(re.escape(part) for part in shown.split("…"))
    return re.fullmatch(pattern, printed) is not None


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory) -> ServerProcess:
    """tasador serving the embedded model, as the examples assume."""
    return server_factory(model_dir=EMBEDDED_MODEL_DIR)


def _command(language: str, code: str, tmp_path: Path) -> list[str]:
    if language == "bash":
        require_program("curl", "apt-get install curl")
        return ["bash", "-euo", "pipefail", "-c", code]
    if language == "python":
        return [sys.executable, "-c", code]
    if language == "javascript":
        node = require_program("node", f"Node.js {NODE_MAJOR} or later (apt-get install nodejs)")
        version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
        major = int(version.stdout.strip().lstrip("v").split(".")[0])
        assert major >= NODE_MAJOR, f"the docs' JavaScript needs Node {NODE_MAJOR}+"
        script = tmp_path / "tasar.mjs"
        script.write_text(code, encoding="utf-8")
        return [node, str(script)]
    raise AssertionError(f"no way to run a {language!r} block")


@pytest.mark.parametrize(("page", "languages"), PAGES.items())
def test_each_page_has_its_client_code(page: str, languages: list[str]) -> None:
    assert [language for language, _ in client_blocks(page)] == languages


@pytest.mark.parametrize(
    ("language", "code"),
    [
        pytest.param(*block, id=f"{page}-{block[0]}")
        for page in PAGES
        for block in client_blocks(page)
    ],
)
def test_client_code_prints_what_its_page_shows(
    language: str, code: str, server: ServerProcess, tmp_path: Path
) -> None:
    assert README_URL in code
    run = subprocess.run(
        _command(language, code.replace(README_URL, server.url), tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert run.returncode == 0, run.stderr
    printed = run.stdout.strip().splitlines()
    shown = expected_output(code)
    assert len(printed) == len(shown), run.stdout
    for shown_line, printed_line in zip(shown, printed, strict=True):
        assert matches(shown_line, printed_line), (shown_line, printed_line)
