"""GET /: the service's web page. Static files shipped in the package (reasoning_service/ui): no build
step, no CDN, nothing fetched from outside the service. The page holds no data and is public; its API
calls carry the bearer token when the service has one. `REASONING_UI_ENABLED=false` turns it off.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = Path(__file__).resolve().parent.parent / "ui"

# The page may load only its own files and call only its own origin: it works offline, and a
# script injected through a problem's text could not send anything elsewhere.
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The web page (public: it holds no data; its API calls carry the token when auth is on)."""
    return FileResponse(UI_DIR / "index.html", headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    """Serve the page at / and its files under /ui/."""
    app.include_router(router)
    app.mount("/ui", StaticFiles(directory=UI_DIR), name="ui")
