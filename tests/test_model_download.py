"""The real download-and-cache code against a local HTTP server: bad downloads are retried, never loaded."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photosorter.errors import ModelError
from photosorter.ml.download import resolve_model
from photosorter.ml.modelspec import MANIFEST


class ModelServer:
    """Serves files from a dict; each path can be given a queue of faulty responses to send first."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[str]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                fault = server.faults.get(self.path, [])
                kind = fault.pop(0) if fault else ""
                if kind == "truncated":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body) // 2))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    return
                if kind == "cut":  # announces the whole file, sends half, hangs up
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                if kind == "corrupted":
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ModelServer]:
    running = ModelServer()
    yield running
    running.close()


def catalogue_for(tiny_model: Path, server: ModelServer) -> dict[str, dict[str, Any]]:
    """A catalogue entry for the tiny model, its files published on the local server."""
    import json

    manifest = json.loads((tiny_model / MANIFEST).read_text())
    manifest["name"] = "tiny"
    manifest["prior"]["class_map"] = "builtin:imagenet_categories.json"
    for name in manifest["files"]:
        server.files[f"/files/{name}"] = (tiny_model / name).read_bytes()
    manifest["urls"] = {name: f"{server.url}/files/{name}" for name in manifest["files"]}
    return {"tiny": manifest}


def test_builtin_model_is_downloaded_verified_and_cached(tmp_path: Path, tiny_model: Path,
                                                         server: ModelServer) -> None:
    catalogue = catalogue_for(tiny_model, server)
    spec = resolve_model("tiny", tmp_path / "cache", catalogue=catalogue)
    assert spec.name == "tiny" and (tmp_path / "cache" / "tiny" / "model.onnx").is_file()
    first = len(server.requests)
    resolve_model("tiny", tmp_path / "cache", catalogue=catalogue)
    assert len(server.requests) == first  # served from the cache the second time


@pytest.mark.parametrize("fault", ["truncated", "cut", "corrupted"])
def test_a_damaged_download_is_detected_and_retried(tmp_path: Path, tiny_model: Path, server: ModelServer,
                                                    fault: str) -> None:
    catalogue = catalogue_for(tiny_model, server)
    server.faults["/files/model.onnx"] = [fault]
    spec = resolve_model("tiny", tmp_path / "cache", catalogue=catalogue)
    data = (spec.folder / "model.onnx").read_bytes()
    assert hashlib.sha256(data).hexdigest() == catalogue["tiny"]["files"]["model.onnx"]["sha256"]
    assert server.requests.count("/files/model.onnx") == 2


def test_a_download_that_stays_damaged_is_never_loaded(tmp_path: Path, tiny_model: Path,
                                                       server: ModelServer) -> None:
    catalogue = catalogue_for(tiny_model, server)
    server.faults["/files/model.onnx"] = ["corrupted", "corrupted", "corrupted"]
    with pytest.raises(ModelError, match="damaged"):
        resolve_model("tiny", tmp_path / "cache", catalogue=catalogue)
    assert not (tmp_path / "cache" / "tiny" / "model.onnx").exists()
    assert not list((tmp_path / "cache" / "tiny").glob("*.part"))


def test_a_corrupted_cache_is_downloaded_again(tmp_path: Path, tiny_model: Path, server: ModelServer) -> None:
    catalogue = catalogue_for(tiny_model, server)
    spec = resolve_model("tiny", tmp_path / "cache", catalogue=catalogue)
    (spec.folder / "model.onnx").write_bytes(b"garbage")
    spec = resolve_model("tiny", tmp_path / "cache", catalogue=catalogue)
    assert (spec.folder / "model.onnx").read_bytes() == (tiny_model / "model.onnx").read_bytes()


def test_a_mirror_url_replaces_the_public_address(tmp_path: Path, tiny_model: Path, server: ModelServer) -> None:
    catalogue = catalogue_for(tiny_model, server)
    for name in list(server.files):
        server.files[name.replace("/files/", "/mirror/tiny/")] = server.files[name]
    resolve_model("tiny", tmp_path / "cache", f"{server.url}/mirror", catalogue=catalogue)
    assert all(r.startswith("/mirror/tiny/") for r in server.requests)


def test_an_unknown_model_name_says_what_is_known(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="neither a folder nor a built-in model"):
        resolve_model("no-such-model", tmp_path)


def test_unpinned_files_are_recorded_on_first_download_and_checked_after(tmp_path: Path, tiny_model: Path,
                                                                        server: ModelServer) -> None:
    catalogue = catalogue_for(tiny_model, server)
    for meta in catalogue["tiny"]["files"].values():
        meta["sha256"] = meta["size"] = None  # a catalogue entry whose publisher gives no checksums
    server.faults["/files/model.onnx"] = ["cut"]
    spec = resolve_model("tiny", tmp_path / "cache", catalogue=catalogue)
    assert spec.files["model.onnx"] == hashlib.sha256((tiny_model / "model.onnx").read_bytes()).hexdigest()
    assert server.requests.count("/files/model.onnx") == 2  # the cut download was caught by its length
    (spec.folder / "model.onnx").write_bytes(b"garbage")
    resolve_model("tiny", tmp_path / "cache", catalogue=catalogue)
    assert server.requests.count("/files/model.onnx") == 3
    assert (spec.folder / "model.onnx").read_bytes() == (tiny_model / "model.onnx").read_bytes()


def test_the_default_clip_entry_is_pinned_to_one_revision() -> None:
    from photosorter.ml.catalogue import CATALOGUE, CLIP_REVISION

    entry = CATALOGUE["clip-vit-b32"]
    assert len(CLIP_REVISION) == 40 and all(f"/resolve/{CLIP_REVISION}/" in u for u in entry["urls"].values())
    assert set(entry["urls"]) == set(entry["files"]) and entry["kind"] == "clip"
    assert all(len(meta["sha256"]) == 64 and meta["size"] > 0 for meta in entry["files"].values())


def test_a_download_shows_a_progress_bar_on_a_terminal(tmp_path: Path, tiny_model: Path, server: ModelServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    resolve_model("tiny", tmp_path / "cache", catalogue=catalogue_for(tiny_model, server))
    assert "] 1/1 MB of model.onnx" in terminal.getvalue()
