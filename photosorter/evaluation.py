"""Embed a folder of labelled photos (``<category>/*``) once, for accuracy measurements."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photosorter.core.similarity import NEAR_DUPLICATE_BITS, dhash, hamming
from photosorter.errors import ImageError
from photosorter.ml.preprocess import fit_to_input, gray_thumbnail
from photosorter.ports import Decoder, Embedder, PhotoFiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledSet:
    """One row per distinct photo (exact duplicates collapsed), with its near-duplicate group."""

    paths: list[Path]
    labels: list[str]
    embeddings: np.ndarray
    class_probs: np.ndarray | None
    groups: list[int]


def embed_labelled_folder(folder: Path, embedder: Embedder, decoder: Decoder, files: PhotoFiles,
                          crop: str = "center") -> LabelledSet:
    spec = embedder.spec.preprocess
    seen: set[str] = set()
    paths, labels, pixels, hashes = [], [], [], []
    for path in sorted(p for p in folder.glob("*/*") if p.is_file()):
        data = files.read(path)
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            log.info("evaluation: %s is an exact duplicate; counted once", path.name)
            continue
        try:
            image = decoder(data, spec.size)
        except ImageError as exc:
            log.warning("evaluation: skipping %s: %s", path, exc.message)
            continue
        seen.add(digest)
        paths.append(path)
        labels.append(path.parent.name)
        pixels.append(fit_to_input(image, spec, crop))
        hashes.append(dhash(gray_thumbnail(image)))
    embeddings, probs = embedder.embed_images(pixels)
    return LabelledSet(paths, labels, embeddings, probs, near_duplicate_groups(hashes))


def near_duplicate_groups(hashes: list[int]) -> list[int]:
    """Union photos whose perceptual hashes are within ``NEAR_DUPLICATE_BITS``; group id = first member."""
    parent = list(range(len(hashes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(hashes)):
        for j in range(i):
            if hamming(hashes[i], hashes[j]) <= NEAR_DUPLICATE_BITS:
                parent[root(i)] = root(j)
    return [root(i) for i in range(len(hashes))]
