"""Memory per photo is bounded: thin images, pixel bombs and huge files cost no more than a normal photo.

Each case is a real ``photosorter sort`` in a child process; its peak resident memory comes from
``wait4`` (the kernel's count, not timing). The child runs under an address-space limit, so a photo
that would need gigabytes fails here instead of taking the machine down.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from photosorter.adapters.images import decode_image
from photosorter.cli.build import build_sorter, open_state
from photosorter.config import load_settings
from tests.conftest import jpeg_bytes, write_photo
from tests.hostile import run_measured

ADDRESS_LIMIT = 6 << 30  # virtual; onnxruntime and numpy reserve far more than they touch
HEADROOM_MB = 120  # a hostile photo may cost at most this much more than a 12 MP photo


def png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG")
    return buffer.getvalue()


def thin_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1, 20000), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def sort_peak_mb(tmp: Path, name: str, data: bytes | None, model: Path, size: int = 0) -> tuple[float, str]:
    """Peak RSS (MB) of sorting an inbox holding one file; ``size`` makes a sparse file of that size."""
    inbox = tmp / name.replace(".", "_") / "inbox"
    inbox.mkdir(parents=True)
    path = inbox / name
    if data is None:
        with path.open("wb") as handle:
            handle.write(b"\xff\xd8\xff\xe0")
            handle.truncate(size)
    else:
        path.write_bytes(data)
    returncode, peak, output = run_measured(
        ["sort", str(inbox), "--library", str(inbox.parent / "library"), "--data", str(inbox.parent / "data"),
         "--model", str(model)], inbox.parent / "out.log", address_limit=ADDRESS_LIMIT)
    assert returncode == 0, f"{name}: exit {returncode}\n{output[-2000:]}"
    return peak, output


@pytest.fixture(scope="module")
def normal_peak_mb(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> float:
    peak, _ = sort_peak_mb(tmp_path_factory.mktemp("normal"), "IMG_0001.jpg",
                           jpeg_bytes((20, 120, 200), size=(4032, 3024), noise_seed=3), tiny_model)
    print(f"peak RSS sorting one 12 MP photo: {peak:.0f} MB")
    return peak


@pytest.mark.parametrize(("name", "make"), [
    ("thin-10000x1.png", lambda: png((10000, 1))),
    ("thin-1000000x1.png", lambda: png((1_000_000, 1), "L")),
    ("thin-1x20000.jpg", thin_jpeg),
    ("wide-70MP.png", lambda: png((35000, 2000), "1")),
])
def test_a_thin_or_huge_image_costs_no_more_memory_than_a_normal_photo(
        tmp_path: Path, tiny_model: Path, normal_peak_mb: float, name: str, make: object) -> None:
    peak, output = sort_peak_mb(tmp_path, name, make(), tiny_model)  # type: ignore[operator]
    print(f"peak RSS sorting {name}: {peak:.0f} MB (12 MP photo: {normal_peak_mb:.0f} MB)")
    assert peak <= normal_peak_mb + HEADROOM_MB, output[-2000:]


def test_a_2_gb_file_named_jpg_is_refused_unread(tmp_path: Path, tiny_model: Path, normal_peak_mb: float) -> None:
    peak, output = sort_peak_mb(tmp_path, "huge.jpg", None, tiny_model, size=2_200_000_000)
    print(f"peak RSS with a 2.2 GB .jpg in the inbox: {peak:.0f} MB")
    assert peak <= normal_peak_mb + HEADROOM_MB
    assert "too large for a photo" in output
    assert (tmp_path / "huge_jpg" / "inbox" / "huge.jpg").stat().st_size == 2_200_000_000


def test_a_photo_that_runs_out_of_memory_is_set_aside_and_the_others_are_sorted(tmp_path: Path,
                                                                              tiny_model: Path) -> None:
    """A MemoryError while one photo is processed (here raised by its decoder) costs that photo only: the run
    goes on, the photo is kept in _failed, the photos after it are sorted."""
    inbox = tmp_path / "inbox"
    for i in range(3):
        write_photo(inbox, f"IMG_{i}.jpg", (220, 20, 20), noise_seed=i)
    greedy = (inbox / "IMG_1.jpg").read_bytes()

    def decoder(data: bytes, min_side: int) -> Image.Image:
        if data == greedy:
            raise MemoryError
        return decode_image(data, min_side)

    settings = load_settings({"library": str(tmp_path / "library"), "data": str(tmp_path / "data"),
                              "model": str(tiny_model), "faces": False, "settle_seconds": 0},
                             environ={}, dotenv_path=tmp_path / "none")
    state = open_state(settings)
    try:
        sorter = build_sorter(settings, state)
        sorter.decoder = decoder  # the Decoder seam the composition root fills with decode_image
        sorter.sort_folder(inbox)
    finally:
        state.close()
    placed = sorted(p.relative_to(tmp_path / "library").as_posix() for p in (tmp_path / "library").rglob("*.jpg"))
    assert placed == ["_failed/IMG_1.jpg", "food/IMG_0.jpg", "food/IMG_2.jpg"]
    assert (tmp_path / "library" / "_failed" / "IMG_1.jpg").read_bytes() == greedy
