"""RFC 9457 problem details for every error, with the request id; never a stack trace."""

from __future__ import annotations

import functools
import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://cryptopulse.dev/problems/"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.errors = errors
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}


def not_found(detail: str) -> ProblemError:
    return ProblemError(404, "not-found", "Not Found", detail)


def invalid_field(field: str, message: str) -> ProblemError:
    """422 naming one bad field, shaped like a validation error."""
    return ProblemError(
        422,
        "validation",
        "Unprocessable Content",
        f"invalid: {field}",
        errors=[{"field": field, "message": message}],
    )


def problem_response(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request.scope.get("state", {}).get("request_id"),
    }
    if errors is not None:
        body["errors"] = errors
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "body", "header"):
        parts = parts[1:] or parts
    return ".".join(parts)


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# Seconds a client should wait after a 503 for a dependency outage: recovery is automatic.
RETRY_AFTER_S = 2


def _outage_types() -> tuple[type[Exception], ...]:
    """Exceptions meaning a dependency (PostgreSQL, Redis) is unreachable, not a bug."""
    from redis import exceptions as redis_errors
    from sqlalchemy import exc as sql_errors

    from cryptopulse.bus.base import BusUnavailable

    return (
        sql_errors.OperationalError,
        sql_errors.InterfaceError,
        sql_errors.TimeoutError,  # no pooled connection within database_pool_timeout_s
        redis_errors.ConnectionError,
        redis_errors.TimeoutError,
        BusUnavailable,
        ConnectionError,
        TimeoutError,
    )


class UnhandledErrorMiddleware:
    """Innermost middleware: an exception no handler took becomes the 500 problem here,
    inside the other middlewares, so the response carries the request id and the security
    headers like any other (Starlette answers it from its outermost middleware otherwise).
    The exception is logged, not re-raised: the response is the end of it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # too late for a problem response: the server closes the connection
                raise
            request = Request(scope)
            log.exception("unhandled error on %s", request.url.path, exc_info=exc)
            response = problem_response(request, 500, "internal", "Internal Server Error")
            await response(scope, receive, send)


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request, exc.status, exc.slug, exc.title, exc.detail, exc.errors, exc.headers
    )


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_name(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    names = ", ".join(sorted({e["field"] for e in errors}))
    return problem_response(
        request, 422, "validation", "Unprocessable Content", f"invalid: {names}", errors
    )


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    title = _TITLES.get(exc.status_code, "Error")
    slug = title.lower().replace(" ", "-")
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    return problem_response(
        request, exc.status_code, slug, title, detail, headers=dict(exc.headers or {})
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return problem_response(request, 500, "internal", "Internal Server Error")


async def _on_outage(request: Request, exc: Exception) -> Response:
    log.warning("dependency unavailable on %s: %s", request.url.path, type(exc).__name__)
    return problem_response(
        request,
        503,
        "unavailable",
        "Service Unavailable",
        "a backing service (database or message bus) is unreachable; retry shortly",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


@functools.cache
def _handlers() -> dict[type[Exception], Any]:
    handlers: dict[type[Exception], Any] = dict.fromkeys(_outage_types(), _on_outage)
    handlers[ProblemError] = _on_problem
    handlers[RequestValidationError] = _on_validation
    handlers[StarletteHTTPException] = _on_http
    handlers[Exception] = _on_unexpected
    return handlers


async def error_response(request: Request, exc: Exception) -> Response:
    """The problem response the app's handlers give `exc`: the handler of the nearest
    class in its MRO, as Starlette chooses (for code that answers outside the stack)."""
    handlers = _handlers()  # `Exception` is one of them: every exception finds one
    handler = next(handlers[cls] for cls in type(exc).__mro__ if cls in handlers)
    response: Response = await handler(request, exc)
    return response


def install(app: FastAPI) -> None:
    for exc_class, handler in _handlers().items():
        app.add_exception_handler(exc_class, handler)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": title, "content": {PROBLEM_JSON: {}}}
    for status, title in (
        (404, "Unknown instrument"),
        (422, "Invalid parameters"),
        (500, "Internal error"),
        (503, "A backing service is unreachable (with Retry-After)"),
    )
}
