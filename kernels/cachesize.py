"""Cache sizes of this machine, read from it (never hard-coded): for block sizes and reports.

Linux exposes them in ``/sys/devices/system/cpu/cpu0/cache/index*/``; elsewhere
``os.sysconf`` may know them.  Sizes are per instance of the cache as seen from
core 0 (an L2 of 2 MiB per core reads as 2 MiB; a shared L3 as its whole size).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

_SYS = Path("/sys/devices/system/cpu/cpu0/cache")
_SYSCONF = {1: "SC_LEVEL1_DCACHE_SIZE", 2: "SC_LEVEL2_CACHE_SIZE", 3: "SC_LEVEL3_CACHE_SIZE"}


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


@functools.lru_cache(maxsize=1)
def cache_sizes() -> dict[int, int]:
    """``{level: bytes}`` of the data/unified caches of core 0; missing levels are left out."""
    sizes: dict[int, int] = {}
    try:
        for index in sorted(_SYS.glob("index*")):
            if (index / "type").read_text().strip() not in ("Data", "Unified"):
                continue
            sizes[int((index / "level").read_text())] = _parse_size((index / "size").read_text())
    except (OSError, ValueError):
        sizes = {}
    if not sizes:
        for level, name in _SYSCONF.items():
            try:
                value = os.sysconf(name)
            except (ValueError, OSError):
                continue
            if value > 0:
                sizes[level] = value
    return sizes


def cache_lines() -> list[str]:
    """Human-readable lines, e.g. ``["L1d 48 KiB", "L2 2 MiB", "L3 480 MiB"]`` (as ``lscpu`` per instance)."""
    out = []
    for level, size in sorted(cache_sizes().items()):
        name = "L1d" if level == 1 else f"L{level}"
        out.append(f"{name} {size // 2**20} MiB" if size % 2**20 == 0 else f"{name} {size // 1024} KiB")
    return out or ["cache sizes unknown"]
