"""photosorter's options: the one table (``OPTIONS``) of every setting with its key, section, default,
converter and description, and the converters that check a value and say what is wrong with it.

``config`` builds ``Settings`` from this table; addon/sync_options.py writes config.yaml's options and
schema, translations/en.yaml and DOCS.md's option sections from it (a converter's ``schema`` attribute is
its add-on schema type). Adding a setting: a row here, a field in its ``config`` section, then
addon/sync_options.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photosorter.core.categories import DEFAULT_CATEGORIES, RESERVED
from photosorter.core.sync import EDITED_MODES
from photosorter.records import Category

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

    @property
    def secret(self) -> bool:
        """A password: its value is never shown, not even in the error about it."""
        return self.parse is _secret


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


def expand_path(value: Any) -> Path:
    """A folder option's value as a path, ``~`` expanded."""
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


def _mail_server(kind: str, port: int, security: str) -> tuple[Option, ...]:
    """A mail server's port, security, user name and password options (its host is listed on its own)."""
    name = kind.upper()
    return (
        Option(f"{kind}_port", "mail", f"{kind}_port", port, _int_between(1, 65535), f"{name} port."),
        Option(f"{kind}_security", "mail", f"{kind}_security", security, _choice(*TLS_MODES),
               f"{name} security: none, starttls, ssl."),
        Option(f"{kind}_username", "mail", f"{kind}_username", "", _text, f"{name} user name."),
        Option(f"{kind}_password", "mail", f"{kind}_password", "", _secret, f"{name} password."),
    )


OPTIONS: tuple[Option, ...] = (
    # library
    _("library", "library", "path", "~/Pictures/photosorter", expand_path,
      "Folder that holds the sorted library, one subfolder per category."),
    _("data", "library", "data", _home_data(), expand_path,
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
    *_mail_server("smtp", 587, "starttls"),
    _("mail_from", "mail", "sender", "", _text, "Sender address of the digest."),
    _("mail_to", "mail", "recipient", "", _text, "Where the digest goes (and, by default, who may reply)."),
    _("digest_enabled", "mail", "digest_enabled", True, _bool, "Send a daily digest when mail is configured."),
    _("digest_time", "mail", "digest_time", "20:00", _clock_time, "Local time of day to send the digest."),
    _("digest_when_empty", "mail", "digest_when_empty", False, _bool, "Send a digest even when nothing happened."),
    _("imap_host", "mail", "imap_host", "", _text, "IMAP server holding replies to the digest; empty: no replies."),
    *_mail_server("imap", 993, "ssl"),
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
