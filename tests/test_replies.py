"""The reply grammar, reading only what the person wrote in each mail client's style, and a parser that
never raises."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photosorter.core.categories import DEFAULT_CATEGORIES
from photosorter.core.replies import parse_reply, read_reply_text, strip_quoted
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
    ("6 sc", "could be scenery or screenshot"),
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
    assert len(result.problems) == 21 and "more lines not understood" in result.problems[-1]


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
