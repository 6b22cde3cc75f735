"""What the commands tell a person: a summary that adds up, moves a label caused, log lines that name files
and never land on top of the progress bar."""

from __future__ import annotations

import io
import logging
import re
import shutil
from pathlib import Path

from photosorter.progress import BarAwareHandler, Progress
from tests.conftest import write_photo
from tests.test_sort_folder import files_under, run_cli


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def summary_counts(stdout: str) -> dict[str, int]:
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^  ([a-z_]+) +(\d+)$", stdout, re.M)}
    counts |= {m[1]: int(m[2]) for m in re.finditer(r"^  ([a-z]+) \(in [^)]*\): (\d+)$", stdout, re.M)}
    return counts


def test_the_summary_adds_up_to_the_files_and_matches_the_folders(tmp_path: Path, tiny_clip: Path) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    for i, colour in enumerate([(220, 20, 20), (20, 220, 20), (20, 20, 220)]):
        write_photo(inbox, f"{i}.jpg", colour)
    shutil.copy(inbox / "0.jpg", inbox / "copy.jpg")
    (inbox / "broken.jpg").write_bytes(b"not a photo")
    result = run_cli("sort", inbox, "--library", library, "--data", tmp_path / "data", "--model", tiny_clip,
                     env={"PHOTOSORTER_UNSURE_MARGIN": "0.3"})
    assert result.returncode == 0, result.stderr
    total = int(re.search(r"Sorted (\d+) files", result.stdout)[1])  # type: ignore[index]
    counts = summary_counts(result.stdout)
    assert total == 5 == sum(counts.values()), result.stdout
    on_disk: dict[str, int] = {}
    for path in files_under(library):
        folder = path.relative_to(library).parts[0]
        on_disk[folder] = on_disk.get(folder, 0) + 1
    named = {"unsure": "_unsure", "duplicates": "_duplicates", "failed": "_failed"}
    assert {named.get(k, k): v for k, v in counts.items() if v} == on_disk


def test_a_duplicate_is_logged_with_the_file_it_repeats(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    write_photo(inbox, "a.jpg", (220, 20, 20))
    shutil.copy(inbox / "a.jpg", inbox / "b.jpg")
    result = run_cli("sort", inbox, "--library", library, "--data", tmp_path / "data", "--model", tiny_model)
    line = next(line for line in result.stderr.splitlines() if "duplicate:" in line)
    assert re.search(r"duplicate: \S*b\.jpg has the same bytes as \S*a\.jpg$", line), line  # files, not ids


def test_label_folder_says_which_library_photos_it_moved(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library, examples = tmp_path / "inbox", tmp_path / "library", tmp_path / "examples"
    common = ("--library", library, "--data", tmp_path / "data", "--model", tiny_model)
    for i in range(3):
        write_photo(inbox, f"p{i}.jpg", (220, 20, 20), noise_seed=i)
    assert run_cli("sort", inbox, *common).returncode == 0
    (before,) = {p.parent.name for p in files_under(library)}
    target = "beer" if before != "beer" else "food"
    examples.mkdir()
    for path in files_under(library)[:2]:  # the same bytes, kept elsewhere
        shutil.copy(path, examples / path.name)
    result = run_cli("label", "--folder", examples, target, *common)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"labelled 2 of 2 photos as {target}",
                                          f"moved 2 library photos into {target}/ (from {before}/ 2)"]
    assert sorted(p.parent.name for p in files_under(library)) == sorted([target, target, before])
    assert sum(f"to {target}/ (labelled {target})" in line for line in result.stderr.splitlines()) == 2


def test_a_log_line_never_lands_on_the_progress_bar() -> None:
    terminal = Terminal()
    handler = BarAwareHandler(terminal)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test-progress-bar")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        progress = Progress(4, stream=terminal)
        progress.advance()
        logger.warning("cannot read broken.jpg")
        progress.advance(3)
        progress.close()
    finally:
        logger.removeHandler(handler)
    screen = terminal.getvalue()
    lines = [part.rsplit("\r", 1)[-1] for part in screen.replace("\033[K", "").split("\n")]
    assert lines[0] == "cannot read broken.jpg"  # the bar's line was cleared first
    assert lines[1].startswith("[") and "4/4 photos" in lines[1]  # the bar again, below the log line


def test_digest_dry_run_needs_no_mail_settings_and_writes_a_page_to_open(tmp_path: Path, tiny_clip: Path) -> None:
    inbox, library, data = tmp_path / "inbox", tmp_path / "library", tmp_path / "data"
    for i, colour in enumerate([(220, 20, 20), (20, 220, 20)]):
        write_photo(inbox, f"{i}.jpg", colour, size=(200, 150))
    common = ("--library", library, "--data", data, "--model", tiny_clip)
    assert run_cli("sort", inbox, *common, env={"PHOTOSORTER_UNSURE_MARGIN": "0.99"}).returncode == 0
    result = run_cli("digest", "--dry-run", *common, env={"PHOTOSORTER_MAIL_TO": "", "PHOTOSORTER_SMTP_HOST": ""})
    assert result.returncode == 0, result.stderr
    (page,) = (data / "digests").glob("digest-*.html")
    (eml,) = (data / "digests").glob("digest-*.eml")
    assert str(page) in result.stdout and str(eml) in result.stdout
    html = page.read_text()
    assert html.count("data:image/jpeg;base64,") == 2 and "cid:" not in html
