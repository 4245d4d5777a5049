"""Request dependencies, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Security
from starlette.requests import HTTPConnection

from cryptopulse.api._auth import authorize
from cryptopulse.runtime import Services
from cryptopulse.security import Principal


async def get_services(conn: HTTPConnection) -> Services:
    # async: FastAPI runs a plain `def` dependency in the thread pool, a hop per request.
    services: Services = conn.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def require_scope(*scopes: str) -> Any:
    """`Security(...)` for a route or router: authenticate, check `scopes`, rate-limit.
    Use at router level: `APIRouter(dependencies=[require_scope("signals:read")])`."""
    return Security(authorize, scopes=list(scopes))


# Any valid credential (or the public plan), no particular scope.
Authenticated = Annotated[Principal, Security(authorize)]
ReadMarket = Annotated[Principal, Security(authorize, scopes=["market:read"])]
ReadSignals = Annotated[Principal, Security(authorize, scopes=["signals:read"])]
WriteAlerts = Annotated[Principal, Security(authorize, scopes=["alerts:write"])]
WriteWebhooks = Annotated[Principal, Security(authorize, scopes=["webhooks:write"])]
AdminScope = Annotated[Principal, Security(authorize, scopes=["admin"])]
