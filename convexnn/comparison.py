"""Side by side: the certified convex optimum against backprop on one data set.

:func:`compare` trains the same two-layer polynomial-activation network on
the same (standardised) data, with the same loss, ``beta`` and activation,
in two ways:

* by the convex back-ends named in ``solvers`` (each solves the exact SDP
  once; deterministic), through :class:`~convexnn.ConvexPolyClassifier` /
  :class:`~convexnn.ConvexPolyRegressor`, so labels are encoded exactly as
  the estimators encode them;
* by backprop (:func:`convexnn.baselines.train_backprop`) with each
  optimizer in ``optimizers``, once per seed, on the convex problem's own
  objective (``objective="convex"``) or with weight decay.

Every row of the result reports the *convex objective*
``loss(f(X), y) + beta * sum_j |alpha_j|`` of the trained network on the
training data, so all rows are comparable, and the best certified lower
bound of the convex rows bounds every one of them from below.

A method that fails (an unknown or unlicensed solver, a problem too large
for a conic back-end, a diverged optimizer, any exception) does not stop
the comparison: its row says ``status="failed"`` (or ``"diverged"``) with
the error text, a warning is logged, and the next method runs. Bad
*arguments* (an unknown optimizer, a negative ``beta``, ...) raise
:class:`~convexnn.exceptions.ValidationError` before anything runs.

Default sizes (``max_samples="auto"``)
--------------------------------------
Conic back-ends see an SDP with about ``n * (d + 1)^2 * C`` nonzeros
(``C`` outputs: one per class for more than two classes); their time and
memory grow with it, and so does backprop's work per epoch at the default
width ``2 C (d + 1)``: ``n * width * (d + C)``. With ``max_samples="auto"``
the *training* set is capped (a stratified random subset; the test set is
kept whole) at::

    max(AUTO_MIN_SAMPLES, AUTO_NONZERO_BUDGET // ((d + 1)^2 * C))

= ``max(100, 4_000_000 // ((d + 1)^2 * C))``. For the embedded data sets
(squared loss, the default 25% test split):

=================  ========  ===  ==========  =====================
data set           features  C    training    auto cap
=================  ========  ===  ==========  =====================
``digits``         64        10   1347        100
``mnist1d``        40        10   3750        237
``breast-cancer``  30        1    426         none (4162)
``wine``           13        3    133         none (6802)
``iris``           4         3    112         none (53333)
``diabetes``       10        1    331         none (33057)
``planted``        10        1    150         none (33057)
=================  ========  ===  ==========  =====================

Convex solves also get ``time_limit=DEFAULT_SOLVER_TIME_LIMIT`` (60 s)
unless ``solver_options`` says otherwise: a solve stopped by the limit is
still certified (its row has status ``"time_limit"``, a lower bound and a
gap). ``max_samples=None`` and ``solver_options={"time_limit": None}`` lift
both. (On ``digits`` every conic back-end needs minutes whatever ``n``: 20
PSD blocks of size 65 -- SCS stops at the time limit with a relative gap
of about 5e-4, Clarabel takes over 4 minutes even for 50 samples -- while
the structure-exploiting ``native`` solver, which ``"auto"`` prefers, takes
seconds.)

Threads
-------
Backprop on small problems is several times faster single-threaded on a
few cores (thread overhead drowns the small matrix products). With
``threads="auto"`` backprop runs with one torch thread and one BLAS thread
when ``n * width * (d + C) <= SMALL_PROBLEM_WORK``; the previous settings
are restored afterwards. Convex back-ends keep their own threading.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
import pandas as pd
import torch

from convexnn import solvers as solver_registry  # imported under another name: `solvers` is an argument

from convexnn._persistence import json_ready
from convexnn._targets import encode_labels
from convexnn._validation import (
    as_float_array,
    check_beta,
    check_choice,
    check_positive,
    check_seed,
)
from convexnn.activations import get_activation
from convexnn.baselines import (
    OBJECTIVES,
    OPTIMIZERS,
    BackpropRun,
    TrainingHistory,
    accuracy,
    check_training_settings,
    default_lr,
    r2,
    train_backprop,
)
from convexnn.datasets import (
    DATASETS,
    Dataset,
    load_dataset,
    standardize as standardize_features,
    train_test_split_data,
)
from convexnn.estimators import ConvexPolyClassifier, ConvexPolyRegressor
from convexnn.exceptions import (
    SolverStatusWarning,
    ValidationError,
    translate_solver_error,
)
from convexnn.losses import get_loss
from convexnn.solvers.base import COMMON_OPTIONS
from convexnn.solvers.errors import SolverError

logger = logging.getLogger("convexnn")

__all__ = [
    "AUTO_MIN_SAMPLES",
    "AUTO_NONZERO_BUDGET",
    "COLUMNS",
    "Comparison",
    "DEFAULT_SOLVER_TIME_LIMIT",
    "SMALL_PROBLEM_WORK",
    "compare",
    "default_max_samples",
]

#: Conic nonzeros ``n * (d + 1)^2 * C`` that ``max_samples="auto"`` allows.
AUTO_NONZERO_BUDGET = 4_000_000
#: ``max_samples="auto"`` never caps below this many training samples.
AUTO_MIN_SAMPLES = 100
#: Seconds each convex solve may take unless ``solver_options`` says otherwise.
DEFAULT_SOLVER_TIME_LIMIT = 60.0
#: ``threads="auto"``: backprop single-threaded when ``n * width * (d + C)`` is at most this.
SMALL_PROBLEM_WORK = 2e8
#: About this many records per backprop run (objective curves, metrics).
RECORDS_PER_RUN = 100
#: ``task="auto"``: integer-valued targets with at most this many values are class labels.
MAX_AUTO_CLASSES = 20

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

_BACKPROP_OPTIONS = ("lr", "batch_size", "schedule", "init", "init_scale", "time_limit", "dtype",
                     "device")
_STOP_STATUS = {"epochs": "completed", "time_limit": "time_limit", "diverged": "diverged"}
_FAILED = "failed"

DataLike = Union[str, Dataset, Sequence[Any]]


# -- the result ------------------------------------------------------------------
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
                            (evaluations for the records not counted)
        ``neurons``         neurons of the convex network / backprop width
        ``epochs``          epochs completed (backprop rows)
        ``error``           why the method failed or diverged, else ""

        Missing numbers are NaN.
    settings : dict
        What was compared: data, sizes, loss, beta, activation, width,
        epochs, learning rates, ...
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
        return _optimum(self.records)[0]

    @property
    def best_objective(self) -> float:
        """The lowest objective of a convex row (NaN when none succeeded)."""
        return _optimum(self.records)[1]

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
        return pd.DataFrame(self.records, columns=list(COLUMNS))

    def summary(self) -> pd.DataFrame:
        """One row per method: runs, failures, objective and metric over seeds, mean time."""
        rows = []
        for (kind, method), group in self.table().groupby(["kind", "method"], sort=False):
            ok = group[group["status"] != _FAILED]
            rows.append(
                {
                    "kind": kind,
                    "method": method,
                    "runs": len(group),
                    "failed": int((group["status"] == _FAILED).sum()),
                    "diverged": int((group["status"] == "diverged").sum()),
                    "best_objective": ok["objective"].min(),
                    "median_objective": ok["objective"].median(),
                    "mean_test_metric": ok["test_metric"].mean(),
                    "std_test_metric": ok["test_metric"].std(),  # NaN for a single run
                    "mean_time": ok["time"].mean(),
                }
            )
        return pd.DataFrame(rows)

    def to_markdown(self) -> str:
        """The settings, a summary per method and every run, as markdown."""
        s = self.settings
        metric = _METRIC_LABEL[self.metric]
        lines = [f"## Convex optimum vs backprop: {s['data']}", ""]
        cap = ""
        if s["n_train"] < s["n_train_available"]:
            cap = f" (a subset of {s['n_train_available']}: max_samples={s['max_samples']})"
        lines += [
            f"- data: {s['n_train']} training{cap} / {s['n_test']} test samples, "
            f"{s['n_features']} features, {s['n_outputs']} output(s), {s['task']}"
            + (", standardised" if s["standardize"] else ""),
            f"- model: activation {s['activation']}, {s['loss']} loss, beta {s['beta']:g}; "
            f"backprop width {s['width']}, objective {s['objective']!r}, epochs "
            + ", ".join(f"{k} {v}" for k, v in s["epochs"].items()),
        ]
        if math.isfinite(self.lower_bound):
            lines.append(
                f"- certified optimum: lower bound {self.lower_bound:.8g}, best convex "
                f"objective {self.best_objective:.8g}"
            )
        else:
            lines.append("- certified optimum: none (no convex solver succeeded)")
        lines += ["", "### Per method", ""]
        summary = self.summary()
        lines += _markdown(
            ["method", "kind", "runs", "failed", "diverged", "best objective", "median objective",
             f"test {metric} (mean ± std)", "mean time (s)"],
            [
                [
                    self._method_label(row["kind"], row["method"]),
                    row["kind"],
                    str(row["runs"]),
                    str(row["failed"]),
                    str(row["diverged"]),
                    _fmt(row["best_objective"], ".6g"),
                    _fmt(row["median_objective"], ".6g"),
                    _fmt_spread(row["mean_test_metric"], row["std_test_metric"]),
                    _fmt(row["mean_time"], ".2f"),
                ]
                for _, row in summary.iterrows()
            ],
        )
        lines += ["", "### All runs", ""]
        lines += _markdown(
            ["method", "seed", "status", "objective", "lower bound", "rel. gap",
             "rel. excess", f"train {metric}", f"test {metric}", "time (s)", "neurons", "epochs",
             "error"],
            [
                [
                    self._method_label(r["kind"], r["method"], r["solver"]),
                    "" if r["seed"] is None else str(r["seed"]),
                    r["status"],
                    _fmt(r["objective"], ".6g"),
                    _fmt(r["lower_bound"], ".6g"),
                    _fmt(r["relative_gap"], ".1e"),
                    _fmt(r["relative_excess"], ".1e"),
                    _fmt(r["train_metric"], ".4f"),
                    _fmt(r["test_metric"], ".4f"),
                    _fmt(r["time"], ".2f"),
                    _fmt(r["neurons"], "d"),
                    _fmt(r["epochs"], "d"),
                    _shorten(r["error"]),
                ]
                for r in self.records
            ],
        )
        return "\n".join(lines) + "\n"

    def _method_label(self, kind: str, method: str, solver: str | None = None) -> str:
        if kind != "convex":
            return method
        if solver is None:
            solver = next(
                (r["solver"] for r in self.records if r["kind"] == kind and r["method"] == method),
                None,
            )
        return f"{method} ({solver})" if solver and solver != method else method

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready values (NaN becomes None)."""
        return json_ready(
            {
                "settings": self.settings,
                "optimum": {"lower_bound": self.lower_bound,
                            "best_objective": self.best_objective},
                "records": self.records,
                "histories": [
                    {"method": method, "seed": seed, **history.to_dict()}
                    for (method, seed), history in self.histories.items()
                ],
            }
        )

    # -- figures ----------------------------------------------------------------
    def plot_objective_vs_time(self, path: str | Path | None = None):
        """Training objective against wall time (log scale), optimum as a reference.

        Left: every backprop run's convex objective, with the convex rows'
        ``(time, objective)`` as stars and the certified lower bound as a
        dashed line. Right: the same runs as ``objective - lower bound``,
        where the convex rows sit at their certified gap.

        Returns the :class:`matplotlib.figure.Figure`; writes a PNG to
        ``path`` when given. pyplot is not used.
        """
        from matplotlib.figure import Figure

        figure = Figure(figsize=(12, 4.8), layout="constrained")
        left, right = figure.subplots(1, 2)
        colors = self._colors()
        bound = self.lower_bound
        has_bound = math.isfinite(bound)
        diverged = {(r["method"], r["seed"]) for r in self.records if r["status"] == "diverged"}
        shown: set[str] = set()
        upper: list[float] = []
        lower: list[float] = []
        for (method, seed), history in self.histories.items():
            times, values = np.asarray(history.wall_time), np.asarray(history.convex_objective)
            keep = np.isfinite(values) & (values > 0)
            if not keep.any():
                continue
            label = None if method in shown else method
            shown.add(method)
            style = dict(color=colors[method], alpha=0.75, lw=1.3)
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
        for record in self.records:
            if record["kind"] != "convex" or record["status"] == _FAILED:
                continue
            name = self._method_label("convex", record["method"], record["solver"])
            star = dict(marker="*", s=180, color=colors[record["method"]], edgecolor="black",
                        zorder=5, label=f"convex: {name}")
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
            lower.append(bound)
        left.set_yscale("log")
        if upper and lower:  # clip diverged runs; keep every sensible curve in view
            left.set_ylim(min(lower) / 1.3, max(upper) * 1.5)
        left.set(xlabel="wall time (s)", ylabel="training objective (convex objective)",
                 title=f"{self.settings['data']}: training objective")
        left.legend(fontsize=8)
        if has_bound and right.has_data():
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

    def plot_test_metric(self, path: str | Path | None = None):
        """Test metric per method: one point per run, a box over seeds.

        Diverged runs are drawn as crosses; methods without a value are
        labelled ``failed``. Returns the Figure; writes a PNG to ``path``.
        """
        from matplotlib.figure import Figure

        methods = list(dict.fromkeys((r["kind"], r["method"]) for r in self.records))
        colors = self._colors()
        figure = Figure(figsize=(max(5.0, 1.3 * len(methods) + 2), 4.5), layout="constrained")
        axes = figure.subplots()
        labels = []
        rng = np.random.default_rng(0)
        for position, (kind, method) in enumerate(methods):
            rows = [r for r in self.records if r["kind"] == kind and r["method"] == method]
            labels.append(self._method_label(kind, method))
            values = np.array([r["test_metric"] for r in rows if r["status"] != _FAILED], float)
            values = values[np.isfinite(values)]
            if len(values) == 0:
                axes.text(position, 0.5, "failed", ha="center", va="center", color="red",
                          transform=axes.get_xaxis_transform())
                continue
            if len(values) > 1:
                axes.boxplot([values], positions=[position], widths=0.5, manage_ticks=False,
                             showfliers=False)
            for row in rows:
                value = row["test_metric"]
                if row["status"] == _FAILED or not np.isfinite(value):
                    continue
                jitter = rng.uniform(-0.08, 0.08) if len(values) > 1 else 0.0
                marker = "x" if row["status"] == "diverged" else ("*" if kind == "convex" else "o")
                axes.scatter([position + jitter], [value], marker=marker, color=colors[method],
                             s=120 if marker == "*" else 30, zorder=3)
        axes.set_xticks(range(len(methods)), labels, rotation=20 if len(methods) > 5 else 0)
        axes.set_xlim(-0.6, len(methods) - 0.4)
        axes.set(ylabel=f"test {_METRIC_LABEL[self.metric]}",
                 title=f"{self.settings['data']}: test {_METRIC_LABEL[self.metric]} per method "
                       f"(spread over seeds)")
        axes.grid(axis="y", alpha=0.3)
        if path is not None:
            figure.savefig(path, dpi=110)
        return figure

    def _colors(self) -> dict[str, Any]:
        from matplotlib import colormaps

        palette = colormaps["tab10"].colors
        methods = list(dict.fromkeys(r["method"] for r in self.records))
        return {method: palette[i % len(palette)] for i, method in enumerate(methods)}

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


