"""An inbox of 37 kinds of hostile file: the run finishes, every file is kept, each one that is not sorted gets
exactly one clear log line, nothing outside the inbox is touched, and memory stays bounded."""

from __future__ import annotations

import collections
import hashlib
import os
import stat
from pathlib import Path

from photosorter.core.naming import printable
from tests.conftest import jpeg_bytes
from tests.hostile import make_hostile_inbox, run_measured

HEADROOM_MB = 150  # over one sort of a single 12 MP photo, measured in the same test


def data_files(*folders: Path) -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    for folder in folders:
        for root, _, names in os.walk(os.fsencode(folder)):
            for name in names:
                path = os.path.join(root, name)
                info = os.lstat(path)
                if stat.S_ISREG(info.st_mode) and info.st_size < 100_000_000:
                    with open(path, "rb") as handle:
                        found[hashlib.sha256(handle.read()).hexdigest()] += 1
    return found


def data_files_of(path: Path) -> collections.Counter[str]:
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode) or info.st_size >= 100_000_000:
        return collections.Counter()
    return collections.Counter([hashlib.sha256(path.read_bytes()).hexdigest()])


def test_a_hostile_inbox_is_sorted_with_every_file_kept_and_one_line_each(tmp_path: Path, tiny_model: Path) -> None:
    inbox, library = tmp_path / "inbox", tmp_path / "library"
    kinds = make_hostile_inbox(inbox, tmp_path / "scratch")
    assert len(kinds) >= 30
    before = data_files(inbox)
    hostname = Path("/etc/hostname").read_bytes()
    digests = {name: next(iter(data_files_of(inbox / os.fsdecode(name))), None) for name in kinds}
    common = ["--library", str(library), "--data", str(tmp_path / "data"), "--model", str(tiny_model)]
    (tmp_path / "normal").mkdir()
    (tmp_path / "normal" / "IMG_1.jpg").write_bytes(jpeg_bytes((9, 9, 200), size=(4032, 3024), noise_seed=7))
    _, normal_peak, _ = run_measured(["sort", str(tmp_path / "normal"), "--library", str(tmp_path / "normal-lib"),
                                      "--data", str(tmp_path / "normal-data"), "--model", str(tiny_model)],
                                     tmp_path / "normal.log")
    returncode, peak, output = run_measured(["sort", str(inbox), *common], tmp_path / "out.log", timeout_s=240)
    print(f"{len(kinds)} hostile kinds; peak RSS {peak:.0f} MB (one 12 MP photo: {normal_peak:.0f} MB)")
    assert returncode == 0, output[-3000:]
    assert peak <= normal_peak + HEADROOM_MB
    after = data_files(inbox, library)
    assert not before - after, "a file's bytes were lost"
    assert Path("/etc/hostname").read_bytes() == hostname
    for name in (b"fifo.jpg", b"socket.jpg", b"link-out.jpg", b"link-dir"):
        assert os.path.lexists(os.path.join(os.fsencode(inbox), name)), name
    problems = [line for line in output.splitlines() if " WARNING " in line or " ERROR " in line]
    failed = data_files(library / "_failed")
    said = 0
    for name, what in kinds.items():
        shown = printable(os.path.join(os.fsencode(inbox), name))
        lines = [line for line in problems if shown + ":" in line or shown + " " in line]
        if os.path.lexists(os.path.join(os.fsencode(inbox), name)) or failed[digests[name] or ""]:
            assert len(lines) == 1, f"{what}: {lines}"
            said += 1
    print(f"{said} of {len(kinds)} set aside or left in the inbox, one log line each; the rest sorted")
