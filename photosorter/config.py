"""One frozen ``Settings`` object (sections: library, model, classify, faces, icloud, mqtt, mail, web), loaded from
defaults, the add-on's /data/options.json, ``.env``, the environment and the command line.

Precedence (later wins): built-in defaults < saved (``<data>/settings.json``, written by ``photosorter init``
and the first ``sort``) < options file < ``.env`` < environment < command line. ``Settings.sources`` says
where each value came from; a bad value's error names its setting and its source.
Every option has one flat key (``knn_k``, ``mqtt_host``), the same in ``config.yaml``,
``translations/en.yaml``, DOCS.md and here. Its environment variable is ``PHOTOSORTER_<KEY>``
(``PHOTOSORTER_MQTT_HOST``, ``PHOTOSORTER_LIBRARY``), and ``PHOTOSORTER_<SECTION>_<NAME>`` works too
(``PHOTOSORTER_CLASSIFY_KNN_K``, ``PHOTOSORTER_LIBRARY_DATA``): both come out of one table. A few
options also answer to the names people already use (``APPLE_ID``, ``APPLE_PASSWORD``). Secrets are
``Secret`` values: they print as ``***``.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from photosorter.core.categories import DEFAULT_CATEGORIES, RESERVED
from photosorter.core.sync import EDITED_MODES
from photosorter.errors import ConfigError
from photosorter.records import Category

ENV_PREFIX = "PHOTOSORTER_"
CROP_MODES = ("center", "pad")
LOG_LEVELS = ("debug", "info", "warning", "error")
TLS_MODES = ("none", "starttls", "ssl")


class Secret(str):
    """A string that never shows itself in repr, logs or tracebacks; ``reveal()`` gives the value."""

    def __repr__(self) -> str:
        return "'***'" if self else "''"

    def __str__(self) -> str:
        return "***" if self else ""

    def __format__(self, spec: str) -> str:
        return str(self)

    def reveal(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class Option:
    key: str
    section: str
    name: str
    default: Any
    parse: Callable[[Any], Any]
    description: str
    aliases: tuple[str, ...] = ()


def schema_of(option: Option) -> str | list[str]:
    """The add-on schema type (Supervisor grammar) of an option; optional strings end in ``?``."""
    kind = getattr(option.parse, "schema", "str")
    if kind in ("str", "password") and option.default in ("", None):
        return f"{kind}?"
    return [kind[1:-1]] if kind.startswith("[") else str(kind)


def _schema(kind: str) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    def mark(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
        parse.schema = kind  # type: ignore[attr-defined]
        return parse

    return mark


def _path(value: Any) -> Path:
    return Path(os.path.expanduser(str(value)))


def _text(value: Any) -> str:
    return str(value).strip()


@_schema("password")
def _secret(value: Any) -> Secret:
    return Secret(value.reveal() if isinstance(value, Secret) else str(value))


@_schema("bool")
def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _int_between(low: int, high: int = 1 << 31) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError("must be a whole number")
        try:
            number = int(value)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if not low <= number <= high:
            raise ValueError(f"must be at least {low}" if high == 1 << 31 else f"must be from {low} to {high}")
        return number

    parse.schema = f"int({low},{high})"  # type: ignore[attr-defined]
    return parse


@_schema("float(0,1)")
def _fraction(value: Any) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("must be a number between 0 and 1") from None
    if not 0.0 <= number <= 1.0:
        raise ValueError("must be between 0 and 1")
    return number


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    parse.schema = f"list({'|'.join(choices)})"  # type: ignore[attr-defined]
    return parse


@_schema("match(^([01][0-9]|2[0-3]):[0-5][0-9]$)")
def _clock_time(value: Any) -> str:
    text = str(value).strip()
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60 and len(minutes) == 2):
        raise ValueError("must be a time of day like 20:00")
    return f"{int(hours):02d}:{minutes}"


@_schema("[email]")
def _address_list(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value).replace(";", ",").split(",")
    addresses = tuple(str(a).strip().lower() for a in items if str(a).strip())
    for address in addresses:
        if "@" not in address:
            raise ValueError(f"{address!r} is not an email address")
    return addresses


@_schema("[str]")
def _categories(value: Any) -> tuple[Category, ...]:
    """Categories from a list of names or of {name, title, prompts}; JSON text or comma list accepted."""
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else [n for n in text.split(",") if n.strip()]
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of categories")
    known = {c.name: c for c in DEFAULT_CATEGORIES}
    result: list[Category] = []
    for item in value:
        if isinstance(item, str):
            name, title, prompts = item.strip().lower(), "", tuple[str, ...]()
        elif isinstance(item, dict) and "name" in item:
            name = str(item["name"]).strip().lower()
            title = str(item.get("title", ""))
            raw = item.get("prompts") or ()
            prompts = tuple(str(p) for p in ([raw] if isinstance(raw, str) else raw))
        else:
            raise ValueError(f"entry {item!r} needs a name")
        if not name.replace("_", "").replace("-", "").isalnum() or name in RESERVED or name.startswith("_"):
            raise ValueError(f"{name!r} is not a usable folder name")
        base = known.get(name)
        title = title or (base.title if base else name.capitalize())
        prompts = prompts or (base.prompts if base else (f"a photo of {name}",))
        result.append(Category(name, title, prompts))
    names = [c.name for c in result]
    if len(set(names)) != len(names):
        raise ValueError("category names must be unique")
    if "other" not in names:
        result.append(known["other"])
    return tuple(result)


def _home_data() -> str:
    return str(Path(os.environ.get("XDG_DATA_HOME", "~/.local/share")) / "photosorter")


_ = Option
OPTIONS: tuple[Option, ...] = (
    # library
    _("library", "library", "path", "~/Pictures/photosorter", _path,
      "Folder that holds the sorted library, one subfolder per category."),
    _("data", "library", "data", _home_data(), _path,
      "Folder for state (SQLite), the kNN index and the model cache."),
    _("inbox", "library", "inbox", "", _text, "Folder the daemon watches for new photos; empty means none."),
    _("inbox_poll_minutes", "library", "inbox_poll_minutes", 5, _int_between(1, 1440),
      "Minutes between looks into the inbox folder."),
    _("settle_seconds", "library", "settle_seconds", 5, _int_between(0, 3600),
      "A file must be unchanged this many seconds before it is sorted (one still being copied waits)."),
    # model
    _("model", "model", "name", "clip-vit-b32", _text,
      "Model folder, or a built-in model: clip-vit-b32 (downloaded once, about 150 MB; while it cannot be "
      "downloaded, mobilenet-v2 is used) or mobilenet-v2 (ships with photosorter)."),
    _("model_cache", "model", "cache", "", _text, "Where downloaded models are kept; empty means <data>/models."),
    _("model_base_url", "model", "base_url", "", _text,
      "Mirror to download built-in models from instead of their public addresses."),
    _("model_threads", "model", "threads", 2, _int_between(1, 64), "CPU threads for inference."),
    _("model_idle_minutes", "model", "idle_minutes", 5, _int_between(0, 1440),
      "Minutes without work after which the models are unloaded to free memory; 0 keeps them loaded."),
    _("model_worker", "model", "worker", True, _bool,
      "Run the models in a separate process that ends when they are unloaded, so the daemon keeps no "
      "inference library in memory between runs (photosorter run only); false runs them in the daemon's own "
      "process."),
    _("crop", "model", "crop", "center", _choice(*CROP_MODES),
      "Fit photos to the model input by centre crop or by padding."),
    # classify
    _("categories", "classify", "categories", [c.name for c in DEFAULT_CATEGORIES], _categories,
      "Categories, as names or {name, title, prompts}."),
    _("knn_k", "classify", "knn_k", 5, _int_between(1, 100),
      "How many labelled neighbours vote for a photo's category."),
    _("knn_trust_labels", "classify", "knn_trust_labels", 2, _int_between(1, 1000),
      "Labels a category needs before kNN and the zero-shot prior count equally."),
    _("unsure_margin", "classify", "unsure_margin", 0.05, _fraction,
      "A photo whose two best categories are closer than this goes to _unsure."),
    _("other_min_score", "classify", "other_min_score", 0.25, _fraction,
      "A photo whose best category scores below this is filed as other."),
    _("text_signal", "classify", "text_signal", False, _bool,
      "Look for text in photos that may be text, books, screenshots or beer (about 40 ms each), "
      "and read the largest lines of screens to tell MyFitnessPal (about 50 ms more)."),
    # faces
    _("faces", "faces", "enabled", True, _bool,
      "Find faces to tell photos of you (me) from photos of other people (people)."),
    _("face_model", "faces", "model", "yunet-mobileface", _text,
      "Face models folder, or the built-in set yunet-mobileface (ships with photosorter)."),
    _("me_threshold", "faces", "me_threshold", 0.5, _fraction,
      "Cosine similarity to one of your reference faces from which a face counts as you."),
    # icloud
    _("apple_id", "icloud", "apple_id", "", _text, "Apple ID (email) of the iCloud Photo Library; empty: no iCloud.",
      aliases=("APPLE_ID",)),
    _("apple_password", "icloud", "password", "", _secret, "Apple ID password.", aliases=("APPLE_PASSWORD",)),
    _("icloud_poll_minutes", "icloud", "poll_minutes", 15, _int_between(1, 1440),
      "Minutes between iCloud checks for new photos."),
    _("icloud_videos", "icloud", "videos", True, _bool,
      "Download videos (into <library>/videos) and live-photo movies (beside their still); off: skip them."),
    _("icloud_edited", "icloud", "edited", "original", _choice(*EDITED_MODES),
      "A photo edited in Photos: original (filed as taken), edited (the edit, a JPEG, as Photos shows it) or "
      "both (the edit beside the original, as NAME-edited.jpg)."),
    _("icloud_shared_library", "icloud", "shared_library", False, _bool,
      "Also sync the iCloud Shared Library (what you and the people you share it with add); off: your own only."),
    _("icloud_china_mainland", "icloud", "china_mainland", False, _bool,
      "Use Apple's China mainland iCloud servers."),
    # mqtt
    _("mqtt_host", "mqtt", "host", "", _text, "MQTT broker host; empty: MQTT off (the add-on asks the Supervisor)."),
    _("mqtt_port", "mqtt", "port", 1883, _int_between(1, 65535), "MQTT broker port."),
    _("mqtt_username", "mqtt", "username", "", _text, "MQTT user name."),
    _("mqtt_password", "mqtt", "password", "", _secret, "MQTT password."),
    _("mqtt_tls", "mqtt", "tls", False, _bool, "Connect to the broker over TLS."),
    _("mqtt_ca_file", "mqtt", "ca_file", "", _text,
      "CA certificate (PEM file) that signed a self-signed broker's certificate; empty: the system's CAs."),
    _("mqtt_discovery_prefix", "mqtt", "discovery_prefix", "homeassistant", _text,
      "Home Assistant MQTT discovery prefix."),
    _("mqtt_base_topic", "mqtt", "base_topic", "photosorter", _text, "Topic under which photosorter publishes."),
    # mail
    _("smtp_host", "mail", "smtp_host", "", _text, "SMTP server for the daily digest; empty: no digest."),
    _("smtp_port", "mail", "smtp_port", 587, _int_between(1, 65535), "SMTP port."),
    _("smtp_security", "mail", "smtp_security", "starttls", _choice(*TLS_MODES), "SMTP security: none, starttls, ssl."),
    _("smtp_username", "mail", "smtp_username", "", _text, "SMTP user name."),
    _("smtp_password", "mail", "smtp_password", "", _secret, "SMTP password."),
    _("mail_from", "mail", "sender", "", _text, "Sender address of the digest."),
    _("mail_to", "mail", "recipient", "", _text, "Where the digest goes (and, by default, who may reply)."),
    _("digest_enabled", "mail", "digest_enabled", True, _bool, "Send a daily digest when mail is configured."),
    _("digest_time", "mail", "digest_time", "20:00", _clock_time, "Local time of day to send the digest."),
    _("digest_when_empty", "mail", "digest_when_empty", False, _bool, "Send a digest even when nothing happened."),
    _("imap_host", "mail", "imap_host", "", _text, "IMAP server holding replies to the digest; empty: no replies."),
    _("imap_port", "mail", "imap_port", 993, _int_between(1, 65535), "IMAP port."),
    _("imap_security", "mail", "imap_security", "ssl", _choice(*TLS_MODES), "IMAP security: none, starttls, ssl."),
    _("imap_username", "mail", "imap_username", "", _text, "IMAP user name."),
    _("imap_password", "mail", "imap_password", "", _secret, "IMAP password."),
    _("imap_folder", "mail", "imap_folder", "INBOX", _text, "IMAP folder to read replies from."),
    _("reply_senders", "mail", "reply_senders", "", _address_list,
      "Addresses allowed to send corrections; empty means the digest recipient."),
    # web
    _("web_port", "web", "port", 0, _int_between(0, 65535),
      "Port of the web page (review, library, map, health); 0: off. The add-on serves it through Ingress."),
    _("web_host", "web", "host", "127.0.0.1", _text,
      "Address the web page listens on; anyone who can reach it can relabel photos."),
    # general
    _("log_level", "general", "log_level", "info", _choice(*LOG_LEVELS),
      "How much to log: debug, info, warning, error."),
)
del _


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
        return _path(self.model.cache) if self.model.cache else self.library.data / "models"

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


def unknown_variables(env: Mapping[str, str | None], where: str) -> list[str]:
    """A warning for each ``PHOTOSORTER_`` variable no option answers to, naming the closest known one."""
    known = [name for option in OPTIONS for name in _variable_names(option)] + list(OTHER_VARIABLES)
    notes = []
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else f" (options: {DOCS_HINT})"
            notes.append(f"{name} in {where} is not a photosorter setting, ignored{hint}")
    return notes


DOCS_HINT = "see DOCS.md, or photosorter status for where each setting comes from"


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
    if use_saved:  # the saved file lives in the data folder the other sources name
        try:
            data = _path(chosen["data"][0])
        except (TypeError, ValueError):
            data = None
        if data is not None:
            saved = read_saved(data)
            below = {k: (v, f"saved ({saved_path(data)})") for k, v in saved.items() if k in SAVED_KEYS}
            chosen = {k: below[k] if k in below and source == DEFAULT_SOURCE else (v, source)
                      for k, (v, source) in chosen.items()}
    values: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    problems: list[str] = []
    for option in OPTIONS:
        value, source = chosen[option.key]
        try:
            values[option.section][option.name] = option.parse(value)
        except (TypeError, ValueError) as exc:
            shown = "***" if option.parse is _secret else repr(value)
            problems.append(f"{option.key}: {exc} (got {shown} from {source})")
    if problems:
        raise ConfigError(problems)
    sources = {key: source for key, (_, source) in chosen.items()}
    return Settings(**{section: cls(**values[section]) for section, cls in _SECTIONS.items()},
                    sources=sources, notes=tuple(notes))
