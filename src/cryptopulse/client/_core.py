"""What the async and the sync client share: configuration, retries, decoding, paging."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel

from cryptopulse.client.errors import problem_from, retry_after_of

M = TypeVar("M", bound=BaseModel)
T_co = TypeVar("T_co", covariant=True)

RETRY_STATUSES = frozenset({429, 503})
USER_AGENT = "cryptopulse-python"


class Page(Protocol[T_co]):
    """A cursor-paged response: its rows and the cursor of the next page."""

    @property
    def data(self) -> Sequence[T_co]: ...

    @property
    def next_cursor(self) -> str | None: ...


@dataclass
class RetryPolicy:
    """How 429 and 503 answers are retried: at most `attempts` more times, waiting what
    `Retry-After` says (or an exponential backoff with jitter without one), and giving up at
    once when the server asks for longer than `max_wait_s`."""

    attempts: int = 3
    max_wait_s: float = 30.0
    backoff_s: float = 0.5

    def wait_s(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying `response`, or None: do not retry it."""
        if response.status_code not in RETRY_STATUSES or attempt >= self.attempts:
            return None
        wait = retry_after_of(response.headers)
        if wait is None:
            wait = self.backoff_s * 2**attempt * (0.5 + random.random() / 2)  # noqa: S311
        return wait if wait <= self.max_wait_s else None


@dataclass
class Credentials:
    """An API key, optionally exchanged for JWTs that are renewed before they expire."""

    api_key: str | None = None
    token: str | None = None
    use_jwt: bool = False
    expires_at: float = 0.0
    # Renew this long before expiry (JWTs live 30 s at the least).
    margin_s: float = field(default=10.0)

    def needs_token(self) -> bool:
        return self.use_jwt and (
            self.token is None or time.time() > self.expires_at - self.margin_s
        )

    def set_token(self, token: str, expires_in: int) -> None:
        self.token = token
        self.expires_at = time.time() + expires_in
        self.margin_s = min(self.margin_s, expires_in / 4)

    def bearer(self) -> str | None:
        return self.token if self.token is not None else self.api_key


def headers_for(credential: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"} if credential else {}


def query(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Query parameters without the unset ones (httpx would send `None` as empty)."""
    return {k: v for k, v in (params or {}).items() if v is not None}


def checked(response: httpx.Response) -> httpx.Response:
    """The response, or its problem document raised as a typed exception."""
    if response.is_error:
        raise problem_from(response.status_code, response.content, response.headers)
    return response


def decode(model: type[M], response: httpx.Response) -> M:
    return model.model_validate_json(checked(response).content)


def token_form(scope: str | None) -> dict[str, str]:
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    return form
