"""The grammar of a reply to the digest (``core.reply_text`` first finds what the person wrote).

Pure and total: ``parse_reply`` never raises on any input. Unknown numbers or categories are reported
back as problems, never guessed; a number on a line not understood is not confirmed by ``all ok``; a
category is named in full, by a synonym or by a prefix of at least ``MIN_PREFIX`` letters; a reply that
asks for more changes than the digest showed photos is quoted back and nothing of it applied.

Grammar (case-insensitive; one instruction per line or comma-separated)::

    12 food          12: food          12 -> food          #12 = food
    12, 14, 15 screenshot               12-15 scenery       12 to 15 scenery
    12 ok            all ok             3 food, 7 beer can  pic of me (synonyms), scr (prefixes)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from photosorter.core.reply_text import MAX_TEXT_CHARS, MAX_TEXT_LINES, limit_text
from photosorter.records import Category

MAX_LINE_CHARS = 1000
MAX_RANGE = 500
MAX_PROBLEMS = 20
MAX_NUMBER_DIGITS = 6  # digest numbers are small; a longer run of digits is a phone number or junk
MIN_PREFIX = 3  # "scr" -> screenshot; "sc", "i" and the like resolve to nothing

CONFIRM_WORDS = frozenset({"ok", "okay", "correct", "right", "yes", "yep", "good", "fine", "fine.", "✓", "✔",
                           "👍", "confirmed", "confirm"})
ALL_WORDS = frozenset({"all", "everything", "rest", "others"})
FILLER = frozenset({"is", "are", "should", "be", "to", "as", "a", "an", "the", "it", "its", "it's", "this", "that",
                    "these", "those", "move", "put", "into", "in", "folder", "category", "please", "photo", "photos",
                    "pic", "pics", "picture", "pictures", "of", "number", "nr", "no.", "and", "also", "one",
                    "image", "images", "shot", "actually", "really", "just", "=", "thanks"})
# A few everyday words for the default categories; used only when that category is configured.
SYNONYMS: dict[str, str] = {
    "me": "me", "selfie": "me", "selfies": "me", "myself": "me",
    "person": "people", "persons": "people", "friends": "people", "family": "people", "group": "people",
    "pet": "animal", "pets": "animal", "dog": "animal", "dogs": "animal", "cat": "animal", "cats": "animal",
    "bird": "animal", "birds": "animal",
    "landscape": "scenery", "nature": "scenery", "view": "scenery", "views": "scenery", "city view": "scenery",
    "beer can": "beer", "beer cans": "beer", "beers": "beer", "can of beer": "beer",
    "meal": "food", "meals": "food", "drink": "food", "drinks": "food", "dinner": "food", "lunch": "food",
    "document": "text", "documents": "text", "doc": "text", "receipt": "text", "receipts": "text",
    "sign": "text", "note": "text", "notes": "text",
    "screen shot": "screenshot", "screen": "screenshot", "screengrab": "screenshot",
    "mfp": "myfitnesspal", "my fitness pal": "myfitnesspal", "fitness pal": "myfitnesspal",
    "inside": "indoors", "indoor": "indoors", "room": "indoors", "interior": "indoors",
    "misc": "other", "miscellaneous": "other", "something else": "other",
}

# the grammar ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplyPlan:
    """What a reply asks for: ``labels`` maps digest numbers to a new category, ``confirmed`` holds numbers
    whose prediction is right; ``problems`` are lines not understood (reported back), ``ignored`` lines
    without any photo number (greetings, thanks)."""

    labels: dict[int, str] = field(default_factory=dict)
    confirmed: frozenset[int] = frozenset()
    problems: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.labels and not self.confirmed


_TOKEN = re.compile(
    r"(?P<range>(?<!\d)\d+\s*(?:-|–|—|\.\.|to)\s*\d+)(?![\d.])|(?P<num>(?<!\d)\d+)|(?P<sep>[,;&/+|])|"
    r"(?P<emoji>[✓✔👍])|(?P<word>[^\W\d_]+(?:['’.][^\W\d_]+)*\.?)", re.IGNORECASE)


@dataclass
class _Line:
    numbers: list[int] = field(default_factory=list)
    words: list[str] = field(default_factory=list)


class CategoryNames:
    """Resolves what a person typed to a category: name, title, synonym, plural or unambiguous prefix."""

    def __init__(self, categories: Iterable[Category]) -> None:
        self.names = tuple(c.name for c in categories)
        self.by_phrase: dict[str, str] = {}
        for category in categories:
            self.by_phrase[category.name] = category.name
            self.by_phrase[category.name.replace("_", " ").replace("-", " ")] = category.name
            self.by_phrase[category.title.lower()] = category.name
        for phrase, name in SYNONYMS.items():
            if name in self.names:
                self.by_phrase.setdefault(phrase, name)

    def resolve(self, phrase: str) -> tuple[str | None, str]:
        """(category, "") or (None, why not)."""
        phrase = " ".join(phrase.lower().strip(" .!?'\"").split())
        if not phrase:
            return None, "no category given"
        for candidate in (phrase, phrase.replace(" ", ""), _singular(phrase)):
            if candidate in self.by_phrase:
                return self.by_phrase[candidate], ""
        compact = phrase.replace(" ", "")
        matches = sorted({n for n in self.names if len(compact) >= MIN_PREFIX and n.startswith(compact)})
        if len(matches) == 1:
            return matches[0], ""
        if matches:
            return None, f"'{phrase}' could be {' or '.join(matches)}"
        return None, f"no category '{phrase}'"


def _singular(phrase: str) -> str:
    if phrase.endswith("es") and len(phrase) > 4 and phrase[:-2] in SYNONYMS.values():
        return phrase[:-2]
    return phrase[:-1] if phrase.endswith("s") and len(phrase) > 3 else phrase


def _numbers(token: re.Match[str]) -> list[int] | str:
    runs = re.findall(r"\d+", token.group(0))
    if any(len(run) > MAX_NUMBER_DIGITS for run in runs):
        return f"{_clip(max(runs, key=len), 16)} is not a photo number"
    if token.group("num"):
        return [int(token.group("num"))]
    first, last = (int(n) for n in runs)
    if first > last:
        first, last = last, first
    if last - first >= MAX_RANGE:
        return f"range {first}-{last} is too long"
    return list(range(first, last + 1))


def _words_of(words: list[str]) -> list[str]:
    return [w for w in (w.lower().strip(".") for w in words) if w and w not in FILLER]


def _is_all_ok(words: list[str]) -> bool:
    """'all ok', 'all good', 'everything is fine', 'looks good', 'lgtm'."""
    if words == ["lgtm"]:
        return True
    return len(words) >= 2 and words[-1] in CONFIRM_WORDS and set(words[:-1]) <= ALL_WORDS | {"looks"}


def parse_reply(text: str, shown: Iterable[int], categories: Iterable[Category]) -> ReplyPlan:
    """The instructions in ``text`` for the digest numbers ``shown``. Later instructions win over earlier
    ones for the same number; a number's own instruction wins over ``all ok``."""
    try:
        return _parse(text, frozenset(shown), CategoryNames(categories))
    except Exception as exc:  # a bug here must be a reported problem, never a crash
        return ReplyPlan(problems=(f"the reply could not be read ({exc.__class__.__name__})",))


