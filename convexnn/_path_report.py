"""The picture and table of a cross-validated path: :class:`PathCurves`, :func:`plot_path`.

Along the grid of a fitted CV estimator (:mod:`convexnn.cv`): the mean
validation score (with its spread over the folds), the training objective
and the number of neurons, against ``beta`` on a log scale, with ``beta_``
marked. matplotlib is imported inside :meth:`PathCurves.figure` only.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convexnn._validation import check_fitted, check_path
from convexnn.exceptions import ValidationError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The CSV's columns, in order.
CSV_COLUMNS = (
    "beta", "mean_score", "std_score", "mean_objective", "mean_neurons", "worst_relative_gap",
    "usable_folds", "folds", "chosen",
)


@dataclass(frozen=True)
class PathCurves:
    """What the path picture shows, one entry per ``beta`` (decreasing).

    Attributes
    ----------
    betas : ndarray
    scores, score_std : ndarray
        Mean and standard deviation of the validation score over the folds
        (NaN where a fold's point is not usable).
    objectives : ndarray
        Mean training objective over the folds' usable points.
    n_neurons : ndarray
        Mean width over the folds' usable points.
    relative_gaps : ndarray
        Worst certified relative gap over the folds.
    usable_folds : ndarray of int
        Folds whose point was solved (not failed or stopped early).
    n_folds : int
    beta : float
        The chosen ``beta_``.
    scoring : str
        What the score is.
    """

    betas: np.ndarray
    scores: np.ndarray
    score_std: np.ndarray
    objectives: np.ndarray
    n_neurons: np.ndarray
    relative_gaps: np.ndarray
    usable_folds: np.ndarray
    n_folds: int
    beta: float
    scoring: str

    @classmethod
    def of(cls, estimator: Any) -> PathCurves:
        """The curves of a fitted CV estimator (e.g. :class:`~convexnn.ConvexPolyClassifierCV`)."""
        if not hasattr(estimator, "_record"):
            raise ValidationError(
                "estimator must be a cross-validated convexnn estimator (ConvexPolyRegressorCV, "
                f"ConvexPolyClassifierCV, ...), got {type(estimator).__name__}"
            )
        check_fitted(estimator, "cv_results_")  # a failed fit leaves the path arrays only
        usable = np.isfinite(estimator.scores_path_)

        def usable_mean(values: np.ndarray) -> np.ndarray:
            kept = np.where(usable, values, 0.0)
            counts = usable.sum(axis=1)
            return np.where(counts > 0, kept.sum(axis=1) / np.maximum(counts, 1), np.nan)

        def usable_max(values: np.ndarray) -> np.ndarray:
            return np.where(usable.any(axis=1),
                            np.where(usable, values, -np.inf).max(axis=1), np.nan)

        results = estimator.cv_results_
        scoring = estimator._fitted_params()["scoring"]  # the scores' own, not set_params'
        if scoring is None:
            scoring = "accuracy" if hasattr(estimator, "classes_") else "R^2"
        else:
            scoring = str(getattr(scoring, "__name__", scoring))
        return cls(
            betas=np.asarray(estimator.betas_, dtype=float),
            scores=np.asarray(results["mean_test_score"], dtype=float),
            score_std=np.asarray(results["std_test_score"], dtype=float),
            objectives=usable_mean(estimator.objective_path_),
            n_neurons=usable_mean(estimator.n_neurons_path_.astype(float)),
            # over the folds the other columns are over: a failed fold's NaN hid the rest
            relative_gaps=usable_max(estimator.gaps_path_),
            usable_folds=usable.sum(axis=1),
            n_folds=int(estimator.n_splits_),
            beta=float(estimator.beta_),
            scoring=scoring,
        )

    def to_csv(self, path: str | Path) -> Path:
        """Write the table (columns :data:`CSV_COLUMNS`, one row per ``beta``); returns the path."""
        path = check_path(path)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for i, beta in enumerate(self.betas):
                writer.writerow([
                    repr(float(beta)), _cell(self.scores[i]), _cell(self.score_std[i]),
                    _cell(self.objectives[i]), _cell(self.n_neurons[i]),
                    _cell(self.relative_gaps[i]), int(self.usable_folds[i]), self.n_folds,
                    int(beta == self.beta),
                ])
        return path

    def figure(self) -> Figure:
        """Score, training objective and neurons against ``beta`` (log scale), ``beta_`` marked."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(7, 8), layout="constrained")
        score_axis, objective_axis, neuron_axis = figure.subplots(3, 1, sharex=True)
        ok = np.isfinite(self.scores)
        score_axis.plot(self.betas[ok], self.scores[ok], "o-", color="C0", ms=4)
        score_axis.fill_between(self.betas[ok], (self.scores - self.score_std)[ok],
                                (self.scores + self.score_std)[ok], color="C0", alpha=0.2)
        if not ok.all():
            bottom = np.nanmin(self.scores) if ok.any() else 0.0
            score_axis.plot(self.betas[~ok], np.full((~ok).sum(), bottom), "x", color="C3",
                            ms=8, label="failed or stopped on a fold (skipped)")
            score_axis.legend(loc="best", fontsize=8)
        folds = f"{self.n_folds} folds" if self.n_folds > 1 else "validation split"
        score_axis.set_ylabel(f"validation {self.scoring}\n(mean, {folds})")
        objective_axis.plot(self.betas, self.objectives, "o-", color="C1", ms=4)
        objective_axis.set_ylabel("training objective")
        if np.nanmin(self.objectives) > 0:
            objective_axis.set_yscale("log")
        neuron_axis.plot(self.betas, self.n_neurons, "o-", color="C2", ms=4)
        neuron_axis.set_ylabel("neurons")
        neuron_axis.set_xlabel("beta")
        neuron_axis.set_xscale("log")
        for axis in (score_axis, objective_axis, neuron_axis):
            axis.axvline(self.beta, color="black", ls="--", lw=1)
            axis.grid(True, which="major", alpha=0.3)
        score_axis.set_title(f"beta_ = {self.beta:.4g}")
        return figure


def _cell(value: float) -> str:
    return "" if not math.isfinite(value) else repr(float(value))


def plot_path(source: Any, out: str | Path) -> dict[str, Path]:
    """Write the path picture (PNG) and its table (CSV) of a fitted CV estimator.

    Parameters
    ----------
    source : fitted CV estimator or PathCurves
        E.g. a fitted :class:`~convexnn.ConvexPolyClassifierCV`.
    out : str or Path
        Path of the files without suffix (a ``.png`` or ``.csv`` one is
        dropped): ``out.png`` and ``out.csv`` are written (the folder is
        created); an existing folder gets ``path.png`` and ``path.csv``.

    Returns
    -------
    dict
        ``{"png": Path, "csv": Path}``.
    """
    curves = source if isinstance(source, PathCurves) else PathCurves.of(source)
    stem = check_path(out, "out")
    if stem.is_dir():  # not "folder.png" beside it
        stem = stem / "path"
    if stem.suffix.lower() in (".png", ".csv"):  # "x.png" means the stem "x"
        stem = stem.with_suffix("")
    if stem.name in ("", ".", ".."):
        raise ValidationError(f"out must name the files (a path such as 'results/path'), "
                              f"got {str(out)!r}")
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, table = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".csv")
    curves.figure().savefig(png, dpi=120)
    return {"png": png, "csv": curves.to_csv(table)}
