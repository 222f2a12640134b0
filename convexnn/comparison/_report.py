"""The result of a comparison: :class:`Comparison`, its tables and the files it writes.

pandas is imported by the two methods that build tables and matplotlib by
the figures (:mod:`convexnn.comparison._plots`): running a comparison never
loads matplotlib.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convexnn._persistence import json_ready
from convexnn.baselines import BackpropRun, TrainingHistory
from convexnn.comparison import _plots
from convexnn.comparison._records import (
    COLUMNS,
    FAILED,
    METRIC_LABEL,
    TARGETS,
    certified_optimum,
    method_label,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

logger = logging.getLogger("convexnn")


@dataclass
class Comparison:
    """The outcome of :func:`compare`.

    Attributes
    ----------
    records : list of dict
        One flat record per convex solver and per (optimizer, seed), with
        the keys of :data:`COLUMNS`:

        ``kind``            ``"convex"`` or ``"backprop"``
        ``method``          the solver name as requested (``"auto"``
                            included) or the optimizer
        ``solver``          the back-end that solved (convex rows)
        ``seed``            backprop seed; None for convex rows
        ``status``          convex: the solve status (``"optimal"``,
                            ``"time_limit"``, ...); backprop:
                            ``"completed"``, ``"time_limit"`` or
                            ``"diverged"``; ``"failed"`` when the method
                            raised
        ``objective``       convex objective of the trained network on the
                            training data (comparable across all rows)
        ``lower_bound``     certified lower bound on the optimum (convex rows)
        ``relative_gap``    ``(objective - lower_bound) / |objective|``
                            (convex rows)
        ``relative_excess`` ``(objective - best lower bound) / |objective|``:
                            a certified upper bound on how far from the
                            global optimum the row's network is
        ``train_metric``    accuracy (classification) or R^2 (regression)
        ``test_metric``     the same on the test data
        ``time``            seconds to train: convex, the whole fit
                            (formulation, solve, decomposition,
                            certificate); backprop, the training time
                            (evaluations for the records not counted,
                            nor the learning-rate search)
        ``time_to_1pct``    seconds until the objective was within 1% of
                            the best certified lower bound (backprop: the
                            first record there; convex: the fit's time if
                            its network is there); ``inf`` when never,
                            NaN without a certified bound
        ``time_to_0.1pct``  the same for 0.1%
        ``lr``              the learning rate the run used (backprop)
        ``neurons``         neurons of the convex network / backprop width
        ``epochs``          epochs completed (backprop rows)
        ``error``           why the method failed or diverged, else ""

        Missing numbers are NaN.
    settings : dict
        What was compared: data, sizes and the sample cap's reason
        (``sample_cap``), loss, beta, activation, width, epochs or budget,
        learning rates and their searches (``tuning``), ...
    runs : list of BackpropRun
        The backprop runs themselves (weights and histories included).
    models : dict
        ``{solver name: fitted convex estimator}`` of the convex rows that
        succeeded.
    """

    records: list[dict[str, Any]]
    settings: dict[str, Any]
    runs: list[BackpropRun] = field(default_factory=list, repr=False)
    models: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- the reference and the curves ------------------------------------------------
    @property
    def lower_bound(self) -> float:
        """The best certified lower bound on the optimum over the convex rows (NaN if none)."""
        return certified_optimum(self.records)[0]

    @property
    def best_objective(self) -> float:
        """The lowest objective of a convex row (NaN when none succeeded)."""
        return certified_optimum(self.records)[1]

    @property
    def histories(self) -> dict[tuple[str, int], TrainingHistory]:
        """``{(optimizer, seed): TrainingHistory}``: objective, convex objective and
        metrics of every backprop run against epoch and wall time."""
        return {(run.optimizer, run.seed): run.history for run in self.runs}

    # -- tables ----------------------------------------------------------------
    @property
    def metric(self) -> str:
        """``"accuracy"`` or ``"r2"``."""
        return self.settings["metric"]

    def table(self) -> pd.DataFrame:
        """One row per record, columns :data:`COLUMNS`."""
        import pandas as pd

        table = pd.DataFrame(self.records, columns=list(COLUMNS))
        # integers with gaps (a convex row has neither): not floats such as 0.0 in the CSV
        return table.astype({"seed": "Int64", "epochs": "Int64"})

    def summary(self) -> pd.DataFrame:
        """One row per method: runs, failures, objective and metric over seeds, times.

        Objectives, metrics and times are over the runs that neither failed
        nor diverged (a diverged run's objective is that of its record of lowest
        training objective, a network it then lost); ``median_time_to_1pct`` /
        ``median_time_to_0.1pct`` are medians over them (``inf`` when most
        never got there) and ``reached_1pct`` / ``reached_0.1pct`` count the
        runs that did.
        """
        import pandas as pd

        rows = []
        for (kind, method), group in self.table().groupby(["kind", "method"], sort=False):
            ok = group[~group["status"].isin((FAILED, "diverged"))]
            row = {
                "kind": kind,
                "method": method,
                "runs": len(group),
                "failed": int((group["status"] == FAILED).sum()),
                "diverged": int((group["status"] == "diverged").sum()),
                "lr": (ok if len(ok) else group)["lr"].median(),  # the rate that diverged too
                "best_objective": ok["objective"].min(),
                "median_objective": ok["objective"].median(),
                "mean_test_metric": ok["test_metric"].mean(),
                "std_test_metric": ok["test_metric"].std(),  # NaN for a single run
                "mean_time": ok["time"].mean(),
            }
            for column in TARGETS:
                times = ok[column].astype(float)
                row[f"median_{column}"] = times.median()
                row[f"reached_{column[len('time_to_'):]}"] = int(np.isfinite(times).sum())
            rows.append(row)
        return pd.DataFrame(rows)

    def to_markdown(self) -> str:
        """The settings, a summary per method and every run, as markdown."""
        s = self.settings
        metric = METRIC_LABEL[self.metric]
        lines = [f"## Convex optimum vs backprop: {s['data']}", ""]
        lines += [
            f"- data: {s['n_train']} training / {s['n_test']} test samples, "
            f"{s['n_features']} features, {s['n_outputs']} output(s), {s['task']}"
            + (", features standardised" if s["standardize"] else ", raw features")
            + (", targets as given (not scaled)" if s["task"] == "regression" else ""),
            f"- training samples: {s['sample_cap']}",
            f"- model: {_variant(s)}, activation {s['activation']}, {s['loss']} loss, beta "
            f"{s['beta']:g}; backprop width {s['width']}, objective {s['objective']!r}, "
            + _length(s),
        ]
        if math.isfinite(self.lower_bound):
            lines.append(
                f"- certified optimum: lower bound {self.lower_bound + 0.0:.8g}, best convex "
                f"objective {self.best_objective:.8g}"
                + (" (a bound that is not positive says nothing about the rows: no excess "
                   "or time to target)" if self.lower_bound <= 0 < self.best_objective else "")
            )
        else:
            why = "no convex solver succeeded" if s["solvers"] else "no convex solver was run"
            lines.append(f"- certified optimum: none ({why})")
        if s.get("tuning"):
            lines += ["", "### Learning rates", "",
                      "Each optimizer's rate was searched on a log-spaced grid (short runs from "
                      "the first seed, the lowest final training objective wins, diverged runs "
                      "excluded); every seed then trained at the chosen rate.", ""]
            lines += [f"- {_search_line(search)}" for search in s["tuning"].values()]
        lines += ["", "### Per method", "",
                  "Objectives, metrics and times are over the runs that neither failed nor "
                  "diverged. t(1%) / t(0.1%): seconds until the objective was within 1% / "
                  "0.1% of the certified optimum (median over runs; reached / runs), or "
                  "never."]
        if s["objective"] == "weight-decay":
            lines += ["", "Backprop minimised weight decay, not the convex objective: its "
                      "objectives (and rel. excess, t(1%), t(0.1%)) are the convex objective "
                      "of its network with the first layer's rows scaled to unit norm, a "
                      "different function from the one trained (the activation is not "
                      "homogeneous); its metrics are the trained network's own."]
        lines += [""]
        summary = self.summary()
        lines += _markdown(
            ["method", "kind", "runs", "failed", "diverged", "lr", "best objective",
             "median objective", f"test {metric} (mean ± std)", "mean time (s)", "t(1%)",
             "t(0.1%)"],
            [
                [
                    method_label(self.records, row["kind"], row["method"]),
                    row["kind"],
                    str(row["runs"]),
                    str(row["failed"]),
                    str(row["diverged"]),
                    _fmt(row["lr"], ".3g"),
                    _fmt(row["best_objective"], ".6g"),
                    _fmt(row["median_objective"], ".6g"),
                    _fmt_spread(row["mean_test_metric"], row["std_test_metric"]),
                    _fmt(row["mean_time"], ".2f"),
                    *(_fmt_reached(row[f"median_{column}"],
                                   row[f"reached_{column[len('time_to_'):]}"],
                                   # over the runs the median is of (not diverged)
                                   row["runs"] - row["failed"] - row["diverged"])
                      for column in TARGETS),
                ]
                for _, row in summary.iterrows()
            ],
        )
        lines += ["", "### All runs", ""]
        lines += _markdown(
            ["method", "seed", "status", "objective", "lower bound", "rel. gap",
             "rel. excess", f"train {metric}", f"test {metric}", "time (s)", "t(1%)", "t(0.1%)",
             "lr", "neurons", "epochs", "error"],
            [
                [
                    method_label(self.records, r["kind"], r["method"], r["solver"]),
                    "" if r["seed"] is None else str(r["seed"]),
                    r["status"],
                    _fmt(r["objective"], ".6g"),
                    _fmt(r["lower_bound"], ".6g"),
                    _fmt(r["relative_gap"], ".1e"),
                    _fmt(r["relative_excess"], ".1e"),
                    _fmt_metric(r["train_metric"]),
                    _fmt_metric(r["test_metric"]),
                    _fmt(r["time"], ".2f"),
                    *(_fmt_seconds(r[column]) for column in TARGETS),
                    _fmt(r["lr"], ".3g"),
                    _fmt(r["neurons"], "d"),
                    _fmt(r["epochs"], "d"),
                    _shorten(r["error"]),
                ]
                for r in self.records
            ],
        )
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready values.

        NaN becomes None, a time to a target never reached ``"never"``.
        """
        records = [
            {key: "never" if key in TARGETS and value == math.inf else value
             for key, value in record.items()}
            for record in self.records
        ]
        return json_ready(
            {
                "settings": self.settings,
                "optimum": {"lower_bound": self.lower_bound,
                            "best_objective": self.best_objective},
                "records": records,
                "histories": [
                    {"method": method, "seed": seed, **history.to_dict()}
                    for (method, seed), history in self.histories.items()
                ],
            }
        )

    # -- figures ----------------------------------------------------------------
    def plot_objective_vs_time(self, path: str | Path | None = None) -> Figure:
        """Training objective against wall time (log scale), optimum as a reference.

        Left: every backprop run's convex objective, with the convex rows'
        ``(time, objective)`` as stars and the certified lower bound as a
        dashed line. Right: the same runs as ``objective - lower bound``,
        where the convex rows sit at their certified gap.

        Returns the :class:`matplotlib.figure.Figure`; writes a PNG to
        ``path`` when given. pyplot is not used.
        """
        return _plots.plot_objective_vs_time(self, path)

    def plot_test_metric(self, path: str | Path | None = None) -> Figure:
        """Test metric per method: one point per run, a box over seeds.

        Diverged runs are drawn as crosses; methods without a value are
        labelled ``failed``. Returns the Figure; writes a PNG to ``path``.
        """
        return _plots.plot_test_metric(self, path)

    # -- files --------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``comparison.md``, ``.csv``, ``.json`` and the PNG figures.

        Returns ``{name: path}`` of the files written (``out_dir`` is created).
        """
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "markdown": folder / "comparison.md",
            "csv": folder / "comparison.csv",
            "json": folder / "comparison.json",
            "objective_vs_time": folder / "objective_vs_time.png",
            "test_metric": folder / "test_metric.png",
        }
        paths["markdown"].write_text(self.to_markdown(), encoding="utf-8")
        self.table().to_csv(paths["csv"], index=False)
        paths["json"].write_text(
            json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n", encoding="utf-8"
        )
        self.plot_objective_vs_time(paths["objective_vs_time"])
        self.plot_test_metric(paths["test_metric"])
        logger.info("comparison written to %s", folder)
        return paths


# -- markdown ----------------------------------------------------------------------
def _fmt(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``; an empty cell for a missing number."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if spec == "d":
        return str(int(value))
    return format(value, spec)


def _fmt_metric(value: Any) -> str:
    """Accuracy or R^2 to 4 decimals; a diverged run's R^2 of -7.5e16 in 4 digits, not 17."""
    return _fmt(value, ".4f" if value is None or abs(value) < 1e4 else ".4g")


