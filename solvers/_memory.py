"""How much memory this process may still use, and a guard against overrun."""

from __future__ import annotations

import os

from convexnn.solvers.errors import ProblemTooLargeError


def available_memory() -> int:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``).

    Falls back to the physical memory size where ``/proc/meminfo`` is missing.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def format_bytes(size: float) -> str:
    """``1.5 GB`` style rendering of a byte count."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.3g} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def ensure_fits(required: int, what: str, alternatives: str) -> None:
    """Raise :class:`ProblemTooLargeError` if ``required`` bytes exceed what is free."""
    free = available_memory()
    if required > free:
        raise ProblemTooLargeError(
            f"{what} needs about {format_bytes(required)} of memory but only "
            f"{format_bytes(free)} is available. {alternatives}"
        )
