"""The figures of a comparison, drawn on matplotlib's object API (pyplot is never used).

matplotlib is imported inside each function, so that running a comparison
and building its tables never load it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convexnn.comparison._records import FAILED, METRIC_LABEL, method_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convexnn.comparison._report import Comparison


def plot_objective_vs_time(comparison: Comparison, path: str | Path | None = None) -> Figure:
    """Training objective against wall time (log scale), optimum as a reference.

    Parameters
    ----------
    comparison : Comparison
        What to draw.
    path : str or Path, optional
        Where to write the figure as a PNG.

    Returns
    -------
    matplotlib.figure.Figure
        Left: every backprop run's convex objective, with the convex rows'
        ``(time, objective)`` as stars and the certified lower bound as a
        dashed line. Right: the same runs as ``objective - lower bound``,
        where the convex rows sit at their certified gap.
    """
    from matplotlib.figure import Figure

    records = comparison.records
    figure = Figure(figsize=(12, 4.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    colors = _method_colors(records)
    bound = comparison.lower_bound
    has_bound = math.isfinite(bound)
    diverged = {(r["method"], r["seed"]) for r in records if r["status"] == "diverged"}
    shown: set[str] = set()
    upper: list[float] = []
    lower: list[float] = []
    for (method, seed), history in comparison.histories.items():
        times, values = np.asarray(history.wall_time), np.asarray(history.convex_objective)
        keep = np.isfinite(values) & (values > 0)
        if not keep.any():
            continue
        label = None if method in shown else method
        shown.add(method)
        style = {"color": colors[method], "alpha": 0.75, "lw": 1.3}
        left.plot(times[keep], values[keep], label=label, **style)
        if (method, seed) in diverged:
            left.plot(times[keep][-1], values[keep][-1], "x", color=colors[method], ms=8)
        else:
            upper.append(values[keep][0])
        lower.append(values[keep].min())
        if has_bound:
            excess = values - bound
            positive = keep & (excess > 0)
            right.plot(times[positive], excess[positive], label=label, **style)
    for record in records:
        if record["kind"] != "convex" or record["status"] == FAILED:
            continue
        name = method_label(records, "convex", record["method"], record["solver"])
        star = {"marker": "*", "s": 180, "color": colors[record["method"]],
                "edgecolor": "black", "zorder": 5, "label": f"convex: {name}"}
        if record["objective"] > 0:
            left.scatter([record["time"]], [record["objective"]], **star)
            upper.append(record["objective"])
            lower.append(record["objective"])
        gap = record["objective"] - bound
        if has_bound and gap > 0:
            right.scatter([record["time"]], [gap], **star)
    if has_bound and bound > 0:
        left.axhline(bound, color="black", ls="--", lw=1,
                     label=f"certified optimum (≥ {bound:.6g})")
        left.axhline(bound * 1.01, color="gray", ls=":", lw=1, label="1% above the optimum")
        lower.append(bound)
    budget = comparison.settings.get("budget_seconds")
    if budget:
        for axes in (left, right):
            axes.axvline(budget, color="gray", ls="-.", lw=1)
        left.plot([], [], color="gray", ls="-.", lw=1, label=f"budget ({budget:.3g} s)")
    left.set_yscale("log")
    if upper and lower:  # clip diverged runs; keep every sensible curve in view
        left.set_ylim(min(lower) / 1.3, max(upper) * 1.5)
    left.set(xlabel="wall time (s)", ylabel="training objective (convex objective)",
             title=f"{comparison.settings['data']}: training objective")
    if left.get_legend_handles_labels()[0]:
        left.legend(fontsize=8)
    if has_bound and right.has_data():
        right.axhline(0.01 * abs(bound), color="gray", ls=":", lw=1, label="1% of the optimum")
        right.set_yscale("log")
        right.set(xlabel="wall time (s)", ylabel="objective − certified lower bound",
                  title="distance to the certified optimum")
        right.legend(fontsize=8)
    else:
        right.set_axis_off()
        right.text(0.5, 0.5, "no certified lower bound", ha="center", va="center")
    if path is not None:
        figure.savefig(path, dpi=110)
    return figure


def plot_test_metric(comparison: Comparison, path: str | Path | None = None) -> Figure:
    """Test metric per method: one point per run, a box over seeds.

    Parameters
    ----------
    comparison : Comparison
        What to draw.
    path : str or Path, optional
        Where to write the figure as a PNG.

    Returns
    -------
    matplotlib.figure.Figure
        Diverged runs are drawn as crosses; methods without a value are
        labelled ``failed`` (every run failed) or ``n/a`` (e.g. R^2 of a
        single test sample).
    """
    from matplotlib.figure import Figure

    records = comparison.records
    metric = METRIC_LABEL[comparison.metric]
    methods = list(dict.fromkeys((r["kind"], r["method"]) for r in records))
    colors = _method_colors(records)
    figure = Figure(figsize=(max(5.0, 1.3 * len(methods) + 2), 4.5), layout="constrained")
    axes = figure.subplots()
    labels = []
    rng = np.random.default_rng(0)
    for position, (kind, method) in enumerate(methods):
        rows = [r for r in records if r["kind"] == kind and r["method"] == method]
        labels.append(method_label(records, kind, method))
        values = np.array([r["test_metric"] for r in rows if r["status"] != FAILED], float)
        values = values[np.isfinite(values)]
        if len(values) == 0:  # failed, or a metric without a value (R^2 of 1 test sample)
            failed = all(r["status"] == FAILED for r in rows)
            axes.text(position, 0.5, "failed" if failed else "n/a", ha="center",
                      va="center", color="red" if failed else "gray",
                      transform=axes.get_xaxis_transform())
            continue
        if len(values) > 1:
            axes.boxplot([values], positions=[position], widths=0.5, manage_ticks=False,
                         showfliers=False)
        for row in rows:
            value = row["test_metric"]
            if row["status"] == FAILED or not np.isfinite(value):
                continue
            jitter = rng.uniform(-0.08, 0.08) if len(values) > 1 else 0.0
            marker = "x" if row["status"] == "diverged" else ("*" if kind == "convex" else "o")
            axes.scatter([position + jitter], [value], marker=marker, color=colors[method],
                         s=120 if marker == "*" else 30, zorder=3)
    axes.set_xticks(range(len(methods)), labels, rotation=20 if len(methods) > 5 else 0)
    axes.set_xlim(-0.6, len(methods) - 0.4)
    axes.set(ylabel=f"test {metric}",
             title=f"{comparison.settings['data']}: test {metric} per method "
                   f"(spread over seeds)")
    axes.grid(axis="y", alpha=0.3)
    if path is not None:
        figure.savefig(path, dpi=110)
    return figure


def _method_colors(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One tab10 colour per method, in the order the methods first appear."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    methods = list(dict.fromkeys(r["method"] for r in records))
    return {method: palette[i % len(palette)] for i, method in enumerate(methods)}
