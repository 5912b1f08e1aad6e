"""Plain data from a pickle, without running any of it.

Pickle calls whatever class or function a file names; a file of plain data names none.
This unpickler refuses every name, so a pickle can give back dicts, lists, strings and
numbers, and nothing else: a ``__reduce__`` payload fails before it can run.
"""

import io
import pickle
from typing import Any


class PlainDataError(ValueError):
    """The pickle holds more than plain data; the message says what it tried to load."""


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise PlainDataError(f"it names {module}.{name}, and only plain data is accepted")


def loads(data: bytes) -> Any:
    """The plain data pickled in ``data``; ``PlainDataError`` for anything else."""
    try:
        return _NoGlobals(io.BytesIO(data)).load()
    except PlainDataError:
        raise
    except Exception as exc:  # a truncated or corrupt pickle can raise nearly anything
        raise PlainDataError(f"it is not a readable pickle ({type(exc).__name__})") from None
