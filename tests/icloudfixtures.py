"""Fixtures for tests against the fake iCloud server (loaded with ``pytest_plugins``) and helpers to open
the real ``IcloudSource`` against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from photosorter.adapters.icloud import IcloudSource
from tests.conftest import shared_path
from tests.servers.fake_icloud import FakeICloud

SIGNIN = "/signin/complete"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeICloud]:
    shared_path("icloud-recorded", "listing_photos.yml")
    server = FakeICloud(tmp_path).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert))  # requests prefers these to Session.verify
    monkeypatch.setenv("CURL_CA_BUNDLE", str(server.cert))
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))  # pyicloud's push-bridge websocket: ssl's default context
    yield server
    server.stop()


def open_source(fake: FakeICloud, tmp_path: Path, password: str | None = None) -> IcloudSource:
    data = tmp_path / "data"
    return IcloudSource(fake.apple_id, fake.password if password is None else password, data_dir=data,
                        state_path=data / "state.sqlite3", media_folder=tmp_path / "library" / "videos",
                        previews=data / "previews", server=fake.url)


def logged_in(fake: FakeICloud, tmp_path: Path) -> IcloudSource:
    source = open_source(fake, tmp_path)
    if not source.auth_state().ok:
        assert source.submit_code(fake.code).ok
    return source


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
