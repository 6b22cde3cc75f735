"""The reply grammar, reading only what the person wrote in each mail client's style, and a parser that
never raises."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from html import escape as html_escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photosorter.core.categories import DEFAULT_CATEGORIES
from photosorter.core.replies import parse_reply
from photosorter.core.reply_text import MAX_TEXT_LINES, html_to_text, is_digest_line, read_reply_text, strip_quoted
from photosorter.mailflow import reply_text
from tests.mailclients import STYLES, write_reply
from tests.mailfakes import sent_digest

SHOWN = range(1, 31)
NAMES = [c.name for c in DEFAULT_CATEGORIES]


def plan(text: str) -> tuple[dict[int, str], set[int], tuple[str, ...]]:
    result = parse_reply(text, SHOWN, DEFAULT_CATEGORIES)
    return result.labels, set(result.confirmed), result.problems


@pytest.mark.parametrize(("text", "labels"), [
    ("12 food", {12: "food"}),
    ("12: food", {12: "food"}),
    ("12 -> food", {12: "food"}),
    ("12 → Food", {12: "food"}),
    ("#12 = FOOD", {12: "food"}),
    ("12, 14, 15 screenshot", {12: "screenshot", 14: "screenshot", 15: "screenshot"}),
    ("12-15 scenery", {12: "scenery", 13: "scenery", 14: "scenery", 15: "scenery"}),
    ("12 – 14 scenery", {12: "scenery", 13: "scenery", 14: "scenery"}),
    ("3 food, 7 beer can", {3: "food", 7: "beer"}),
    ("3 food 7 beer", {3: "food", 7: "beer"}),
    ("4 pic of me", {4: "me"}),
    ("5 selfie", {5: "me"}),
    ("6 screenshots", {6: "screenshot"}),
    ("6 scr", {6: "screenshot"}),
    ("9 my fitness pal", {9: "myfitnesspal"}),
    ("photo 11 is people", {11: "people"}),
    ("2 should be text.", {2: "text"}),
])
def test_each_form_of_the_grammar_gives_its_labels(text: str, labels: dict[int, str]) -> None:
    assert plan(text) == (labels, set(), ())


def test_ok_confirms_one_photo_and_all_ok_every_photo_shown() -> None:
    assert plan("12 ok") == ({}, {12}, ())
    assert plan("All OK") == ({}, set(SHOWN), ())
    assert plan("all good\n3 food") == ({3: "food"}, set(SHOWN) - {3}, ())


def test_a_later_instruction_for_the_same_photo_wins() -> None:
    assert plan("3 food\n3 beer") == ({3: "beer"}, set(), ())


@pytest.mark.parametrize(("text", "why"), [
    ("6 sc", "no category 'sc'"),  # prefixes need 3 letters
    ("6 i", "no category 'i'"),  # "i" was a synonym of me
    ("12 fod", "no category 'fod'"),
    ("8 not food", "no category 'not food'"),
    ("99 food", "#99 not in this digest"),
    ("12", "no category for #12"),
    ("1-100000 food", "too long"),
])
def test_unknowns_are_reported_never_guessed(text: str, why: str) -> None:
    labels, confirmed, problems = plan(text)
    assert (labels, confirmed) == ({}, set())
    assert len(problems) == 1 and why in problems[0] and text.split()[0] in problems[0]


def test_lines_without_a_number_are_ignored_and_listed() -> None:
    result = parse_reply("Hi!\n3 food\nThanks, great work", SHOWN, DEFAULT_CATEGORIES)
    assert result.labels == {3: "food"} and result.ignored == ("Hi!", "Thanks, great work")


def test_five_hundred_lines_of_garbage_change_nothing_and_report_a_bounded_list() -> None:
    garbage = "\n".join(f"{i} lorem ipsum dolor {i * 7} sit amet ::: -> {i}" for i in range(500))
    result = parse_reply(garbage, SHOWN, DEFAULT_CATEGORIES)
    assert result.empty
    assert "more lines not understood" in result.problems[-2] and "440 more lines were not" in result.problems[-1]
    assert len(result.problems) == 22


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_the_parser_never_raises_on_any_text(text: str) -> None:
    result = parse_reply(text, SHOWN, DEFAULT_CATEGORIES)
    assert set(result.labels) <= set(SHOWN) and result.confirmed <= set(SHOWN)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/=\"' abcdiv0123456789-:&;#\n"))))
def test_reading_html_or_text_never_raises(text: str) -> None:
    read_reply_text(None, text)
    read_reply_text(text, None)


# reading only what the person wrote ---------------------------------------------------------------------
def test_a_bottom_posted_reply_keeps_the_answer_below_the_quote() -> None:
    text = "On Tue, Photosorter wrote:\n> #1 food 80%\n> #2 beer 60%\n\n2 food\n\n-- \nMe"
    assert strip_quoted(text) == "2 food"


def test_an_html_only_reply_drops_blockquotes_and_styles() -> None:
    html = ("<html><head><style>div{color:red}</style></head><body><div>3 food<br>4&nbsp;ok</div>"
            "<blockquote type=\"cite\">#5 beer</blockquote></body></html>")
    assert read_reply_text(None, html).split("\n") == ["3 food", "4 ok"]


@pytest.fixture(scope="module")
def digest() -> EmailMessage:
    return sent_digest(12)[0]


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("style", STYLES)
def test_each_client_style_gives_only_the_top_of_the_reply(style: str, digest: EmailMessage) -> None:
    raw = write_reply(style, "3 food\n5-6 beer can\n1 ok", digest)
    result = parse_reply(reply_text(parsed(raw)), range(1, 13), DEFAULT_CATEGORIES)
    assert (result.labels, set(result.confirmed), result.problems) == ({3: "food", 5: "beer", 6: "beer"}, {1}, ())


# the property: digest -> reply in each client style -> exactly the corrections ---------------------------
SEPARATORS = (" ", ": ", " -> ", " = ", " → ", " should be ")


@st.composite
def corrections(draw: st.DrawFn) -> tuple[int, dict[int, str | None]]:
    count = draw(st.integers(1, 40))
    numbers = draw(st.sets(st.integers(1, count), min_size=1, max_size=count))
    wanted = {n: draw(st.sampled_from([*NAMES, None])) for n in sorted(numbers)}
    return count, wanted


def _numbers_text(numbers: list[int], ranges: bool) -> str:
    parts: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1 and ranges:
            previous = number
            continue
        parts.append(f"{start}-{previous}" if previous > start else str(start))
        if number is not None:
            start = previous = number
    return ", ".join(parts)


def instructions_text(wanted: dict[int, str | None], draw: st.DrawFn) -> str:
    groups: dict[str | None, list[int]] = {}
    for number, category in wanted.items():
        groups.setdefault(category, []).append(number)
    lines = []
    for category, numbers in groups.items():
        word = "ok" if category is None else draw(st.sampled_from([category, category.upper(), category.title()]))
        separator = draw(st.sampled_from(SEPARATORS))
        lines.append(f"{_numbers_text(numbers, draw(st.booleans()))}{separator}{word}")
    joiner = draw(st.sampled_from(["\n", ", ", "\n\n"]))
    return joiner.join(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrections(), st.data())
def test_any_corrections_survive_every_client_style(case: tuple[int, dict[int, str | None]],
                                                     data: st.DataObject) -> None:
    count, wanted = case
    digest, items, _ = sent_digest(count)
    assert set(items) == set(range(1, count + 1))
    text = instructions_text(wanted, data.draw)
    expected_labels = {n: c for n, c in wanted.items() if c is not None}
    expected_confirmed = {n for n, c in wanted.items() if c is None}
    for style in STYLES:
        result = parse_reply(reply_text(parsed(write_reply(style, text, digest))), items, DEFAULT_CATEGORIES)
        assert (result.labels, set(result.confirmed), result.problems) == \
            (expected_labels, expected_confirmed, ()), style


# what the person did not mean --------------------------------------------------------------------------------
def test_a_number_on_a_line_not_understood_is_not_confirmed_by_all_ok() -> None:
    labels, confirmed, problems = plan("1 food - café photo\nall ok")
    assert labels == {} and confirmed == set(SHOWN) - {1}
    assert len(problems) == 1 and problems[0].startswith("'1 food - café photo'")


def test_a_long_run_of_digits_is_not_split_into_photo_numbers() -> None:
    labels, confirmed, problems = plan("123456789012 food")
    assert (labels, confirmed) == ({}, set())  # was {12: "food"}: 123456789 + 012
    assert "123456789012 is not a photo number" in problems[0]


def test_a_reply_asking_for_more_changes_than_the_digest_showed_is_quoted_back() -> None:
    result = parse_reply("1-20 food\n5-25 beer", range(1, 21), DEFAULT_CATEGORIES)
    assert result.empty and "asks for 41 changes but the digest showed 20 photos" in result.problems[0]


def test_only_the_first_lines_of_new_text_are_instructions() -> None:
    text = "\n".join(["thanks"] * MAX_TEXT_LINES + ["3 food"])
    result = parse_reply(text, SHOWN, DEFAULT_CATEGORIES)
    assert result.empty and "1 more lines were not" in result.problems[-1]


def test_every_line_of_a_digest_is_recognised_as_the_digest(digest: EmailMessage) -> None:
    """Keeps core.reply_text in step with core.digest: a digest pasted without quote markers, as plain
    text or as HTML, leaves nothing to read."""
    plain, html = digest.get_body(("plain",)), digest.get_body(("html",))
    assert plain is not None and html is not None
    assert strip_quoted(str(plain.get_content())) == ""  # type: ignore[attr-defined]
    assert strip_quoted(html_to_text(str(html.get_content()))) == ""  # type: ignore[attr-defined]
    for row in str(plain.get_content()).splitlines():  # type: ignore[attr-defined]
        if row.strip().startswith("#"):
            assert is_digest_line(row), row


# Junk: letters that spell no category prefix with a number, and never the word "all" ("all?ok" is an
# instruction, rightly followed: only "all" of the all-ok words can be spelt from this alphabet).
JUNK_LINES = st.text(alphabet=st.sampled_from(list("abcdefghij klmnop!?,.'éü")), max_size=40).filter(
    lambda line: "all" not in re.split(r"[^a-zéü]+", line))
SIGNATURES = ("-- \nMe", "Sent from my iPhone", "Von meinem iPhone gesendet", "Envoyé de mon iPhone",
              "Get Outlook for Android", "Verstuurd vanaf mijn iPhone")
QUOTE_HEADERS = ("On Tue, 25 Nov 2026 at 20:00, Photosorter <p@example.com> wrote:",
                 "Am Di., 25. Nov. 2026 um 05:42 Uhr schrieb Photosorter <p@example.com>:",
                 "Le mar. 25 nov. 2026 à 20:00, Photosorter a écrit :", "Op di 25 nov 2026 om 20:00 schreef P:")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrections(), st.data())
def test_instructions_wrapped_in_digests_quotes_signatures_and_junk_give_exactly_their_labels(
        case: tuple[int, dict[int, str | None]], data: st.DataObject) -> None:
    count, wanted = case
    digest_message, items, _ = sent_digest(count)
    plain, html = digest_message.get_body(("plain",)), digest_message.get_body(("html",))
    assert plain is not None and html is not None
    digest_text = str(plain.get_content())  # type: ignore[attr-defined]
    other_digest = str(sent_digest(data.draw(st.integers(1, 40)))[0].get_body(("plain",)).get_content())  # type: ignore[union-attr]
    lines = [data.draw(JUNK_LINES) for _ in range(data.draw(st.integers(0, 3)))]
    lines.append(instructions_text(wanted, data.draw))
    lines += [data.draw(JUNK_LINES) for _ in range(data.draw(st.integers(0, 3)))]
    pasted = data.draw(st.sampled_from(["none", "before", "after"]))
    if pasted == "before":  # a digest pasted above the instructions, without quote markers
        lines.insert(0, other_digest)
    elif pasted == "after":
        lines.append(data.draw(st.sampled_from([digest_text, other_digest])))
    if data.draw(st.booleans()):
        lines.append(data.draw(st.sampled_from(SIGNATURES)))
    ending = data.draw(st.sampled_from(["quoted", "html", "none"]))
    text = "\n".join(lines)
    if ending == "quoted":
        quoted = "\n".join("> " + line for line in digest_text.splitlines())
        text += f"\n\n{data.draw(st.sampled_from(QUOTE_HEADERS))}\n{quoted}\n"
        result = parse_reply(read_reply_text(text, None), items, DEFAULT_CATEGORIES)
    elif ending == "html":  # the person's lines, then the digest under an <hr> (no client marker)
        top = "".join(f"<div>{html_escape(line)}</div>" for line in text.splitlines())
        page = f"<html><body>{top}<hr>{html.get_content()}</body></html>"  # type: ignore[attr-defined]
        result = parse_reply(read_reply_text(None, page), items, DEFAULT_CATEGORIES)
    else:
        result = parse_reply(read_reply_text(text, None), items, DEFAULT_CATEGORIES)
    assert result.labels == {n: c for n, c in wanted.items() if c is not None}
    assert set(result.confirmed) == {n for n, c in wanted.items() if c is None}
