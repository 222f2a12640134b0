"""Choosing ``beta`` by cross-validation on a warm-started, certified path (like ``LassoCV``).

:class:`ConvexPolyRegressorCV` and :class:`ConvexPolyClassifierCV` (and the
convolutional :class:`ConvexPolyConvRegressorCV`,
:class:`ConvexPolyConvClassifierCV`) take one grid of ``beta`` values -- by
default ``betas=20`` values log-spaced from :func:`~convexnn.beta_max` of the
whole training data down to ``eps * beta_max`` -- and on every training fold
solve the regularisation path over that grid (:func:`~convexnn.fit_path`:
largest ``beta`` first, each solve warm-started from the previous one,
every point certified). Each point's network is scored on the fold's
held-out part; the ``beta`` with the best mean score is ``beta_``, and with
``refit=True`` the model is solved once more on all the data at ``beta_``.

Every point is recorded with its status and certified gap
(``status_path_``, ``gaps_path_``, ``cv_results_``). A point that failed or
stopped early (an iteration or time limit; :attr:`PathPoint.usable` is
false) has score NaN, and a ``beta`` with such a point on any fold is
skipped by the selection -- never silently used. A point whose back-end
converged but whose network is certified only to a gap above ``tol``
(``"optimal_inaccurate"``) is used, as a plain ``fit`` would return it, while
that gap is at most :data:`~convexnn.path.USABLE_GAP` (1e-3); beyond, it is
skipped too. One :class:`~convexnn.exceptions.SolverStatusWarning` counts
both kinds.

Folds run in parallel with ``n_jobs`` (joblib, as in scikit-learn); the
result does not depend on it.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import check_cv
from sklearn.utils.parallel import Parallel, delayed

from convexnn._solve import status_warnings_off
from convexnn._targets import decode_scores
from convexnn._validation import check_bool, user_stacklevel
from convexnn.estimators import (
    ConvexPolyClassifier,
    ConvexPolyConvClassifier,
    ConvexPolyConvRegressor,
    ConvexPolyRegressor,
    _ConvexPolyBase,
)
from convexnn.exceptions import (
    ConvexNNWarning,
    SolverFailedError,
    SolverStatusWarning,
    ValidationError,
)
from convexnn.formulations import problem_for
from convexnn.network import TwoLayerPolyNet
from convexnn.patches import ConvGeometry
from convexnn.path import (
    EPS,
    N_BETAS,
    USABLE_GAP,
    PathPoint,
    beta_grid,
    check_betas,
    check_eps,
    check_grid_size,
    fit_path,
    zero_network_beta,
)
from convexnn.solvers._checks import is_int
from convexnn.solvers.base import Status

logger = logging.getLogger("convexnn")

#: Folds of ``cv=None`` (scikit-learn's default).
DEFAULT_FOLDS = 5


# -- parameter checks --------------------------------------------------------------
def _check_betas(value: Any) -> int | list[float]:
    """A number of grid points (int >= 2) or a non-empty list of positive betas (decreasing)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:  # iterable by type, not in fact
        value = value.item()
    if is_int(value):
        if check_grid_size(value, "betas") < 2:
            # One point is beta_max, where the zero network is optimal: nothing to choose.
            raise ValidationError(
                f"betas={value!r} is a grid of one point, beta_max, where the zero network "
                "is optimal; give a number of points >= 2, or the value as a list ([1.0], "
                "--betas 1.0 on the command line)"
            )
        return int(value)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValidationError(
            "betas must be a number of grid points (an int >= 2) or a list of positive "
            f"regularisation strengths, got {value!r}"
        )
    return check_betas(value)


def _check_cv(value: Any) -> Any:
    if value is None or (hasattr(value, "split") and not isinstance(value, (str, bytes))):
        return value
    if is_int(value):
        if value < 2:
            raise ValidationError(f"cv must be at least 2 folds, got {value!r}")
        return int(value)
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return value
    raise ValidationError(
        "cv must be None, a number of folds (int >= 2), a cross-validation splitter or an "
        f"iterable of (train, test) index arrays, got {value!r}"
    )


