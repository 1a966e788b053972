"""The API docs page (Swagger UI) from vendored assets, and the static files route."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static"
DOCS_PATH = "/docs"


def docs_page(openapi_url: str, title: str) -> str:
    """The HTML of the docs page: local CSS and scripts only, no inline script."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{STATIC_PATH}/swagger-ui/swagger-ui.css">
<link rel="icon" type="image/png" href="{STATIC_PATH}/swagger-ui/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>
<script src="{STATIC_PATH}/swagger-ui/swagger-ui-bundle.js"></script>
<script src="{STATIC_PATH}/docs.js"></script>
</body>
</html>
"""


def mount(app: FastAPI, *, docs_enabled: bool) -> None:
    """Serve ``/static`` always and ``/docs`` when enabled (the OpenAPI JSON is always served)."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
    if not docs_enabled:
        return
    page = docs_page(app.openapi_url or "/openapi.json", f"{app.title} – API")

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> HTMLResponse:
        """The Swagger UI page."""
        return HTMLResponse(page)
