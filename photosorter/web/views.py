"""The page's routes. Thin: read through the page's own connection, change through ``Desk`` on the sorter's
thread, answer JSON (the page draws itself with ``static/app.js``). Photos are served by id, never by path."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from string import Template
from typing import Any

from aiohttp import web

from photosorter.errors import PhotosorterError, RequestError
from photosorter.records import PhotoRecord, PhotoStatus
from photosorter.scorecard import read_runs
from photosorter.web.atlas import Atlas
from photosorter.web.context import WebContext
from photosorter.web.desk import folder_of, version_of

log = logging.getLogger(__name__)

TEMPLATE = Template((Path(__file__).parent / "templates" / "index.html").read_text(encoding="utf-8"))
INGRESS_PATH = re.compile(r"^(/[A-Za-z0-9_-]+)+$")
SPECIAL_FOLDERS = ("_unsure", "_failed", "_duplicates")
THUMB_PX, LARGE_PX = 320, 1600
QUEUE_MAX, QUEUE_FIRST, PAGE_SIZE, RECENT_LABELS = 60, 24, 60, 200  # QUEUE_FIRST: the page app.js gets (no limit given)
IMMUTABLE = "private, max-age=31536000, immutable"  # a photo id's bytes never change
CODE = re.compile(r"^\d{6}$")

Keys = tuple[web.AppKey[WebContext], web.AppKey[str], web.AppKey[ThreadPoolExecutor], web.AppKey[Atlas]]
View = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, context: web.AppKey[WebContext], token: web.AppKey[str],
               pool: web.AppKey[ThreadPoolExecutor], atlas: web.AppKey[Atlas]) -> None:
    keys: Keys = (context, token, pool, atlas)

    def bind(view: Callable[[web.Request, Keys], Awaitable[web.StreamResponse]]) -> View:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return await view(request, keys)
            except RequestError as exc:
                log.info("web: %s %s refused (%d): %s", request.method, request.path, exc.status, exc.message)
                return web.json_response({"error": exc.message}, status=exc.status)
            except PhotosorterError as exc:
                log.warning("web: %s %s failed: %s", request.method, request.path, exc.message)
                return web.json_response({"error": exc.message}, status=503 if exc.retryable else 500)
        return handler

    photo = r"{photo_id:\d{1,12}}"
    app.router.add_get("/", bind(index))
    app.router.add_get("/api/queue", bind(queue))
    app.router.add_get("/api/library", bind(library))
    app.router.add_get(f"/api/photo/{photo}", bind(photo_details))
    app.router.add_get("/api/health", bind(health))
    app.router.add_get("/api/map", bind(atlas_points))
    app.router.add_get(f"/thumb/{photo}", bind(thumbnail))
    app.router.add_get(f"/image/{photo}", bind(large_image))
    app.router.add_post("/api/label", bind(label))
    app.router.add_post("/api/label-many", bind(label_many))
    app.router.add_post("/api/undo", bind(undo))
    app.router.add_post("/api/me", bind(add_my_face))
    app.router.add_post("/api/me/remove", bind(remove_reference))
    app.router.add_post("/api/icloud/code", bind(icloud_code))


# helpers ------------------------------------------------------------------------------------------------
async def on_sorter(context: WebContext, work: Callable[[], Any]) -> Any:
    """Run a change (or a look at the index) on the sorter's thread and wait for it; when the sorter stays
    busy (another process holds the library), the change is called off and the page is told so."""
    future = context.submit(work)
    try:
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), context.sorter_wait_s)
    except TimeoutError:
        if future.cancel():  # not started: it never will be
            raise RequestError("photosorter is busy (sorting, or another command holds the library); nothing "
                               "changed, try again in a moment", status=503) from None
        return await asyncio.wrap_future(future)  # already under way: its answer comes


async def body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError("the request body is not JSON") from exc
    if not isinstance(data, dict):
        raise RequestError("the request body must be a JSON object")
    return data


def whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 1 << 53:
        raise RequestError(f"{what} must be a positive whole number")
    return value


def text(value: Any, what: str, max_len: int = 200) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise RequestError(f"{what} is missing or not text")
    return value


def item(record: PhotoRecord, *, unlabelled: bool = False) -> dict[str, Any]:
    """A photo in a grid; the queue's (never labelled) also carry the version a change names."""
    shown = {"id": record.id, "folder": folder_of(record), "category": record.category,
             "score": round(record.score or 0.0, 3), "unsure": record.status is PhotoStatus.UNSURE}
    return {**shown, "version": version_of(0, record)} if unlabelled else shown