_METRIC_LABEL = {"accuracy": "accuracy", "r2": "R²"}


# -- the comparison --------------------------------------------------------------
def compare(
    data: DataLike,
    *,
    solvers: Sequence[str] | str = ("auto",),
    optimizers: Sequence[str] | str = ("sgd", "adam", "lbfgs"),
    seeds: int | Iterable[int] = 3,
    loss: Any = None,
    beta: float = 0.1,
    activation: Any = "relu-approx",
    width: int | None = None,
    epochs: int | None = None,
    objective: str = "convex",
    max_samples: int | Literal["auto"] | None = "auto",
    test_size: float | int = 0.25,
    random_state: int = 0,
    task: Literal["auto", "classification", "regression"] = "auto",
    standardize: bool = True,
    progress: bool = True,
    solver_options: Mapping[str, Any] | None = None,
    backprop_options: Mapping[str, Any] | None = None,
    threads: int | Literal["auto"] | None = "auto",
    name: str | None = None,
) -> Comparison:
    """Train by the convex program and by backprop on the same data; compare.

    Parameters
    ----------
    data : str, Dataset, (X, y) or (X_train, y_train, X_test, y_test)
        An embedded data set name (:data:`convexnn.datasets.DATASETS`), a
        :class:`~convexnn.datasets.Dataset`, or arrays; ``(X, y)`` is split
        with ``test_size`` (stratified for classification).
    solvers : sequence of str, default ("auto",)
        Convex back-ends (see ``convexnn solvers``) or ``"auto"``; each is
        run once. A name that is unknown or unusable here gives a
        ``"failed"`` row. May be empty (backprop only).
    optimizers : sequence of str, default ("sgd", "adam", "lbfgs")
        Any of :data:`convexnn.baselines.OPTIMIZERS`; each runs once per
        seed. May be empty (convex only).
    seeds : int or iterable of int, default 3
        ``k`` means seeds ``0..k-1``.
    loss : str or Loss, optional
        Default ``"squared"``. Classification: squared, hinge, logistic,
        cross-entropy, multiclass-hinge; regression: squared, huber, l1.
    beta : float, default 0.1
        The l1 penalty on the output weights (weight decay for
        ``objective="weight-decay"``).
    activation : {"relu-approx", "quadratic"} or (a, b, c), default "relu-approx"
    width : int, optional
        Backprop width; default ``2 * C * (d + 1)``, at which the convex
        optimum is attainable.
    epochs : int, optional
        Backprop epochs for every optimizer; default
        :data:`convexnn.baselines.DEFAULT_EPOCHS` (1000, L-BFGS 200).
    objective : {"convex", "weight-decay"}, default "convex"
        What backprop minimises. Rows always report the convex objective.
    max_samples : int, "auto" or None, default "auto"
        Cap on the number of *training* samples (a stratified random
        subset; the test set stays whole). ``"auto"``: see the module notes;
        None: no cap.
    test_size : float or int, default 0.25
        For a data set name and ``(X, y)``.
    random_state : int, default 0
        Seeds the split and the subsample (and the ``planted`` generator).
    task : {"auto", "classification", "regression"}, default "auto"
        For arrays: ``"auto"`` takes string, boolean and integer-valued
        targets with at most 20 distinct values as class labels.
    standardize : bool, default True
        Centre and scale the features with the training part's statistics.
    progress : bool, default True
        A tqdm bar over the methods.
    solver_options : mapping, optional
        Options of every convex solve (``tol``, ``max_iter``,
        ``time_limit``, ``verbose`` or a back-end's own). ``time_limit``
        defaults to :data:`DEFAULT_SOLVER_TIME_LIMIT`; a None value removes
        an option.
    backprop_options : mapping, optional
        Passed to :func:`~convexnn.baselines.train_backprop`: ``lr``,
        ``batch_size``, ``schedule``, ``init``, ``init_scale``,
        ``time_limit``, ``dtype``, ``device``.
    threads : int, "auto" or None, default "auto"
        Torch / BLAS threads for backprop: ``"auto"`` uses one thread on
        small problems (module notes), an int that many, None leaves them.
    name : str, optional
        What to call the data in the table and the figures; default the
        data set's name (``"data"`` for arrays).

    Returns
    -------
    Comparison

    Raises
    ------
    ValidationError
        An invalid argument (named in the message), before anything runs.
    """
    started = time.perf_counter()
    plan = _plan(
        solvers=solvers, optimizers=optimizers, seeds=seeds, loss=loss, beta=beta,
        activation=activation, width=width, epochs=epochs, objective=objective,
        max_samples=max_samples, task=task, standardize=standardize, progress=progress,
        solver_options=solver_options, backprop_options=backprop_options, threads=threads,
    )
    split = _load(data, task=task, test_size=test_size, random_state=random_state)
    prepared = _prepare(split, plan.loss, plan.max_samples, random_state, standardize)
    n, d = prepared.X_train.shape
    C = prepared.n_outputs
    width_used = plan.width if plan.width is not None else 2 * C * (d + 1)
    settings = {
        "data": split.name if name is None else str(name),
        "description": split.description,
        "task": prepared.task,
        "metric": prepared.metric,
        "n_train": n,
        "n_train_available": prepared.n_available,
        "n_test": len(prepared.X_test),
        "n_features": d,
        "n_outputs": C,
        "n_classes": None if prepared.classes is None else len(prepared.classes),
        "max_samples": plan.max_samples,
        "standardize": bool(standardize),
        "test_size": test_size,
        "random_state": random_state,
        "loss": plan.loss.name,
        "beta": plan.beta,
        "activation": str(plan.activation),
        "activation_coefficients": list(plan.activation.coefficients),
        "objective": plan.objective,
        "width": width_used,
        "epochs": plan.epochs_used,
        "lr": {name: plan.backprop_options.get("lr") or default_lr(name, width_used)
               for name in plan.optimizers},
        "seeds": plan.seeds,
        "solvers": plan.solvers,
        "optimizers": plan.optimizers,
        "solver_options": plan.solver_options,
        "backprop_options": {k: str(v) for k, v in plan.backprop_options.items()},
    }
    logger.info(
        "compare on %s: %d training / %d test samples, %d features, %d output(s); solvers %s; "
        "optimizers %s x %d seed(s)", split.name, n, len(prepared.X_test), d, C,
        plan.solvers or "none", plan.optimizers or "none", len(plan.seeds),
    )

    records: list[dict[str, Any]] = []
    models: dict[str, Any] = {}
    runs: list[BackpropRun] = []
    threads_used = plan.threads
    if threads_used == "auto":
        threads_used = 1 if n * width_used * (d + C) <= SMALL_PROBLEM_WORK else None
    with _progress(len(plan.solvers) + len(plan.optimizers) * len(plan.seeds), progress) as bar:
        for name in plan.solvers:
            bar.set_description(f"convex {name}")
            record, model = _run_convex(name, prepared, plan)
            records.append(record)
            if model is not None:
                models[name] = model
            bar.update(1)
        with _thread_limit(threads_used):
            for name in plan.optimizers:
                for seed in plan.seeds:
                    bar.set_description(f"{name} seed {seed}")
                    record, run = _run_backprop(name, seed, prepared, plan)
                    records.append(record)
                    if run is not None:
                        runs.append(run)
                    bar.update(1)

    lower_bound, _ = _optimum(records)
    for record in records:
        value = record["objective"]
        if math.isfinite(lower_bound) and math.isfinite(value):
            record["relative_excess"] = (value - lower_bound) / max(abs(value), 1e-12)
    settings["total_time"] = time.perf_counter() - started
    logger.info("compare on %s done in %.1f s; certified optimum >= %.8g", split.name,
                settings["total_time"], lower_bound)
    return Comparison(records, settings, runs, models)


