"""Problem details (RFC 9457) from the API, raised as one exception class per status."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "ProblemError",
    "RateLimited",
    "ServerError",
    "StreamClosed",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
    "problem_from",
]


class ProblemError(Exception):
    """An error answer of the API, with the fields of its problem document.

    `errors` lists bad fields (`{"field": ..., "message": ...}`) on a 422; `retry_after`
    is the `Retry-After` header in seconds, when the server sent one.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type: str | None = None,  # noqa: A002  (the RFC 9457 member's name)
        instance: str | None = None,
        request_id: str | None = None,
        errors: list[dict[str, str]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {title}" + (f": {detail}" if detail else ""))
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.instance = instance
        self.request_id = request_id
        self.errors = errors or []
        self.retry_after = retry_after


class BadRequest(ProblemError):
    """400: a malformed request."""


class Unauthorized(ProblemError):
    """401: no credential, or an unknown, expired or revoked one."""


class Forbidden(ProblemError):
    """403: the credential lacks a scope this needs."""


class NotFound(ProblemError):
    """404: an unknown instrument, symbol, sector, key..."""


class Conflict(ProblemError):
    """409: the request clashes with the current state."""


class ValidationFailed(ProblemError):
    """422: invalid parameters; `errors` names each bad field."""


class RateLimited(ProblemError):
    """429: over the plan's rate limit or quota (after the client's own retries)."""


class ServerError(ProblemError):
    """5xx other than 503."""


class Unavailable(ServerError):
    """503: a backing service is down (after the client's own retries)."""


class StreamClosed(Exception):
    """The stream ended for good: a close the client must not retry (1008, 4029)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"stream closed: {code} {reason}".strip())
        self.code = code
        self.reason = reason


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: RateLimited,
    503: Unavailable,
}


def retry_after_of(headers: Any) -> float | None:
    """`Retry-After` in seconds (delta-seconds only; the API never sends a date)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def problem_from(status: int, body: bytes, headers: Any) -> ProblemError:
    """The exception for an error response (a problem document, or anything else)."""
    try:
        doc = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ProblemError)
    return cls(
        status,
        str(doc.get("title") or f"HTTP {status}"),
        doc.get("detail"),
        type=doc.get("type"),
        instance=doc.get("instance"),
        request_id=doc.get("request_id") or headers.get("x-request-id"),
        errors=doc.get("errors"),
        retry_after=retry_after_of(headers),
    )
