"""A stand-in for the Supervisor's ingress proxy: serves an add-on's page under
``/api/hassio_ingress/<token>/``, strips that prefix and sends it along as ``X-Ingress-Path``, as Home
Assistant does. Runs on a free loopback port on its own thread (the page's own ``WebServer``)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from photosorter.web.app import WebServer

PASSED_HEADERS = ("Content-Type", "Cache-Control", "ETag", "Content-Security-Policy", "X-Content-Type-Options")


class IngressProxy:
    token = "x7Qm2kP9_ingress-token"

    def __init__(self, target_port: int) -> None:
        self.target = f"http://127.0.0.1:{target_port}"
        self.prefix = f"/api/hassio_ingress/{self.token}"
        self.paths: list[str] = []  # what reached the add-on, after the prefix
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.server = WebServer(app, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}{self.prefix}/"

    def start(self) -> IngressProxy:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        raw = request.rel_url.raw_path
        if not raw.startswith(self.prefix + "/"):
            return web.Response(status=404, text="not an ingress path")
        path = raw[len(self.prefix):]
        self.paths.append(path)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        headers["X-Ingress-Path"] = self.prefix
        query = f"?{request.rel_url.raw_query_string}" if request.rel_url.raw_query_string else ""
        async with aiohttp.ClientSession(auto_decompress=False) as session, session.request(
                request.method, self.target + path + query, headers=headers, data=await request.read(),
                allow_redirects=False) as answer:
            body = await answer.read()
            passed = {k: answer.headers[k] for k in PASSED_HEADERS if k in answer.headers}
            return web.Response(status=answer.status, body=body, headers=passed)