def _optimum(records: list[dict[str, Any]]) -> tuple[float, float]:
    """The best certified lower bound and the best objective of the convex rows (or NaN)."""
    convex = [r for r in records if r["kind"] == "convex" and r["status"] != _FAILED]
    bounds = [r["lower_bound"] for r in convex if math.isfinite(r["lower_bound"])]
    objectives = [r["objective"] for r in convex if math.isfinite(r["objective"])]
    return (max(bounds) if bounds else math.nan, min(objectives) if objectives else math.nan)


def default_max_samples(n_features: int, n_outputs: int) -> int:
    """The training-set cap of ``max_samples="auto"`` (see the module notes)."""
    per_sample = (n_features + 1) ** 2 * n_outputs
    return max(AUTO_MIN_SAMPLES, AUTO_NONZERO_BUDGET // per_sample)


# -- validation ------------------------------------------------------------------
_SETTING_DEFAULTS: dict[str, Any] = {
    "lr": None, "batch_size": None, "schedule": "constant", "init": "kaiming",
    "init_scale": 1.0, "time_limit": None,
}


@dataclass(frozen=True)
class _Plan:
    """The validated arguments of :func:`compare`."""

    solvers: list[str]
    optimizers: list[str]
    seeds: list[int]
    loss: Any
    beta: float
    activation: Any
    objective: str
    width: int | None
    epochs: int | None
    epochs_used: dict[str, int]
    max_samples: int | str | None
    solver_options: dict[str, Any]
    backprop_options: dict[str, Any]
    threads: int | str | None


def _plan(
    *, solvers: Any, optimizers: Any, seeds: Any, loss: Any, beta: Any, activation: Any,
    width: Any, epochs: Any, objective: Any, max_samples: Any, task: Any, standardize: Any,
    progress: Any, solver_options: Any, backprop_options: Any, threads: Any,
) -> _Plan:
    """Every argument checked before anything runs; messages name the argument."""
    solver_names = _names(solvers, "solvers")
    optimizer_names = _names(optimizers, "optimizers")
    for name in optimizer_names:
        if name not in OPTIMIZERS:
            raise ValidationError(
                f"optimizers: unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}"
            )
    if not solver_names and not optimizer_names:
        raise ValidationError("solvers and optimizers are both empty; nothing to compare")
    for flag, value in (("progress", progress), ("standardize", standardize)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValidationError(f"{flag} must be True or False, got {value!r}")
    if task not in ("auto", "classification", "regression"):
        raise ValidationError(
            f"task must be 'auto', 'classification' or 'regression', got {task!r}"
        )
    if threads not in ("auto", None):
        threads = check_positive(threads, "threads", integer=True)
    loss_object = get_loss("squared" if loss is None else loss)
    activation_object = get_activation(activation)
    beta = check_beta(beta)
    objective = check_choice(objective, "objective", OBJECTIVES)
    width = check_positive(width, "width", integer=True, allow_none=True)
    epochs = check_positive(epochs, "epochs", integer=True, allow_none=True)
    extra = _backprop_options(backprop_options)
    epochs_used = {}
    for name in optimizer_names:  # the backprop settings, checked as train_backprop checks them
        settings = check_training_settings(
            width=width, activation=activation_object, loss=loss_object, beta=beta,
            objective=objective, optimizer=name, epochs=epochs,
            **{key: extra.get(key, default) for key, default in _SETTING_DEFAULTS.items()},
        )
        epochs_used[name] = settings.epochs
    return _Plan(
        solvers=solver_names, optimizers=optimizer_names, seeds=_seed_list(seeds),
        loss=loss_object, beta=beta, activation=activation_object, objective=objective,
        width=width, epochs=epochs, epochs_used=epochs_used,
        max_samples=_check_max_samples(max_samples),
        solver_options=_solver_options(solver_options, solver_names), backprop_options=extra,
        threads=threads,
    )


def _names(value: Any, name: str) -> list[str]:
    """A list of distinct lower-case names from a sequence or a comma-separated string."""
    items = [part for part in value.split(",") if part.strip()] if isinstance(value, str) else value
    try:
        items = list(items)
    except TypeError:
        raise ValidationError(f"{name} must be a list of names, got {value!r}") from None
    names: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValidationError(f"{name} must be a list of non-empty names, got {value!r}")
        key = item.strip().lower()
        key = key.replace("_", "-") if name == "optimizers" else key
        if key not in names:
            names.append(key)
    return names


def _seed_list(seeds: Any) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, (bool, np.bool_)):
        return list(range(check_positive(seeds, "seeds", integer=True)))
    if isinstance(seeds, (str, bytes)):
        raise ValidationError(f"seeds must be an int or a list of ints, got {seeds!r}")
    try:
        seed_list = [check_seed(s, "each seed") for s in seeds]
    except TypeError:
        raise ValidationError(f"seeds must be an int or a list of ints, got {seeds!r}") from None
    if not seed_list:
        raise ValidationError("seeds is empty; give at least one seed")
    return list(dict.fromkeys(seed_list))


def _solver_options(options: Any, solver_names: list[str]) -> dict[str, Any]:
    if options is not None and not isinstance(options, Mapping):
        raise ValidationError(f"solver_options must be a dict or None, got {options!r}")
    merged = {"time_limit": DEFAULT_SOLVER_TIME_LIMIT, **(options or {})}
    merged = {key: value for key, value in merged.items() if value is not None}
    registered = solver_registry.names()
    common = {key: value for key, value in merged.items() if key in COMMON_OPTIONS}
    try:  # options are checked up front: by a known back-end, else the common ones by all
        for name in solver_names:
            if name in registered:
                solver_registry.get(name).check_options(merged)
            elif name == "auto":
                for known in registered:
                    solver_registry.get(known).check_options(common)
    except SolverError as error:
        raise translate_solver_error(error) from error
    return merged


def _check_max_samples(value: Any) -> int | str | None:
    """``"auto"``, None (also ``"all"``) or a positive int."""
    if isinstance(value, str) and value.strip().lower() in ("auto", "all"):
        return "auto" if value.strip().lower() == "auto" else None
    if value is None:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)) or value < 1:
        raise ValidationError(
            f"max_samples must be a positive int, 'auto' or None (all samples), got {value!r}"
        )
    return int(value)


