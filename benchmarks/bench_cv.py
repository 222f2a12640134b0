"""Choosing beta: the CV estimators against GridSearchCV over the same grid and folds.

For every case, in the same process and run: ``ConvexPolyClassifierCV``
(``ConvexPolyRegressorCV`` for the planted regression) with the default grid
(``--n-betas`` values log-spaced from beta_max down to 1e-3 beta_max) and
``--folds`` shuffled (stratified) folds, then ``GridSearchCV`` around the plain
estimator with exactly that grid (in the same decreasing order, so ties go to
the same beta) and the same folds, both refitting at the chosen beta. Both use
``solver="auto"``, the same loss, the default scoring (accuracy, R^2) and
one thread (BLAS and torch: on a shared 2-core machine, threads only add
contention; the ratio is what counts). Features are standardised on the
whole data set, the same for both.

Cases: the embedded ``breast-cancer`` (569 x 30, 2 classes), ``wine``
(178 x 13, 3 classes), ``digits`` (8x8 images, 10 classes: a stratified
subsample of ``--digits-samples`` = 300 of the 1797, to keep the run within
a few minutes; each point solves 10 outputs) and a ``planted`` regression
(the teacher-network generator: 300 x 10 Gaussian features, 5 unit-norm
neurons, noise 0.5). Each case runs with the squared loss (the native
interior point and factored Newton) and with its natural smooth loss
(``--losses``: logistic for two classes, cross-entropy for more, Huber for
the regression; the native neurons engine, warm-started from the previous
network along the path).

Writes ``benchmarks/results/cv.json`` and ``cv.md``: per case the chosen beta
and best mean score of each method, whether they agree, the wall times and
their ratio (GridSearchCV / CV; also of this process's CPU time, which other
users of a shared machine disturb less), the peak memory each fit adds to this
process, the refit network at beta_ (objective, certified gap,
width) with Clarabel's optimum of the same problem as an independent check, and
the CV's path points that failed or
stopped early (skipped) or were certified only above tol (used by both), and
on fold 0 the iterations per point and how many warm-started outputs factored
Newton certified without the interior point.

Usage::

    python benchmarks/bench_cv.py
    python benchmarks/bench_cv.py --cases wine --n-betas 5 --folds 3 --losses natural
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_solvers import git_commit, peak_rss_gb, with_extension  # noqa: E402  (the sibling script)

RESULTS = Path(__file__).resolve().parent / "results"
#: Best scores agree to this relative tolerance: the CV's interior point is
#: warm-started along the path, GridSearchCV's fits start cold, so the two
#: networks are different certified optima (relative gap <= tol = 1e-6), not
#: bit-identical ones.
SCORE_RTOL = 1e-5
CASES = ("breast-cancer", "wine", "digits", "planted")
FAMILIES = ("squared", "natural")


@dataclass
class Row:
    case: str
    loss: str
    n: int
    d: int
    classes: int | None
    folds: int
    n_betas: int
    beta_max: float
    cv_beta: float
    grid_beta: float
    same_beta: bool
    cv_score: float
    grid_score: float
    same_score: bool
    cv_time: float
    grid_time: float
    ratio: float
    cv_cpu: float
    grid_cpu: float
    cpu_ratio: float
    skipped_points: int
    inaccurate_points: int
    refit_gap: float
    refit_objective: float = float("nan")
    refit_width: int = 0
    #: The refit's problem at beta_ solved by the conic back-end Clarabel in the same run
    #: (an independent optimum; NaN where Clarabel is missing or fails).
    conic_objective: float = float("nan")
    conic_time: float = float("nan")
    conic_status: str = ""
    cv_memory_added_gb: float = float("nan")
    grid_memory_added_gb: float = float("nan")
    score_difference: float = 0.0
    iterations_warm: int = 0
    iterations_cold: int = 0
    iterations_per_point_warm: float = 0.0
    iterations_per_point_cold: float = 0.0
    factored_points: int = 0
    warm_points: int = 0


def load_case(name: str, digits_samples: int):
    """``(X, y, classification)``, features standardised."""
    import numpy as np

    from convexnn.datasets import load_dataset, make_planted, standardize

    if name == "planted":
        data = make_planted(300, 10, features="gaussian", unit_norm_teacher=True, noise=0.5,
                            random_state=0)
        return standardize(data.X).X_train, data.y, False
    dataset = load_dataset(name, standardize=False, test_size=0.25,
                           n_samples=digits_samples if name == "digits" else None)
    X = np.concatenate([dataset.X_train, dataset.X_test])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    return standardize(X).X_train, y, True


def _timed(call, *args) -> tuple[float, float, float]:
    """Wall time and CPU time of this process (one thread: the work itself) of ``call``,
    and the peak resident memory it added, GB: both methods run in this one process,
    whose own resident memory grows from case to case."""
    from convexnn.distributed import reset_peak_memory

    # restarted, the peak is the resident memory now (NaN where it cannot be restarted)
    start = peak_rss_gb() if reset_peak_memory() else float("nan")
    wall, cpu = time.perf_counter(), time.process_time()
    call(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, peak_rss_gb() - start


def conic_check(estimator, X, y, time_limit: float) -> tuple[float, float, str]:
    """Objective, wall time and status of ``estimator``'s problem solved by Clarabel within
    ``time_limit`` seconds: the refit's optimum, computed independently of the native
    solver (NaN objective and the error's name where Clarabel fails or is missing)."""
    from sklearn.base import clone

    import convexnn as cnn

    conic = clone(estimator).set_params(solver="clarabel",
                                        solver_options={"time_limit": time_limit})
    wall = time.perf_counter()
    try:
        conic.fit(X, y)
    except (cnn.SolverError, ImportError) as error:
        print(f"  clarabel: {type(error).__name__}: {error}", flush=True)
        return float("nan"), time.perf_counter() - wall, type(error).__name__
    return float(conic.result_.objective), time.perf_counter() - wall, conic.result_.status


def loss_for(family: str, classification: bool, classes: int) -> str:
    """``squared``, or the data's natural smooth loss (``natural``): logistic for two
    classes, cross-entropy for more, Huber for a regression."""
    if family == "squared":
        return "squared"
    if not classification:
        return "huber"
    return "logistic" if classes == 2 else "cross-entropy"


def run_case(name: str, family: str, n_betas: int, folds: int, digits_samples: int,
             conic_time_limit: float) -> Row:
    import numpy as np
    from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

    import convexnn as cnn

    X, y, classification = load_case(name, digits_samples)
    splitter = (StratifiedKFold if classification else KFold)(folds, shuffle=True,
                                                              random_state=0)
    split = list(splitter.split(X, y))
    cv_class = cnn.ConvexPolyClassifierCV if classification else cnn.ConvexPolyRegressorCV
    plain = cnn.ConvexPolyClassifier if classification else cnn.ConvexPolyRegressor
    loss = loss_for(family, classification, len(np.unique(y)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cnn.SolverStatusWarning)  # counted in the row
        cv = cv_class(betas=n_betas, cv=split, loss=loss)
        cv_time, cv_cpu, cv_peak = _timed(cv.fit, X, y)
        grid = GridSearchCV(plain(loss=loss), {"beta": [float(b) for b in cv.betas_]},
                            cv=split)
        grid_time, grid_cpu, grid_peak = _timed(grid.fit, X, y)
        conic_objective, conic_time, conic_status = conic_check(
            plain(loss=loss, beta=cv.beta_), X, y, conic_time_limit)
    grid_beta = float(grid.best_params_["beta"])
    return Row(
        case=name, loss=loss, n=len(X), d=X.shape[1],
        classes=len(np.unique(y)) if classification else None,
        folds=folds, n_betas=n_betas, beta_max=float(cv.beta_max_),
        cv_beta=cv.beta_, grid_beta=grid_beta, same_beta=cv.beta_ == grid_beta,
        cv_score=cv.best_score_, grid_score=float(grid.best_score_),
        # The CV's interior point is warm-started along the path, GridSearchCV's fits
        # start cold: two certified optima (gap <= tol = 1e-6), equal to about that.
        same_score=bool(np.isclose(cv.best_score_, grid.best_score_, rtol=SCORE_RTOL,
                                   atol=1e-12)),
        score_difference=abs(cv.best_score_ - float(grid.best_score_)),
        cv_time=cv_time, grid_time=grid_time, ratio=grid_time / cv_time,
        cv_cpu=cv_cpu, grid_cpu=grid_cpu, cpu_ratio=grid_cpu / cv_cpu,
        skipped_points=int((~np.isfinite(cv.scores_path_)).sum()),
        inaccurate_points=int((cv.status_path_ == "optimal_inaccurate").sum()),
        refit_gap=float(cv.result_.relative_gap),
        refit_objective=float(cv.result_.objective), refit_width=int(cv.result_.n_neurons),
        conic_objective=conic_objective, conic_time=conic_time, conic_status=conic_status,
        cv_memory_added_gb=cv_peak, grid_memory_added_gb=grid_peak,
        **path_iterations(cv, X, y, split[0][0]),
    )


def path_iterations(cv, X, y, train) -> dict:
    """Solver iterations over the path of one fold: warm-started (as the CV) and cold.

    The cold count solves every point with no warm start, as GridSearchCV does
    (interior-point iterations). The warm count adds up what the path ran:
    factored Newton steps, and interior-point iterations where Newton did not
    certify an output (at these sizes a Newton step costs half to one
    interior-point iteration).
    """
    import numpy as np

    import convexnn as cnn
    from convexnn._solve import solve
    from convexnn.formulations import problem_for
    from convexnn.path import fit_path

    params = cv._check_params()
    features = cv._features(X[train], reset=False)
    targets = cv._targets(y[train], len(train), params["loss"], reset=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cnn.SolverStatusWarning)
        path = fit_path(features, targets, cv.betas_, loss=params["loss"])
        warm = [p.result.iterations or 0 for p in path]
        base = problem_for(features, targets, activation=params["activation"], beta=0.0,
                           loss=params["loss"], geometry=None)
        cold = []
        for beta in cv.betas_:
            result, _, _ = solve(dataclasses.replace(base, beta=float(beta)))
            cold.append(result.iterations or 0)
    solved = np.array(cold) > 0  # the zero network is certified without iterations
    return dict(
        # outputs certified by factored Newton without the interior point, of those warm-started
        factored_points=int(sum(p.result.stats.get("factored_outputs", 0) for p in path)),
        warm_points=int(sum(p.result.stats.get("warm_started_outputs", 0) for p in path)),
        iterations_warm=int(sum(warm)), iterations_cold=int(sum(cold)),
        iterations_per_point_warm=float(np.mean(np.array(warm)[solved])),
        iterations_per_point_cold=float(np.mean(np.array(cold)[solved])),
    )


def markdown(rows: list[Row], meta: dict) -> str:
    lines = [
        f"Run {meta['date']} on {meta['machine']} ({meta['cpus']} CPU cores, one thread), "
        f"commit {(meta.get('commit') or 'unknown')[:10]}; {meta['note']}",
        "",
        "| case | loss | n x d | classes | betas x folds | beta_ (CV) | beta (GridSearchCV) | "
        "score (CV) | score (GridSearchCV) | time CV (s) | time GridSearchCV (s) | "
        "GridSearchCV / CV | CPU GridSearchCV / CV | peak memory added, CV / GridSearchCV (MB) | "
        "points skipped / above tol | refit at beta_: objective | certified rel. gap | width | "
        "Clarabel's objective (rel. difference, time s) | "
        "iterations per point, cold / warm (fold 0) | warm outputs certified by factored "
        "Newton (fold 0) |",
        "|" + "---|" * 21,
    ]
    for r in rows:
        lines.append(
            f"| {r.case} | {r.loss} | {r.n} x {r.d} | {r.classes or '-'} | "
            f"{r.n_betas} x {r.folds} | "
            f"{r.cv_beta:.4g} | {r.grid_beta:.4g}{'' if r.same_beta else ' (differs)'} | "
            f"{r.cv_score:.4f} | {r.grid_score:.4f}{'' if r.same_score else ' (differs)'} | "
            f"{r.cv_time:.1f} | {r.grid_time:.1f} | {r.ratio:.2f}x | {r.cpu_ratio:.2f}x | "
            f"{1e3 * r.cv_memory_added_gb:.0f} / {1e3 * r.grid_memory_added_gb:.0f} | "
            f"{r.skipped_points} / {r.inaccurate_points} | "
            f"{r.refit_objective:.9g} | {r.refit_gap:.1e} | {r.refit_width} | "
            f"{_conic_cell(r)} | "
            f"{r.iterations_per_point_cold:.1f} / {r.iterations_per_point_warm:.1f} | "
            f"{r.factored_points} / {r.warm_points} |"
        )
    return "\n".join(lines) + "\n"


def _conic_cell(row: Row) -> str:
    if row.conic_objective != row.conic_objective:  # NaN: not solved
        return f"n/a ({row.conic_status}, {row.conic_time:.1f})"
    difference = abs(row.conic_objective - row.refit_objective) / abs(row.refit_objective)
    status = "" if row.conic_status == "optimal" else f"{row.conic_status}, "
    return f"{row.conic_objective:.9g} ({status}{difference:.1e}, {row.conic_time:.1f})"


def warm_up() -> None:
    """One small fit of each loss family, untimed: the first solve of a process loads the
    solver registry and the back-ends (0.2-0.6 s), which would land in the first case's
    CV time."""
    import numpy as np

    import convexnn as cnn

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] > 0, 1, -1)
    for loss in ("squared", "logistic"):
        cnn.ConvexPolyClassifier(loss=loss, beta=1.0).fit(X, y)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--n-betas", type=int, default=20)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--digits-samples", type=int, default=300)
    parser.add_argument("--losses", nargs="+", default=list(FAMILIES), choices=FAMILIES,
                        help="squared, and/or natural: logistic (two classes), "
                             "cross-entropy (more), Huber (regression)")
    parser.add_argument("--conic-time-limit", type=float, default=120.0,
                        help="seconds for Clarabel's independent solve of each refit")
    parser.add_argument("--output", default=str(RESULTS / "cv"), help="path stem of the .json/.md")
    args = parser.parse_args(argv)

    import scipy.optimize  # noqa: F401  (loaded before the limit below: BLAS and OpenMP
    import sklearn.model_selection  # noqa: F401  libraries loaded later keep their threads)
    import torch
    from threadpoolctl import threadpool_limits

    import convexnn  # noqa: F401

    torch.set_num_threads(1)
    rows = []
    with threadpool_limits(1):
        warm_up()
        for family, case in ((f, c) for f in args.losses for c in args.cases):
            row = run_case(case, family, args.n_betas, args.folds, args.digits_samples,
                           args.conic_time_limit)
            rows.append(row)
            print(f"{case:>14s} {row.loss:>13s} beta_ {row.cv_beta:.4g} / "
                  f"{row.grid_beta:.4g}  score "
                  f"{row.cv_score:.4f} / {row.grid_score:.4f}  time {row.cv_time:.1f}s / "
                  f"{row.grid_time:.1f}s  ratio {row.ratio:.2f}x", flush=True)
    note = (f"digits: a stratified subsample of {args.digits_samples} samples; solver='auto', "
            "default scoring, both refit at the chosen beta; Clarabel's solve of the refit "
            f"within {args.conic_time_limit:g} s.")
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M"), cpus=os.cpu_count(), note=note,
                machine=platform.processor() or platform.machine(), commit=git_commit(),
                python=platform.python_version(), torch=torch.__version__)
    stem = Path(args.output)
    stem.parent.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "rows": [asdict(r) for r in rows]}
    with_extension(stem, ".json").write_text(json.dumps(document, indent=2))
    table = markdown(rows, meta)
    with_extension(stem, ".md").write_text(table)
    print(f"\n{table}\nwrote {with_extension(stem, '.json')} and {with_extension(stem, '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
