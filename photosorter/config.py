"""One frozen ``Settings`` object (sections: library, model, classify, faces, icloud, mqtt, mail, web), loaded from
defaults, the add-on's /data/options.json, ``.env``, the environment and the command line.

Precedence (later wins): built-in defaults < saved (``<data>/settings.json``, written by ``photosorter init``
and the first ``sort``) < options file < ``.env`` < environment < command line. ``Settings.sources`` says
where each value came from; a bad value's error names its setting and its source.
Every option has one flat key (``knn_k``, ``mqtt_host``), the same in ``config.yaml``,
``translations/en.yaml``, DOCS.md and the option table (``options.OPTIONS``, with each option's default,
converter and description). Its environment variable is ``PHOTOSORTER_<KEY>``
(``PHOTOSORTER_MQTT_HOST``, ``PHOTOSORTER_LIBRARY``), and ``PHOTOSORTER_<SECTION>_<NAME>`` works too
(``PHOTOSORTER_CLASSIFY_KNN_K``, ``PHOTOSORTER_LIBRARY_DATA``): both come out of one table. A few
options also answer to the names people already use (``APPLE_ID``, ``APPLE_PASSWORD``). Secrets are
``Secret`` values: they print as ``***``.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from photosorter.errors import ConfigError
from photosorter.options import OPTIONS, Option, Secret, expand_path
from photosorter.records import Category

ENV_PREFIX = "PHOTOSORTER_"


@dataclass(frozen=True)
class LibrarySettings:
    path: Path
    data: Path
    inbox: str
    inbox_poll_minutes: int
    settle_seconds: int


@dataclass(frozen=True)
class ModelSettings:
    name: str
    cache: str
    base_url: str
    threads: int
    idle_minutes: int
    worker: bool
    crop: str


@dataclass(frozen=True)
class ClassifySettings:
    categories: tuple[Category, ...]
    knn_k: int
    knn_trust_labels: int
    unsure_margin: float
    other_min_score: float
    text_signal: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)


@dataclass(frozen=True)
class FaceSettings:
    enabled: bool
    model: str
    me_threshold: float


@dataclass(frozen=True)
class IcloudSettings:
    apple_id: str
    password: Secret
    poll_minutes: int
    videos: bool
    edited: str
    shared_library: bool
    china_mainland: bool

    @property
    def enabled(self) -> bool:
        return bool(self.apple_id)


@dataclass(frozen=True)
class MqttSettings:
    host: str
    port: int
    username: str
    password: Secret
    tls: bool
    discovery_prefix: str
    base_topic: str
    ca_file: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class MailSettings:
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_username: str
    smtp_password: Secret
    sender: str
    recipient: str
    digest_enabled: bool
    digest_time: str
    digest_when_empty: bool
    imap_host: str
    imap_port: int
    imap_security: str
    imap_username: str
    imap_password: Secret
    imap_folder: str
    reply_senders: tuple[str, ...]

    @property
    def allowed_senders(self) -> tuple[str, ...]:
        return self.reply_senders or ((self.recipient.lower(),) if self.recipient else ())


@dataclass(frozen=True)
class WebSettings:
    port: int
    host: str

    @property
    def enabled(self) -> bool:
        return self.port > 0


@dataclass(frozen=True)
class GeneralSettings:
    log_level: str


@dataclass(frozen=True)
class Settings:
    library: LibrarySettings
    model: ModelSettings
    classify: ClassifySettings
    icloud: IcloudSettings
    mqtt: MqttSettings
    mail: MailSettings
    general: GeneralSettings = field(default_factory=lambda: GeneralSettings("info"))
    faces: FaceSettings = field(default_factory=lambda: FaceSettings(True, "yunet-mobileface", 0.5))
    web: WebSettings = field(default_factory=lambda: WebSettings(0, "127.0.0.1"))
    # Where each option's value came from ("default", "saved (<file>)", "environment (PHOTOSORTER_X)", ...).
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    # Things worth a warning that are not errors (an unknown PHOTOSORTER_ variable), for the CLI to log.
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def model_cache_dir(self) -> Path:
        return expand_path(self.model.cache) if self.model.cache else self.library.data / "models"

    def source_of(self, key: str) -> str:
        return self.sources.get(key, DEFAULT_SOURCE)


DEFAULT_SOURCE = "default"
SAVED_FILE = "settings.json"
STATE_FILE = "state.sqlite3"  # photos, labels, embeddings, the move journal: <data>/state.sqlite3
HEARTBEAT_FILE = "heartbeat"  # the daemon touches it every loop; photosorter health reads its age
SAVED_KEYS = ("library", "inbox", "model", "face_model")  # what init and the first sort remember
# PHOTOSORTER_ variables that are not options: the iCloud endpoint override, and the test suite's own.
OTHER_VARIABLES = ("PHOTOSORTER_ICLOUD_SERVER", "PHOTOSORTER_SHARED", "PHOTOSORTER_EXPORT_PYTHON",
                   "PHOTOSORTER_HA_VENV")

_SECTIONS: dict[str, type] = {"library": LibrarySettings, "model": ModelSettings, "classify": ClassifySettings,
                              "icloud": IcloudSettings, "mqtt": MqttSettings, "mail": MailSettings,
                              "general": GeneralSettings, "faces": FaceSettings, "web": WebSettings}


def _variable_names(option: Option) -> tuple[str, ...]:
    sectioned = ENV_PREFIX + f"{option.section}_{option.name}".upper()  # PHOTOSORTER_CLASSIFY_KNN_K
    return tuple(dict.fromkeys((*option.aliases, sectioned, ENV_PREFIX + option.key.upper())))


def _from_env(env: Mapping[str, str | None], where: str) -> dict[str, tuple[Any, str]]:
    """Option key -> (value, source) for the variables set in ``env``."""
    found: dict[str, tuple[Any, str]] = {}
    for option in OPTIONS:
        for name in _variable_names(option):
            value = env.get(name)
            if value is not None and value != "":
                found[option.key] = (value, f"{name} in {where}")
    return found


def _unknown(names: Iterable[str], known: Sequence[str], where: str, what: str, otherwise: str) -> list[str]:
    """A warning for each of ``names`` not in ``known``, naming the closest known one (else ``otherwise``)."""
    notes = []
    for name in sorted(n for n in names if n not in known):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f" ({otherwise})"
        notes.append(f"{name} in {where} is not {what}, ignored{hint}")
    return notes


def unknown_variables(env: Mapping[str, str | None], where: str) -> list[str]:
    """A warning for each ``PHOTOSORTER_`` variable no option answers to, naming the closest known one."""
    known = [name for option in OPTIONS for name in _variable_names(option)] + list(OTHER_VARIABLES)
    return _unknown((n for n in env if n.startswith(ENV_PREFIX)), known, where, "a photosorter setting",
                    f"options: {DOCS_HINT}")


DOCS_HINT = "see DOCS.md, or photosorter status for where each setting comes from"


def unknown_saved_keys(saved: Mapping[str, Any], where: str) -> list[str]:
    """A warning for each key of the saved settings that is not one photosorter saves (a hand edit)."""
    return _unknown(saved, SAVED_KEYS, where, "a saved setting", f"it keeps only {', '.join(SAVED_KEYS)}")


def saved_path(data: Path) -> Path:
    return data / SAVED_FILE


def read_saved(data: Path) -> dict[str, Any]:
    """The settings ``photosorter init`` (or the first ``sort``) saved in the data folder; {} when none."""
    path = saved_path(data)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read saved settings ({exc.strerror or exc})"]) from exc
    except ValueError as exc:
        raise ConfigError([f"{path}: not valid JSON ({exc}); fix it or delete it and run photosorter init"]) from exc
    if not isinstance(saved, dict):
        raise ConfigError([f"{path}: must hold a JSON object; delete it and run photosorter init"])
    return saved


def save_settings(data: Path, values: Mapping[str, Any]) -> Path:
    """Merge ``values`` into the data folder's saved settings (private: 0700 folder, 0600 file); a
    ``ConfigError`` when the folder cannot be written."""
    path = saved_path(data)
    merged = read_saved(data) | {k: str(v) for k, v in values.items() if k in SAVED_KEYS and v not in (None, "")}
    tmp = path.with_name(path.name + ".tmp")
    try:
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(json.dumps(merged, indent=1, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError([f"data: cannot save settings in {path}: {exc.strerror or exc}"]) from exc
    return path


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
    options_path: Path | None = None,
    use_saved: bool = True,
) -> Settings:
    """Merge every source into one validated ``Settings``; ``ConfigError`` lists each bad key with its source."""
    environ = os.environ if environ is None else environ
    layers: list[dict[str, tuple[Any, str]]] = []  # lowest precedence first, after the saved settings
    if options_path is not None:
        try:
            options = json.loads(options_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError([f"{options_path}: not readable JSON ({exc})"]) from exc
        if not isinstance(options, dict):
            raise ConfigError([f"{options_path}: must hold a JSON object"])
        keys = {o.key for o in OPTIONS}
        layers.append({k: (v, f"options ({options_path})") for k, v in options.items() if k in keys and v is not None})
    notes: list[str] = []
    dotenv_file = dotenv_path if dotenv_path is not None else Path(".env")
    if dotenv_file.is_file():
        dotenv = dotenv_values(dotenv_file)
        layers.append(_from_env(dotenv, f".env ({dotenv_file})"))
        notes += unknown_variables(dotenv, f".env ({dotenv_file})")
    layers.append(_from_env(environ, "the environment"))
    notes += unknown_variables(environ, "the environment")
    layers.append({k: (v, f"command line (--{k.replace('_', '-')})") for k, v in (overrides or {}).items()
                   if v is not None})
    chosen: dict[str, tuple[Any, str]] = {o.key: (o.default, DEFAULT_SOURCE) for o in OPTIONS}
    for layer in layers:
        chosen.update(layer)
    not_text: set[str] = set()
    if use_saved:  # the saved file lives in the data folder the other sources name
        try:
            data = expand_path(chosen["data"][0])
        except (TypeError, ValueError):
            data = None
        if data is not None:
            saved = read_saved(data)
            where = f"saved ({saved_path(data)})"
            notes += unknown_saved_keys(saved, where)
            below = {k: (v, where) for k, v in saved.items() if k in SAVED_KEYS}
            not_text = {k for k, v in below.items() if not isinstance(v[0], str)}  # the file was edited by hand
            chosen = {k: below[k] if k in below and source == DEFAULT_SOURCE else (v, source)
                      for k, (v, source) in chosen.items()}
    values: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    problems: list[str] = []
    for option in OPTIONS:
        value, source = chosen[option.key]
        try:
            if option.key in not_text and source.startswith("saved ("):
                raise ValueError("a saved setting must be text; fix it or run photosorter init again")
            values[option.section][option.name] = option.parse(value)
        except (TypeError, ValueError) as exc:
            shown = "***" if option.secret else repr(value)
            problems.append(f"{option.key}: {exc} (got {shown} from {source})")
    if problems:
        raise ConfigError(problems)
    sources = {key: source for key, (_, source) in chosen.items()}
    return Settings(**{section: cls(**values[section]) for section, cls in _SECTIONS.items()},
                    sources=sources, notes=tuple(notes))
