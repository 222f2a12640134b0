"""The rows of a comparison: their columns, a blank row, the optimum they certify.

The runners fill these rows, the report tabulates them and the figures draw
them; their shape lives here so that none of those modules imports another.
"""

from __future__ import annotations

import math
from typing import Any

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
    "neurons",
    "epochs",
    "error",
)

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
