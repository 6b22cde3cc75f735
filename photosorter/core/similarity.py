"""Perceptual hashing (dHash) for near-duplicate groups. Pure."""

from __future__ import annotations

import numpy as np

NEAR_DUPLICATE_BITS = 6  # of 64: re-encodes and resizes land at 0-4, different photos at 20+


def dhash(gray: np.ndarray) -> int:
    """64-bit difference hash of an 8x9 grayscale array: is each pixel brighter than its right neighbour."""
    bits = (gray[:, 1:] > gray[:, :-1]).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def nearest_hash(target: int, hashes: np.ndarray) -> tuple[int, int]:
    """Index of the hash (uint64 array) closest to ``target`` and its distance; (-1, 65) when empty."""
    if hashes.size == 0:
        return -1, 65
    distances = np.bitwise_count(hashes ^ np.uint64(target))
    index = int(np.argmin(distances))
    return index, int(distances[index])