def _backprop_options(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValidationError(f"backprop_options must be a dict or None, got {options!r}")
    unknown = sorted(set(options) - set(_BACKPROP_OPTIONS))
    if unknown:
        raise ValidationError(
            f"backprop_options: unknown option(s) {', '.join(map(str, unknown))}; accepted: "
            f"{', '.join(_BACKPROP_OPTIONS)} (width, epochs, objective, loss, beta and "
            "activation are arguments of compare)"
        )
    if "dtype" in options and options["dtype"] not in (torch.float32, torch.float64):
        raise ValidationError(
            f"backprop_options['dtype'] must be torch.float32 or torch.float64, "
            f"got {options['dtype']!r}"
        )
    if options.get("device") is not None:
        try:
            torch.device(options["device"])
        except (RuntimeError, TypeError) as error:
            raise ValidationError(f"backprop_options['device']: {error}") from error
    return dict(options)


# -- data ------------------------------------------------------------------------
@dataclass
class _Split:
    name: str
    description: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str


@dataclass
class _Prepared:
    """Features and loss-encoded targets, as every method sees them."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray  # labels (classification) or targets, as given to the estimators
    T_train: np.ndarray  # loss-encoded targets, as given to backprop
    T_test: np.ndarray
    task: str
    classes: np.ndarray | None
    n_available: int

    @property
    def metric(self) -> str:
        return "accuracy" if self.task == "classification" else "r2"

    @property
    def n_outputs(self) -> int:
        return 1 if self.T_train.ndim == 1 else self.T_train.shape[1]


def _load(data: Any, *, task: str, test_size: Any, random_state: Any) -> _Split:
    if isinstance(data, str):
        dataset = load_dataset(data, test_size=test_size, standardize=False,
                               random_state=random_state)
        return _from_dataset(dataset, task)
    if isinstance(data, Dataset):
        return _from_dataset(data, task)
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        if len(data) == 2:
            X, y = as_float_array(data[0], "X"), _labels(data[1], "y")
            _check_length(X, y, "X", "y")
            kind = _task(y, task)
            X_train, X_test, y_train, y_test = train_test_split_data(
                X, y, test_size=test_size, random_state=random_state,
                stratify=kind == "classification",
            )
        else:
            X_train, y_train = as_float_array(data[0], "X_train"), _labels(data[1], "y_train")
            X_test, y_test = as_float_array(data[2], "X_test"), _labels(data[3], "y_test")
            _check_length(X_train, y_train, "X_train", "y_train")
            _check_length(X_test, y_test, "X_test", "y_test")
            if X_test.shape[1] != X_train.shape[1]:
                raise ValidationError(
                    f"X_test has {X_test.shape[1]} features but X_train has {X_train.shape[1]}"
                )
            kind = _task(y_train, task)
        return _Split("data", "user data", X_train, y_train, X_test, y_test, kind)
    raise ValidationError(
        f"data must be a data set name (one of {', '.join(DATASETS)}), a Dataset, (X, y) or "
        f"(X_train, y_train, X_test, y_test); got {type(data).__name__}"
    )


def _from_dataset(dataset: Dataset, task: str) -> _Split:
    kind = dataset.task if task == "auto" else task
    return _Split(dataset.name, dataset.description, as_float_array(dataset.X_train, "X_train"),
                  np.asarray(dataset.y_train), as_float_array(dataset.X_test, "X_test"),
                  np.asarray(dataset.y_test), kind)


def _labels(y: Any, name: str) -> np.ndarray:
    if y is None:
        raise ValidationError(f"{name} is None; expected targets")
    values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim not in (1, 2):
        raise ValidationError(f"{name} must be 1-D (or 2-D for several outputs), got shape "
                              f"{values.shape}")
    return values


def _check_length(X: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> None:
    if len(X) != len(y):
        raise ValidationError(
            f"{y_name} has {len(y)} rows but {x_name} has {len(X)} samples; they must match"
        )


def _task(y: np.ndarray, task: str) -> str:
    if task != "auto":
        return task
    if y.ndim == 2:
        kind = "regression"
    elif y.dtype.kind in "OUSb":
        kind = "classification"
    else:
        values = y.astype(np.float64)
        integral = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
        kind = (
            "classification"
            if integral and len(np.unique(values)) <= MAX_AUTO_CLASSES
            else "regression"
        )
    logger.info("task='auto': treating the targets as %s (pass task= to override)", kind)
    return kind


def _prepare(
    split: _Split, loss: Any, max_samples: Any, random_state: Any, standardize: bool
) -> _Prepared:
    classification = split.task == "classification"
    X_train, y_train = split.X_train, split.y_train
    n_available = len(X_train)
    # The cap depends on the number of outputs, known once the labels are encoded.
    T_train, T_test, classes = _encode(y_train, split.y_test, loss, classification)
    C = 1 if T_train.ndim == 1 else T_train.shape[1]
    cap = default_max_samples(X_train.shape[1], C) if max_samples == "auto" else max_samples
    if cap is not None and cap < n_available:
        X_train, _, y_train, _ = train_test_split_data(
            X_train, y_train, test_size=n_available - cap, random_state=random_state,
            stratify=classification,
        )
        T_train, T_test, classes = _encode(y_train, split.y_test, loss, classification)
        logger.info("max_samples=%s: using %d of %d training samples", max_samples, cap,
                    n_available)
    if len(X_train) < 2:
        raise ValidationError(f"the training set has {len(X_train)} sample(s); at least 2 needed")
    X_test = split.X_test
    if standardize:
        X_train, X_test, _, _ = standardize_features(X_train, X_test)
    return _Prepared(X_train, X_test, y_train, T_train, T_test, split.task, classes,
                     n_available)


def _encode(
    y_train: np.ndarray, y_test: np.ndarray, loss: Any, classification: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Loss-encoded training and test targets (and the classes), as the estimators encode."""
    if classification:
        if y_train.ndim != 1:
            raise ValidationError(
                f"class labels must be 1-D, got shape {y_train.shape}; pass task='regression' "
                "for several real targets"
            )
        classes, T_train = encode_labels(y_train, len(y_train), loss)
        both = np.concatenate([y_train, y_test])
        all_classes, T_both = encode_labels(both, len(both), loss)
        if len(all_classes) != len(classes) or not np.all(all_classes == classes):
            unseen = sorted(set(all_classes.tolist()) - set(classes.tolist()))
            raise ValidationError(
                f"y_test has label(s) {unseen[:5]} that the training set lacks; every test "
                "class must occur in training"
            )
        return T_train, T_both[len(y_train):], classes
    if loss.targets != "real":
        raise ValidationError(
            f"loss {loss.name!r} needs class labels, but the task is regression; use a "
            "regression loss (squared, huber, l1) or task='classification'"
        )
    T_train = as_float_array(y_train, "y_train", ndims=(1, 2))
    T_test = as_float_array(y_test, "y_test", ndims=(1, 2))
    loss.check_targets(T_train.reshape(len(T_train), -1))
    return T_train, T_test, None


# -- running one method ----------------------------------------------------------
def _record(kind: str, method: str, seed: int | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {name: math.nan for name in COLUMNS}
    record.update(kind=kind, method=method, solver=None, seed=seed, status=_FAILED, error="")
    return record


def _run_convex(name: str, data: _Prepared, plan: _Plan) -> tuple[dict[str, Any], Any]:
    record = _record("convex", name)
    estimator_class = ConvexPolyClassifier if data.task == "classification" else ConvexPolyRegressor
    model = estimator_class(activation=plan.activation, beta=plan.beta, loss=plan.loss,
                            solver=name, solver_options=dict(plan.solver_options))
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SolverStatusWarning)
            model.fit(data.X_train, data.y_train)
        record["time"] = time.perf_counter() - start
        result = model.result_
        score = _metric(data.metric)
        record.update(
            solver=result.solver,
            status=result.status,
            objective=result.objective,
            lower_bound=result.lower_bound,
            relative_gap=result.relative_gap,
            train_metric=score(data.T_train, model.network_.predict(data.X_train)),
            test_metric=score(data.T_test, model.network_.predict(data.X_test)),
            neurons=result.n_neurons,
        )
    except Exception as error:  # a failing method never stops the comparison
        record["time"] = time.perf_counter() - start
        record["error"] = f"{type(error).__name__}: {error}"
        logger.warning("compare: convex solver %r failed (%s); recorded as failed", name,
                       record["error"])
        return record, None
    finally:
        for warning in caught:  # the status is in the row; other warnings go on as they came
            if issubclass(warning.category, SolverStatusWarning):
                logger.warning("convex %s: %s", name, warning.message)
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                       warning.lineno)
    logger.info(
        "convex %s (%s): %s, objective %.8g, certified lower bound %.8g (relative gap %.1e), "
        "%d neurons, %.2f s", name, record["solver"], record["status"], record["objective"],
        record["lower_bound"], record["relative_gap"], record["neurons"], record["time"],
    )
    return record, model


