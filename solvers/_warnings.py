"""Third-party warnings the back-ends handle themselves, silenced thread-safely."""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator

# warnings.catch_warnings swaps the process-wide filter list on entry and exit: two blocks
# overlapping in threads can leave a filter behind for good (an 'ignore' that then hides
# the warning from the user's own code). One block at a time.
_LOCK = threading.RLock()


@contextlib.contextmanager
def ignoring(category: type[Warning] = Warning, message: str = "") -> Iterator[None]:
    """Ignore ``category`` warnings whose text starts with ``message`` in this block.

    Blocks in other threads wait: a back-end run this way in threads runs one at a time.
    """
    with _LOCK, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=message, category=category)
        yield
