"""One-dimensional searches that evaluate a whole grid of points at once.

In a data-parallel solve every evaluation of a sum over samples costs one
all-reduce, and a collective's latency (about a millisecond between
processes) dwarfs a scalar's arithmetic. The sequential searches of the
single-process code (Brent's method, bisection, doubling) take from a dozen to
60 evaluations each, one all-reduce apiece; these take about a dozen batches of
``points`` evaluations, each batch completed by one all-reduce of ``points``
numbers.
Each caller passes a ``batch`` function that maps an array of abscissae to
the array of values (already reduced over the ranks).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Batch = Callable[[np.ndarray], np.ndarray]

#: Points per batch: each batch shrinks the interval ``(POINTS - 1) / 2``-fold (or
#: ``POINTS - 1``-fold for roots), 16 or 32 here.
POINTS = 33


def concave_max(batch: Batch, low: float, high: float, rtol: float = 1e-16,
                max_batches: int = 16) -> tuple[float, float]:
    """``(t, f(t))`` maximising a concave ``f`` (``-inf`` outside its domain) on ``[low, high]``.

    A grid of :data:`POINTS` points; the maximum of a concave function lies
    between the neighbours of the best grid point, which become the next
    interval.
    """
    best_t, best_f = low, -np.inf
    for _ in range(max_batches):
        grid = np.linspace(low, high, POINTS)
        values = np.asarray(batch(grid), dtype=float)
        values = np.where(np.isfinite(values), values, -np.inf)
        index = int(np.argmax(values))
        if values[index] > best_f:
            best_t, best_f = float(grid[index]), float(values[index])
        low, high = grid[max(index - 1, 0)], grid[min(index + 1, POINTS - 1)]
        if high - low <= rtol * max(abs(best_t), 1e-300):
            break
    return best_t, best_f


def finite_edge(batch: Batch, limit: float, sign: float, max_batches: int = 13) -> float:
    """Largest ``s in [0, limit]`` with ``f(sign * s)`` finite, given that ``f(0)`` is.

    (The finite set is an interval containing 0: a convex conjugate's domain.)
    """
    if np.isfinite(batch(np.array([sign * limit]))[0]):
        return limit
    inside, outside = 0.0, limit
    for _ in range(max_batches):
        grid = np.linspace(inside, outside, POINTS)
        finite = np.isfinite(np.asarray(batch(sign * grid), dtype=float))
        finite[0] = True
        last = int(np.flatnonzero(finite).max())
        if last == POINTS - 1:  # rounding: the edge itself evaluated finite
            return float(grid[-1])
        inside, outside = float(grid[last]), float(grid[last + 1])
    return inside


def increasing_root(batch: Batch, low: float, high: float, rtol: float,
                    max_batches: int = 16) -> float:
    """A point of ``[low, high]`` within ``rtol * high`` of where an increasing ``f`` turns
    non-negative, given ``f(low) < 0 <= f(high)``: the midpoint of the final bracket."""
    for _ in range(max_batches):
        grid = np.linspace(low, high, POINTS)
        values = np.asarray(batch(grid[1:-1]), dtype=float)
        above = np.flatnonzero(values >= 0)
        first = int(above[0]) + 1 if above.size else POINTS - 1
        low, high = float(grid[first - 1]), float(grid[first])
        if high - low <= rtol * high:
            break
    return 0.5 * (low + high)


def growing_bracket(batch: Batch, start: float, max_batches: int = 12,
                    per_batch: int = 17) -> tuple[float, float]:
    """``(low, high)`` with ``f(low) < 0 <= f(high)`` for an increasing ``f`` with
    ``f(0) < 0``: ``start`` doubled until ``f`` turns non-negative (``per_batch`` doublings
    per batch). Returns the last pair tried if ``f`` stays negative."""
    low, high = 0.0, start
    for _ in range(max_batches):
        grid = high * 2.0 ** np.arange(per_batch)
        values = np.asarray(batch(grid), dtype=float)
        above = np.flatnonzero(values >= 0)
        if above.size:
            first = int(above[0])
            return (low if first == 0 else float(grid[first - 1])), float(grid[first])
        low, high = float(grid[-1]), float(grid[-1]) * 2.0
    return low, high