def queue_page(context: WebContext, limit: int) -> dict[str, Any]:
    records, total = context.catalog.review_queue(limit)
    return {"total": total, "items": [item(r, unlabelled=True) for r in records]}


def script_json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: no ``<``, ``>`` or ``&`` in it can end the
    element or open a comment (JSON.parse reads the escapes back); HTML entities are not decoded there."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# pages --------------------------------------------------------------------------------------------------
async def index(request: web.Request, keys: Keys) -> web.StreamResponse:
    context = request.app[keys[0]]
    prefix = request.headers.get("X-Ingress-Path", "").rstrip("/")
    prefix = prefix if INGRESS_PATH.match(prefix) else ""
    categories = [{"name": c.name, "title": c.title} for c in context.categories]
    page = TEMPLATE.substitute(
        base=html.escape(prefix + "/"), token=html.escape(request.app[keys[1]]),
        categories=html.escape(json.dumps(categories)),
        queue=script_json(queue_page(context, QUEUE_FIRST)),  # the first paint needs no second request
        notice="" if context.allowed_remotes is not None else
        '<p class="notice">Standalone: anyone who can reach this port can relabel your photos.</p>')
    return web.Response(text=page, content_type="text/html")


async def queue(request: web.Request, keys: Keys) -> web.StreamResponse:
    """The photos most wanting a label, in the digest's order: _unsure first, then least sure."""
    context = request.app[keys[0]]
    asked = request.query.get("limit", "")
    limit = min(QUEUE_MAX, max(1, int(asked))) if asked.isdigit() and len(asked) < 6 else QUEUE_FIRST
    return web.json_response(queue_page(context, limit))


