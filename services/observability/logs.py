"""Log output: one JSON object per line (or plain text), the level from settings, one line per finished request.

Secrets are never logged in the first place; the formatters also replace anything shaped like a HuggingFace token
with `hf_***`, as a second line of defence.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any, Literal, TextIO

import orjson

from services.observability.metrics import RequestRecord

EXTRA_KEY = "hfbus"
"""`extra={"hfbus": {...}}` on a log call: these fields become top-level keys of the JSON line."""

_TOKEN = re.compile(r"hf_[A-Za-z0-9]{8,}")
_TOKEN_BYTES = re.compile(rb"hf_[A-Za-z0-9]{8,}")
_CORE_KEYS = frozenset({"ts", "level", "logger", "msg", "exc", "stack"})


def redact(text: str) -> str:
    """Replace every HuggingFace-token-shaped word with `hf_***`."""
    return _TOKEN.sub("hf_***", text)


def _timestamp(record: logging.LogRecord) -> str:
    """RFC 3339, UTC, milliseconds: 2024-05-01T12:00:00.123Z."""
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(record.created))}.{int(record.msecs):03d}Z"


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    fields = record.__dict__.get(EXTRA_KEY)
    return fields if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the `hfbus` extra fields, and `exc` for tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _extra(record).items():
            if str(key) not in _CORE_KEYS:  # an extra field never hides what the line is
                line[str(key)] = value
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # Redacting the encoded line covers keys, nested values and whatever `default=str` rendered.
        encoded = orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS)
        return _TOKEN_BYTES.sub(b"hf_***", encoded).decode()


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...` for a terminal, redacted like the JSON lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if fields := _extra(record):
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return redact(text)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time, as logging's last-resort handler does (test capture)."""

    hfbus = True

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current stderr."""


def configure_logging(level: str, fmt: Literal["json", "text"] = "json") -> None:
    """Install one stderr handler on the root logger (replacing the one a previous call installed).

    Raises `ValueError` naming HFBUS_LOG_LEVEL when `level` is not a logging level name.
    """
    levels = logging.getLevelNamesMapping()
    name = level.strip().upper()
    if name not in levels:
        raise ValueError(f"HFBUS_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {level!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "hfbus", False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(levels[name])
    # One line per probe or scrape would drown the request lines.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def log_request(logger: logging.Logger, record: RequestRecord) -> None:
    """One INFO line `request finished` carrying every field of `record`."""
    if not logger.isEnabledFor(logging.INFO):
        return  # before building the line's fields: at WARNING this runs per request for nothing
    logger.info(
        "request finished",
        extra={
            EXTRA_KEY: {
                "id": record.request_id,
                "tag": record.tag,
                "model": record.model,
                "provider": record.provider,
                "outcome": record.outcome,
                "attempt": record.attempt,
                "ttft_ms": _ms(record.ttft_s),
                "duration_ms": _ms(record.duration_s),
                "tokens_in": record.tokens_in,
                "tokens_out": record.tokens_out,
                "cost_usd": record.cost_usd,
                "router_request_id": record.router_request_id,
            }
        },
    )
