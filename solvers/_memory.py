"""How much memory this process may still use, and a guard against overrun."""

from __future__ import annotations

import os
from dataclasses import dataclass

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


@dataclass(frozen=True)
class GrowthPlan:
    """Memory of a solve that grows as it goes: a base plus a cost per unit of width.

    Solvers that add neurons one round at a time check the width they are
    about to reach against the memory that was available when they started,
    instead of refusing a problem for a worst-case width that never comes.

    Attributes
    ----------
    base : int
        Bytes needed whatever the width.
    per_unit : int
        Bytes per neuron.
    available : int
        Bytes available when the solve started.
    """

    base: int
    per_unit: int
    available: int

    def bytes_for(self, width: int) -> int:
        """Bytes at a width of ``width`` neurons."""
        return self.base + self.per_unit * int(width)

    def max_width(self) -> int:
        """The largest width that fits (0 when not even the base does)."""
        return max(0, (self.available - self.base) // max(self.per_unit, 1))
