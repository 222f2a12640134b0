""":func:`compare`: the convex optimum and backprop on the same data, one row per run."""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from convexnn._validation import check_seed, user_stacklevel
from convexnn.baselines import BackpropRun, default_lr
from convexnn.comparison._arguments import MATCH, check_arguments, conv_geometry
from convexnn.comparison._data import DataLike, load_split, prepare_data
from convexnn.comparison._records import FAILED, TARGETS, certified_optimum, time_to_target
from convexnn.comparison._report import Comparison
from convexnn.comparison._runners import (
    backprop_threads,
    progress_bar,
    run_convex,
    run_optimizer,
    thread_limit,
)
from convexnn.exceptions import ConvexNNWarning, ValidationError, translate_solver_error
from convexnn.solvers._memory import ensure_fits
from convexnn.solvers.certificate import relative_gap
from convexnn.solvers.errors import SolverError

logger = logging.getLogger("convexnn")


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
    epochs: int | Mapping[str, int] | None = None,
    objective: str = "convex",
    max_samples: int | Literal["auto"] | None = "auto",
    test_size: float = 0.25,
    random_state: int = 0,
    task: Literal["auto", "classification", "regression"] = "auto",
    standardize: bool = True,
    progress: bool | None = None,
    solver_options: Mapping[str, Any] | None = None,
    backprop_options: Mapping[str, Any] | None = None,
    threads: int | Literal["auto"] | None = "auto",
    name: str | None = None,
    tune_lr: bool = False,
    budget: float | Literal["match"] | None = None,
    conv: Mapping[str, Any] | None = None,
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
    epochs : int or mapping, optional
        Backprop epochs for every optimizer, or ``{optimizer: epochs}`` for
        some of them; default :data:`convexnn.baselines.DEFAULT_EPOCHS`
        (1000, L-BFGS 200).
    objective : {"convex", "weight-decay"}, default "convex"
        What backprop minimises. Rows always report the convex objective.
        With ``"weight-decay"`` the first layer's rows are not unit-norm:
        the objective reported is that of the network with its rows scaled
        to unit norm and the same output weights (a different function,
        the activation not being homogeneous), while the train and test
        metrics are those of the trained network itself.
    max_samples : int, "auto" or None, default "auto"
        Cap on the number of *training* samples (a stratified random
        subset; the test set stays whole). ``"auto"`` caps only when a
        conic back-end runs and the data are too large for it (see the
        notes of :mod:`convexnn.comparison`); None: no cap. The report says
        which cap applied and why (``settings["sample_cap"]``).
    test_size : float or int, default 0.25
        For a data set name and ``(X, y)``.
    random_state : int, default 0
        Seeds the split and the subsample (and the ``planted`` generator).
    task : {"auto", "classification", "regression"}, default "auto"
        For arrays: ``"auto"`` takes string, boolean and integer-valued
        targets with at most 20 distinct values as class labels.
    standardize : bool, default True
        Centre and scale the features with the training part's statistics.
        Regression targets are used as given: the network has no bias, so an
        offset (diabetes: mean 152) is built from the activation's constant
        term, which slows backprop (every optimizer stalled 9% above the
        optimum there); centre and scale them first to compare on that.
    progress : bool, optional
        A tqdm bar over the methods; default: when standard error is a
        terminal (a library does not write to a log file unasked).
    solver_options : mapping, optional
        Options of every convex solve (``tol``, ``max_iter``,
        ``time_limit``, ``verbose`` or a back-end's own). ``time_limit``
        defaults to :data:`DEFAULT_SOLVER_TIME_LIMIT`; a None value removes
        an option.
    backprop_options : mapping, optional
        Passed to :func:`~convexnn.baselines.train_backprop`: ``lr``,
        ``batch_size``, ``schedule``, ``init``, ``init_scale``,
        ``time_limit``, ``dtype``, ``device``. ``batch_size`` applies to the
        first-order optimizers; L-BFGS stays full-batch.
    threads : int, "auto" or None, default "auto"
        Torch / BLAS threads for backprop: ``"auto"`` uses one thread on
        small problems (:mod:`convexnn.comparison` notes), an int that many,
        None leaves them.
    name : str, optional
        What to call the data in the table and the figures; default the
        data set's name (``"data"`` for arrays).
    tune_lr : bool, default False
        Search each optimizer's learning rate first (a log-spaced grid of
        short runs on the first seed, the best by training objective,
        diverged runs excluded; see :mod:`convexnn.baselines`), then train
        every seed at the chosen rate. The rows' ``lr`` column and
        ``settings["tuning"]`` report it. Not with ``backprop_options["lr"]``.
    budget : float or "match", optional
        Run every optimizer for this many training seconds instead of a
        number of epochs (``"match"``: the wall time of the fastest convex
        row that solved, or of the slowest one when none reached
        ``"optimal"``). Not with ``epochs`` or a backprop time limit.
    conv : mapping, optional
        Train the convolutional network with average pooling instead:
        ``filter_size`` (default 3), ``stride`` (1), ``pool_size`` (None:
        global) and ``image_shape`` (default the data set's own, e.g.
        digits' ``(1, 8, 8)``). Convex rows use
        :class:`~convexnn.ConvexPolyConvClassifier` /
        :class:`~convexnn.ConvexPolyConvRegressor`, backprop rows the same
        network (:func:`~convexnn.baselines.train_backprop` with
        ``geometry``). Standardisation then uses one mean and one
        standard deviation for all pixels.

    Returns
    -------
    Comparison

    Raises
    ------
    ValidationError
        An invalid argument (named in the message), before anything runs.
    """
    started = time.perf_counter()
    progress = sys.stderr.isatty() if progress is None else progress
    plan = check_arguments(
        solvers=solvers, optimizers=optimizers, seeds=seeds, loss=loss, beta=beta,
        activation=activation, width=width, epochs=epochs, objective=objective,
        max_samples=max_samples, task=task, standardize=standardize,
        progress=progress,
        solver_options=solver_options, backprop_options=backprop_options, threads=threads,
        tune_lr=tune_lr, budget=budget, conv=conv,
    )
    # An int only: the report records it, and a run must be reproducible from its report.
    random_state = check_seed(random_state, "random_state")
    split = load_split(data, task=task, test_size=test_size, random_state=random_state)
    if split.task == "regression" and len(split.y_test) < 2:
        # every row's test R^2 would be NaN, with only scikit-learn's warnings to say why
        raise ValidationError(
            f"the test part has {len(split.y_test)} sample(s): R^2 needs at least 2; "
            "give a larger test_size (or test set)"
        )
    geometry = None if plan.conv is None else conv_geometry(plan.conv, split.image_shape)
    prepared = prepare_data(split, plan, random_state, standardize, geometry)
    n, d = prepared.X_train.shape
    C = prepared.n_outputs
    if geometry is None:
        width_used = plan.width if plan.width is not None else 2 * C * (d + 1)
    else:
        default_width = 2 * C * geometry.n_regions * (geometry.patch_size + 1)
        width_used = plan.width if plan.width is not None else default_width
    if plan.optimizers:
        try:  # before any method runs: torch's own allocation error came after minutes
            ensure_fits(_backprop_bytes(n, width_used, d, C, geometry),
                        f"backprop training of width {width_used} on {n} samples",
                        "Give a smaller width, or fewer samples (max_samples).")
        except SolverError as error:
            raise translate_solver_error(error) from error
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
        "sample_cap": prepared.cap_reason,
        "variant": "fully connected" if geometry is None else "convolutional",
        "conv": None if geometry is None else geometry.to_dict(),
        "standardize": bool(standardize),
        # None where the data came split (a Dataset, or four arrays): test_size was unused
        "test_size": test_size if isinstance(data, str) or (
            isinstance(data, tuple | list) and len(data) == 2) else None,
        "random_state": random_state,
        "loss": plan.loss.name,
        "beta": plan.beta,
        "activation": str(plan.activation),
        "activation_coefficients": list(plan.activation.coefficients),
        "objective": plan.objective,
        "width": width_used,
        "epochs": plan.epochs_used,  # None below when a budget replaces them
        "budget": plan.budget,
        "tune_lr": plan.tune_lr,
        "lr": {optimizer: plan.backprop_options.get("lr") or default_lr(optimizer, width_used)
               for optimizer in plan.optimizers},
        "tuning": {},
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
    threads_used = backprop_threads(plan.threads, _epoch_work(n, width_used, d, C, geometry))
    # Equal budgets are comparable only with the threads each side had.
    import torch

    settings["backprop_threads"] = (torch.get_num_threads() if threads_used is None
                                    else threads_used)
    with progress_bar(len(plan.solvers) + len(plan.optimizers), progress) as bar:
        for solver in plan.solvers:
            bar.set_description(f"convex {solver}")
            record, model = run_convex(solver, prepared, plan)
            records.append(record)
            if model is not None:
                models[solver] = model
            bar.update(1)
        seconds = _budget_seconds(plan.budget, records)
        settings["budget_seconds"] = seconds
        if seconds is not None:
            settings["epochs"] = None
        with thread_limit(threads_used):
            for optimizer in plan.optimizers:
                bar.set_description(f"{optimizer} x {len(plan.seeds)} seed(s)")
                rows, optimizer_runs, search = run_optimizer(optimizer, prepared, plan, seconds)
                records += rows
                runs += optimizer_runs
                if search is not None:
                    settings["tuning"][optimizer] = search.to_dict()
                    settings["lr"][optimizer] = search.rate_to_run
                bar.update(1)

    lower_bound, best_objective = certified_optimum(records)
    if lower_bound <= 0 < best_objective:
        # Every row would read "excess 1.0, never within 1%", a statement about the bound
        warnings.warn(
            f"the certified lower bound is {lower_bound + 0.0:.3g} for a best convex objective "
            f"of {best_objective:.6g}: it says nothing about how close a row is to the optimum, "
            "so relative excess and times to target are left empty"
            + (" (at beta = 0 the dual certificate is 0: pass beta > 0)" if plan.beta == 0
               else "; raise the solvers' max_iter / time_limit"),
            ConvexNNWarning, stacklevel=user_stacklevel(),
        )
        lower_bound = math.nan
    histories = {(run.optimizer, run.seed): run.history for run in runs}
    for record in records:
        value = record["objective"]
        if math.isfinite(lower_bound) and math.isfinite(value):
            record["relative_excess"] = relative_gap(value, lower_bound)
        if record["status"] == FAILED:
            continue
        history = histories.get((record["method"], record["seed"]))
        times, values = (([record["time"]], [value]) if history is None
                         else (history.wall_time, history.convex_objective))
        for column, tolerance in TARGETS.items():
            record[column] = time_to_target(times, values, lower_bound, tolerance)
    settings["total_time"] = time.perf_counter() - started
    logger.info("compare on %s done in %.1f s; certified optimum >= %.8g", split.name,
                settings["total_time"], lower_bound)
    return Comparison(records, settings, runs, models)


def _budget_seconds(budget: float | str | None, records: list[dict[str, Any]]) -> float | None:
    """The training seconds of every backprop run: ``budget``, or the convex solve's for "match".

    "match" takes the fastest convex row that reached ``"optimal"``, else the
    slowest convex row that returned a network; None (no budget) when there
    is none, with a warning.
    """
    if budget != MATCH:
        return budget  # type: ignore[return-value]
    solved = [r for r in records if r["kind"] == "convex" and r["status"] != FAILED]
    optimal = [r["time"] for r in solved if r["status"] == "optimal"]
    if optimal:
        return min(optimal)
    if solved:
        return max(r["time"] for r in solved)
    logger.warning("budget='match': no convex row returned a network; backprop runs by epochs")
    return None


def _backprop_bytes(n: int, width: int, d: int, C: int, geometry: Any) -> int:
    """Memory of full-batch backprop, in float64: about six values per hidden unit and
    sample held by the forward and backward passes (measured: 970 MB at n = 4000, width
    5000), per pooling region for the convolutional network, which also holds its patch
    moments ``(n, R, h, h)``; and five per weight (the weight, its gradient, two optimiser
    moments, the best weights kept)."""
    weights = width * (d + C + 1)
    if geometry is None:
        return 8 * (6 * n * width + 5 * weights)
    regions, h = geometry.n_regions, geometry.patch_size
    return 8 * (6 * n * regions * width + n * regions * (h * h + h) + 5 * weights)


def _epoch_work(n: int, width: int, d: int, C: int, geometry: Any) -> float:
    """Multiply-adds of one full-batch epoch's forward pass, for the thread heuristic.

    Convolutional: ``R`` quadratic forms of ``h x h`` patch moments per
    filter (see :mod:`convexnn._torch_model`).
    """
    if geometry is None:
        return n * width * (d + C)
    return n * width * geometry.n_regions * (geometry.patch_size**2 + C)
