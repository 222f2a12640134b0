"""Neural Decomposition: from optimal ``(Z, Z')`` blocks to network weights.

For a PSD ``Z`` with ``trace(G Z) = 0``, ``G = diag(I_h, -1)``, find
``Z = sum_j p_j p_j^T`` with ``p_j^T G p_j = 0`` (the rank-one decomposition
behind the S-lemma; Polik & Terlaky, "A survey of the S-lemma", Lemma 2.4).
Each ``p_j = [v_j; t_j]`` is a neuron ``u_j = sign(t_j) v_j / ||v_j||`` with
output weight ``t_j^2`` (``-t_j^2`` for ``Z'``).

Unlike the reference code, nothing here divides by a quantity that can
vanish: columns are paired most-positive with most-negative, which keeps the
rotation's discriminant away from zero, and columns of negligible size are
dropped instead of normalised.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from convexnn._validation import as_real_array, check_interval, is_sparse, user_stacklevel
from convexnn.exceptions import ConvexNNWarning, ValidationError
from convexnn.solvers.base import Neurons

#: ``Z`` and ``Z^T`` may differ by this much relative to ``max |Z|`` (solver rounding).
SYMMETRY_RTOL = 1e-6


def _check_block(Z: Any, name: str = "Z") -> np.ndarray:
    """A finite, square, symmetric float matrix of side >= 2."""
    if Z is None or is_sparse(Z):
        what = "None" if Z is None else "a sparse matrix"
        raise ValidationError(
            f"{name} is {what}; expected a dense square array (use .toarray() on sparse input)"
        )
    values = as_real_array(Z, name, "matrix")
    if values.ndim != 2 or values.shape[0] != values.shape[1] or values.shape[0] < 2:
        raise ValidationError(
            f"{name} must be a square matrix of side >= 2 (h + 1 for h features), got shape "
            f"{values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValidationError(f"{name} contains NaN or infinity; pass a solver's finite output")
    scale = float(np.abs(values).max())
    asymmetry = float(np.abs(values - values.T).max())
    if asymmetry > SYMMETRY_RTOL * scale:
        raise ValidationError(
            f"{name} is not symmetric: max |Z - Z^T| = {asymmetry:.3g} vs max |Z| = "
            f"{scale:.3g}; pass the symmetric PSD block of a solution"
        )
    return values


def neural_decomposition(Z: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """Factor ``Z = P P^T`` with ``p_j^T G p_j ~ 0`` for every column.

    Parameters
    ----------
    Z : ndarray of shape (h+1, h+1)
        Symmetric PSD (up to solver precision) with ``trace(Z[:h,:h]) = Z[h,h]``.
    rtol : float
        Eigenvalues below ``rtol * max eigenvalue`` count as zero.

    Returns
    -------
    P : ndarray of shape (h+1, r)
        ``r <= rank(Z)`` columns.

    Warns
    -----
    ConvexNNWarning
        ``Z`` is not PSD or misses the trace condition by more than
        :data:`PRECONDITION_RTOL` of its size (the negative part is dropped;
        the columns reproduce ``Z`` only up to that). A solution's empty block
        is rounding noise of its own size: :func:`decompose_blocks` judges every
        block against the largest one instead.
    """
    Z = _check_block(Z)
    problems: list[str] = []
    P = _factor(Z, check_interval(rtol, "rtol", low=0.0, high=1.0), problems=problems)
    _warn_about(problems)
    return P


def _factor(Z: np.ndarray, rtol: float, *, problems: list[str] | None = None,
            scale: float = 0.0, name: str = "Z") -> np.ndarray:
    """:func:`neural_decomposition` of a checked ``Z``. ``problems`` (when given) collects
    where ``Z`` is not what a solve gives, by more than rounding relative to ``Z`` or to
    ``scale`` (the largest block of a solution: an empty block is rounding noise). A
    solve's own blocks, near its accuracy or stopped early, are certified through the
    network instead."""
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (Z + Z.T))
    if problems is not None:
        problems.extend(f"{name}: {problem}"
                        for problem in _precondition_problems(Z, eigenvalues, scale))
    top = float(eigenvalues[-1]) if len(eigenvalues) else 0.0
    if top <= 0:
        return np.zeros((Z.shape[0], 0))
    keep = eigenvalues > max(rtol, np.finfo(float).eps) * top
    pool = [eigenvectors[:, j] * np.sqrt(eigenvalues[j]) for j in np.flatnonzero(keep)]
    done: list[np.ndarray] = []
    tolerance = 1e-13

    def g_norm(p: np.ndarray) -> float:
        return float(p[:-1] @ p[:-1] - p[-1] * p[-1])

    while len(pool) > 1:
        values = np.array([g_norm(p) for p in pool])
        sizes = np.array([p @ p for p in pool])
        balanced = np.abs(values) <= tolerance * sizes
        if balanced.any():
            j = int(np.flatnonzero(balanced)[0])
            done.append(pool.pop(j))
            continue
        i, j = int(np.argmax(values)), int(np.argmin(values))
        if values[i] <= 0 or values[j] >= 0:
            break  # all of one sign: only rounding error is left to balance
        p, q = pool[i], pool[j]
        g_pp, g_qq = values[i], values[j]
        g_pq = float(p[:-1] @ q[:-1] - p[-1] * q[-1])
        # (p + s q)^T G (p + s q) = 0; g_pp > 0 > g_qq, so the discriminant is
        # at least -g_pp g_qq > 0 and the denominator g_qq is bounded away from 0.
        s = (-g_pq - np.sqrt(g_pq * g_pq - g_pp * g_qq)) / g_qq
        norm = np.sqrt(1.0 + s * s)
        balanced_column = (p + s * q) / norm
        remainder = (q - s * p) / norm
        for index in sorted((i, j), reverse=True):
            pool.pop(index)
        done.append(balanced_column)
        pool.append(remainder)
    done.extend(pool)
    if not done:
        return np.zeros((Z.shape[0], 0))
    return np.column_stack(done)


#: ``Z`` may miss positive semidefiniteness and ``trace(Z[:h,:h]) = Z[h,h]`` by this much
#: relative to its size before the decomposition warns: solvers' blocks miss them by
#: 1e-13 to 2e-7 (SCS's smallest eigenvalue at its default accuracy).
PRECONDITION_RTOL = 1e-4


def _precondition_problems(Z: np.ndarray, eigenvalues: np.ndarray, scale: float) -> list[str]:
    """Where ``Z`` is not what a solve gives (its parts would be dropped silently)."""
    size = max(float(np.abs(eigenvalues).max(initial=0.0)), scale)
    h = Z.shape[0] - 1
    problems = []
    if eigenvalues[0] < -PRECONDITION_RTOL * size:
        problems.append(f"not positive semidefinite (eigenvalue {eigenvalues[0]:.3g} against "
                        f"{size:.3g}; its negative part is dropped)")
    residual = abs(float(np.trace(Z[:h, :h]) - Z[h, h]))
    if residual > PRECONDITION_RTOL * max(size, 1e-300):
        problems.append(f"trace(Z[:h, :h]) - Z[h, h] = {residual:.3g}, not 0 (the neurons "
                        "reproduce it only up to that)")
    return problems


def _warn_about(problems: list[str]) -> None:
    """One warning for every block that is not a solution's."""
    if problems:
        warnings.warn(f"not a solution's block: {'; '.join(problems)}", ConvexNNWarning,
                      stacklevel=user_stacklevel())


