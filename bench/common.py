"""What every benchmark module shares: the printed table, peak memory, timing helpers."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ROWS: list[tuple[str, str]] = []


def row(what: str, figure: str) -> None:
    ROWS.append((what, figure))
    print(f"  {what:<62}{figure}", flush=True)


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class PeakRss:
    """This process's resident memory, and its peak since ``reset`` (the kernel's high-water mark, reset
    through /proc/self/clear_refs: no sampling thread competing with what is measured)."""

    def current(self) -> int:
        return _status_kb("VmRSS") * 1024

    def reset(self) -> None:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")

    @property
    def peak_mb(self) -> float:
        return _status_kb("VmHWM") * 1024 / 1e6


RSS = PeakRss()


@contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    started = time.perf_counter()
    yield box
    box.append(time.perf_counter() - started)


def median_ms(call: Callable[[], object], repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1000


def use_cores(count: int) -> None:
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:count]))