def _check_scoring(value: Any) -> Any:
    if isinstance(value, str) and value not in get_scorer_names():
        raise ValidationError(
            f"scoring={value!r} is not a scorer name: see sklearn.metrics.get_scorer_names() "
            "(e.g. 'accuracy', 'balanced_accuracy', 'r2', 'neg_mean_squared_error')"
        )
    if value is None or isinstance(value, str) or callable(value):
        return value
    raise ValidationError(
        f"scoring must be None, a scorer name (e.g. 'accuracy', 'r2') or a callable "
        f"scorer(estimator, X, y), got {value!r}"
    )


def _check_n_jobs(value: Any) -> int | None:
    if value is None or (is_int(value) and value != 0):
        return value
    raise ValidationError(f"n_jobs must be None or a non-zero int (-1: all cores), got {value!r}")


# -- one fold -----------------------------------------------------------------------
@dataclass(frozen=True)
class _FoldPath:
    """What one fold's path gives, one entry per beta (decreasing)."""

    usable: np.ndarray
    test_size: int
    scores: np.ndarray
    statuses: list[str]
    relative_gaps: np.ndarray
    n_neurons: np.ndarray
    objectives: np.ndarray
    solve_times: np.ndarray
    score_times: np.ndarray
    #: The fold's ``convexnn`` log records (as ``logging.makeLogRecord`` takes them) where
    #: it ran in a worker process, whose records no handler of the user's would see.
    log_records: list[dict[str, Any]] = field(default_factory=list)


class _RecordBuffer(logging.Handler):
    """Keeps the records of a worker process, to be handled again by the parent's logger."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        # formatted here: the arguments need not be picklable
        self.records.append(dict(vars(record), msg=record.getMessage(), args=None,
                                 exc_info=None, exc_text=None))


@contextlib.contextmanager
def _records_for(parent: int, level: int) -> Iterator[list[dict[str, Any]]]:
    """Collect this process's ``convexnn`` records at ``level`` when it is not ``parent``
    (a joblib worker process: the same process logs as usual)."""
    if os.getpid() == parent:
        yield []
        return
    buffer = _RecordBuffer(level)
    previous = logger.level
    logger.addHandler(buffer)
    logger.setLevel(level)
    try:
        yield buffer.records
    finally:
        logger.removeHandler(buffer)
        logger.setLevel(previous)


def _fold_path(
    estimator: _ConvexPolyCVMixin,
    features: np.ndarray,
    targets: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    betas: np.ndarray,
    scorer: Callable[..., float],
    params: dict[str, Any],
    geometry: ConvGeometry | None,
    split: int,
    parent: int,
    log_level: int,
) -> _FoldPath:
    """The path on ``train``, each usable point scored on ``test`` (a joblib job of
    process ``parent``, whose ``convexnn`` logger is at ``log_level``)."""
    # (status warnings: counted, with every other unusable point, in one by fit)
    with _records_for(parent, log_level) as records, status_warnings_off():
        points = fit_path(
            features[train], targets[train], betas, activation=params["activation"],
            loss=params["loss"], solver=params["solver"], solver_options=estimator._options(),
            geometry=geometry, decomposition_rtol=params["decomposition_rtol"],
        )

    def score(point: PathPoint) -> tuple[float, float]:
        if not point.usable:
            return np.nan, 0.0
        start = time.perf_counter()
        try:
            value = scorer(estimator._estimator_at(point, geometry), features[test],
                           labels[test])
        except (AttributeError, TypeError, ValueError) as error:
            raise ValidationError(f"scoring={estimator.scoring!r} failed on split {split}'s "
                                  f"held-out samples at beta {point.beta:.4g}: {error}") from error
        return value, time.perf_counter() - start

    scores, score_times = zip(*(score(point) for point in points))
    return _FoldPath(
        usable=np.array([point.usable for point in points]),
        test_size=len(test),
        scores=np.asarray(scores, dtype=float),
        statuses=[point.result.status for point in points],
        relative_gaps=np.array([point.result.relative_gap for point in points]),
        n_neurons=np.array([point.result.n_neurons for point in points]),
        objectives=np.array([point.result.objective for point in points]),
        solve_times=np.array([point.result.solve_time for point in points]),
        score_times=np.array(score_times),
        log_records=records,
    )


def _is_one_number(value: Any) -> bool:
    """Whether a scorer's value is one real number (Python's, numpy's, a 0-d array)."""
    if isinstance(value, (str, bytes)):
        return False
    try:
        scalar = np.ndim(value) == 0
        float(value)
    except (TypeError, ValueError):  # ragged sequences, objects float() refuses
        return False
    return scalar