def _run_backprop(
    optimizer: str, seed: int, data: _Prepared, plan: _Plan
) -> tuple[dict[str, Any], BackpropRun | None]:
    record = _record("backprop", optimizer, seed)
    start = time.perf_counter()
    try:
        run = train_backprop(
            data.X_train, data.T_train, width=plan.width, activation=plan.activation,
            loss=plan.loss, beta=plan.beta, objective=plan.objective, optimizer=optimizer,
            epochs=plan.epochs, seed=seed, X_test=data.X_test, y_test=data.T_test,
            metric=_metric(data.metric),
            record_every=max(1, plan.epochs_used[optimizer] // RECORDS_PER_RUN),
            **plan.backprop_options,
        )
    except Exception as error:  # a failing method never stops the comparison
        record["time"] = time.perf_counter() - start
        record["error"] = f"{type(error).__name__}: {error}"
        logger.warning("compare: %s (seed %d) failed (%s); recorded as failed", optimizer, seed,
                       record["error"])
        return record, None
    record.update(
        status=_STOP_STATUS.get(run.stop_reason, run.stop_reason),
        objective=run.final_convex_objective,
        train_metric=run.final_train_metric,
        test_metric=run.final_test_metric,
        time=run.train_time,
        neurons=run.width,
        epochs=run.epochs_run,
    )
    if run.diverged:
        record["error"] = (
            f"diverged (lr {run.lr:g}); the weights of epoch {run.epochs_run}, the last finite "
            "record, are reported"
        )
    return record, run


def _metric(name: str):
    return accuracy if name == "accuracy" else r2


@contextmanager
def _thread_limit(threads: int | None):
    """Torch and BLAS / OpenMP thread pools limited to ``threads`` (None: untouched)."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


def _progress(total: int, enabled: bool):
    """A tqdm bar over the methods (a no-op one when disabled)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="compare", unit="method", disable=not enabled)


# -- formatting ------------------------------------------------------------------
def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if spec == "d":
        return str(int(value))
    return format(value, spec)


def _fmt_spread(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return ""
    return f"{mean:.4f}" + (f" ± {std:.4f}" if math.isfinite(std) else "")


def _shorten(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _markdown(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return [line(headers), rule] + [line(row) for row in rows]
