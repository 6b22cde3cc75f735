"""One frozen ``Settings`` object, loaded from defaults, /data/options.json, .env, environment and CLI.

Precedence (later wins): built-in defaults < add-on options file < ``.env`` < environment < command line.
Every option has one flat key (``knn_k``); its environment variable is ``PHOTOSORTER_<KEY>`` in upper
case (``PHOTOSORTER_KNN_K``, ``PHOTOSORTER_LIBRARY``). Keys of a section carry its name as prefix
(``model_cache`` -> ``PHOTOSORTER_MODEL_CACHE``), so both ``PHOTOSORTER_<SECTION>_<NAME>`` and
``PHOTOSORTER_<NAME>`` spellings come out of the same table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from photosorter.core.categories import DEFAULT_CATEGORIES, RESERVED
from photosorter.errors import ConfigError
from photosorter.records import Category

ENV_PREFIX = "PHOTOSORTER_"
CROP_MODES = ("center", "pad")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Option:
    key: str
    default: Any
    parse: Callable[[Any], Any]
    description: str


def _path(value: Any) -> Path:
    return Path(os.path.expanduser(str(value)))


def _int_at_least(low: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        number = int(value)
        if number < low:
            raise ValueError(f"must be at least {low}")
        return number

    return parse


def _fraction(value: Any) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError("must be between 0 and 1")
    return number


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


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


def _home_data() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", "~/.local/share")).expanduser() / "photosorter"


OPTIONS: tuple[Option, ...] = (
    Option("library", "~/Pictures/photosorter", _path,
           "Folder that holds the sorted library, one subfolder per category."),
    Option("data", str(_home_data()), _path, "Folder for state (SQLite), the kNN index and the model cache."),
    Option("inbox", "", str, "Folder watched for new photos (the daemon); empty means none."),
    Option("model", "clip-vit-b32", str,
           "Model folder, or the name of a built-in model to download: clip-vit-b32, mobilenet-v2."),
    Option("model_cache", "", str, "Where downloaded models are kept; empty means <data>/models."),
    Option("model_base_url", "", str, "Mirror to download built-in models from instead of their public URLs."),
    Option("model_threads", 2, _int_at_least(1), "CPU threads for inference."),
    Option("knn_k", 5, _int_at_least(1), "How many labelled neighbours vote for a photo's category."),
    Option("knn_trust_labels", 5, _int_at_least(1),
           "Labels a category needs before kNN and the zero-shot prior count equally."),
    Option("unsure_margin", 0.1, _fraction,
           "A photo whose two best categories are closer than this goes to _unsure."),
    Option("other_min_score", 0.25, _fraction, "A photo whose best category scores below this is filed as other."),
    Option("crop", "center", _choice(*CROP_MODES), "Fit photos to the model input by centre crop or by padding."),
    Option("categories", [c.name for c in DEFAULT_CATEGORIES], _categories,
           "Categories, as names or {name, title, prompts}."),
    Option("log_level", "info", _choice(*LOG_LEVELS), "How much to log: debug, info, warning, error."),
)


@dataclass(frozen=True)
class Settings:
    library: Path
    data: Path
    inbox: str
    model: str
    model_cache: str
    model_base_url: str
    model_threads: int
    knn_k: int
    knn_trust_labels: int
    unsure_margin: float
    other_min_score: float
    crop: str
    categories: tuple[Category, ...]
    log_level: str

    @property
    def model_cache_dir(self) -> Path:
        return _path(self.model_cache) if self.model_cache else self.data / "models"

    @property
    def category_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)


def _from_env(env: Mapping[str, str | None]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for option in OPTIONS:
        value = env.get(ENV_PREFIX + option.key.upper())
        if value is not None and value != "":
            found[option.key] = value
    return found


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
    options_path: Path | None = None,
) -> Settings:
    """Merge every source into one validated ``Settings``; raise ``ConfigError`` listing each bad key."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {o.key: o.default for o in OPTIONS}
    problems: list[str] = []
    if options_path is not None and options_path.exists():
        try:
            options = json.loads(options_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError([f"{options_path}: not readable JSON ({exc})"]) from exc
        raw.update({k: v for k, v in options.items() if k in raw and v not in (None, "")})
    dotenv_file = dotenv_path if dotenv_path is not None else Path(".env")
    if dotenv_file.is_file():
        raw.update(_from_env(dotenv_values(dotenv_file)))
    raw.update(_from_env(environ))
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values: dict[str, Any] = {}
    for option in OPTIONS:
        try:
            values[option.key] = option.parse(raw[option.key])
        except (TypeError, ValueError) as exc:
            problems.append(f"{option.key}: {exc} (got {raw[option.key]!r})")
    if problems:
        raise ConfigError(problems)
    return Settings(**values)