# -- the estimators -----------------------------------------------------------------
#: The parameters that replace ``beta``: name, default, annotation.
CV_PARAMETERS: tuple[tuple[str, Any, str], ...] = (
    ("betas", N_BETAS, "int | Iterable[float]"),
    ("eps", EPS, "float"),
    ("cv", None, "int | BaseCrossValidator | Iterable | None"),
    ("scoring", None, "str | Callable | None"),
    ("n_jobs", None, "int | None"),
    ("refit", True, "bool"),
)


def _cv_init(plain: type[_ConvexPolyBase]) -> Callable[..., None]:
    """``__init__`` of the CV counterpart of ``plain``: its parameters with ``beta``
    replaced by :data:`CV_PARAMETERS`.

    scikit-learn reads an estimator's parameters from the signature of its
    ``__init__`` and wants them stored untouched; building that signature
    from the plain class keeps every parameter of the plain estimator (the
    convolution's too) in the CV one, in the same order, with the same
    defaults, without writing them out twice.
    """
    parameters = []
    for parameter in inspect.signature(plain.__init__).parameters.values():
        if parameter.name != "beta":
            parameters.append(parameter)
            continue
        parameters += [
            inspect.Parameter(name, parameter.kind, default=default, annotation=annotation)
            for name, default, annotation in CV_PARAMETERS
        ]
    signature = inspect.Signature(parameters)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{plain.__name__}CV.__init__"
    return __init__


