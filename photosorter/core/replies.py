"""Reading a reply to the digest: what the person wrote (without quotes and signatures), then the grammar.

Pure and total: ``read_reply_text`` and ``parse_reply`` never raise on any input. Unknown numbers or
categories are reported back as problems, never guessed.

Grammar (case-insensitive; one instruction per line or comma-separated)::

    12 food          12: food          12 -> food          #12 = food
    12, 14, 15 screenshot               12-15 scenery       12 to 15 scenery
    12 ok            all ok             3 food, 7 beer can  pic of me (synonyms), scr (prefixes)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from photosorter.records import Category

MAX_LINES = 1000
MAX_LINE_CHARS = 1000
MAX_RANGE = 500
MAX_PROBLEMS = 20

CONFIRM_WORDS = frozenset({"ok", "okay", "k", "correct", "right", "yes", "yep", "good", "fine", "fine.", "✓", "✔",
                           "👍", "confirmed", "confirm"})
ALL_WORDS = frozenset({"all", "everything", "rest", "others"})
FILLER = frozenset({"is", "are", "should", "be", "to", "as", "a", "an", "the", "it", "its", "it's", "this", "that",
                    "these", "those", "move", "put", "into", "in", "folder", "category", "please", "photo", "photos",
                    "pic", "pics", "picture", "pictures", "of", "number", "nr", "no.", "and", "also", "one",
                    "image", "images", "shot", "actually", "really", "just", "=", "thanks"})
# A few everyday words for the default categories; used only when that category is configured.
SYNONYMS: dict[str, str] = {
    "me": "me", "selfie": "me", "selfies": "me", "myself": "me", "i": "me",
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

_QUOTE_HEADER_START = re.compile(r"^\s*(on|am|le|el|op|il|den|på)\b", re.IGNORECASE)
_QUOTE_HEADER_END = re.compile(r"(wrote|schrieb|a écrit|escribió|schreef|ha scritto|skrev)\s*:\s*$", re.IGNORECASE)
_CUT_LINES = re.compile(
    r"^\s*(-{2,}\s*original message\s*-{2,}|-{3,}\s*forwarded message\s*-{3,}|begin forwarded message:|"
    r"_{20,}|-{20,}|={20,})\s*$", re.IGNORECASE)
_HEADER_FIELD = re.compile(r"^\s*\*?(from|sent|date|to|cc|subject|von|gesendet|an|betreff|de|envoyé|objet)\*?\s*:",
                           re.IGNORECASE)
_SIGNATURE = re.compile(
    r"^\s*(--\s*|—|sent from my .*|sent from mail for windows.*|get outlook for .*|sent from (yahoo|outlook).*|"
    r"von meinem .* gesendet|envoyé de mon .*|sent via .*|sent with .*)$", re.IGNORECASE)


# reading only what the person wrote --------------------------------------------------------------------
class _HtmlText(HTMLParser):
    """HTML to lines of text: blocks become lines, blockquotes become '>' lines, and everything after a
    client's reply marker (Gmail ``gmail_quote``, Outlook ``divRplyFwdMsg``/``appendonsend``,
    Thunderbird ``moz-cite-prefix``, Yahoo ``yahoo_quoted``) is dropped."""

    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
                        "blockquote", "pre", "hr"})
    SKIP = frozenset({"script", "style", "head", "title"})
    CUT_MARKERS = ("gmail_quote", "divrplyfwdmsg", "appendonsend", "moz-cite-prefix", "yahoo_quoted",
                   "gmail_attr", "protonmail_quote", "replyforwardmessage")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current = ""
        self.quote_depth = 0
        self.skip_depth = 0
        self.cut = False

    def _break(self) -> None:
        self.lines.append(self.current.rstrip())
        self.current = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.cut:
            return
        marker = " ".join(value or "" for name, value in attrs if name in ("class", "id", "name")).lower()
        if any(m in marker for m in self.CUT_MARKERS):
            self.cut = True
            return
        if tag in self.SKIP:
            self.skip_depth += 1
        if tag in self.BLOCKS:
            self._break()
        if tag == "blockquote":
            self.quote_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self.cut:
            return
        if tag in self.SKIP and self.skip_depth:
            self.skip_depth -= 1
        if tag in self.BLOCKS:
            self._break()
        if tag == "blockquote" and self.quote_depth:
            self.quote_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.cut or self.skip_depth:
            return
        text = re.sub(r"\s+", " ", data)
        if not self.current.strip(" >"):
            text = text.lstrip()
            if not text:
                return
            self.current = "> " * self.quote_depth
        self.current += text

    def text(self) -> str:
        self._break()
        return "\n".join(self.lines)


def html_to_text(html: str) -> str:
    """The visible text of an HTML mail body, quoted parts marked with '>' or dropped. Never raises."""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient, but a reply must never crash the poller
        pass
    return parser.text()


def _is_quote_header(lines: list[str], index: int) -> int:
    """How many lines an 'On … wrote:' header starting at ``index`` spans (0: none). Gmail wraps it."""
    if not _QUOTE_HEADER_START.match(lines[index]):
        return 0
    joined = ""
    for span in range(3):
        if index + span >= len(lines):
            return 0
        joined += " " + lines[index + span].strip()
        if _QUOTE_HEADER_END.search(joined):
            return span + 1
    return 0


def _is_header_block(lines: list[str], index: int) -> bool:
    """An Outlook-style 'From: … / Sent: … / To: … / Subject: …' block quoting the original."""
    if not re.match(r"^\s*\*?(from|von|de)\*?\s*:", lines[index], re.IGNORECASE):
        return False
    following = [line for line in lines[index + 1:index + 5] if line.strip()]
    return sum(bool(_HEADER_FIELD.match(line)) for line in following) >= 2


def strip_quoted(text: str) -> str:
    """The part of a plain-text reply the person wrote: quoted lines, quote headers, forwarded or
    original-message blocks and signatures removed. Inline answers between '>' lines are kept."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:MAX_LINES * 4]
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.lstrip().startswith(">"):
            index += 1
            continue
        span = _is_quote_header(lines, index)
        if span:
            rest = [x for x in lines[index + span:] if x.strip()]
            if rest and rest[0].lstrip().startswith(">"):  # bottom-posting: drop the header, read on
                index += span
                continue
            break
        if _CUT_LINES.match(line) or _SIGNATURE.match(line) or _is_header_block(lines, index):
            break
        kept.append(line)
        index += 1
    return "\n".join(kept).strip()


