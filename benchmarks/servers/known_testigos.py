"""``tasador serve`` as it is, but for the testigos search: each home's testigos are
searched once and then remembered. The answers are the same bytes; what the server spends
beside the real one (``benchmarks.run``'s paired rounds) is everything but the search.
Benchmark only: ``tasador serve`` searches for every request.

``python -m benchmarks.servers.known_testigos serve --port N`` (``tasador``'s arguments).
"""

import sys

from app.cli import main
from app.valuation.testigos import Found, Testigos

_search = Testigos.find
_known: dict[tuple[object, ...], Found] = {}


def _remembered(self: Testigos, *home: object) -> Found:
    """``Testigos.find`` of ``home`` (its arguments), searched the first time only."""
    found = _known.get(home)
    if found is None:
        found = _known[home] = _search(self, *home)  # type: ignore[arg-type]
    return found


if __name__ == "__main__":
    Testigos.find = _remembered  # type: ignore[method-assign,assignment]
    sys.exit(main(sys.argv[1:]))