class _ConvexPolyCVMixin:
    """Cross-validated ``beta`` on top of a plain convex estimator (placed before it in the MRO).

    The plain estimator supplies validation, target encoding, the solve and
    prediction; this mixin replaces ``beta`` by the grid and CV parameters.
    """

    #: The plain estimator class whose ``beta`` is chosen.
    _plain_estimator: ClassVar[type[_ConvexPolyBase]]

    _parameter_constraints: ClassVar[dict[str, Callable[[Any], Any]]] = {
        **{
            name: check
            for name, check in _ConvexPolyBase._parameter_constraints.items()
            if name != "beta"
        },
        "betas": _check_betas,
        "eps": check_eps,
        "cv": _check_cv,
        "scoring": _check_scoring,
        "n_jobs": _check_n_jobs,
        "refit": lambda value: check_bool(value, "refit"),
    }

    # -- fit ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any, groups: Any = None) -> Any:
        """Solve the path on every fold, choose ``beta_`` and (``refit``) solve at it.

        Parameters
        ----------
        X : array-like
            As for the plain estimator.
        y : array-like
            Targets (regressors) or class labels (classifiers).
        groups : array-like of shape (n_samples,), optional
            Group labels of the samples, passed to the splitter ``cv`` (e.g.
            ``GroupKFold``), as scikit-learn's ``LassoCV`` does.

        Returns
        -------
        self

        Raises
        ------
        SolverFailedError
            No ``beta`` of the grid was solved on every fold.
        """
        params = self._check_params()  # type: ignore[attr-defined]
        # Nothing of a previous fit outlives this one (refit=False keeps no model of its
        # own); what a failed one recorded of its path stays, for diagnosis.
        self._forget_fit()
        try:
            scorer = check_scoring(self, scoring=params["scoring"])
        except ValueError as error:
            raise ValidationError(f"scoring={params['scoring']!r}: {error}") from error
        features = self._features(X, reset=True)  # type: ignore[attr-defined]
        loss = params["loss"]
        targets = self._targets(y, len(features), loss, reset=True)  # type: ignore[attr-defined]
        labels = decode_scores(targets, self.classes_) if is_classifier(self) else targets
        folds = self._folds(params["cv"], features, labels, groups)
        self.n_splits_ = len(folds)
        geometry = self._geometry(features)  # type: ignore[attr-defined]
        self._check_scorer(scorer, features, targets, labels, folds, geometry,
                           params["activation"])
        problem = problem_for(features, targets, activation=params["activation"], beta=0.0,
                              loss=loss, geometry=geometry)
        self.beta_max_ = zero_network_beta(problem)
        betas = params["betas"]
        # As fit_path solves them: decreasing, each once (an eps near 1 repeats values).
        self.betas_ = np.asarray(check_betas(
            betas if isinstance(betas, list) else beta_grid(self.beta_max_, betas, params["eps"])
        ))
        logger.info("cv: %d betas from %.4g to %.4g, %d folds", len(self.betas_),
                    self.betas_[0], self.betas_[-1], len(folds))
        paths = Parallel(n_jobs=params["n_jobs"])(
            delayed(_fold_path)(self, features, targets, labels, train, test, self.betas_,
                                scorer, params, geometry, split, os.getpid(),
                                logger.getEffectiveLevel())
            for split, (train, test) in enumerate(folds)
        )
        for path in paths:  # worker processes' records, each fold's as a block
            for record in path.log_records:
                logger.handle(logging.makeLogRecord(record))
        self._record(paths)
        # What the path was solved with, whatever set_params does since (save, curves).
        self._params_at_fit_ = self.get_params(deep=False)
        if params["refit"]:
            self._solve(features, targets, {**params, "beta": self.beta_},  # type: ignore[attr-defined]
                        geometry)
        return self

    def _folds(self, cv: Any, features: np.ndarray, labels: np.ndarray, groups: Any) -> list:
        """``(train, test)`` index arrays of ``cv``, checked: at least one split, every
        index a sample's (boolean masks of the samples, as scikit-learn takes them, become
        their indices)."""
        n = len(features)

        def as_indices(split: Any) -> np.ndarray:
            split = np.asarray(split)
            return np.flatnonzero(split) if split.dtype == bool and split.shape == (n,) else split

        try:
            splitter = check_cv(DEFAULT_FOLDS if cv is None else cv, labels,
                                classifier=is_classifier(self))
            folds = [(as_indices(train), as_indices(test))
                     for train, test in splitter.split(features, labels, groups)]
        except ValueError as error:  # e.g. more folds than samples
            raise ValidationError(f"cv={self.cv!r}: {error}") from error
        if not folds:
            raise ValidationError(
                "cv gives no (train, test) splits (a generator is used up by one fit: pass "
                "a list or a splitter)"
            )
        for k, (train, test) in enumerate(folds):
            for name, indices in (("train", train), ("test", test)):
                not_indices = (indices.size == 0 or indices.ndim != 1
                               or not np.issubdtype(indices.dtype, np.integer))
                if not_indices or indices.min() < 0 or indices.max() >= n:
                    got = (f"{indices.size} values of dtype {indices.dtype}" if not_indices
                           else f"values from {indices.min()} to {indices.max()}")
                    raise ValidationError(
                        f"cv: split {k}'s {name} indices must be a non-empty 1-D integer array "
                        f"of sample indices in [0, {n}); got {got}"
                    )
        return folds

    def _check_scorer(
        self,
        scorer: Callable[..., float],
        features: np.ndarray,
        targets: np.ndarray,
        labels: np.ndarray,
        folds: list,
        geometry: ConvGeometry | None,
        activation: Any,
    ) -> None:
        """Score the zero network (the optimum at ``beta_max``) on every test fold, so that
        a scoring this estimator or these folds cannot serve fails before any solve."""
        regions = (geometry.n_regions,) if geometry is not None else ()
        size = geometry.patch_size if geometry is not None else features.shape[1]
        zero = TwoLayerPolyNet.zero(size, regions + targets.shape[1:], activation, geometry)
        estimator = self._estimator_at(PathPoint(np.inf, None, zero), geometry)
        for split, (_, test) in enumerate(folds):
            try:
                score = scorer(estimator, features[test], labels[test])
            except (AttributeError, TypeError, ValueError) as error:
                held = len(np.unique(labels[test]))
                hint = (
                    f"; split {split}'s held-out samples hold {held} of the "
                    f"{len(self.classes_)} classes: shuffled or stratified folds "
                    "(cv=StratifiedKFold(k, shuffle=True)) give every fold every class"
                    if is_classifier(self) and held < len(self.classes_) else ""
                )
                raise ValidationError(
                    f"scoring={self.scoring!r} cannot score {type(estimator).__name__} with "
                    f"loss={self.loss!r} on split {split}'s held-out samples: {error}{hint}"
                ) from error
            if not _is_one_number(score):
                raise ValidationError(f"scoring={self.scoring!r} must return one number, got "
                                      f"{type(score).__name__} {score!r:.60}")
            # R^2 of one sample is NaN for every network: no solve could help (another
            # scoring NaN for the zero network alone is left to the solved points)
            if len(test) < 2 and not np.isfinite(score) and self.scoring in (None, "r2"):
                raise ValidationError(
                    f"scoring={self.scoring!r} gave {score} on split {split}'s {len(test)} "
                    "held-out sample (e.g. R^2 is undefined on one sample): use larger test "
                    "folds or another scoring"
                )

    def _record(self, paths: list[_FoldPath]) -> None:
        """Fitted path attributes, ``cv_results_`` and the choice of ``beta_``."""
        def stacked(name: str) -> np.ndarray:
            return np.column_stack([getattr(path, name) for path in paths])

        self.scores_path_ = stacked("scores")
        self.status_path_ = np.array([path.statuses for path in paths], dtype=object).T
        self.gaps_path_ = stacked("relative_gaps")
        self.n_neurons_path_ = stacked("n_neurons")
        self.objective_path_ = stacked("objectives")
        usable = stacked("usable")
        # A solved network the scoring gave no number for is skipped by the selection, as
        # GridSearchCV ranks a NaN mean last
        unscored = usable & ~np.isfinite(self.scores_path_)
        complete = usable.all(axis=1) & ~unscored.any(axis=1)
        if usable.all(axis=1).any() and not complete.any():  # solved, only never scored
            beta_index, fold = (int(i[0]) for i in np.nonzero(unscored))
            raise ValidationError(
                f"scoring={self.scoring!r} gave {self.scores_path_[beta_index, fold]} for a "
                f"solved network (beta {self.betas_[beta_index]:.4g}, split {fold} of "
                f"{paths[fold].test_size} test samples) and no beta was scored on every "
                "fold: use larger test folds or another scoring"
            )
        # Summed in the folds' order, as GridSearchCV does: the same beta_ and ranks as it,
        # its rounding included (equal fold scores in another order can differ in the last
        # bit, and then do not tie)
        mean = np.where(complete, self.scores_path_.mean(axis=1), np.nan)
        self._warn_about_points(usable, complete, unscored)
        if not complete.any():
            raise SolverFailedError(
                f"no beta of the grid was solved on every fold "
                f"({dict(Counter(self.status_path_.ravel()))}); raise max_iter / time_limit "
                "or try another solver"
            )
        self.best_index_ = int(np.nanargmax(mean))  # the first (largest beta) of ties
        self.beta_ = float(self.betas_[self.best_index_])
        self.best_score_ = float(mean[self.best_index_])
        zero_chosen = not self.n_neurons_path_[self.best_index_].any()
        if zero_chosen and complete.sum() == 1:
            warnings.warn(
                f"beta_ = {self.beta_:.4g} is the only beta solved on every fold, and its "
                "network is zero: the selection had nothing else to choose from. Raise "
                "max_iter / time_limit or try another solver (see status_path_).",
                SolverStatusWarning, stacklevel=user_stacklevel(),
            )
        elif zero_chosen and np.all(mean[complete] == self.best_score_):
            warnings.warn(
                f"every beta solved on all folds has the same mean validation score "
                f"({self.best_score_:.6g}), so beta_ is the largest, whose network is zero: "
                "the scoring cannot tell a network from none (e.g. R^2 of a constant target "
                "is 0 for any imperfect prediction). Check the targets, or choose another "
                "scoring (e.g. 'neg_mean_squared_error').",
                ConvexNNWarning, stacklevel=user_stacklevel(),
            )
        self.cv_results_ = self._cv_results(mean, complete, stacked("solve_times"),
                                            stacked("score_times"))

    def _warn_about_points(self, usable: np.ndarray, complete: np.ndarray,
                           unscored: np.ndarray) -> None:
        """One :class:`SolverStatusWarning` for the points that are not certified within tol,
        or not scored."""
        parts = []
        if unscored.any():
            parts.append(
                f"{int(unscored.sum())} solved path point(s) got no score from "
                f"scoring={self.scoring!r} (NaN); the beta value(s) concerned are skipped by "
                "the selection"
            )
        if not usable.all():
            counts = Counter(self.status_path_[~usable])
            summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
            why = (f"failed, stopped early or were certified only above a relative gap of "
                   f"{USABLE_GAP:g}" if Status.OPTIMAL_INACCURATE.value in counts
                   else "failed or stopped early")
            parts.append(
                f"{int((~usable).sum())} of {usable.size} path points (beta, fold) {why} "
                f"({summary}); the {int((~complete).sum())} beta value(s) concerned are "
                "skipped by the selection"
            )
        inaccurate = usable & (self.status_path_ == Status.OPTIMAL_INACCURATE.value)
        if inaccurate.any():
            parts.append(
                f"{int(inaccurate.sum())} of {usable.size} path points are certified only to "
                f"a relative gap above tol (worst {np.max(self.gaps_path_[inaccurate]):.1e}); "
                "they are used"
            )
        if parts:
            warnings.warn(
                "; ".join(parts) + " (see status_path_ and gaps_path_). Raise max_iter / "
                "time_limit, try another solver, or accept a larger tol.",
                SolverStatusWarning,
                stacklevel=user_stacklevel(),
            )

    def _cv_results(
        self, mean: np.ndarray, complete: np.ndarray, solve_times: np.ndarray,
        score_times: np.ndarray,
    ) -> dict[str, Any]:
        """``cv_results_`` in :class:`~sklearn.model_selection.GridSearchCV`'s layout."""
        from scipy.stats import rankdata

        results: dict[str, Any] = {
            "param_beta": self.betas_.copy(),
            "params": [{"beta": float(beta)} for beta in self.betas_],
        }
        for k in range(self.n_splits_):
            results[f"split{k}_test_score"] = self.scores_path_[:, k]
        results["mean_test_score"] = mean
        results["std_test_score"] = np.where(complete, self.scores_path_.std(axis=1), np.nan)
        rank = rankdata(-np.where(complete, mean, -np.inf), method="min").astype(np.int32)
        results["rank_test_score"] = rank
        # A point's fit is its warm-started solve (GridSearchCV times a cold fit).
        results["mean_fit_time"] = solve_times.mean(axis=1)
        results["std_fit_time"] = solve_times.std(axis=1)
        results["mean_score_time"] = score_times.mean(axis=1)
        results["std_score_time"] = score_times.std(axis=1)
        results["n_usable_splits"] = np.isfinite(self.scores_path_).sum(axis=1)
        for name, values in (("status", self.status_path_), ("relative_gap", self.gaps_path_),
                             ("n_neurons", self.n_neurons_path_),
                             ("objective", self.objective_path_)):
            for k in range(self.n_splits_):
                results[f"split{k}_{name}"] = values[:, k]
        return results

    # -- the network at a point, and at beta_ ------------------------------------
    def _estimator_at(
        self, point: PathPoint, geometry: ConvGeometry | None, *, names: bool = False
    ) -> _ConvexPolyBase:
        """The plain estimator fitted at ``point`` (``names``: with the feature names)."""
        fitted = self._fitted_params()
        params = {
            name: fitted[name]
            for name in self._plain_estimator._get_param_names()
            if name != "beta"
        }
        estimator = self._plain_estimator(beta=point.beta, **params)
        estimator.result_, estimator.network_ = point.result, point.network
        estimator._remember_objective(point.beta, params["loss"])
        estimator.geometry_ = geometry
        estimator.n_features_in_ = self.n_features_in_  # type: ignore[attr-defined]
        for name in ("classes_",) + (("feature_names_in_",) if names else ()):
            if hasattr(self, name):
                setattr(estimator, name, getattr(self, name))
        return estimator

    def to_estimator(self) -> _ConvexPolyBase:
        """The refitted model as the plain estimator with ``beta=beta_``.

        It shares ``network_`` and ``result_`` with this estimator and is what
        :meth:`save` writes.

        Raises
        ------
        NotFittedError
            Not fitted, or fitted with ``refit=False``.
        """
        from convexnn._validation import check_fitted

        check_fitted(self, "network_")
        point = PathPoint(self.beta_, self.result_, self.network_)  # type: ignore[attr-defined]
        return self._estimator_at(point, self.geometry_, names=True)  # type: ignore[attr-defined]

    def save(self, path: str | Path) -> Path:
        """Write the refitted model as its plain estimator (see :meth:`to_estimator`).

        The file is that of ``ConvexPolyClassifier(beta=beta_, ...)`` (or the
        regressor / convolutional counterpart): load it with that class's
        ``load``. The path attributes are not saved.
        """
        return self.to_estimator().save(path)


