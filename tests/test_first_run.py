"""A new user's first hour: README's first command on a fresh install with no network, embedded models,
the saved setup later commands read, and where each setting came from."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_photo
from tests.test_model_download import ModelServer
from tests.test_sort_folder import files_under, run_cli

ROOT = Path(__file__).resolve().parents[1]
CLIP_ADDRESS = "https://huggingface.co/Xenova/clip-vit-base-patch32/resolve/"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def offline_env(home: Path) -> dict[str, str]:
    """Every proxy variable pointing at a closed loopback port: any download fails at once."""
    dead = f"http://127.0.0.1:{closed_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOSORTER_") and "proxy" not in k.lower()}
    return {**env, "HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share"),
            "http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead}


def no_network_prefix() -> list[str]:
    """``unshare -rn`` (a network namespace with no route anywhere) where the kernel allows it."""
    try:
        ok = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return ["unshare", "-rn"] if ok else []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """photosorter built as a wheel from this checkout (the build step uses the package index like README's
    install does; photosorter itself then runs offline)."""
    out, source = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("checkout") / "photosorter"
    # a clean copy, as a fresh clone has it: a build/ folder left in the checkout would leak stale files
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv*", ".git", "build", "dist", "*.egg-info",
                                                                "__pycache__", ".*_cache", "bench"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("photosorter-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new virtualenv holding only the wheel; its dependencies are this test venv's, read through a .pth
    (installing them again would download hundreds of MB)."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                             "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (Path(purelib) / "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    yield venv


@pytest.mark.slow
def test_readme_first_command_sorts_offline_on_a_fresh_install(tmp_path: Path, fresh_venv: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"```sh\n(python3 -m venv .venv .*)\n```", readme)
    assert command and "--model" not in command.group(1), "README's first command needs no --model"
    sort_args = command.group(1).split(".venv/bin/photosorter ", 1)[1].split()
    assert sort_args == ["sort", "INBOX", "--library", "LIBRARY"]
    for n, colour in enumerate([(200, 40, 40), (30, 160, 60), (40, 60, 200), (230, 230, 220)]):
        write_photo(tmp_path / "INBOX", f"IMG_{n}.jpg", colour, size=(320, 240), noise_seed=n)
    env = offline_env(tmp_path / "home")
    result = subprocess.run([*no_network_prefix(), str(fresh_venv / "bin" / "photosorter"), *sort_args],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    sorted_files = files_under(tmp_path / "LIBRARY")
    assert len(sorted_files) == 4 and not files_under(tmp_path / "INBOX")
    warnings = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 1, result.stderr  # one line: which model ran, why, how to get the better one
    assert "mobilenet-v2" in warnings[0] and CLIP_ADDRESS in warnings[0] and "init --model clip-vit-b32" in warnings[0]
    assert "faces" not in result.stderr.lower()  # the embedded face models load without a word
    status = subprocess.run([str(fresh_venv / "bin" / "photosorter"), "status"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert re.search(r"^model: mobilenet-v2 +\(saved", status.stdout, re.MULTILINE), status.stdout
    assert f"library: {tmp_path / 'LIBRARY'}" in status.stdout


def test_the_wheel_carries_the_embedded_models(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"photosorter/data/models/mobilenet-v2/model.onnx", "photosorter/data/models/mobilenet-v2/labels.txt",
            "photosorter/data/models/yunet-mobileface/yunet_n_dynamic.onnx",
            "photosorter/data/models/yunet-mobileface/mobileface_v2.onnx",
            "photosorter/data/models/ppocr-det/text_det.onnx",
            "photosorter/data/models/ppocr-rec/text_rec.onnx"} <= names
    assert wheel.stat().st_size < 25 << 20  # 21.1 MB with the OCR text detector and recogniser (2026-12-02)


def test_the_embedded_model_is_used_by_name_without_any_download(tmp_path: Path) -> None:
    write_photo(tmp_path / "in", "a.jpg", (120, 90, 60))
    result = run_cli("sort", tmp_path / "in", "--library", tmp_path / "lib", "--data", tmp_path / "data",
                     "--model", "mobilenet-v2", env={"PHOTOSORTER_MODEL_BASE_URL": f"http://127.0.0.1:{closed_port()}"})
    assert result.returncode == 0, result.stderr
    assert "download" not in result.stderr and len(files_under(tmp_path / "lib")) == 1
    assert not (tmp_path / "data" / "models").exists()


def test_a_chosen_model_that_cannot_be_downloaded_fails_with_its_address(tmp_path: Path) -> None:
    write_photo(tmp_path / "in", "a.jpg", (120, 90, 60))
    mirror = f"http://127.0.0.1:{closed_port()}/mirror"
    result = run_cli("sort", tmp_path / "in", "--library", tmp_path / "lib", "--data", tmp_path / "data",
                     "--model", "clip-vit-b32", env={"PHOTOSORTER_MODEL_BASE_URL": mirror})
    assert result.returncode == 1
    assert f"{mirror}/clip-vit-b32/vision_model_quantized.onnx" in result.stderr
    assert files_under(tmp_path / "in") and not files_under(tmp_path / "lib")  # nothing moved


def test_a_model_that_cannot_be_found_names_where_its_setting_came_from(tmp_path: Path) -> None:
    write_photo(tmp_path / "in", "a.jpg", (120, 90, 60))
    result = run_cli("sort", tmp_path / "in", "--library", tmp_path / "lib", "--data", tmp_path / "data",
                     env={"PHOTOSORTER_MODEL": str(tmp_path / "gone")})
    assert result.returncode == 1
    assert "the setting model came from PHOTOSORTER_MODEL in the environment" in result.stderr, result.stderr


def test_a_saved_face_model_that_cannot_be_found_names_the_saved_file(tmp_path: Path) -> None:
    """The --face-model flag is saved like --model; a folder that went away later is blamed on that file."""
    data = tmp_path / "data"
    saved = run_cli("init", "--data", data, "--library", tmp_path / "lib", "--face-model", tmp_path / "faces")
    assert saved.returncode == 0, saved.stderr
    (tmp_path / "photos").mkdir()
    result = run_cli("me", "evaluate", tmp_path / "photos", "--data", data)
    assert result.returncode == 1
    assert f"the setting face_model came from saved ({data / 'settings.json'})" in result.stderr, result.stderr


def test_a_damaged_download_of_the_default_falls_back_to_the_embedded_model(tmp_path: Path) -> None:
    from photosorter.ml.catalogue import CATALOGUE

    server = ModelServer()
    try:
        for name in CATALOGUE["clip-vit-b32"]["files"]:
            server.files[f"/mirror/clip-vit-b32/{name}"] = b"x" * 10  # wrong bytes: the check must refuse them
        write_photo(tmp_path / "in", "a.jpg", (120, 90, 60))
        result = run_cli("sort", tmp_path / "in", "--library", tmp_path / "lib", "--data", tmp_path / "data",
                         env={"PHOTOSORTER_MODEL_BASE_URL": f"{server.url}/mirror"})
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    assert "/mirror/clip-vit-b32/vision_model_quantized.onnx" in server.requests
    assert "is damaged" in result.stderr and "sorting with mobilenet-v2" in result.stderr


def test_init_saves_the_setup_that_later_commands_read(tmp_path: Path, tiny_model: Path) -> None:
    data, library, inbox = tmp_path / "data", tmp_path / "library", tmp_path / "inbox"
    result = run_cli("init", "--data", data, "--library", library, "--inbox", inbox, "--model", tiny_model)
    assert result.returncode == 0, result.stderr
    assert f"library: {library}" in result.stdout and "--data" in result.stdout  # not the default data folder
    write_photo(inbox, "red.jpg", (220, 20, 20))
    sort = run_cli("sort", "--data", data)  # no inbox, library or model: all saved
    assert sort.returncode == 0, sort.stderr
    assert [p.parent.parent for p in files_under(library)] == [library]
    status = run_cli("status", "--data", data)
    saved = f"(saved ({data / 'settings.json'}))"
    assert f"model: {tiny_model}  {saved}" in status.stdout and f"library: {library}  {saved}" in status.stdout
    assert "data: " + str(data) + "  (command line (--data))" in status.stdout


def test_status_says_a_library_does_not_exist_and_counts_nothing(tmp_path: Path) -> None:
    status = run_cli("status", "--data", tmp_path / "data", "--library", tmp_path / "nowhere")
    assert status.returncode == 0, status.stderr
    assert f"the library {tmp_path / 'nowhere'} does not exist" in status.stdout
    assert "photos in the library" not in status.stdout


def test_labels_given_under_the_embedded_model_are_learned_again_by_the_next_one(
        tmp_path: Path, tiny_model: Path, tiny_clip: Path) -> None:
    inbox, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    write_photo(inbox, "red.jpg", (220, 20, 20))
    assert run_cli("sort", inbox, "--library", library, "--data", data, "--model", tiny_model).returncode == 0
    (photo,) = files_under(library)
    assert run_cli("label", photo, "beer", "--data", data).returncode == 0  # library and model: saved
    (tmp_path / "empty").mkdir()
    switched = run_cli("sort", tmp_path / "empty", "--data", data, "--model", tiny_clip)
    assert "learned 1 of 1 labels again with model" in switched.stderr, switched.stderr
    again = run_cli("sort", tmp_path / "empty", "--data", data, "--model", tiny_clip)
    assert "labels again" not in again.stderr  # once


def test_status_all_lists_every_setting_with_its_source_and_no_secret(tmp_path: Path) -> None:
    from photosorter.options import OPTIONS

    status = run_cli("status", "--all", "--data", tmp_path, env={"PHOTOSORTER_MQTT_PASSWORD": "hunter2-secret",
                                                                   "PHOTOSORTER_KNN_K": "7"})
    assert status.returncode == 0, status.stderr
    assert all(f"\n  {o.key}: " in status.stdout for o in OPTIONS)
    assert "  knn_k: 7  (PHOTOSORTER_KNN_K in the environment)" in status.stdout
    assert "  mqtt_password: ***  (PHOTOSORTER_MQTT_PASSWORD in the environment)" in status.stdout
    assert "hunter2" not in status.stdout + status.stderr


def test_sort_label_and_status_run_with_deprecation_warnings_as_errors(tmp_path: Path, tiny_model: Path) -> None:
    """What Python 3.12 and 3.13 deprecate (datetime.utcnow, sqlite3's default adapters, asyncio's implicit
    loops) would fail here first: the commands run with -W error::DeprecationWarning."""
    write_photo(tmp_path / "in", "a.jpg", (120, 90, 60))
    common = ["--library", str(tmp_path / "lib"), "--data", str(tmp_path / "data"), "--model", str(tiny_model)]
    strict = [sys.executable, "-W", "error::DeprecationWarning", "-m", "photosorter"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}

    def run(*argv: str) -> None:
        result = subprocess.run([*strict, *argv], capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0 and "Deprecat" not in result.stderr, result.stderr

    run("sort", str(tmp_path / "in"), *common)
    run("label", *map(str, files_under(tmp_path / "lib")), "food", *common)
    run("status", "--all", *common[:4])
