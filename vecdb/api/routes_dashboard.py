"""The web dashboard at ``/dashboard``: static HTML, JS and CSS shipped in the package.

The page itself holds no data: its script calls the REST API like any other
client, with the API key the user types in. So the static files are served
without a key (as Qdrant serves its web UI), while every data route stays
behind it. Only the fixed set of files in :data:`ASSETS` is ever served; an
asset name is looked up, never joined into a path.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from vecdb.api.errors import error_response

_DIR = Path(__file__).resolve().parent / "dashboard"

ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
"""The files under ``/dashboard/``: name → content type. Nothing else there is served."""

DASHBOARD_PATHS = frozenset({"/dashboard", "/dashboard/", *(f"/dashboard/{name}" for name in ASSETS)})
"""Exactly the paths served without an API key: the page and its static files, no data."""

_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # defence in depth: the script renders data as text, and even if it did not, no inline script could run
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


def _file(name: str, media_type: str) -> Response:
    return Response((_DIR / name).read_bytes(), media_type=media_type, headers=_HEADERS)


@router.get("/dashboard")
def dashboard() -> Response:
    return _file("index.html", "text/html; charset=utf-8")


@router.get("/dashboard/")
def dashboard_slash() -> Response:
    # the page loads its assets relative to "/dashboard", so it has one address; relative, for a proxy prefix
    return RedirectResponse("../dashboard", status_code=308)


@router.get("/dashboard/{asset}")
def dashboard_asset(asset: str) -> Response:
    media_type = ASSETS.get(asset)
    if media_type is None:
        return error_response(404, f"Not found: no dashboard file {asset!r}")
    return _file(asset, media_type)
