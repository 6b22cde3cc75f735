"""Helpers for the web page tests: a sorted library made on the fly and a small HTTP client of the page."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photosorter.cli.build import build_sorter, open_state
from photosorter.cli.web import start_web
from photosorter.config import Settings, load_settings
from photosorter.records import StatusSnapshot
from tests.conftest import write_photo

COLOURS = [(220, 20, 20), (20, 200, 40), (30, 40, 220), (230, 200, 30), (200, 30, 200), (20, 200, 200),
           (120, 120, 120), (250, 250, 250), (10, 10, 10), (240, 130, 20), (90, 60, 30), (150, 200, 90)]


def library_settings(tmp_path: Path, model: Path, **options: Any) -> Settings:
    values = {"library": tmp_path / "library", "data": tmp_path / "data", "model": model, "faces": False,
              "unsure_margin": 0.99, "settle_seconds": 0, **options}
    return load_settings(values, environ={}, dotenv_path=tmp_path / "no.env")


def sort_photos(settings: Settings, inbox: Path, count: int = 12) -> None:
    for i in range(count):
        write_photo(inbox, f"photo{i:02d}.jpg", COLOURS[i % len(COLOURS)], size=(160, 120), noise_seed=i)
    state = open_state(settings)
    try:
        build_sorter(settings, state).sort_folder(inbox)
    finally:
        state.close()


@dataclass
class Page:
    """What a browser does, one request at a time, without a browser (raw paths are sent as they are)."""

    port: int
    token: str = ""
    prefix: str = ""

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                *, source: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """``source``: the loopback address to send from (any of 127.0.0.0/8), instead of 127.0.0.1."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30,
                                                source_address=(source, 0) if source else None)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def open(self, headers: dict[str, str] | None = None) -> str:
        status, _, body = self.request("GET", "/", headers=headers)
        assert status == 200, body
        page = body.decode()
        self.token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        return page

    def get_json(self, path: str) -> tuple[int, Any]:
        status, _, body = self.request("GET", path)
        return status, json.loads(body)

    def post(self, path: str, payload: Any, *, token: str | None = None) -> tuple[int, Any]:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        status, _, body = self.request("POST", path, raw, {"Content-Type": "application/json",
                                                           "X-CSRF-Token": self.token if token is None else token})
        return status, json.loads(body)


@contextmanager
def serving(settings: Settings, *, open_page: bool = True, worker: ThreadPoolExecutor | None = None,
            sorter_wait_s: float = 30.0, status: Callable[[], StatusSnapshot] | None = None) -> Iterator[Page]:
    """``photosorter web`` in this process on a free port: the real app, sorter and state file (``status``:
    the running daemon's, as ``run`` gives it)."""
    state = open_state(settings)
    sorter = build_sorter(settings, state)
    worker = worker or ThreadPoolExecutor(max_workers=1)
    server = start_web(settings, sorter, worker.submit, port=0, sorter_wait_s=sorter_wait_s, status=status)
    try:
        page = Page(server.port)
        if open_page:
            page.open()
        yield page
    finally:
        server.stop()
        worker.shutdown()
        state.close()