def _fmt_seconds(value: float) -> str:
    """Seconds to a target: ``never`` when not reached, empty without a bound."""
    if value == math.inf:
        return "never"
    return _fmt(value, ".3g")


def _fmt_reached(median: float, reached: int, runs: int) -> str:
    """``"0.42 (3/3)"``: the median time to a target and how many runs reached it."""
    if runs == 0 or not (math.isfinite(median) or median == math.inf):
        return ""
    return f"{_fmt_seconds(median)} ({reached}/{runs})"


def _variant(settings: dict[str, Any]) -> str:
    """``fully connected`` or the convolution and pooling, in words."""
    conv = settings.get("conv")
    if not conv:
        return "fully connected"
    filters = "x".join(map(str, conv["filter_size"]))
    pool = ("global average pooling" if conv["pool_size"] is None
            else "x".join(map(str, conv["pool_size"])) + " average pooling")
    return (f"convolutional ({filters} filters, stride {'x'.join(map(str, conv['stride']))}, "
            f"{pool})")


def _length(settings: dict[str, Any]) -> str:
    """How long backprop ran: the epochs per optimizer, or the budget."""
    budget = settings.get("budget")
    if budget is None or settings.get("budget_seconds") is None:
        epochs = settings["epochs"] or {}
        return ("epochs " + ", ".join(f"{k} {v}" for k, v in epochs.items()) if epochs
                else "no backprop run")
    seconds = settings["budget_seconds"]
    source = " (the convex solve's wall time)" if budget == "match" else ""
    return f"budget {seconds:.3g} s of training per run{source}"


