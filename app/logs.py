"""Where tasador's log lines go: beside uvicorn's, in the same format, in every worker."""

import copy
import logging
from typing import Any

LOGGER = "tasador"


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging set-up plus tasador's own logger (``tasador serve`` applies it)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"][LOGGER] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def ensure_handler(level: str) -> None:
    """Give tasador's logger uvicorn's console format when nothing else will show its lines
    (``uvicorn app.main:app`` configures only uvicorn's own loggers)."""
    logger = logging.getLogger(LOGGER)
    if logger.handlers or logging.getLogger().handlers:
        return
    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