def _parse(text: str, shown: frozenset[int], names: CategoryNames) -> ReplyPlan:
    wanted: dict[int, str | None] = {}  # number -> category, None = confirm
    held: set[int] = set()  # numbers on a part not understood: "all ok" must not confirm them
    mentions = 0  # photo numbers given a category, each time: more than the digest showed is no correction
    all_ok = False
    problems: dict[str, list[str]] = {}  # line -> why, in order
    ignored: list[str] = []

    def problem(line: str, why: str) -> None:
        reasons = problems.setdefault(_clip(line), [])
        if why not in reasons:
            reasons.append(why)

    def flush(line: str, pending: _Line) -> None:
        nonlocal all_ok, mentions
        if not pending.numbers and not pending.words:
            return
        words = _words_of(pending.words)
        if not pending.numbers:
            if _is_all_ok(words):
                all_ok = True
            else:
                problem(line, "which photo? (start with its number)")
            return
        held.update(pending.numbers)  # until the part is understood
        if not words:
            if pending.words:
                problem(line, f"no category after {_list(pending.numbers)}")
            else:
                problem(line, f"no category for {_list(pending.numbers)}")
            return
        if all(w in CONFIRM_WORDS for w in words):
            category: str | None = None
        else:
            category, why = names.resolve(" ".join(words))
            if category is None:
                problem(line, why)
                return
        mentions += len(pending.numbers)
        unknown = [n for n in pending.numbers if n not in shown]
        if unknown:
            problem(line, f"{_list(unknown)} not in this digest")
        held.difference_update(pending.numbers)
        for number in pending.numbers:
            if number in shown:
                wanted.pop(number, None)
                wanted[number] = category

    limited = limit_text(text)
    for raw in limited.text.split("\n"):
        line = raw[:MAX_LINE_CHARS].strip()
        if not line:
            continue
        cleaned = line.replace("->", " ").replace("=>", " ").replace("→", " ").replace(":", " ").replace("#", " ")
        cleaned = cleaned.replace("=", " ").replace("(", " ").replace(")", " ")
        if not re.search(r"\d", cleaned):
            pending = _Line(words=[m.group(0) for m in _TOKEN.finditer(cleaned) if m.group("word") or
                                   m.group("emoji")])
            if _is_all_ok(_words_of(pending.words)):
                all_ok = True
            else:
                ignored.append(_clip(line))
            continue
        pending = _Line()
        for token in _TOKEN.finditer(cleaned):
            if token.group("sep"):
                if pending.words:
                    flush(line, pending)
                    pending = _Line()
                continue
            if token.group("word") or token.group("emoji"):
                pending.words.append(token.group(0))
                continue
            numbers = _numbers(token)
            if isinstance(numbers, str):
                problem(line, numbers)
                pending = _Line()
                continue
            if _words_of(pending.words):
                flush(line, pending)
                pending = _Line()
            elif pending.words and not pending.numbers:
                pending.words = []  # "photo 12 food": leading filler words
            pending.numbers.extend(numbers)
        flush(line, pending)
    labels = {n: c for n, c in wanted.items() if c is not None}
    confirmed = {n for n, c in wanted.items() if c is None}
    if all_ok:
        confirmed |= {n for n in shown if n not in wanted and n not in held}
    lines = [f"'{line}': {'; '.join(reasons)}" for line, reasons in problems.items()]
    if len(lines) > MAX_PROBLEMS:
        lines = [*lines[:MAX_PROBLEMS], f"… and {len(lines) - MAX_PROBLEMS} more lines not understood"]
    if limited.dropped_lines:
        lines.append(f"only the first {MAX_TEXT_LINES} lines ({MAX_TEXT_CHARS} characters) of a reply are read; "
                     f"{limited.dropped_lines} more lines were not")
    if mentions > len(shown):
        lines.insert(0, f"this reply asks for {mentions} changes but the digest showed {len(shown)} photos: nothing "
                        "was changed (was a digest pasted in?); reply with one line per photo to change")
        return ReplyPlan(problems=tuple(lines), ignored=tuple(ignored[:MAX_PROBLEMS]))
    return ReplyPlan(labels=labels, confirmed=frozenset(confirmed), problems=tuple(lines),
                     ignored=tuple(ignored[:MAX_PROBLEMS]))


def _clip(line: str, width: int = 60) -> str:
    line = " ".join(line.split())
    return line if len(line) <= width else line[:width - 1] + "…"


def _list(numbers: list[int]) -> str:
    return ", ".join(f"#{n}" for n in numbers)