def read_reply_text(plain: str | None, html: str | None) -> str:
    """What the person wrote, from the text/plain part when there is one, else from the HTML part."""
    if plain and plain.strip():
        return strip_quoted(plain)
    if html:
        return strip_quoted(html_to_text(html))
    return ""


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
    r"(?P<range>\d{1,9}\s*(?:-|–|—|\.\.|to)\s*\d{1,9})(?![\d.])|(?P<num>\d{1,9})|(?P<sep>[,;&/+|])|"
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
        matches = sorted({n for n in self.names if len(compact) >= 2 and n.startswith(compact)})
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
    if token.group("num"):
        return [int(token.group("num"))]
    first, last = (int(n) for n in re.findall(r"\d+", token.group("range")))
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
    all_ok = False
    problems: dict[str, list[str]] = {}  # line -> why, in order
    ignored: list[str] = []

    def problem(line: str, why: str) -> None:
        reasons = problems.setdefault(_clip(line), [])
        if why not in reasons:
            reasons.append(why)

    def flush(line: str, pending: _Line) -> None:
        nonlocal all_ok
        if not pending.numbers and not pending.words:
            return
        words = _words_of(pending.words)
        if not pending.numbers:
            if _is_all_ok(words):
                all_ok = True
            else:
                problem(line, "which photo? (start with its number)")
            return
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
        unknown = [n for n in pending.numbers if n not in shown]
        if unknown:
            problem(line, f"{_list(unknown)} not in this digest")
        for number in pending.numbers:
            if number in shown:
                wanted.pop(number, None)
                wanted[number] = category

    for raw in text.split("\n")[:MAX_LINES]:
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
        confirmed |= {n for n in shown if n not in wanted}
    lines = [f"'{line}': {'; '.join(reasons)}" for line, reasons in problems.items()]
    if len(lines) > MAX_PROBLEMS:
        lines = [*lines[:MAX_PROBLEMS], f"… and {len(lines) - MAX_PROBLEMS} more lines not understood"]
    return ReplyPlan(labels=labels, confirmed=frozenset(confirmed), problems=tuple(lines),
                     ignored=tuple(ignored[:MAX_PROBLEMS]))


def _clip(line: str, width: int = 60) -> str:
    line = " ".join(line.split())
    return line if len(line) <= width else line[:width - 1] + "…"


def _list(numbers: list[int]) -> str:
    return ", ".join(f"#{n}" for n in numbers)
