"""Hypothesis fuzz of input from outside: the options loader (options.json from the Supervisor, the
environment) and the iCloud record reader (pages with a record mutated at random, through the real
pyicloud client and the fake iCloud HTTPS server). Nothing may crash; iCloud delivers every good photo."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photosorter.adapters.icloud import IcloudAssets, IcloudSource
from photosorter.config import ENV_PREFIX, load_settings
from photosorter.errors import ConfigError, PhotosorterError
from photosorter.options import OPTIONS
from tests.conftest import shared_path
from tests.servers.fake_icloud import FakeICloud

KEYS = [o.key for o in OPTIONS]
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**15), st.floats(), st.text(max_size=40)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), JSON_VALUES, max_size=8))
def test_any_options_json_gives_settings_or_a_config_error(options: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "options.json"
        try:
            path.write_text(json.dumps(options), encoding="utf-8")
        except ValueError:  # NaN and the like: the Supervisor never writes them
            return
        try:
            load_settings(environ={}, dotenv_path=Path(folder) / "none.env", options_path=path, use_saved=False)
        except ConfigError as exc:
            assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from([ENV_PREFIX + k.upper() for k in KEYS]), st.text(max_size=40), max_size=6))
def test_any_environment_gives_settings_or_a_config_error(environ: dict[str, str]) -> None:
    environ = {k: v.replace("\x00", "") for k, v in environ.items()}
    try:
        load_settings(environ=environ, dotenv_path=Path("/nonexistent/.env"), use_saved=False)
    except ConfigError as exc:
        assert exc.problems


# iCloud records -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeICloud]:
    shared_path("icloud-recorded", "listing_photos.yml")
    fake = FakeICloud(tmp_path_factory.mktemp("fake-icloud"), two_factor="none").start()
    mp = pytest.MonkeyPatch()
    mp.setenv("REQUESTS_CA_BUNDLE", str(fake.cert))
    mp.setenv("CURL_CA_BUNDLE", str(fake.cert))
    yield fake
    mp.undo()
    fake.stop()


FIELD_NAMES = ("filenameEnc", "itemType", "resOriginalRes", "resOriginalFileType", "resJPEGMedRes", "assetDate",
               "addedDate", "masterRef", "resOriginalVidComplFileType", "resOriginalWidth", "assetSubtypeV2")


@st.composite
def mutations(draw: st.DrawFn) -> tuple[int, str, str, Any]:
    index = draw(st.integers(0, 7))
    record = draw(st.sampled_from(["master", "asset"]))
    field = draw(st.sampled_from(FIELD_NAMES))
    how = draw(st.sampled_from(["delete", "no value", "value", "field", "no fields", "record type"]))
    return index, record, f"{how}:{field}", draw(JSON_VALUES)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(mutations())
def test_a_page_with_a_record_mutated_at_random_delivers_every_other_photo(
        server: FakeICloud, mutation: tuple[int, str, str, Any]) -> None:
    index, which, change, value = mutation
    how, field = change.split(":")
    server.photos = []
    server.load_recording(limit=8)
    target = server.photos[index]
    record = target.master if which == "master" else target.asset
    fields = record.setdefault("fields", {}) or {}
    if how == "delete":
        fields.pop(field, None)
    elif how == "no value":
        fields[field] = {"type": "STRING"}
    elif how == "value":
        fields[field] = {"value": value, "type": "STRING"}
    elif how == "field":
        fields[field] = value
    elif how == "no fields":
        record["fields"] = value
    else:
        record["recordType"] = value if isinstance(value, str) else "CPLSomething"
    with tempfile.TemporaryDirectory() as folder:
        source = signed_in(server)
        source.assets.close()
        source.assets = IcloudAssets(Path(folder) / "state.sqlite3")  # a fresh library state, the same login
        try:
            source.fetch_new(Path(folder) / "inbox")
        except PhotosorterError:
            pytest.fail("one mutated record stopped the sync")  # what pyicloud did to the whole page
        for photo in server.photos:
            if photo is not target:
                assert source.assets.known(photo.id), photo.id  # delivered
        assert source.assets.known(target.id) or source.problems() or how == "record type"


SOURCES: dict[str, IcloudSource] = {}


def signed_in(server: FakeICloud) -> IcloudSource:
    """One login for all examples (the SRP sign-in is the slow part)."""
    if server.url not in SOURCES:
        data = Path(tempfile.mkdtemp(prefix="fuzz-icloud-"))
        SOURCES[server.url] = IcloudSource(server.apple_id, server.password, data_dir=data,
                                           state_path=data / "state.sqlite3", server=server.url)
        assert SOURCES[server.url].auth_state().ok
    return SOURCES[server.url]