class ConvexPolyRegressorCV(_ConvexPolyCVMixin, ConvexPolyRegressor):
    """:class:`ConvexPolyRegressor` with ``beta`` chosen by cross-validation on the path.

    See :mod:`convexnn.cv` for how the path is solved and a ``beta`` chosen.

    Parameters
    ----------
    betas : int or list of float, default=20
        The grid: a number (>= 2) of values log-spaced from ``beta_max`` (of
        the whole training data, :func:`~convexnn.beta_max`) down to
        ``eps * beta_max``, or the values themselves (positive).
    eps : float in (0, 1), default=1e-3
        Smallest over largest ``beta`` of a generated grid.
    cv : int, splitter or iterable, default=None
        Folds as in scikit-learn: None for 5, a number of folds (KFold;
        StratifiedKFold for classifiers), a splitter, or (train, test) index
        pairs.
    scoring : str or callable, default=None
        A scikit-learn scorer; None uses ``score`` (R^2, accuracy for
        classifiers).
    n_jobs : int, default=None
        Folds solved in parallel (joblib); -1 for every core.
    refit : bool, default=True
        Solve on all the data at ``beta_`` (needed to ``predict``).
    activation, loss, solver, solver_options, decomposition_rtol, verbose
        As for :class:`ConvexPolyRegressor`.

    Attributes
    ----------
    beta_ : float
        The chosen ``beta``: the best mean validation score over the betas
        solved on every fold (the largest of ties).
    betas_ : ndarray of shape (n_betas,)
        The grid, decreasing.
    beta_max_ : float
        :func:`~convexnn.beta_max` of the training data.
    scores_path_ : ndarray of shape (n_betas, n_folds)
        Validation score of every point (NaN where it failed or stopped early).
    status_path_ : ndarray of str, shape (n_betas, n_folds)
        Status of every point (``"optimal"`` where certified within ``tol``).
    gaps_path_ : ndarray of shape (n_betas, n_folds)
        Certified relative gap of every point.
    n_neurons_path_ : ndarray of int, shape (n_betas, n_folds)
        Width of every point's network (0 also for a failed point: see
        ``status_path_``).
    objective_path_ : ndarray of shape (n_betas, n_folds)
        Training objective of every point.
    best_score_ : float
        Mean validation score at ``beta_``.
    best_index_ : int
        Index of ``beta_`` in ``betas_``.
    n_splits_ : int
    cv_results_ : dict of ndarray
        :class:`~sklearn.model_selection.GridSearchCV`'s layout
        (``param_beta``, ``splitK_test_score``, ``mean_test_score``,
        ``rank_test_score``, ...) plus ``splitK_status``,
        ``splitK_relative_gap``, ``splitK_n_neurons``, ``splitK_objective``,
        ``n_usable_splits``. ``mean_fit_time`` is a path point's solve,
        warm-started from the previous point.
    result_, network_ : SolveResult, TwoLayerPolyNet
        The model refitted at ``beta_`` (``refit=True``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> import numpy as np
    >>> from convexnn import ConvexPolyRegressorCV
    >>> X = np.random.default_rng(0).normal(size=(60, 3))
    >>> y = X[:, 0] ** 2 - X[:, 1]
    >>> reg = ConvexPolyRegressorCV(betas=5, cv=3).fit(X, y)
    >>> reg.scores_path_.shape
    (5, 3)
    >>> float(reg.beta_) in reg.betas_
    True
    """

    _plain_estimator = ConvexPolyRegressor
    __init__ = _cv_init(ConvexPolyRegressor)


