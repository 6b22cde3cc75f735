"""What the person wrote in a reply to the digest: quotes, quote headers, original-message blocks,
signatures and the digest's own lines removed. Pure and total: never raises on any input.

Quote headers and signatures are recognised as the most used mail clients write them (Apple Mail and
iOS Mail, Gmail, Outlook desktop, web and mobile, Thunderbird, Yahoo, Samsung Email, Proton Mail, GMX
and Web.de) in English, German, French, Spanish, Italian and Dutch. A digest pasted without quote
markers (HTML under an ``<hr>``, plain text copied from another digest) is recognised by its own lines:
from its first line ("To fix a mistake, …", the headline, "Please check these") to ``Digest <id>``, and
any photo row (``#12 food 87% IMG_1.jpg``) wherever it stands. Only the first ``MAX_TEXT_LINES`` lines
and ``MAX_TEXT_CHARS`` characters of what is left are instructions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

MAX_SCAN_LINES = 4000  # lines of a body looked at at all
MAX_TEXT_LINES = 60  # non-empty lines of new text read as instructions
MAX_TEXT_CHARS = 6000
CUT_LINE = "_" * 32  # what an <hr> becomes: the line Outlook puts above the original

_QUOTE_HEADER_START = re.compile(r"^\s*(on|am|le|el|op|il|den|på)\b", re.IGNORECASE)
_QUOTE_HEADER_END = re.compile(  # German, Dutch and Swedish name the writer after the verb
    r"((wrote|geschrieben|a\s+écrit|escribió|geschreven|ha\s+scritto)\s*:|\b(schrieb|schreef|skrev)\b.*:)\s*$",
    re.IGNORECASE)
_ORIGINAL = (r"original\s+message|original-nachricht|ursprüngliche\s+nachricht|message\s+d['’]origine|"
             r"message\s+original|mensaje\s+original|messaggio\s+originale|oorspronkelijk\s+bericht|"
             r"origineel\s+bericht|forwarded\s+message|weitergeleitete\s+nachricht|message\s+transféré|"
             r"mensaje\s+reenviado|messaggio\s+inoltrato|doorgestuurd\s+bericht")
_CUT_LINES = re.compile(
    rf"^\s*(-{{2,}}\s*({_ORIGINAL})\s*-{{2,}}|begin forwarded message:|anfang der weitergeleiteten nachricht:|"
    r"début du message réexpédié :?|inicio del mensaje reenviado:|inizio messaggio inoltrato:|"
    r"begin doorgestuurd bericht:|_{20,}|-{20,}|={20,})\s*$", re.IGNORECASE)
_FIELDS = (r"from|sent|date|to|cc|subject|von|gesendet|datum|an|betreff|de|envoyé|à|objet|enviado(\s+el)?|fecha|para|"
           r"asunto|da|inviato|data|a|oggetto|van|verzonden|aan|onderwerp")
_HEADER_FIELD = re.compile(rf"^\s*\*?({_FIELDS})\*?\s*:", re.IGNORECASE)
_SIGNATURE = re.compile(
    r"^\s*(--\s*|—|"
    r"(sent|get) (from|with|via|using) .*|get outlook for .*|"
    r"gesendet (von|mit|über|vom) .*|von meinem .*gesendet\.?|outlook für .* beziehen|"
    r"envoyé (de|depuis|à partir de|avec|par) .*|obtenir outlook pour .*|"
    r"enviado (desde|con|de) .*|obtener outlook para .*|"
    r"inviato (da|dal|dalla|dallo|con) .*|scarica outlook per .*|"
    r"(verstuurd|verzonden) (vanaf|met|via|van) .*|outlook voor .* downloaden)$", re.IGNORECASE)

# the digest's own lines (core.digest renders them; a test keeps the two in step)
_DIGEST_START = re.compile(
    r"^\s*(to fix a mistake, reply to this mail\b|photosorter sorted \d+ photos? by\b|nothing new was sorted on\b|"
    r"please check these \(least sure first\))", re.IGNORECASE)
_DIGEST_END = re.compile(r"^\s*digest\s+ps-[0-9a-z]+\s*$", re.IGNORECASE)
_DIGEST_ROW = re.compile(r"^\s*#\d+\s+\S+\s+\d{1,3}%(\s|$)")


# HTML ----------------------------------------------------------------------------------------------------
class _HtmlText(HTMLParser):
    """HTML to lines of text: blocks become lines, blockquotes become '>' lines, an ``<hr>`` becomes
    ``CUT_LINE``, and everything after a client's reply marker (Gmail ``gmail_quote``, Outlook
    ``divRplyFwdMsg``/``appendonsend``, Thunderbird ``moz-cite-prefix``, Yahoo ``yahoo_quoted``) is dropped."""

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
        if tag == "hr":
            self.lines.append(CUT_LINE)
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


# plain text ----------------------------------------------------------------------------------------------
def _is_quote_header(lines: list[str], index: int) -> int:
    """How many lines an 'On … wrote:' header starting at ``index`` spans (0: none). Clients wrap it."""
    if not _QUOTE_HEADER_START.match(lines[index]):
        return 0
    joined = ""
    for span in range(4):
        if index + span >= len(lines):
            return 0
        joined += " " + lines[index + span].strip()
        if _QUOTE_HEADER_END.search(joined):
            return span + 1
    return 0


def _is_header_block(lines: list[str], index: int) -> bool:
    """An original-message header block ('From: … / Sent: … / To: … / Subject: …', or GMX's 'Gesendet:'
    first), in any of the languages: a header field followed by at least two more."""
    if not _HEADER_FIELD.match(lines[index]):
        return False
    following = [line for line in lines[index + 1:index + 6] if line.strip()][:4]
    return sum(bool(_HEADER_FIELD.match(line)) for line in following) >= 2


def is_digest_line(line: str) -> bool:
    """A photo row of a digest (``#12 food 87% IMG_1.jpg``): the digest's words, never the person's."""
    return bool(_DIGEST_ROW.match(line))


def _drop_digest(lines: list[str]) -> list[str]:
    """The lines without a pasted digest: each block from a digest's first line to its ``Digest <id>``
    line (or the end), and every photo row wherever it stands."""
    kept: list[str] = []
    inside = False
    for line in lines:
        if inside:
            inside = not _DIGEST_END.match(line)
        elif _DIGEST_START.match(line):
            inside = True
        elif not (_DIGEST_ROW.match(line) or _DIGEST_END.match(line)):
            kept.append(line)
    return kept


def strip_quoted(text: str) -> str:
    """The part of a plain-text reply the person wrote: quoted lines, quote headers, forwarded or
    original-message blocks, signatures and pasted digests removed. Inline answers between '>' lines
    are kept."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:MAX_SCAN_LINES]
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
    return "\n".join(_drop_digest(kept)).strip()


@dataclass(frozen=True)
class ReplyText:
    """The person's new text, cut to the limits; ``dropped_lines`` non-empty lines past them."""

    text: str
    dropped_lines: int = 0


def limit_text(text: str) -> ReplyText:
    """The first ``MAX_TEXT_LINES`` non-empty lines and ``MAX_TEXT_CHARS`` characters of ``text``."""
    kept: list[str] = []
    used = dropped = 0
    for line in text.split("\n"):
        if not line.strip():
            continue
        if len(kept) >= MAX_TEXT_LINES or used + len(line) > MAX_TEXT_CHARS:
            dropped += 1
            continue
        kept.append(line)
        used += len(line) + 1
    return ReplyText("\n".join(kept), dropped)


def read_reply_text(plain: str | None, html: str | None) -> str:
    """What the person wrote, from the text/plain part when there is one, else from the HTML part."""
    if plain and plain.strip():
        return strip_quoted(plain)
    if html:
        return strip_quoted(html_to_text(html))
    return ""
