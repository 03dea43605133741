"""The console at `/console` (static HTML, CSS and JS modules shipped in `static/`, no build step) and the JSON
admin API under `/admin/api/`, guarded by `HFBUS_ADMIN_KEY`.

No build step: the browsers the console targets run ES modules as they are, and a bundler would add a Node
toolchain to a Python package for a few hundred lines of script.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

from services.gateway.console import api_keys, api_models, api_status
from services.gateway.console.state import CONSOLE, Console, console_of

__all__ = ["CONSOLE", "Console", "add_console"]

STATIC = Path(str(resources.files(__package__).joinpath("static")))

# Everything comes from this origin; no inline script or style, no framing, no referrer.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The assets change with the package: always revalidate, never serve a stale console after an upgrade.
    "Cache-Control": "no-cache",
}


def add_console(app: web.Application, console: Console) -> None:
    app[CONSOLE] = console
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/console", _to_index)
    app.router.add_get("/console/", _index)
    app.router.add_static("/console/static/", STATIC, follow_symlinks=False)
    api = "/admin/api"
    app.router.add_post(f"{api}/session", _session)
    app.router.add_get(f"{api}/status", api_status.status)
    app.router.add_get(f"{api}/consumers", api_status.consumers)
    app.router.add_get(f"{api}/models", api_models.catalog)
    app.router.add_get(f"{api}/models/lookup", api_models.lookup)
    app.router.add_put(f"{api}/defaults/{{tag}}", api_models.set_defaults)
    app.router.add_delete(f"{api}/defaults/{{tag}}", api_models.clear_defaults)
    app.router.add_get(f"{api}/keys", api_keys.list_keys)
    app.router.add_post(f"{api}/keys", api_keys.create_key)
    app.router.add_delete(f"{api}/keys/{{name}}", api_keys.revoke_key)
    app.router.add_get(f"{api}/spend", api_keys.spend)
    app.router.add_get(f"{api}/activity", api_keys.activity)
    app.router.add_get(f"{api}/requests", api_keys.requests)
    app.router.add_post(f"{api}/playground-key", api_keys.playground_key)


async def _to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def _session(request: web.Request) -> web.Response:
    """Sign-in: 200 when the admin key is right; the console then sends it with every admin API call."""
    console_of(request)
    return api_status.json({"ok": True})


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(("/console", "/admin/")):
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
