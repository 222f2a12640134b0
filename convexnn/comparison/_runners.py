"""Running one method of a comparison: a convex solve or a backprop run, into one row.

A method that raises never stops the comparison: its row says ``"failed"``
with the error text and a warning is logged.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import torch

from convexnn.baselines import TUNE, BackpropRun, RateSearch, accuracy, r2
from convexnn.baselines._settings import UNBOUNDED_EPOCHS
from convexnn.baselines._training import TrainingProblem, run_training, training_problem
from convexnn.baselines._tuning import search_learning_rate
from convexnn.comparison._arguments import optimizer_options
from convexnn.comparison._records import new_record
from convexnn.estimators import (
    ConvexPolyClassifier,
    ConvexPolyConvClassifier,
    ConvexPolyConvRegressor,
    ConvexPolyRegressor,
)
from convexnn.exceptions import SolverStatusWarning

if TYPE_CHECKING:
    from tqdm.auto import tqdm

    from convexnn.comparison._arguments import Plan
    from convexnn.comparison._data import PreparedData

logger = logging.getLogger("convexnn")

#: ``threads="auto"``: backprop single-threaded when ``n * width * (d + C)`` is at most this.
SMALL_PROBLEM_WORK = 2e8
#: About this many records per backprop run (objective curves, metrics).
RECORDS_PER_RUN = 100

_STOP_STATUS = {"epochs": "completed", "time_limit": "time_limit", "diverged": "diverged"}


def run_convex(name: str, data: PreparedData, plan: Plan) -> tuple[dict[str, Any], Any]:
    """Fit the convex estimator with one solver.

    Parameters
    ----------
    name : str
        The solver, as requested (``"auto"`` included).
    data : PreparedData
        The training and test data of every method.
    plan : Plan
        The checked arguments of the comparison.

    Returns
    -------
    record : dict
        The row; ``"failed"`` with the error text when the fit raised.
    model : ConvexPolyClassifier, ConvexPolyRegressor or None
        The fitted estimator; None when the fit raised.
    """
    record = new_record("convex", name)
    classification = data.task == "classification"
    options = {"activation": plan.activation, "beta": plan.beta, "loss": plan.loss,
               "solver": name, "solver_options": dict(plan.solver_options)}
    if data.geometry is None:
        model = (ConvexPolyClassifier if classification else ConvexPolyRegressor)(**options)
    else:
        g = data.geometry
        model = (ConvexPolyConvClassifier if classification else ConvexPolyConvRegressor)(
            image_shape=g.image_shape, filter_size=g.filter_size, stride=g.stride,
            pool_size=g.pool_size, **options,
        )
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SolverStatusWarning)
            model.fit(data.X_train, data.y_train)
        record["time"] = time.perf_counter() - start
        result = model.result_
        score = _metric_function(data.metric)
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
    except Exception as error:  # noqa: BLE001 - a failing method never stops the comparison
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


def run_optimizer(
    optimizer: str, data: PreparedData, plan: Plan, budget: float | None
) -> tuple[list[dict[str, Any]], list[BackpropRun], RateSearch | None]:
    """Train by backprop with one optimizer, once per seed (after a rate search when asked).

    Parameters
    ----------
    optimizer : str
        One of :data:`convexnn.baselines.OPTIMIZERS`.
    data : PreparedData
        The training and test data of every method.
    plan : Plan
        The checked arguments of the comparison; with ``tune_lr`` a
        learning-rate search on the first seed picks the rate every seed
        trains with.
    budget : float, optional
        Training seconds of every run (the epochs are then unbounded).

    Returns
    -------
    records : list of dict
        One row per seed; ``"diverged"`` with the numbers of its record of
        lowest training objective, or ``"failed"`` with the error text when training raised.
    runs : list of BackpropRun
        The runs that did not raise (weights and histories).
    search : RateSearch or None
        The learning-rate search, when one ran.
    """
    search = None
    try:
        problem = _training_problem(optimizer, data, plan, budget)
        if plan.tune_lr:
            search = search_learning_rate(problem.with_settings(lr=TUNE), plan.seeds[0])
            problem = problem.with_settings(lr=search.rate_to_run)
    except Exception as error:  # noqa: BLE001 - a failing method never stops the comparison
        records = [_failed(new_record("backprop", optimizer, seed), error, optimizer, seed)
                   for seed in plan.seeds]
        return records, [], search
    records, runs = [], []
    for seed in plan.seeds:
        record, run = _run_seed(problem, optimizer, seed)
        if run is not None:
            run.lr_search = search
            runs.append(run)
        records.append(record)
    return records, runs, search


def _training_problem(
    optimizer: str, data: PreparedData, plan: Plan, budget: float | None
) -> TrainingProblem:
    """The training problem of one optimizer: by epochs, or by a time budget."""
    options = optimizer_options(optimizer, plan.backprop_options)
    if budget is None:
        epochs = plan.epochs_used[optimizer]
        timing = {"epochs": epochs, "record_every": max(1, epochs // RECORDS_PER_RUN)}
    else:
        timing = {"epochs": UNBOUNDED_EPOCHS, "time_limit": budget, "record_every": None,
                  "record_interval": budget / RECORDS_PER_RUN}
    return training_problem(
        data.X_train, data.T_train, width=plan.width, activation=plan.activation,
        loss=plan.loss, beta=plan.beta, objective=plan.objective, optimizer=optimizer,
        X_test=data.X_test, y_test=data.T_test, metric=_metric_function(data.metric),
        geometry=data.geometry, **timing, **options,
    )


def _run_seed(
    problem: TrainingProblem, optimizer: str, seed: int
) -> tuple[dict[str, Any], BackpropRun | None]:
    """One seed's row and run (None when training raised)."""
    record = new_record("backprop", optimizer, seed)
    start = time.perf_counter()
    try:
        run = run_training(problem, seed)
    except Exception as error:  # noqa: BLE001 - a failing method never stops the comparison
        record["time"] = time.perf_counter() - start
        return _failed(record, error, optimizer, seed), None
    record.update(
        status=_STOP_STATUS.get(run.stop_reason, run.stop_reason),
        objective=run.final_convex_objective,
        train_metric=run.final_train_metric,
        test_metric=run.final_test_metric,
        time=run.train_time,
        lr=run.lr,
        neurons=run.width,
        epochs=run.epochs_run,
    )
    if run.diverged:
        record["error"] = (
            f"diverged (lr {run.lr:g}); the weights of epoch {run.epochs_run}, its record of "
            "lowest training objective, are reported"
        )
    return record, run


