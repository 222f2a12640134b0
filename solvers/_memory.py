"""How much memory this process may still use, and a guard against overrun."""

from __future__ import annotations

import os
from dataclasses import dataclass

from convexnn.solvers.errors import ProblemTooLargeError


def lifted_problem_advice(loss) -> str:
    """What to do when a conic back-end's lifted problem does not fit in memory: the
    native solver, where it takes the loss (the smooth ones, not the hinge)."""
    if getattr(loss, "smooth", False):
        return "Subsample the data or use solver='native', which never forms the lifted problem."
    return ("Subsample the data, or use a smooth loss (e.g. squared or logistic) with "
            "solver='native', which never forms the lifted problem.")


def available_memory() -> int:
    """Bytes this process may still allocate: the least of the system's available memory
    (Linux ``MemAvailable``; the physical size where ``/proc/meminfo`` is missing), what
    a container's memory limit leaves (cgroup v2 ``memory.max`` or v1
    ``memory.limit_in_bytes``, less the group's usage) and what ``RLIMIT_AS`` leaves of
    the address space.

    With only ``MemAvailable`` read, a conic back-end under a 2.5 GB address-space limit
    segfaulted where the guard saw 24 GB.
    """
    rooms = [_system_available(), _cgroup_room(), _address_space_room()]
    return max(0, min(room for room in rooms if room is not None))


def _system_available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _cgroup_room(membership: str = "/proc/self/cgroup",
                 root: str = "/sys/fs/cgroup") -> int | None:
    """What the memory limits of this process's cgroup and its ancestors leave: the least
    over them of limit less usage, with reclaimable page cache not counted as used
    (``None``: no limit found)."""
    try:
        with open(membership, encoding="ascii") as lines:
            entries = [line.rstrip("\n").split(":", 2) for line in lines]
    except OSError:
        return None
    rooms = []
    for hierarchy, controllers, path in (entry for entry in entries if len(entry) == 3):
        if hierarchy == "0" and controllers == "":  # v2
            names, base = ("memory.max", "memory.current", "inactive_file"), root
        elif "memory" in controllers.split(","):  # v1
            names = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
            base = f"{root}/memory"
        else:
            continue
        # The group's folder and its ancestors; inside a container the group's folder is
        # not mounted and its own files are the root's.
        parts = [part for part in path.split("/") if part]
        folders = [f"{base}/{'/'.join(parts[:depth])}".rstrip("/")
                   for depth in range(len(parts), -1, -1)]
        rooms += [room for room in (_limit_room(folder, *names) for folder in folders)
                  if room is not None]
    return min(rooms, default=None)


def _limit_room(folder: str, limit_name: str, usage_name: str, cache_name: str) -> int | None:
    """Limit less usage (less inactive page cache, which the kernel reclaims) of one cgroup
    folder; ``None`` when it has no limit or its files are missing or unreadable."""
    try:
        with open(f"{folder}/{limit_name}", encoding="ascii") as limit_file:
            limit = limit_file.read().strip()
        with open(f"{folder}/{usage_name}", encoding="ascii") as usage_file:
            usage = int(usage_file.read().strip())
        if limit == "max" or int(limit) >= 1 << 60:  # v1 writes "no limit" as ~2^63
            return None
        room = int(limit) - usage
    except (OSError, ValueError):
        return None
    try:
        with open(f"{folder}/memory.stat", encoding="ascii") as stat:
            for line in stat:
                name, _, value = line.partition(" ")
                if name == cache_name:
                    return room + int(value)
    except (OSError, ValueError):
        pass
    return room


def _address_space_room() -> int | None:
    """``RLIMIT_AS`` less this process's address space (``None``: no limit)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return soft - int(line.split()[1]) * 1024
    except OSError:
        pass
    return soft


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
