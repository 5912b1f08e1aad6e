"""The JSON log format: every logger's lines, with the request log's first keys."""

import json
import logging
import re
import sys

from app.logs import JsonFormatter


def _line(message: str, **kwargs: object) -> dict[str, object]:
    record = logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, message, (), None)
    record.__dict__.update(kwargs)
    line: dict[str, object] = json.loads(JsonFormatter().format(record))
    return line


def test_a_line_has_the_request_logs_first_keys_and_no_colour_copy() -> None:
    # uvicorn logs each message with a coloured copy for its terminal formatter.
    line = _line("Started server process [1]", color_message="\x1b[36m1\x1b[0m", worker=2)

    assert line == {
        "time": line["time"],
        "level": "warning",
        "logger": "uvicorn.error",
        "message": "Started server process [1]",
        "worker": 2,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["time"]))


def test_an_exception_is_one_field_of_the_same_line() -> None:
    try:
        raise ValueError("ñandú")
    except ValueError:
        line = _line("failed", exc_info=sys.exc_info())

    assert line["message"] == "failed"
    assert str(line["exception"]).endswith("ValueError: ñandú")