async def library(request: web.Request, keys: Keys) -> web.StreamResponse:
    context = request.app[keys[0]]
    folder = request.query.get("folder", "")
    if folder not in (*context.names, *SPECIAL_FOLDERS):
        raise RequestError(f"{folder!r} is not a library folder")
    page_text = request.query.get("page", "0")
    page = int(page_text) if page_text.isdigit() and len(page_text) < 9 else 0
    records, total = context.catalog.folder_page(folder, page * PAGE_SIZE, PAGE_SIZE)
    return web.json_response({"folder": folder, "page": page, "pages": max(1, -(-total // PAGE_SIZE)),
                              "total": total, "items": [item(r) for r in records]})


async def photo_details(request: web.Request, keys: Keys) -> web.StreamResponse:
    context = request.app[keys[0]]
    photo_id = int(request.match_info["photo_id"])
    return web.json_response(await on_sorter(context, lambda: context.desk.details(photo_id)))


async def health(request: web.Request, keys: Keys) -> web.StreamResponse:
    context = request.app[keys[0]]
    reader = context.reader
    recent = context.catalog.recent_labels(RECENT_LABELS)
    answer: dict[str, Any] = {
        "counts": reader.library_counts(), "labels": reader.label_counts(), "last_run": reader.last_run(),
        "corrections": {"labels": len(recent), "changed": sum(1 for new, old in recent if new != old)},
        "runs": [{k: run.get(k) for k in ("date", "model", "zero_shot", "knn", "blend")}
                 for run in read_runs(context.runs_log)[-20:]],
        "daemon": context.status is not None,
    }
    answer["references"] = await on_sorter(context, context.desk.references)
    if context.status is not None:
        status = await on_sorter(context, context.status)
        answer.update(icloud={"ok": status.auth.ok, "message": status.auth.message, "method": status.auth.method,
                              "reachable": status.auth.reachable},
                      last_sync=status.last_sync.isoformat() if status.last_sync else None,
                      problems=list(status.problems), drift=status.drift, paused=status.paused,
                      sync=None if status.sync is None else {"done": status.sync.done, "total": status.sync.total})
    else:
        answer["problems"] = reader.saved_attention(dt.datetime.now(dt.UTC))
    return web.json_response(answer)


async def atlas_points(request: web.Request, keys: Keys) -> web.StreamResponse:
    context, atlas = request.app[keys[0]], request.app[keys[3]]
    return web.Response(body=await atlas.payload(context.catalog.stamp()), content_type="application/json")


async def _image(request: web.Request, keys: Keys, size_px: int) -> web.StreamResponse:
    context = request.app[keys[0]]
    record = context.reader.photo(int(request.match_info["photo_id"]))
    if record is None or not record.library_path:
        raise RequestError("no such photo in the library", status=404)
    etag = f'"{record.sha256[:32]}-{size_px}"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag, "Cache-Control": IMMUTABLE})
    root = context.library.resolve()
    source = (context.library / record.library_path).resolve()
    if not source.is_relative_to(root):  # a link pointing out of the library is never followed
        raise RequestError("no such photo in the library", status=404)
    loop = asyncio.get_running_loop()
    data = await loop.run_in_executor(request.app[keys[2]], context.thumbnails.get, record.sha256, source, size_px)
    if data is None:
        raise RequestError("this photo cannot be read", status=404)
    return web.Response(body=data, content_type="image/jpeg", headers={"ETag": etag, "Cache-Control": IMMUTABLE})


async def thumbnail(request: web.Request, keys: Keys) -> web.StreamResponse:
    return await _image(request, keys, THUMB_PX)


async def large_image(request: web.Request, keys: Keys) -> web.StreamResponse:
    return await _image(request, keys, LARGE_PX)


# changes ------------------------------------------------------------------------------------------------
async def label(request: web.Request, keys: Keys) -> web.StreamResponse:
    context, data = request.app[keys[0]], await body(request)
    photo_id, category = whole(data.get("id"), "id"), text(data.get("category"), "category")
    version = data.get("version")
    version = text(version, "version", 2000) if version is not None else None
    return web.json_response(await on_sorter(context, lambda: context.desk.label(photo_id, category, version)))


async def label_many(request: web.Request, keys: Keys) -> web.StreamResponse:
    context, data = request.app[keys[0]], await body(request)
    ids = data.get("ids")
    if not isinstance(ids, list) or not ids or len(ids) > 2000:
        raise RequestError("ids must be a list of 1 to 2000 photo ids")
    photo_ids = [whole(i, "id") for i in dict.fromkeys(ids)]
    category = text(data.get("category"), "category")
    return web.json_response(await on_sorter(context, lambda: context.desk.label_many(photo_ids, category)))


async def undo(request: web.Request, keys: Keys) -> web.StreamResponse:
    context, data = request.app[keys[0]], await body(request)
    action = text(data.get("action"), "action", 64)
    return web.json_response(await on_sorter(context, lambda: context.desk.undo(action)))


async def add_my_face(request: web.Request, keys: Keys) -> web.StreamResponse:
    context, data = request.app[keys[0]], await body(request)
    photo_id, number = whole(data.get("id"), "id"), whole(data.get("face"), "face")
    return web.json_response(await on_sorter(context, lambda: context.desk.add_my_face(photo_id, number)))


async def remove_reference(request: web.Request, keys: Keys) -> web.StreamResponse:
    context, data = request.app[keys[0]], await body(request)
    reference = whole(data.get("reference"), "reference")
    return web.json_response(await on_sorter(context, lambda: context.desk.remove_reference(reference)))


async def icloud_code(request: web.Request, keys: Keys) -> web.StreamResponse:
    context, data = request.app[keys[0]], await body(request)
    code = str(data.get("code", "")).strip().replace(" ", "")
    if not CODE.match(code):
        raise RequestError("the code is the 6 digits Apple sent")
    if context.submit_code is None:
        raise RequestError("iCloud is not set up here (apple_id), or the daemon is not running", status=409)
    submit = context.submit_code
    state = await asyncio.get_running_loop().run_in_executor(request.app[keys[2]], submit, code)
    return web.json_response({"ok": state.ok, "message": state.message}, status=200 if state.ok else 422)