def neurons_from_factor(P: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit filters ``(r, h)`` and signed output weights ``(r,)`` from a factor.

    Columns whose weight ``||v|| |t|`` is negligible (``<= 1e-12`` of the
    largest; e.g. ``t = 0``) carry no neuron and are dropped.
    """
    v, t = P[:-1].T, P[-1]
    norms = np.linalg.norm(v, axis=1)
    carried = norms * np.abs(t)
    if carried.size == 0 or carried.max() == 0:
        return np.zeros((0, P.shape[0] - 1)), np.zeros(0)
    keep = carried > 1e-12 * carried.max()
    v, t, norms = v[keep], t[keep], norms[keep]
    direction = np.where(t < 0, -1.0, 1.0)
    filters = direction[:, None] * v / norms[:, None]
    # ||v|| = |t| for a balanced column; the geometric mean splits rounding error.
    weights = sign * norms * np.abs(t)
    return filters, weights


def decompose_blocks(
    blocks: list[tuple[np.ndarray, np.ndarray]], rtol: float = 1e-9
) -> Neurons:
    """Neurons of every ``(Z, Z')`` pair (block ``b`` feeds region/output ``b``); warns
    about a block that is not positive semidefinite with ``trace(Z[:h,:h]) = Z[h,h]``."""
    return solution_neurons(blocks, rtol, check=True)


def solution_neurons(blocks: Any, rtol: float, *, check: bool = False) -> Neurons:
    """:func:`decompose_blocks`, without its warnings unless ``check`` (for a solve's own
    blocks)."""
    blocks = _check_blocks(blocks)
    rtol = check_interval(rtol, "rtol", low=0.0, high=1.0)
    scale = max((float(np.abs(Z).max()) for pair in blocks for Z in pair), default=0.0)
    problems: list[str] | None = [] if check else None
    filters, weights, owners = [], [], []
    for index, (z_pos, z_neg) in enumerate(blocks):
        for side, (matrix, sign) in enumerate(((z_pos, 1.0), (z_neg, -1.0))):
            block_filters, block_weights = neurons_from_factor(
                _factor(matrix, rtol, problems=problems, scale=scale,
                        name=f"blocks[{index}][{side}]"), sign
            )
            filters.append(block_filters)
            weights.append(block_weights)
            owners.append(np.full(len(block_weights), index))
    _warn_about(problems or [])
    h = blocks[0][0].shape[0] - 1 if blocks else 0
    return Neurons(
        U=np.concatenate(filters) if filters else np.zeros((0, h)),
        alpha=np.concatenate(weights) if weights else np.zeros(0),
        blocks=np.concatenate(owners).astype(int) if owners else np.zeros(0, dtype=int),
    )


def _check_blocks(blocks: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """A list of ``(Z, Z')`` pairs of square matrices of one common side."""
    if isinstance(blocks, np.ndarray) or not isinstance(blocks, (list, tuple)):
        raise ValidationError(
            "blocks must be a list of (Z, Z') pairs of square matrices, got "
            f"{type(blocks).__name__}"
        )
    checked = []
    for index, pair in enumerate(blocks):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValidationError(
                f"blocks[{index}] must be a pair (Z, Z') of square matrices, got "
                f"{type(pair).__name__}"
                f"{' of length ' + str(len(pair)) if hasattr(pair, '__len__') else ''}"
            )
        z_pos = _check_block(pair[0], f"blocks[{index}][0]")
        z_neg = _check_block(pair[1], f"blocks[{index}][1]")
        sides = {z_pos.shape[0], z_neg.shape[0]} | ({checked[0][0].shape[0]} if checked else set())
        if len(sides) != 1:
            raise ValidationError(
                f"blocks[{index}] has matrices of side {z_pos.shape[0]} and {z_neg.shape[0]}"
                + (f"; earlier blocks have side {checked[0][0].shape[0]}" if checked else "")
                + ": every Z and Z' must have the same side h + 1"
            )
        checked.append((z_pos, z_neg))
    return checked
