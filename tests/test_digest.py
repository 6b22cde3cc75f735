"""The digest: least sure first, short numbers, how to reply with this digest's numbers, text + HTML with
inline thumbnails, when it is due, and that nothing happened means no digest."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest

from photosorter.adapters.images import decode_image
from photosorter.core.categories import DEFAULT_CATEGORIES
from photosorter.core.digest import (
    Digest,
    DigestPhoto,
    digest_subject,
    find_digest_id,
    number_photos,
    pick_for_review,
    render_html,
    render_text,
    reply_example,
    review_pool,
)
from photosorter.core.replies import parse_reply
from photosorter.mailflow import MAX_THUMBS_BYTES, MailFlow
from photosorter.records import Failure, PhotoRecord, PhotoStatus
from tests.conftest import write_photo
from tests.mailfakes import ZONE, FakeLedger, FakeMailer, digest_flow, mail_settings, sorted_photos

DAY = dt.date(2026, 11, 25)


def photo(photo_id: int, margin: float, unsure: bool = False, category: str = "food") -> DigestPhoto:
    return DigestPhoto(photo_id, f"IMG_{photo_id}.jpg", category, 0.5 + margin, margin, unsure)


def test_unsure_photos_come_first_then_the_smallest_margins() -> None:
    photos = [photo(1, 0.5), photo(2, 0.05), photo(3, 0.3, unsure=True), photo(4, 0.01, unsure=True), photo(5, 0.2)]
    assert [p.photo_id for p in pick_for_review(photos)] == [4, 3, 2, 5, 1]
    assert [e.number for e in number_photos(pick_for_review(photos, 3))] == [1, 2, 3]


def test_the_digest_weighs_only_the_least_sure_pool_and_loads_only_its_embeddings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    photos = [photo(1, 0.5), photo(2, 0.05), photo(3, 0.3, unsure=True), photo(4, 0.01, unsure=True), photo(5, 0.2)]
    assert [p.photo_id for p in review_pool(photos, 3)] == [4, 3, 2]
    asked: list[int] = []
    flow, ledger, _ = digest_flow(60)

    def embeddings_for(photo_ids: list[int]) -> dict[int, np.ndarray]:
        asked.extend(photo_ids)
        return {i: np.ones(4, np.float32) for i in photo_ids}

    monkeypatch.setattr(ledger, "embeddings_for", embeddings_for)
    monkeypatch.setattr("photosorter.mailflow.review_pool", lambda photos: review_pool(photos, 25))
    digest = flow.build_digest(dt.datetime(2026, 11, 25, 20, 0, tzinfo=ZONE), kind="manual").digest
    least_sure = review_pool([DigestPhoto(r.id, "", r.category or "", r.score or 0, r.margin or 0,
                                          r.status is PhotoStatus.UNSURE) for r in ledger.photos], 25)
    assert sorted(asked) == sorted(p.photo_id for p in least_sure)  # 25 embeddings read, not 60
    assert {e.photo.photo_id for e in digest.entries} <= set(asked) and digest.more == 60 - len(digest.entries)


def make_digest(count: int = 4, **kwargs: object) -> Digest:
    entries = number_photos([photo(i, i / 10, category=("food", "beer", "me", "text")[i % 4])
                             for i in range(1, count + 1)])
    return Digest("ps-abc123", DAY, entries, DEFAULT_CATEGORIES, {"food": 3, "_unsure": 1}, **kwargs)  # type: ignore[arg-type]


def test_the_example_reply_uses_this_digests_numbers_and_parses_to_real_changes() -> None:
    digest = make_digest()
    example = reply_example(digest)
    assert example == "1 screenshot, 2, 3 people, 4 ok"
    result = parse_reply(example, [e.number for e in digest.entries], DEFAULT_CATEGORIES)
    assert not result.problems and result.labels[1] != digest.entries[0].photo.category


def test_the_text_explains_replying_in_three_lines_at_the_top() -> None:
    lines = render_text(make_digest()).splitlines()
    assert lines[0].startswith("To fix a mistake, reply") and "1 screenshot, 2, 3 people" in lines[1]
    assert lines[2].startswith("Categories: screenshot, me,") and lines[3] == ""


def test_the_text_lists_each_photo_with_number_category_and_confidence() -> None:
    text = render_text(make_digest())
    assert re.search(r"#1\s+beer\s+60%\s+IMG_1\.jpg", text)
    assert "Sorted: food 3, not sure (in _unsure) 1" in text and text.rstrip().endswith("Digest ps-abc123")


def test_failures_and_attention_are_listed() -> None:
    digest = make_digest(failures=(Failure("broken.jpg", "not an image"),), attention=("iCloud login needed",))
    text, html = render_text(digest), render_html(digest)
    assert "broken.jpg: not an image" in text and "iCloud login needed" in text
    assert "broken.jpg" in html and "Needs your attention" in html


def test_html_escapes_names_and_references_thumbnails_by_cid() -> None:
    entries = number_photos([DigestPhoto(1, "<script>.jpg", "food", 0.9, 0.5, False)], ["thumb.1@x"])
    html = render_html(Digest("ps-abc123", DAY, entries, DEFAULT_CATEGORIES, {"food": 1}))
    assert "&lt;script&gt;.jpg" in html and "<script>" not in html and 'src="cid:thumb.1@x"' in html


def test_the_subject_has_date_count_and_digest_id() -> None:
    subject = digest_subject(make_digest())
    assert subject == "Photosorter Wed 25 Nov 2026: 4 photos sorted [ps-abc123]"
    assert find_digest_id("Re: Fwd: " + subject) == "ps-abc123" and find_digest_id("hello") is None


def test_the_message_is_html_with_a_text_alternative_and_inline_thumbnails(tmp_path: Path) -> None:
    library = tmp_path / "library"
    photos = sorted_photos(3)
    for record in photos:
        assert record.library_path
        write_photo(library / record.library_path.split("/")[0], record.library_path.split("/")[1], (200, 40, 40),
                    size=(800, 600))
    settings = mail_settings(library=str(library))
    ledger = FakeLedger(photos)
    flow = MailFlow(settings=settings.mail, categories=settings.classify.categories, library=library, ledger=ledger,
                    mailer=FakeMailer(), inbox=None, zone=ZONE, decoder=decode_image)
    message = flow.build_digest(dt.datetime(2026, 11, 25, 20, 0, tzinfo=ZONE), kind="manual").message
    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.get_payload()  # type: ignore[misc]
    assert plain.get_content_type() == "text/plain" and related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    html = html_part.get_content()
    assert len(images) == 3
    for image in images:
        assert image.get_content_type() == "image/jpeg" and f"cid:{image['Content-ID'][1:-1]}" in html
        assert max(decode_image(image.get_content(), 16).size) <= 256
    assert message["Auto-Submitted"] == "auto-generated" and find_digest_id(message["Subject"])


def test_thumbnails_stop_at_the_size_cap(tmp_path: Path) -> None:
    flow, _, _ = digest_flow(1)
    flow.decoder = decode_image
    big = [write_photo(tmp_path, f"{i}.jpg", (i, 90, 200), size=(600, 600), noise_seed=i) for i in range(40)]
    thumbs, cids = flow._thumbnails(big, "example.com")
    assert sum(len(t or b"") for t in thumbs) <= MAX_THUMBS_BYTES and all(cids)


def test_a_scheduled_digest_goes_once_a_day_after_its_local_time() -> None:
    flow, ledger, mailer = digest_flow(5, mail_settings(digest_time="20:00"))
    assert not flow.send_digest_if_due(dt.datetime(2026, 11, 25, 18, 59, tzinfo=dt.UTC))  # 19:59 in Berlin
    assert flow.send_digest_if_due(dt.datetime(2026, 11, 25, 19, 0, tzinfo=dt.UTC))
    assert not flow.send_digest_if_due(dt.datetime(2026, 11, 25, 22, 0, tzinfo=dt.UTC))
    assert flow.send_digest_if_due(dt.datetime(2026, 11, 26, 19, 30, tzinfo=dt.UTC))
    assert len(mailer.sent) == 2 and [d.day for d in ledger.digests] == ["2026-11-25", "2026-11-26"]


def test_the_digest_keeps_its_local_time_across_a_daylight_saving_change() -> None:
    flow, ledger, _ = digest_flow(5, mail_settings(digest_time="08:00"))
    # Berlin: 08:00 is 07:00 UTC before 29 March 2026 and 06:00 UTC from that day on
    assert not flow.send_digest_if_due(dt.datetime(2026, 3, 28, 6, 59, tzinfo=dt.UTC))
    assert flow.send_digest_if_due(dt.datetime(2026, 3, 28, 7, 0, tzinfo=dt.UTC))
    assert not flow.send_digest_if_due(dt.datetime(2026, 3, 29, 5, 59, tzinfo=dt.UTC))
    assert flow.send_digest_if_due(dt.datetime(2026, 3, 29, 6, 0, tzinfo=dt.UTC))
    assert not flow.send_digest_if_due(dt.datetime(2026, 10, 25, 6, 59, tzinfo=dt.UTC))  # autumn: 07:00 UTC
    assert flow.send_digest_if_due(dt.datetime(2026, 10, 25, 7, 0, tzinfo=dt.UTC))
    assert [d.day for d in ledger.digests] == ["2026-03-28", "2026-03-29", "2026-10-25"]


def test_nothing_sorted_means_no_digest_unless_asked_for() -> None:
    flow, ledger, mailer = digest_flow(0)
    assert not flow.send_digest_if_due(dt.datetime(2026, 11, 25, 21, 0, tzinfo=dt.UTC))
    assert mailer.sent == [] and ledger.digests[0].kind == "skipped"
    assert not flow.send_digest_if_due(dt.datetime(2026, 11, 25, 21, 1, tzinfo=dt.UTC))  # decided once a day
    eager, _, eager_mailer = digest_flow(0, mail_settings(digest_when_empty="true"))
    assert eager.send_digest_if_due(dt.datetime(2026, 11, 25, 21, 0, tzinfo=dt.UTC)) and eager_mailer.sent


def test_a_disabled_digest_is_never_due() -> None:
    flow, _, mailer = digest_flow(5, mail_settings(digest_enabled="false"))
    assert not flow.send_digest_if_due(dt.datetime(2026, 11, 25, 23, 0, tzinfo=dt.UTC)) and not mailer.sent


def test_failed_and_duplicate_photos_are_counted_not_numbered() -> None:
    flow, ledger, _ = digest_flow(2)
    ledger.photos.append(PhotoRecord(id=9, sha256="0", source_path="x", library_path="_failed/x.jpg", category=None,
                                     score=None, margin=None, status=PhotoStatus.FAILED, reason="truncated"))
    built = flow.build_digest(dt.datetime(2026, 11, 25, 20, 0, tzinfo=ZONE), kind="manual")
    assert len(built.digest.entries) == 2 and built.digest.failures == (Failure("x.jpg", "truncated"),)
    assert built.digest.counts["_failed"] == 1
