"""API keys, kept as SHA-256 digests and compared in constant time.

``python -m app.keys KEY`` prints the digest to put in ``TASADOR_API_KEYS`` instead of the
key itself, so the service's environment never holds a usable key.
"""

import hashlib
import hmac
import logging
import sys
from collections.abc import Iterable

from app.config import DIGEST_PREFIX

log = logging.getLogger("tasador")


def digest(key: str) -> str:
    """The ``sha256:<hex>`` form of a key."""
    return DIGEST_PREFIX + hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """The configured keys, as digests."""

    def __init__(self, configured: Iterable[str]) -> None:
        configured = list(configured)
        plain = [k for k in configured if not k.startswith(DIGEST_PREFIX)]
        if plain:
            log.warning(
                "%d API key(s) configured in plain text: give their digests instead "
                "(python -m app.keys KEY prints one)",
                len(plain),
            )
        self._digests = [
            bytes.fromhex(k.removeprefix(DIGEST_PREFIX))
            if k.startswith(DIGEST_PREFIX)
            else hashlib.sha256(k.encode()).digest()
            for k in configured
        ]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def accepts(self, presented: str) -> bool:
        """Whether ``presented`` is one of the keys; the time taken does not depend on
        which, or on how much of it matches."""
        candidate = hashlib.sha256(presented.encode()).digest()
        found = False
        for known in self._digests:  # every digest compared, no early exit
            found |= hmac.compare_digest(candidate, known)
        return found


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m app.keys KEY", file=sys.stderr)
        sys.exit(2)
    print(digest(sys.argv[1]))
