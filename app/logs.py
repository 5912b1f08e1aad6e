"""Where tasador's log lines go: beside uvicorn's, in the same format, in every worker.

Two formats: ``text``, uvicorn's own (the default, for a terminal), with no line per
request (``tasador serve`` turns uvicorn's access log off: it was the costliest part of a
request); and ``json`` (``TASADOR_LOG_FORMAT=json``, as the image and fly.toml set it), one
JSON object per line for every logger, with uvicorn's access log replaced by tasador's
request log (``app.request_log``), whose lines have the same first keys.
"""

import copy
import logging
import time
from typing import Any, Literal

import pythonjsonlogger.json
from pythonjsonlogger.core import RESERVED_ATTRS

LOGGER = "tasador"
LogFormat = Literal["text", "json"]
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
_RENAMED = {"asctime": "time", "levelname": "level", "name": "logger", "exc_info": "exception"}


class JsonFormatter(pythonjsonlogger.json.JsonFormatter):
    """A record as one JSON object: time (UTC, ms), level, logger, message[, exception],
    and any ``extra=`` fields; the same first keys as the request log's lines."""

    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message"],
            rename_fields=_RENAMED,
            # uvicorn adds a coloured copy of each message for its terminal formatter.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            json_ensure_ascii=False,
        )

    @staticmethod
    def converter(seconds: float | None) -> time.struct_time:
        """Times in UTC."""
        return time.gmtime(seconds)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Levels in lower case, as the request log writes them."""
        log_data["level"] = log_data["level"].lower()
        return log_data


def log_config(level: str, log_format: LogFormat = "text") -> dict[str, Any]:
    """uvicorn's logging set-up plus tasador's own logger (``tasador serve`` applies it);
    ``json``: every line a JSON object, and no access log (the request log replaces it)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"][LOGGER] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    if log_format == "json":
        json_formatter = {"()": f"{__name__}.JsonFormatter"}
        config["formatters"] = {"default": json_formatter, "access": json_formatter}
        config["loggers"]["uvicorn.access"] = {"handlers": [], "propagate": False}
    return config


def ensure_handler(level: str, log_format: LogFormat = "text") -> None:
    """Give tasador's logger uvicorn's console format when nothing else will show its lines
    (``uvicorn app.main:app`` configures only uvicorn's own loggers); with ``json``, turn
    uvicorn's lines into JSON too and its access log off."""
    if log_format == "json":
        _json_uvicorn()
    logger = logging.getLogger(LOGGER)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        from uvicorn.logging import DefaultFormatter

        handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())


def _json_uvicorn() -> None:
    """uvicorn's handlers (as ``uvicorn app.main:app`` set them up) in JSON; its access
    log off, which uvicorn checks on each new connection (``hasHandlers``)."""
    for name in _UVICORN_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(JsonFormatter())
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
