"""The SDP as a cvxpy problem, and its size: what the conic back-ends hand on.

The problem arrives as plain data (:class:`~convexnn.solvers.base.SDPProblem`);
:func:`build_program` formats it for cvxpy, as cvxpy's own solver interfaces
format their data inside the solver. The loss contributes its own cvxpy
expression (:class:`~convexnn.solvers.base.ConicLoss`); the variables, the
lifted features, the constraints and the link to the predictions are built
here.

The predictions are written with *pooled lifted features in symmetric
storage*: for region ``r`` the ``n x (h+1)(h+2)/2`` matrix of
``(1/P) sum_p svec(F F^T)`` (activation coefficients folded in) times the
upper triangle of ``Z - Z'``. That is the cheapest exact expression cvxpy
accepts: half the dense data of the authors' ``n x (d+1)^2`` lifted matrix,
and one coefficient row per sample in the conic data.

cvxpy is imported by :func:`build_program` only: the size model below also
serves ``auto`` and the native back-end, which should not pay for importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convexnn.solvers.base import ProblemShape, SDPProblem, coefficient_matrix

#: Conic data above this many nonzeros takes conic back-ends minutes, and
#: Clarabel falls behind SCS there (measured in benchmarks/bench_solvers.py):
#: ``auto`` then prefers the native solver even where it needs its neurons
#: engine, and SCS to Clarabel.
LARGE_CONIC_NONZEROS = 2_000_000


@dataclass
class CvxpyProgram:
    """A problem as cvxpy sees it.

    Attributes
    ----------
    problem : cvxpy.Problem
    blocks : list of (cvxpy.Variable, cvxpy.Variable)
        The ``(Z, Z')`` pairs in block order ``r * C + k``.
    predictions : cvxpy.Variable
        The ``(n, C)`` predictions, tied to the blocks by ``link``.
    link : cvxpy.Constraint
        ``predictions == yhat(blocks)``; its dual value is the dual point.
    """

    problem: Any
    blocks: list[tuple[Any, Any]]
    predictions: Any
    link: Any


def problem_nonzeros(shape: ProblemShape) -> int:
    """Nonzeros of the conic data: every prediction touches a full block per region."""
    side = shape.patch_size + 1
    return shape.n_samples * shape.n_outputs * shape.n_regions * side * side


def lifted_feature_bytes(shape: ProblemShape) -> int:
    """Bytes of the pooled lifted features :func:`build_program` materialises."""
    side = shape.patch_size + 1
    return 8 * shape.n_samples * shape.n_regions * side * (side + 1) // 2


def is_large(problem: SDPProblem) -> bool:
    """Whether the conic data exceeds :data:`LARGE_CONIC_NONZEROS`."""
    return problem_nonzeros(ProblemShape.of(problem)) > LARGE_CONIC_NONZEROS


def lifted_features(patches: np.ndarray, coefficients: tuple[float, float, float]) -> np.ndarray:
    """``(1/P) sum_p svec(F F^T)`` of one region's patches ``(n, P, h)``, coefficients folded in.

    Returns the ``n x (h+1)(h+2)/2`` matrix whose product with the upper
    triangle of a block (row-major) is that block's prediction.
    """
    n, pool, h = patches.shape
    rows, cols = np.triu_indices(h + 1)
    off_diagonal_twice = np.where(rows == cols, 1.0, 2.0)
    weights = coefficient_matrix(coefficients, h)[rows, cols] * off_diagonal_twice
    lifted = np.zeros((n, len(rows)))
    ones = np.ones((n, 1))
    for p in range(pool):
        augmented = np.hstack([patches[:, p], ones])
        lifted += augmented[:, rows] * augmented[:, cols]
    lifted *= weights / pool
    return lifted


def build_program(problem: SDPProblem) -> CvxpyProgram:
    """The SDP of ``problem`` as a cvxpy problem; blocks in order ``r * C + k``."""
    import cvxpy as cp

    shape = ProblemShape.of(problem)
    side = shape.patch_size + 1
    h = shape.patch_size
    rows, cols = np.triu_indices(side)
    upper_triangle = rows * side + cols
    blocks = []
    per_output: list[list[cp.Expression]] = [[] for _ in range(shape.n_outputs)]
    for r in range(shape.n_regions):
        lifted = lifted_features(problem.patches[:, r], problem.coefficients)
        for k in range(shape.n_outputs):
            z_pos = cp.Variable((side, side), PSD=True, name=f"Z_{r}_{k}")
            z_neg = cp.Variable((side, side), PSD=True, name=f"Zprime_{r}_{k}")
            blocks.append((z_pos, z_neg))
            difference = cp.vec(z_pos - z_neg, order="C")[upper_triangle]
            per_output[k].append(lifted @ difference)
    columns = [terms[0] if len(terms) == 1 else cp.sum(terms) for terms in per_output]
    predictions = cp.Variable((shape.n_samples, shape.n_outputs), name="yhat")
    stacked = (
        cp.vstack(columns).T
        if shape.n_outputs > 1
        else cp.reshape(columns[0], (shape.n_samples, 1), order="C")
    )
    link = predictions == stacked
    penalty = cp.sum([z[h, h] + z_neg[h, h] for z, z_neg in blocks])
    constraints = [link]
    for z, z_neg in blocks:
        constraints += [cp.trace(z[:h, :h]) == z[h, h], cp.trace(z_neg[:h, :h]) == z_neg[h, h]]
    objective = cp.Minimize(
        problem.loss.cvxpy(predictions, problem.targets) + problem.beta * penalty
    )
    return CvxpyProgram(
        problem=cp.Problem(objective, constraints),
        blocks=blocks,
        predictions=predictions,
        link=link,
    )
