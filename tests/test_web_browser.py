"""The page as a person uses it: a real headless Chromium, the real daemon (``photosorter run`` with
``web_port``), a real mosquitto, and the page opened under Home Assistant's ingress prefix."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photosorter.config import Settings
from tests.servers.ingress import IngressProxy
from tests.servers.mosquitto import Listener, Mosquitto, free_port, wait_for_port
from tests.test_sort_folder import files_under
from tests.webpage import library_settings, sort_photos

pytestmark = pytest.mark.slow


@pytest.fixture
def daemon(tmp_path: Path, tiny_model: Path, anonymous_mosquitto: Mosquitto) -> Iterator[tuple[Settings, int]]:
    settings = library_settings(tmp_path, tiny_model)
    sort_photos(settings, tmp_path / "inbox")
    port = free_port()
    env = {**os.environ, "PHOTOSORTER_LIBRARY": str(settings.library.path),
           "PHOTOSORTER_DATA": str(settings.library.data), "PHOTOSORTER_MODEL": str(tiny_model),
           "PHOTOSORTER_FACES": "false", "PHOTOSORTER_UNSURE_MARGIN": "0.99",
           "PHOTOSORTER_WEB_PORT": str(port), "PHOTOSORTER_MQTT_HOST": anonymous_mosquitto.host,
           "PHOTOSORTER_MQTT_PORT": str(anonymous_mosquitto.port)}
    env.pop("SUPERVISOR_TOKEN", None)
    log = (tmp_path / "daemon.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "photosorter", "run"], env=env, stdout=log,
                               stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        assert wait_for_port(port, 60), (tmp_path / "daemon.log").read_text()
        yield settings, port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def library_files(settings: Settings) -> list[str]:
    return [p.relative_to(settings.library.path).as_posix() for p in files_under(settings.library.path)]


def test_label_three_photos_by_keyboard_undo_one_and_open_a_photo_under_ingress(
        daemon: tuple[Settings, int], chromium: Any, anonymous_mosquitto: Mosquitto) -> None:
    settings, port = daemon
    before = {p.rsplit("/", 1)[1]: p.split("/")[0] for p in library_files(settings)}
    listener = Listener(anonymous_mosquitto, "photosorter/state")
    proxy = IngressProxy(port).start()
    page = chromium.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(proxy.url)
        page.wait_for_selector("#queue .card")
        cards = page.locator("#queue .card")
        ids = [int(cards.nth(i).get_attribute("data-id")) for i in range(3)]
        guess = page.locator("#queue .card").first.locator(".caption span").first.inner_text()

        def gone(photo_id: int) -> None:
            page.wait_for_function(f"() => !document.querySelector('#queue .card[data-id=\"{photo_id}\"]')")

        page.keyboard.press("Enter")  # accept the guess
        gone(ids[0])
        page.keyboard.press("0")  # the 10th category: beer
        gone(ids[1])
        page.keyboard.press("8")  # the 8th: food
        gone(ids[2])
        page.keyboard.press("u")  # take the last one back
        page.wait_for_selector(f"#queue .card[data-id=\"{ids[2]}\"]")
        page.locator(f"#queue .card[data-id=\"{ids[2]}\"]").dblclick()
        page.wait_for_selector("#large")
        page.wait_for_function("() => document.getElementById('large').naturalWidth > 0")
        assert page.url.startswith(proxy.url) and page.url.endswith(f"#/photo/{ids[2]}")
        assert "not labelled" in page.locator(".side").inner_text()
    finally:
        page.close()
        proxy.stop()
    assert all(url.startswith(proxy.url) for url in requested), [u for u in requested if not u.startswith(proxy.url)]
    assert "/api/undo" in proxy.paths and all(not p.startswith("/api/hassio_ingress") for p in proxy.paths)

    with sqlite3.connect(settings.library.data / "state.sqlite3") as db:
        labels = db.execute("SELECT photo_id, category, source FROM labels ORDER BY id").fetchall()
        paths = dict(db.execute("SELECT id, library_path FROM photos").fetchall())
    assert labels == [(ids[0], guess, "web"), (ids[1], "beer", "web")]
    after = {p.rsplit("/", 1)[1]: p.split("/")[0] for p in library_files(settings)}
    assert paths[ids[0]].split("/")[0] == guess and paths[ids[1]].split("/")[0] == "beer"
    name = paths[ids[2]].rsplit("/", 1)[1]
    assert after[name] == before[name]  # the undone photo is back where it was
    assert sum(folder == "beer" for folder in after.values()) == 1 and len(after) == len(before)

    state = listener.wait_for_message(
        "photosorter/state", lambda m: m.json()["library"]["beer"] == 1, timeout_s=30).json()
    assert state["library"][guess] == sum(folder == guess for folder in after.values())
    assert state["unsure"] == sum(folder == "_unsure" for folder in after.values())
    listener.close()
