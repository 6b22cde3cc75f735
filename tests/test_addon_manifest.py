"""The add-on manifest follows the Supervisor's rules, and every place that lists options agrees."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from photosorter.config import load_settings
from photosorter.options import OPTIONS

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = yaml.safe_load((ROOT / "config.yaml").read_text())
S6 = ROOT / "addon" / "rootfs" / "etc" / "s6-overlay" / "s6-rc.d"

# supervisor/apps/options.py RE_SCHEMA_ELEMENT (the grammar of one schema value)
SCHEMA_ELEMENT = re.compile(
    r"^(?:|bool|email|url|port|device(?:\(subsystem=[a-z]+\))?|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?|"
    r"password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?|int(?:\((?P<i_min>\d+)?,(?P<i_max>\d+)?\))?|"
    r"float(?:\((?P<f_min>[\d\.]+)?,(?P<f_max>[\d\.]+)?\))?|match\((?P<match>.*)\)|list\((?P<list>.+)\))\??$")
MAP_TYPES = {"data", "config", "ssl", "local_apps", "addons", "backup", "share", "media", "homeassistant_config",
             "all_app_configs", "all_addon_configs", "app_config", "addon_config"}


def docs_option_keys() -> list[str]:
    return re.findall(r"^### Option: `([a-z0-9_]+)`$", (ROOT / "DOCS.md").read_text(), flags=re.M)


def test_every_list_of_options_names_the_same_keys() -> None:
    keys = [o.key for o in OPTIONS]
    translations = yaml.safe_load((ROOT / "translations" / "en.yaml").read_text())["configuration"]
    assert list(MANIFEST["schema"]) == keys
    assert list(translations) == keys
    assert docs_option_keys() == keys
    optional = {k for k, v in MANIFEST["schema"].items() if isinstance(v, str) and v.endswith("?")}
    assert set(MANIFEST["options"]) == set(keys) - optional  # optional keys must not carry a default
    for key, text in translations.items():
        assert text["name"] and text["description"], key


def validate(value: Any, kind: Any) -> bool:
    """A small model of the Supervisor's option validation for the types we use."""
    if isinstance(kind, list):
        return isinstance(value, list) and all(validate(v, kind[0]) for v in value)
    match = SCHEMA_ELEMENT.match(kind)
    assert match, kind
    base = kind.rstrip("?")
    if base.startswith("list("):
        return value in match.group("list").split("|")
    if base.startswith("match("):
        return isinstance(value, str) and re.fullmatch(match.group("match"), value) is not None
    if base.startswith("int"):
        low, high = int(match.group("i_min") or -(1 << 62)), int(match.group("i_max") or 1 << 62)
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if base.startswith("float"):
        low, high = float(match.group("f_min") or "-inf"), float(match.group("f_max") or "inf")
        return isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high
    if base == "bool":
        return isinstance(value, bool)
    if base == "port":
        return isinstance(value, int) and 1 <= value <= 65535
    if base == "email":
        return isinstance(value, str) and "@" in value
    return isinstance(value, str)


def test_every_default_validates_against_its_schema_and_the_settings_parser(tmp_path: Path) -> None:
    for key, value in MANIFEST["options"].items():
        assert validate(value, MANIFEST["schema"][key]), (key, value)
    options = tmp_path / "options.json"
    options.write_text(json.dumps(MANIFEST["options"]))
    settings = load_settings(options_path=options, environ={}, dotenv_path=tmp_path / "none")
    assert settings.library.path == Path("/media/photosorter") and settings.library.data == Path("/data")


def test_schema_values_follow_the_supervisor_grammar() -> None:
    for key, kind in MANIFEST["schema"].items():
        for element in kind if isinstance(kind, list) else [kind]:
            assert SCHEMA_ELEMENT.match(element), (key, element)
    secrets = {o.key for o in OPTIONS if "password" in o.key}
    assert all(MANIFEST["schema"][k].startswith("password") for k in secrets)


