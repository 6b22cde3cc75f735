"""Files that belong to a photo and travel with it: a live photo's movie, edit and metadata sidecars. Pure.

A companion shares its photo's stem in the same folder (``IMG_1.HEIC`` + ``IMG_1.MOV`` / ``IMG_1.AAE`` /
``IMG_1.xmp``), or carries the photo's whole name (``IMG_1.HEIC.xmp``, as darktable and Immich write
them). When two photos share a stem (``IMG_1.HEIC`` and ``IMG_1.JPG``) a stem-only companion is
ambiguous and belongs to neither. A movie without a photo is a video of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Camcorders (AVCHD .mts/.m2ts), DVDs and older cameras (.mpg/.mpeg/.vob), Windows (.wmv/.asf), Flash (.flv).
VIDEO_EXTENSIONS = frozenset({".mov", ".mp4", ".m4v", ".3gp", ".3g2", ".avi", ".mkv", ".webm", ".mts", ".m2ts",
                              ".mpg", ".mpeg", ".vob", ".wmv", ".asf", ".flv"})
SIDECAR_EXTENSIONS = frozenset({".aae", ".xmp"})
LIVE_EXTENSIONS = frozenset({".mov", ".mp4", ".m4v"})  # the movie half of a live / motion photo
VIDEOS_FOLDER = "videos"


def extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


def stem(name: str) -> str:
    head, dot, _ = name.rpartition(".")
    return head if dot and head else name


def is_video(name: str) -> bool:
    return extension(name) in VIDEO_EXTENSIONS


def may_accompany(name: str) -> bool:
    return extension(name) in LIVE_EXTENSIONS | SIDECAR_EXTENSIONS


@dataclass
class FolderPlan:
    """One folder's files, grouped: photos with their companions, videos alone, sidecars without a photo."""

    photos: dict[str, list[str]] = field(default_factory=dict)  # photo name -> its companions' names
    videos: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


def group_folder(names: list[str]) -> FolderPlan:
    """Group the names of the files in one folder (see the module docstring)."""
    candidates = [n for n in names if may_accompany(n)]
    plan = FolderPlan(photos={n: [] for n in names if not may_accompany(n) and not is_video(n)})
    by_name = {n.lower(): n for n in plan.photos}
    by_stem: dict[str, list[str]] = {}
    for photo in plan.photos:
        by_stem.setdefault(stem(photo).lower(), []).append(photo)
    plan.videos = [n for n in names if is_video(n) and not may_accompany(n)]
    for name in candidates:
        owner = by_name.get(stem(name).lower()) if extension(name) in SIDECAR_EXTENSIONS else None
        if owner is None:
            owners = by_stem.get(stem(name).lower(), [])
            owner = owners[0] if len(owners) == 1 else None
        if owner is not None:
            plan.photos[owner].append(name)
        elif is_video(name):
            plan.videos.append(name)
        else:
            plan.orphans.append(name)
    return plan


def companions_of(photo: str, names: list[str]) -> list[str]:
    """The companions of ``photo`` among the names of the files in its folder."""
    return group_folder(names).photos.get(photo, [])


def renamed(companion: str, photo: str, photo_renamed: str) -> str:
    """A companion's name once its photo ``photo`` is called ``photo_renamed``: the same tail."""
    if companion.lower().startswith(photo.lower() + "."):
        return photo_renamed + companion[len(photo):]
    return stem(photo_renamed) + companion[len(stem(photo)):]
