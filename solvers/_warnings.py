"""Warnings of the back-ends: third-party ones they handle themselves, silenced without
blocking threads, and the stack level of their own."""

from __future__ import annotations

import contextlib
import sys
import threading
import warnings
from collections.abc import Iterator

# warnings.catch_warnings swaps the process-wide filter list on entry and exit, so blocks
# overlapping in threads can leave a filter behind for good. Instead one scoped filter is
# inserted for as long as some block needs it, and that very entry is then removed. (A
# catch_warnings of other code that overlaps may still restore a list holding it: Python's
# filters are process-wide before 3.14.)
_LOCK = threading.Lock()
_ACTIVE: dict[tuple[type[Warning], str, str], list] = {}  # key -> [filter entry, users]


def caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning issued by the caller at the first frame
    outside the ``convexnn`` package (modelling layer and back-ends alike: by module
    name, as the back-ends' folder is not the modelling layer's in a source checkout)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and str(frame.f_globals.get("__name__", "")).partition(".")[0] \
            == "convexnn":
        frame, level = frame.f_back, level + 1
    return level


@contextlib.contextmanager
def ignoring(category: type[Warning], message: str = "", module: str = "") -> Iterator[None]:
    """Ignore ``category`` warnings whose text starts with ``message``, issued from a module
    matching ``module``, while this block runs (in any thread)."""
    key = (category, message, module)
    with _LOCK:
        if key not in _ACTIVE:
            warnings.filterwarnings("ignore", message=message, category=category, module=module)
            _ACTIVE[key] = [warnings.filters[0], 0]
        _ACTIVE[key][1] += 1
    try:
        yield
    finally:
        with _LOCK:
            _ACTIVE[key][1] -= 1
            if _ACTIVE[key][1] == 0:
                entry, _ = _ACTIVE.pop(key)
                with contextlib.suppress(ValueError):  # already dropped by other code
                    warnings.filters.remove(entry)
                getattr(warnings, "_filters_mutated", lambda: None)()
