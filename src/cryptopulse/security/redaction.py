"""Keep key material out of logs, whatever a client puts where.

The server never logs a credential itself, but others log what clients send: uvicorn's
access log writes the request line with its query string, so a client that puts its key in
the URL (`?api_key=...`, which we do not accept) would leave it in every log. A filter on
those loggers replaces a key by its public part and a JWT by a marker before any handler
formats the record.
"""

from __future__ import annotations

import logging
import re

__all__ = ["REDACTED_LOGGERS", "RedactSecrets", "install_log_redaction", "redact"]

# A key's public part (prefix + 12-char id) stays readable; what follows is the secret.
_KEY = re.compile(r"(cpk_(?:live|test)_[0-9A-Za-z]{12})[0-9A-Za-z]+")
_JWT = re.compile(r"eyJ[0-9A-Za-z_-]{4,}\.[0-9A-Za-z_-]{4,}\.[0-9A-Za-z_-]*")

# Loggers that write client-supplied text: request lines, WebSocket frames at DEBUG.
REDACTED_LOGGERS = (
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
    "websockets.server",
    "gunicorn.access",
    "gunicorn.error",
)
# Their DEBUG records carry every SQL parameter (key hashes included): never below INFO.
_QUIET_LOGGERS = ("aiosqlite",)


def redact(text: str) -> str:
    """`text` with API keys cut to their public part and JWTs replaced."""
    if "cpk_" in text:
        text = _KEY.sub(r"\1[redacted]", text)
    if "eyJ" in text:
        text = _JWT.sub("[redacted-jwt]", text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (with its arguments merged in) if it holds a key or a
    JWT; never drops a record. Arguments may be objects (a WebSocket frame at DEBUG) whose
    text only exists once formatted, so the check runs on the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "cpk_" in message or "eyJ" in message:
            record.msg = redact(message)
            record.args = None
        return True


_FILTER = RedactSecrets()


def install_log_redaction(names: tuple[str, ...] = REDACTED_LOGGERS) -> None:
    """Add the filter to `names` (idempotent: a logger gets it once), and keep the loggers
    that trace SQL parameters at INFO or above."""
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