def _search_line(search: dict[str, Any]) -> str:
    """A learning-rate search (its :meth:`RateSearch.to_dict`) in one line."""
    if not search["tuned"]:
        return f"{search['optimizer']}: lr {search['lr']:g}, {search['note']}"
    budget = " or ".join(
        part for part in (
            None if search["epochs"] is None else f"{search['epochs']} epochs",
            None if search["time_limit"] is None else f"{search['time_limit']:.3g} s",
        ) if part
    )
    trials = ", ".join(
        f"{t['lr']:.3g} → " + ("diverged" if t["diverged"] else f"{t['objective']:.6g}")
        for t in search["trials"]
    )
    chosen = (f"**{search['lr']:.3g}**" if search["lr"] is not None
              else "none (every rate diverged; the smallest ran)")
    note = f"; {search['note']}" if search["note"] else ""
    return (f"{search['optimizer']}: chosen {chosen} of {len(search['trials'])} rates, "
            f"{budget} each, seed {search['seed']}, {search['time']:.2f} s in all{note}: {trials}")


def _fmt_spread(mean: float, std: float) -> str:
    """``"mean ± std"``; the mean alone for a single run, nothing for no run."""
    if not math.isfinite(mean):
        return ""
    return _fmt_metric(mean) + (f" ± {_fmt_metric(std)}" if math.isfinite(std) else "")


def _shorten(text: str, limit: int = 120) -> str:
    """One table cell: whitespace collapsed, pipes escaped, cut at ``limit`` characters."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _markdown(headers: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a markdown table, columns padded to line up in plain text."""
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return [line(headers), rule] + [line(row) for row in rows]
