"""The rows of a comparison: their columns, a blank row, the optimum they certify.

The runners fill these rows, the report tabulates them and the figures draw
them; their shape lives here so that none of those modules imports another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: The columns of :meth:`Comparison.table`, in order.
COLUMNS: tuple[str, ...] = (
    "kind",
    "method",
    "solver",
    "seed",
    "status",
    "objective",
    "lower_bound",
    "relative_gap",
    "relative_excess",
    "train_metric",
    "test_metric",
    "time",
    "time_to_1pct",
    "time_to_0.1pct",
    "lr",
    "neurons",
    "epochs",
    "error",
)

#: ``{column: relative tolerance}``: seconds until the objective is within this
#: fraction of the certified optimum (``objective <= lower_bound + tol * |lower_bound|``).
TARGETS: dict[str, float] = {"time_to_1pct": 1e-2, "time_to_0.1pct": 1e-3}

#: The status of a row whose method raised.
FAILED = "failed"

#: How the table and the figures name each metric.
METRIC_LABEL = {"accuracy": "accuracy", "r2": "R²"}


def new_record(kind: str, method: str, seed: int | None = None) -> dict[str, Any]:
    """A row for one run of a method, ``"failed"`` until the run fills it in.

    Parameters
    ----------
    kind : {"convex", "backprop"}
        Which way the network is trained.
    method : str
        The solver name as requested, or the optimizer.
    seed : int, optional
        The backprop seed; None for a convex row.

    Returns
    -------
    dict
        Every column of :data:`COLUMNS`; the numbers NaN, the error empty.
    """
    record: dict[str, Any] = {name: math.nan for name in COLUMNS}
    record.update(kind=kind, method=method, solver=None, seed=seed, status=FAILED, error="")
    return record


def certified_optimum(records: list[dict[str, Any]]) -> tuple[float, float]:
    """The best certified lower bound and the best objective of the convex rows.

    Parameters
    ----------
    records : list of dict
        Rows as made by :func:`new_record`.

    Returns
    -------
    lower_bound, best_objective : float
        The highest lower bound and the lowest objective over the convex
        rows that did not fail; NaN where there is none.
    """
    convex = [r for r in records if r["kind"] == "convex" and r["status"] != FAILED]
    bounds = [r["lower_bound"] for r in convex if math.isfinite(r["lower_bound"])]
    objectives = [r["objective"] for r in convex if math.isfinite(r["objective"])]
    return (max(bounds) if bounds else math.nan, min(objectives) if objectives else math.nan)


def time_to_target(
    times: Sequence[float], values: Sequence[float], lower_bound: float, tolerance: float
) -> float:
    """Seconds until ``values`` first come within ``tolerance`` of the certified optimum.

    Parameters
    ----------
    times, values : sequence of float
        A run's recorded training times and objectives, in order.
    lower_bound : float
        The certified lower bound on the optimum.
    tolerance : float
        Relative: the target is ``lower_bound + tolerance * |lower_bound|``.

    Returns
    -------
    float
        The first recorded time at the target; ``inf`` when the run never
        reached it ("never"), NaN when there is no certified bound to aim at.
    """
    if not math.isfinite(lower_bound):
        return math.nan
    target = lower_bound + tolerance * abs(lower_bound)
    values = np.asarray(values, dtype=float)
    reached = np.flatnonzero(np.isfinite(values) & (values <= target))
    return float(np.asarray(times, dtype=float)[reached[0]]) if len(reached) else math.inf


def method_label(
    records: list[dict[str, Any]], kind: str, method: str, solver: str | None = None
) -> str:
    """How the table and the figures name a method.

    A convex method requested as ``"auto"`` (or under any name other than
    the back-end's) is shown with the back-end that solved it:
    ``"auto (native)"``.

    Parameters
    ----------
    records : list of dict
        The rows; where ``solver`` is None it is looked up in the method's
        first row.
    kind : {"convex", "backprop"}
        The method's kind.
    method : str
        The solver name as requested, or the optimizer.
    solver : str, optional
        The back-end that solved.

    Returns
    -------
    str
    """
    if kind != "convex":
        return method
    if solver is None:
        solver = next(
            (r["solver"] for r in records if r["kind"] == kind and r["method"] == method),
            None,
        )
    return f"{method} ({solver})" if solver and solver != method else method