def _failed(record: dict[str, Any], error: Exception, optimizer: str, seed: int) -> dict[str, Any]:
    """``record`` marked failed with ``error``'s text, and a warning logged."""
    record["error"] = f"{type(error).__name__}: {error}"
    logger.warning("compare: %s (seed %d) failed (%s); recorded as failed", optimizer, seed,
                   record["error"])
    return record


def _metric_function(name: str) -> Callable[[Any, Any], float]:
    """The score of ``"accuracy"`` or ``"r2"`` on encoded targets and network outputs."""
    return accuracy if name == "accuracy" else r2


def backprop_threads(threads: int | Literal["auto"] | None, work: float) -> int | None:
    """How many threads backprop gets: ``threads``, or for ``"auto"`` one on a small problem.

    Parameters
    ----------
    threads : int, "auto" or None
        As given to :func:`~convexnn.comparison.compare`.
    work : float
        ``n * width * (d + C)``, the work of one epoch.

    Returns
    -------
    int or None
        None leaves the thread pools as they are.
    """
    if threads == "auto":
        return 1 if work <= SMALL_PROBLEM_WORK else None
    return threads


@contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Torch and BLAS / OpenMP thread pools limited to ``threads`` (None: untouched).

    The previous torch setting is restored on exit.
    """
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


def progress_bar(total: int, enabled: bool) -> tqdm:
    """A tqdm bar over the methods (a no-op one when disabled)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="compare", unit="method", disable=not enabled)

