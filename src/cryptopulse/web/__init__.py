"""The dashboard: built static files (from `web/`, `make web`) served by the API at `/`.

The page is plain static HTML, one script and one stylesheet under `/assets/`; it talks to
this server's `/v1` REST routes and `/v1/stream` with the API key the user typed, kept in
the browser tab's session storage. The strict page CSP is in `api/_hardening.py`.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC", "install"]

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Serve the dashboard at `/` and its assets at `/assets/` (not in the OpenAPI document)."""
    index = STATIC / "index.html"

    async def dashboard() -> FileResponse:
        return FileResponse(index, media_type="text/html; charset=utf-8")

    app.add_api_route("/", dashboard, methods=["GET"], include_in_schema=False)
    app.mount("/assets", StaticFiles(directory=STATIC / "assets"), name="assets")