class ConvexPolyClassifierCV(_ConvexPolyCVMixin, ConvexPolyClassifier):
    """:class:`ConvexPolyClassifier` with ``beta`` chosen by cross-validation on the path.

    Parameters and attributes as for :class:`ConvexPolyRegressorCV`, with the
    losses and label handling of :class:`ConvexPolyClassifier` (plus
    ``classes_``). Folds are stratified by class for ``cv=None`` or an int;
    scoring defaults to accuracy.
    """

    _plain_estimator = ConvexPolyClassifier
    __init__ = _cv_init(ConvexPolyClassifier)


class ConvexPolyConvRegressorCV(_ConvexPolyCVMixin, ConvexPolyConvRegressor):
    """:class:`ConvexPolyConvRegressor` with ``beta`` chosen by cross-validation on the path.

    Parameters: the convolution's (``image_shape``, ``filter_size``,
    ``stride``, ``pool_size``) as for :class:`ConvexPolyConvRegressor`, the
    rest as for :class:`ConvexPolyRegressorCV`; attributes as there.
    """

    _plain_estimator = ConvexPolyConvRegressor
    __init__ = _cv_init(ConvexPolyConvRegressor)


class ConvexPolyConvClassifierCV(_ConvexPolyCVMixin, ConvexPolyConvClassifier):
    """:class:`ConvexPolyConvClassifier` with ``beta`` chosen by cross-validation on the path.

    Parameters: the convolution's as for :class:`ConvexPolyConvClassifier`,
    the rest as for :class:`ConvexPolyClassifierCV`; attributes as there.
    """

    _plain_estimator = ConvexPolyConvClassifier
    __init__ = _cv_init(ConvexPolyConvClassifier)
