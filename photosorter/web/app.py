"""The page's HTTP server: aiohttp, run on its own thread and event loop beside the daemon.

Why aiohttp: one small, long-kept library that is the server, the router, static files and a test
client, with no second process (uvicorn) or framework layer (starlette) to ship in the add-on image.

Rules every request passes (``guard``): under the add-on only the Supervisor's ingress proxy may
connect; POSTs carry the page's CSRF token; answers are never cached by a proxy, never framed by
another site and never sniffed. Links are relative to ``<base href>``, which is the ``X-Ingress-Path``
prefix the proxy sends, so every link, image and form works under it.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from photosorter.web import views
from photosorter.web.atlas import Atlas
from photosorter.web.context import WebContext

log = logging.getLogger(__name__)

INGRESS_PROXY = "172.30.32.2"  # the Supervisor's ingress proxy, the only caller inside the add-on
STATIC = Path(__file__).parent / "static"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTEXT = web.AppKey("context", WebContext)
TOKEN = web.AppKey("csrf_token", str)
POOL = web.AppKey("pool", ThreadPoolExecutor)
ATLAS = web.AppKey("atlas", Atlas)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
                               "frame-ancestors 'self'; form-action 'self'",
}


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    context = request.app[CONTEXT]
    if context.allowed_remotes is not None and request.remote not in context.allowed_remotes:
        log.warning("web: refused a request from %s (only Home Assistant's ingress proxy may connect)",
                    request.remote)
        return web.json_response({"error": "only Home Assistant's ingress may open this page"}, status=403)
    if request.method not in ("GET", "HEAD"):
        sent = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent.encode(), request.app[TOKEN].encode()):
            log.warning("web: refused a %s to %s without the page's token", request.method, request.path)
            return web.json_response({"error": "missing or stale page token: reload the page"}, status=403)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # no such route or file, wrong method: the same JSON shape as ours
        response = web.json_response({"error": exc.reason}, status=exc.status)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def build_app(context: WebContext, *, token: str | None = None) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app[CONTEXT] = context
    app[TOKEN] = token or secrets.token_urlsafe(32)
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="web")  # thumbnails and the map, off the loop
    app[POOL] = pool
    app[ATLAS] = Atlas(context.map_source or context.catalog, context.model_id, context.names, pool)

    async def close(app: web.Application) -> None:
        pool.shutdown(wait=True, cancel_futures=True)  # a map being made finishes before its connection closes

    async def warm(app: web.Application) -> None:
        """Make the map and the review queue's thumbnails now, so the first visit finds them ready."""
        app[ATLAS].warm(context.catalog.stamp())
        loop = asyncio.get_running_loop()
        for record in context.catalog.review_queue(views.QUEUE_MAX)[0]:
            loop.run_in_executor(pool, context.thumbnails.get, record.sha256,
                                 context.library / (record.library_path or ""), views.THUMB_PX)

    app.on_startup.append(warm)
    app.on_cleanup.append(close)
    views.add_routes(app, CONTEXT, TOKEN, POOL, ATLAS)
    app.router.add_static("/static/", STATIC, append_version=False)
    return app


class WebServer:
    """The page served from a thread of its own (the daemon's loop keeps the main thread)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)
        self._runner: web.AppRunner | None = None
        self._error: BaseException | None = None
        self.on_stop: list[Callable[[], None]] = []  # closed after the server stopped

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port)
            self._loop.run_until_complete(site.start())
            self.port = int(self._runner.addresses[0][1])  # the port bound (when 0 asked for any free one)
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        for close in self.on_stop:
            close()
