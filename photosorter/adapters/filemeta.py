"""What a photo's file says about where it came from (Pillow, header only: no pixel is decoded).

Screenshots carry no camera EXIF (no Make/Model/exposure), have a device screen's exact size, are
usually PNG, and iOS writes ``Screenshot`` into the EXIF UserComment (or XMP) of the ones it takes.
A camera photo has Make/Model. Anything unreadable just says nothing.
"""

from __future__ import annotations

import io
import logging

from PIL import Image, UnidentifiedImageError

from photosorter.core.signals import FileHints

log = logging.getLogger(__name__)

_MAKE, _MODEL, _USER_COMMENT, _EXIF_IFD, _EXPOSURE_TIME, _F_NUMBER = 0x010F, 0x0110, 0x9286, 0x8769, 0x829A, 0x829D

# Screen sizes (pixels, portrait) of common phones and tablets; a screenshot has exactly one of them.
SCREEN_SIZES = frozenset({
    (640, 1136), (750, 1334), (828, 1792), (1080, 1920), (1125, 2436), (1170, 2532), (1179, 2556),
    (1242, 2208), (1242, 2688), (1284, 2778), (1290, 2796), (1206, 2622), (1320, 2868), (1080, 2340),
    (1536, 2048), (1620, 2160), (1640, 2360), (1668, 2224), (1668, 2388), (2048, 2732), (2064, 2752),
    (720, 1280), (720, 1520), (720, 1600), (1080, 2160), (1080, 2280), (1080, 2400), (1080, 2412),
    (1440, 2560), (1440, 2960), (1440, 3040), (1440, 3088), (1440, 3120), (1440, 3200), (1344, 2992),
    (1280, 2856), (1080, 2424), (1200, 1920), (1600, 2560), (1800, 2880),
})


_PNG_METADATA = frozenset({b"eXIf", b"iTXt", b"tEXt", b"zTXt"})


def _png_metadata_after_pixels(data: bytes) -> bool:
    """Whether a PNG has metadata chunks after its first IDAT (read from the chunk headers alone)."""
    offset, seen_pixels = 8, False
    while offset + 8 <= len(data):
        kind = data[offset + 4:offset + 8]
        if kind == b"IEND":
            return False
        if seen_pixels and kind in _PNG_METADATA:
            return True
        seen_pixels = seen_pixels or kind == b"IDAT"
        offset += 12 + int.from_bytes(data[offset:offset + 4], "big")
    return False


def read_file_hints(data: bytes) -> FileHints:
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if image.format == "PNG" and "exif" not in image.info and not _png_metadata_after_pixels(data):
                # Pillow's PNG getexif decodes every pixel to look for chunks after them (65 ms for a
                # 1179x2556 screenshot, a second full decode); with none there, what it found at open is
                # all there is (the same EXIF, from a raw-profile text chunk when there is one).
                raw = image.info.get("Raw profile type exif")
                image.info["exif"] = bytes.fromhex("".join(raw.split("\n")[3:])) if raw else b""
            exif = image.getexif()
            details = exif.get_ifd(_EXIF_IFD)
            comment = details.get(_USER_COMMENT, b"")
            text = comment.decode("utf-8", "ignore") if isinstance(comment, bytes) else str(comment)
            xmp = image.info.get("XML:com.adobe.xmp") or image.info.get("xmp") or ""
            if isinstance(xmp, bytes):
                xmp = xmp.decode("utf-8", "ignore")
            camera = bool(exif.get(_MAKE) or exif.get(_MODEL) or details.get(_EXPOSURE_TIME)
                          or details.get(_F_NUMBER))
            return FileHints(
                screenshot_comment="Screenshot" in text or ("<exif:UserComment>" in xmp and "Screenshot" in xmp),
                camera=camera, screen_size=(min(width, height), max(width, height)) in SCREEN_SIZES,
                png=image.format == "PNG")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        log.debug("no file hints: %s", exc)
        return FileHints()
