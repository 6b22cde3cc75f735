"""The page as a person uses it: a real headless Chromium, the real daemon (``photosorter run`` with
``web_port``), a real mosquitto, and the page opened under Home Assistant's ingress prefix."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from photosorter.cli.build import build_sorter, open_state
from photosorter.config import Settings
from tests.conftest import shared_path
from tests.servers.fake_icloud import FakeICloud
from tests.servers.ingress import IngressProxy
from tests.servers.mosquitto import Listener, Message, Mosquitto, free_port, wait_for_port
from tests.test_sort_folder import files_under
from tests.webpage import library_settings, sort_photos

pytestmark = pytest.mark.slow


@contextmanager
def running_daemon(settings: Settings, model: Path, broker: Mosquitto, **env_extra: str) -> Iterator[int]:
    """``photosorter run`` with the web page on a free port; yields the port."""
    port = free_port()
    env = {**os.environ, "PHOTOSORTER_LIBRARY": str(settings.library.path),
           "PHOTOSORTER_DATA": str(settings.library.data), "PHOTOSORTER_MODEL": str(model),
           "PHOTOSORTER_FACES": "false", "PHOTOSORTER_UNSURE_MARGIN": "0.99",
           "PHOTOSORTER_WEB_PORT": str(port), "PHOTOSORTER_MQTT_HOST": broker.host,
           "PHOTOSORTER_MQTT_PORT": str(broker.port), **env_extra}
    env.pop("SUPERVISOR_TOKEN", None)
    log_path = settings.library.data / "daemon.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "photosorter", "run"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=settings.library.data)
        try:
            assert wait_for_port(port, 60), log_path.read_text()
            yield port
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def daemon(tmp_path: Path, tiny_model: Path, anonymous_mosquitto: Mosquitto) -> Iterator[tuple[Settings, int]]:
    settings = library_settings(tmp_path, tiny_model)
    sort_photos(settings, tmp_path / "inbox")
    with running_daemon(settings, tiny_model, anonymous_mosquitto) as port:
        yield settings, port


def library_files(settings: Settings) -> list[str]:
    return [p.relative_to(settings.library.path).as_posix() for p in files_under(settings.library.path)]


def test_label_four_photos_by_keyboard_undo_one_and_open_a_photo_under_ingress(
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
        assert not any(p.startswith("/api/queue") for p in proxy.paths)  # drawn from the page's own data
        cards = page.locator("#queue .card")
        ids = [int(cards.nth(i).get_attribute("data-id")) for i in range(4)]
        guesses = [cards.nth(i).locator(".caption span").first.inner_text() for i in range(4)]

        def gone(photo_id: int) -> None:
            page.wait_for_function(f"() => !document.querySelector('#queue .card[data-id=\"{photo_id}\"]')")

        page.keyboard.press("Enter")  # accept the guess
        gone(ids[0])
        page.keyboard.press("0")  # the 10th category: beer
        gone(ids[1])
        page.keyboard.press("a")  # accept the guess, like Enter
        gone(ids[2])
        page.keyboard.press("8")  # the 8th: food
        gone(ids[3])
        page.keyboard.press("u")  # take the last one back
        page.wait_for_selector(f"#queue .card[data-id=\"{ids[3]}\"]")
        page.locator(f"#queue .card[data-id=\"{ids[3]}\"]").dblclick()
        page.wait_for_selector("#large")
        page.wait_for_function("() => document.getElementById('large').naturalWidth > 0")
        assert page.url.startswith(proxy.url) and page.url.endswith(f"#/photo/{ids[3]}")
        assert "not labelled" in page.locator(".side").inner_text()
    finally:
        page.close()
        proxy.stop()
    assert all(url.startswith(proxy.url) for url in requested), [u for u in requested if not u.startswith(proxy.url)]
    assert "/api/undo" in proxy.paths and all(not p.startswith("/api/hassio_ingress") for p in proxy.paths)

    with sqlite3.connect(settings.library.data / "state.sqlite3") as db:
        labels = db.execute("SELECT photo_id, category, source FROM labels ORDER BY id").fetchall()
        paths = dict(db.execute("SELECT id, library_path FROM photos").fetchall())
    assert labels == [(ids[0], guesses[0], "web"), (ids[1], "beer", "web"), (ids[2], guesses[2], "web")]
    after = {p.rsplit("/", 1)[1]: p.split("/")[0] for p in library_files(settings)}
    assert [paths[i].split("/")[0] for i in ids[:3]] == [guesses[0], "beer", guesses[2]]
    name = paths[ids[3]].rsplit("/", 1)[1]
    assert after[name] == before[name]  # the undone photo is back where it was
    beer = 1 + (guesses[2] == "beer")  # no photo was in beer before
    assert sum(folder == "beer" for folder in after.values()) == beer and len(after) == len(before)

    state = listener.wait_for_message(
        "photosorter/state", lambda m: m.json()["library"]["beer"] == beer, timeout_s=30).json()
    assert state["library"][guesses[0]] == sum(folder == guesses[0] for folder in after.values())
    assert state["unsure"] == sum(folder == "_unsure" for folder in after.values())
    listener.close()


def test_the_map_draws_every_photo_a_click_opens_one_and_a_box_labels_many(
        daemon: tuple[Settings, int], chromium: Any) -> None:
    settings, port = daemon
    proxy = IngressProxy(port).start()
    page = chromium.new_page(viewport={"width": 1000, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(proxy.url + "#/map")
        page.wait_for_function("() => document.body.dataset.mapDrawn !== undefined")
        assert "12 photos" in page.locator(".legend").inner_text()
        points = page.evaluate("() => fetch('api/map').then((r) => r.json())")
        box = page.locator("#map-canvas").bounding_box()
        scale = box["width"] / page.evaluate("() => document.getElementById('map-canvas').width")
        x = box["x"] + (16 + points["x"][0] * (box["width"] / scale - 32)) * scale
        y = box["y"] + (16 + (1 - points["y"][0]) * (box["height"] / scale - 32)) * scale
        page.mouse.move(x, y)
        page.wait_for_selector("#tip img[src^='thumb/']")
        hovered = page.locator("#tip").get_attribute("data-id")
        page.mouse.down()
        page.mouse.up()
        page.wait_for_selector("#large")
        assert hovered in {str(i) for i in points["ids"]} and page.url.endswith(f"#/photo/{hovered}")
        page.evaluate("() => { delete document.body.dataset.mapDrawn; }")
        page.goto(proxy.url + "#/map")  # a box around everything labels every photo at once
        page.wait_for_selector("body[data-map-drawn]")
        page.mouse.move(box["x"] + 9, box["y"] + 9)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.move(box["x"] + box["width"] + 20, box["y"] + box["height"] + 20)  # ending outside is fine
        page.mouse.up()
        assert "12 photos selected" in page.locator("#selection").inner_text() and not errors
        page.click("#selection button[data-category='scenery']")
        page.wait_for_function("() => document.getElementById('flash').textContent.includes('labelled 12')")
    finally:
        page.close()
        proxy.stop()
    with sqlite3.connect(settings.library.data / "state.sqlite3") as db:
        assert db.execute("SELECT COUNT(*), MIN(category), MAX(category) FROM labels").fetchone() == \
            (12, "scenery", "scenery")
    assert {p.split("/")[0] for p in library_files(settings)} == {"scenery"}


def login_needed(message: Message) -> str:
    return str(message.json()["icloud"]["login_needed"])


def test_a_2fa_code_entered_on_the_health_page_signs_in_to_icloud(
        tmp_path: Path, tiny_model: Path, anonymous_mosquitto: Mosquitto, fake: FakeICloud, chromium: Any) -> None:
    settings = library_settings(tmp_path, tiny_model)
    sort_photos(settings, tmp_path / "inbox", count=3)
    env = {"APPLE_ID": fake.apple_id, "APPLE_PASSWORD": fake.password, "PHOTOSORTER_ICLOUD_SERVER": fake.url,
           "REQUESTS_CA_BUNDLE": str(fake.cert), "CURL_CA_BUNDLE": str(fake.cert)}
    with running_daemon(settings, tiny_model, anonymous_mosquitto, **env) as port:
        listener = Listener(anonymous_mosquitto, "photosorter/state")
        listener.wait_for_message("photosorter/state", lambda m: login_needed(m) == "ON", timeout_s=30)
        listener.clear()  # from here on, only what the daemon says after the code counts
        proxy = IngressProxy(port).start()
        page = chromium.new_page()
        try:
            page.goto(proxy.url + "#/health")
            page.wait_for_selector("#icloud input[name=code]")
            page.fill("#icloud input[name=code]", "000000")
            page.click("#icloud button[type=submit]")
            page.wait_for_selector("#flash.error")
            page.fill("#icloud input[name=code]", fake.code)
            page.click("#icloud button[type=submit]")
            page.wait_for_selector("#icloud .ok")
            assert "Signed in" in page.locator("#icloud").inner_text()
        finally:
            page.close()
            proxy.stop()
        # the daemon itself is signed in, as Home Assistant sees it
        listener.wait_for_message("photosorter/state", lambda m: login_needed(m) == "OFF", timeout_s=30)
        listener.close()


def test_a_face_marked_as_me_becomes_a_reference_face_and_can_be_removed(
        tmp_path: Path, tiny_model: Path, anonymous_mosquitto: Mosquitto, chromium: Any) -> None:
    faces_folder = shared_path("models", "faces")
    portrait = shared_path("faces", "me", "deepface__tests_unit_dataset_img1.jpg")
    settings = library_settings(tmp_path, tiny_model, faces=True, face_model=str(faces_folder))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(portrait, inbox / "portrait.jpg")
    state = open_state(settings)
    try:
        build_sorter(settings, state).sort_folder(inbox)
    finally:
        state.close()
    with running_daemon(settings, tiny_model, anonymous_mosquitto, PHOTOSORTER_FACES="true",
                        PHOTOSORTER_FACE_MODEL=str(faces_folder)) as port:
        proxy = IngressProxy(port).start()
        page = chromium.new_page()
        try:
            page.goto(proxy.url + "#/photo/1")
            page.wait_for_selector(".frame .face")
            page.click("button[data-me-face='1']")
            page.wait_for_selector("button[data-remove-reference]")
            assert "me" in page.locator(".frame .face").first.inner_text()
            with sqlite3.connect(settings.library.data / "state.sqlite3") as db:
                assert db.execute("SELECT photo_id, number FROM me_faces").fetchall() == [(1, 1)]
                assert db.execute("SELECT category FROM labels").fetchall() == [("me",)]
            page.goto(proxy.url + "#/health")  # the reference faces are listed there too, with a way out
            page.click("#references button[data-remove-reference]")
            page.wait_for_function("() => document.getElementById('references').textContent.includes('No reference')")
        finally:
            page.close()
            proxy.stop()
    with sqlite3.connect(settings.library.data / "state.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM me_faces").fetchone() == (0,)
    assert [p.relative_to(settings.library.path).as_posix() for p in files_under(settings.library.path)] == \
        ["me/portrait.jpg"]


def test_a_double_click_on_a_category_labels_one_photo(daemon: tuple[Settings, int], chromium: Any) -> None:
    settings, port = daemon
    page = chromium.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#queue .card.selected")
        first = int(page.locator("#queue .card.selected").get_attribute("data-id"))
        page.dblclick("#categories button[data-category='beer']")
        page.wait_for_function(f"() => !document.querySelector('#queue .card[data-id=\"{first}\"]')")
        page.wait_for_timeout(500)  # a second label would have been sent by now
    finally:
        page.close()
    with sqlite3.connect(settings.library.data / "state.sqlite3") as db:
        assert db.execute("SELECT photo_id, category FROM labels").fetchall() == [(first, "beer")]