def test_manifest_keys_obey_the_supervisor_rules() -> None:
    assert re.fullmatch(r"[-_.A-Za-z0-9]+", MANIFEST["slug"])
    assert isinstance(MANIFEST["version"], str) and re.fullmatch(r"\d+\.\d+\.\d+", MANIFEST["version"])
    assert MANIFEST["name"] and MANIFEST["description"]
    assert set(MANIFEST["arch"]) == {"aarch64", "amd64"}  # armhf, armv7, i386 are deprecated
    assert MANIFEST["init"] is False  # s6-overlay v3 images must not get Docker's init
    assert MANIFEST["startup"] in {"initialize", "system", "services", "application", "once"}
    assert MANIFEST["boot"] in {"auto", "manual", "manual_only"}
    assert all(re.fullmatch(r"(mqtt|mysql):(provide|want|need)", s) for s in MANIFEST["services"])
    for entry in MANIFEST["map"]:
        kind, _, mode = entry.partition(":")
        assert kind in MAP_TYPES and mode in ("", "rw", "ro"), entry
    assert 10 <= MANIFEST["timeout"] <= 300
    assert all(isinstance(g, str) for g in MANIFEST["backup_exclude"])
    for deprecated in ("advanced", "watchdog", "codenotary", "build_from"):
        assert deprecated not in MANIFEST
    assert not ("webui" in MANIFEST and MANIFEST.get("ingress"))
    assert not (ROOT / "build.yaml").exists()
    assert yaml.safe_load((ROOT / "repository.yaml").read_text())["name"]


def test_the_page_opens_through_ingress_on_the_port_the_daemon_serves() -> None:
    assert MANIFEST["ingress"] is True and "ports" not in MANIFEST  # reachable only through Home Assistant
    assert MANIFEST["ingress_port"] == MANIFEST["options"]["web_port"]
    assert MANIFEST["options"]["web_host"] == "0.0.0.0"  # the add-on's network; the page answers only 172.30.32.2
    assert re.fullmatch(r"mdi:[a-z0-9-]+", MANIFEST["panel_icon"]) and MANIFEST["panel_title"]


def test_s6_service_execs_photosorter_and_halts_the_container_when_it_dies() -> None:
    run, finish = S6 / "photosorter" / "run", S6 / "photosorter" / "finish"
    assert (S6 / "photosorter" / "type").read_text().strip() == "longrun"
    assert (S6 / "user" / "contents.d" / "photosorter").exists()
    for script in (run, finish):
        assert script.stat().st_mode & stat.S_IXUSR, script
    last = [line for line in run.read_text().splitlines() if line.strip()][-1]
    assert last.startswith("exec ") and "-m photosorter run --options /data/options.json" in last
    assert "/run/s6/basedir/bin/halt" in finish.read_text()


def test_dockerfile_declares_its_base_installs_only_the_runtime_and_checks_health() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BUILD_FROM=ghcr\.io/home-assistant/base-debian:\S+$", dockerfile, re.M)
    assert "FROM ${BUILD_FROM}" in dockerfile and "HEALTHCHECK" in dockerfile
    assert "requirements/runtime.txt" in dockerfile
    requirements = (ROOT / "requirements" / "runtime.txt").read_text().lower()
    for heavy in ("torch", "optimum", "transformers"):
        assert not re.search(rf"^{heavy}\b", requirements, re.M), heavy


@pytest.mark.parametrize(("name", "size"), [("icon.png", (128, 128)), ("logo.png", (250, 100))])
def test_icons_are_there_in_the_expected_shape(name: str, size: tuple[int, int]) -> None:
    with Image.open(ROOT / name) as image:
        assert image.size == size


def test_generated_files_are_up_to_date() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(ROOT / "addon" / "sync_options.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_mqtt_is_wanted_not_needed() -> None:
    """Without a broker everything but MQTT works, so the Supervisor must not refuse to start the app."""
    assert MANIFEST["services"] == ["mqtt:want"]


def test_the_image_is_debian_trixie_and_python_is_not_capped() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BUILD_FROM=ghcr\.io/home-assistant/base-debian:trixie$", dockerfile, re.M)
    import tomllib

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"  # 3.12 and 3.13 (Debian 13, the image) install too


def test_docs_show_every_screen_of_the_page_and_send_no_one_to_a_terminal() -> None:
    docs = (ROOT / "DOCS.md").read_text()
    pictures = re.findall(r"!\[[^\]]+\]\((screenshots/web-[a-z]+\.png)\)", docs)
    assert "terminal" not in docs.lower()  # an add-on has none: everything is on the page
    assert pictures == [f"screenshots/web-{name}.png" for name in ("review", "library", "photo", "map", "health")]
    assert all((ROOT / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for picture in pictures)
