"""Keeping the neurons engine's width where the optimum needs it.

Local Burer-Monteiro steps never merge neurons: after a few rounds of
adding oracle directions, many neurons span the same few directions and
Newton's method crawls along the resulting flat valleys (measured on
image-like digits at n=2000: 130 neurons for an optimum of rank 27). Two
exact steps undo that between rounds:

:func:`refit_weights`
    The fully corrective step of conditional gradient methods: with the
    directions fixed, the objective is convex in the output weights
    ``w_j = ||v_j||^2 >= 0``. Proximal Newton steps (each a small
    non-negative least-squares problem on the ``m x m`` curvature matrix;
    one step is exact for the squared loss) find the best weights, and the
    l1 penalty sets redundant ones to exactly zero.
:func:`compress`
    Each block's positive (or negative) neurons define
    ``Z = sum_j p_j p_j^T`` with ``p_j = [v_j; ||v_j||]``. Its rank is often
    far below the number of neurons. A thin factor of ``Z`` (from the
    ``m x m`` Gram matrix, eigenvalues below ``rtol`` of the largest
    dropped) rotated so that every column satisfies ``||v||^2 = t^2`` (the
    rank-one decomposition behind the S-lemma, on the small ``r x r``
    matrix ``F^T G F``) gives ``rank(Z)`` neurons with the same predictions
    and penalty. (The modelling layer's Neural Decomposition does the same
    from a full ``(h+1) x (h+1)`` block; this one works on factors, without
    forming the block, and stays in the solver layer.)

:func:`neurons_from_blocks` applies the same balancing to small blocks (the
interior point's solution of a row-space reduced problem), so that the
neurons, not ``(h+1) x (h+1)`` blocks, are mapped back to the features.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.optimize
import torch

from convexnn.solvers.base import Neurons
from convexnn.solvers.native._model import NeuronModel, NeuronState


def prune(state: NeuronState) -> NeuronState:
    """Drop neurons whose weight vanished (they carry no function and stall Newton)."""
    if state.width == 0:
        return state
    weights = (state.V * state.V).sum(dim=1)
    keep = weights > 1e-9 * float(weights.max())
    return state.select(keep) if not bool(keep.all()) else state


def refit_weights(model: NeuronModel, state: NeuronState, max_iter: int = 8) -> NeuronState:
    """The best non-negative weights for the current directions (see the module docstring)."""
    nu = state.V.norm(dim=1)
    if not bool((nu > 0).all()):
        # A zero row has no direction (a warm start's empty block, e.g. an all-zero
        # target column's): it adds nothing, and dividing by its norm gave NaN.
        state = state.select(nu > 0)
        nu = nu[nu > 0]
    if state.width == 0:
        return state
    directions = state.V / nu[:, None]
    atoms = (model.atoms(directions, state.regions) * state.signs).double()  # (n, m)
    weights = (nu * nu).double()
    targets = model.targets.double()
    outputs = state.outputs

    def predictions(w: torch.Tensor) -> torch.Tensor:
        yhat = torch.zeros((model.n, model.n_outputs), dtype=torch.float64, device=w.device)
        return yhat.index_add_(1, outputs, atoms * w)

    def objective(w: torch.Tensor, yhat: torch.Tensor) -> float:
        return float(model.reduce(model.loss.value(yhat, targets))) + model.beta * float(w.sum())

    yhat = predictions(weights)
    f = objective(weights, yhat)
    for _ in range(max_iter):
        gradient = model.reduce(
            (model.loss.gradient(yhat, targets)[:, outputs] * atoms).sum(dim=0)
        ) + model.beta
        curvature = model.reduce(_curvature(model, yhat, targets, atoms, outputs)).cpu().numpy()
        new_weights = nonnegative_quadratic_min(
            curvature, (gradient.cpu().numpy() - curvature @ weights.cpu().numpy())
        )
        step = torch.as_tensor(new_weights, dtype=torch.float64, device=weights.device) - weights
        accepted = False
        for length in (1.0, 0.5, 0.25, 0.125, 0.0625):
            candidate = weights + length * step
            candidate_yhat = predictions(candidate)
            candidate_f = objective(candidate, candidate_yhat)
            if candidate_f <= f:
                accepted = True
                break
        if not accepted:
            break
        decrease = f - candidate_f
        weights, yhat, f = candidate, candidate_yhat, candidate_f
        if decrease <= 1e-15 * max(abs(f), 1e-300):
            break
    keep = weights > 0
    V = directions * weights.clamp(min=0).sqrt().to(directions.dtype)[:, None]
    return state.moved(V).select(keep)


def _curvature(model: NeuronModel, yhat, targets, atoms, outputs) -> torch.Tensor:
    """``sum_i psi_i^T H_i psi_i`` (``m x m``) for the signed atoms placed on their outputs.

    Losses that act output by output (all but the row-wise ones, e.g.
    cross-entropy) have diagonal ``H_i``: one weighted Gram matrix per
    output. Otherwise one Hessian product per atom.
    """
    m = atoms.shape[1]
    curvature = torch.zeros((m, m), dtype=atoms.dtype, device=atoms.device)
    if not getattr(model.loss, "row_wise", False):
        diagonal = model.loss.hessian_vector(yhat, targets, torch.ones_like(yhat))
        for output in torch.unique(outputs):
            members = (outputs == output).nonzero().flatten()
            block = atoms[:, members]
            gram = block.T @ (block * diagonal[:, int(output), None])
            curvature[members[:, None], members[None, :]] = gram
        return curvature
    for j in range(m):
        placed = torch.zeros_like(yhat)
        placed[:, int(outputs[j])] = atoms[:, j]
        response = model.loss.hessian_vector(yhat, targets, placed)
        # H[l, j] = sum_i psi_il (H_i psi_j)_{k_l}: the curvature of atom j seen by atom l
        curvature[:, j] = (atoms * response[:, outputs]).sum(dim=0)
    return 0.5 * (curvature + curvature.T)


def nonnegative_quadratic_min(H: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``argmin_{z >= 0} z^T H z / 2 + c^T z`` for a PSD ``H``, by NNLS on a Cholesky factor."""
    m = H.shape[0]
    ridge = 1e-12 * max(float(np.trace(H)) / m, 1e-300)
    factor = None
    for _ in range(8):
        try:
            factor = np.linalg.cholesky(H + ridge * np.eye(m))
            break
        except np.linalg.LinAlgError:
            ridge *= 100
    if factor is None:  # pragma: no cover - H is a Gram matrix plus a ridge
        return np.maximum(-c / np.maximum(np.diag(H), 1e-300), 0.0)
    rhs = scipy.linalg.solve_triangular(factor, -c, lower=True)
    z, _ = scipy.optimize.nnls(factor.T, rhs, maxiter=max(50 * m, 1000))
    return z


def compress(state: NeuronState, rtol: float) -> NeuronState:
    """The same blocks ``Z`` with ``rank(Z)`` neurons each (see the module docstring)."""
    if state.width == 0:
        return state
    V = state.V.double().cpu().numpy()
    signs = state.signs.cpu().numpy()
    regions = state.regions.cpu().numpy()
    outputs = state.outputs.cpu().numpy()
    keys = np.stack([regions, outputs, signs.astype(np.int64)], axis=1)
    rows, new_signs, new_regions, new_outputs = [], [], [], []
    for key in np.unique(keys, axis=0):
        members = np.flatnonzero((keys == key).all(axis=1))
        factor = _balanced_factor(V[members], rtol)
        rows.append(factor)
        new_signs.append(np.full(len(factor), float(key[2])))
        new_regions.append(np.full(len(factor), key[0]))
        new_outputs.append(np.full(len(factor), key[1]))
    device, dtype = state.V.device, state.V.dtype
    return NeuronState(
        torch.as_tensor(np.concatenate(rows), dtype=dtype, device=device),
        torch.as_tensor(np.concatenate(new_signs), dtype=dtype, device=device),
        torch.as_tensor(np.concatenate(new_regions), dtype=torch.long, device=device),
        torch.as_tensor(np.concatenate(new_outputs), dtype=torch.long, device=device),
    )


def _balanced_factor(V: np.ndarray, rtol: float) -> np.ndarray:
    """Neuron vectors of one block and sign with the same ``Z`` and ``rank(Z)`` rows."""
    P = np.column_stack([V, np.linalg.norm(V, axis=1)]).T  # (h+1, m): columns [v; ||v||]
    values, vectors = np.linalg.eigh(P.T @ P)
    top = float(values[-1])
    if top <= 0:
        return np.zeros((0, V.shape[1]))
    keep = values > max(rtol, 1e-15) * top
    if keep.sum() == len(values):
        return V  # already of full rank: nothing to gain, nothing to round
    return balanced_neurons(P @ vectors[:, keep])  # F F^T = Z up to the dropped eigenvalues


def balanced_neurons(F: np.ndarray) -> np.ndarray:
    """Neuron vectors ``v`` (rows) of a factor ``F`` (``(h+1) x r``, ``tr(G F F^T) ~ 0``).

    ``F`` is rotated so that every column ``[v; t]`` has ``||v|| = |t|``; each
    column is then the neuron ``sign(t) v`` (weight ``||v|| |t|``).
    """
    if F.shape[1] == 0:
        return np.zeros((0, F.shape[0] - 1))
    balance = F[:-1].T @ F[:-1] - np.outer(F[-1], F[-1])  # F^T G F, trace ~ 0
    F = F @ _balanced_rotation(balance, (F * F).sum(axis=0))
    v, t = F[:-1].T, F[-1]
    norms = np.linalg.norm(v, axis=1)
    # A column's neuron weight is ||v|| |t|: one with t = 0 carries nothing (its v is
    # what rounding left of a balanced zero) and would come out as a zero vector.
    weights = norms * np.abs(t)
    if weights.max() == 0:
        return np.zeros((0, F.shape[0] - 1))
    live = weights > 1e-12 * weights.max()
    v, t, norms = v[live], t[live], norms[live]
    # ||v|| = |t| once balanced; the geometric mean splits what rounding leaves.
    return np.where(t < 0, -1.0, 1.0)[:, None] * v * np.sqrt(np.abs(t) / norms)[:, None]


def neurons_from_blocks(blocks: list[tuple[np.ndarray, np.ndarray]], rtol: float) -> Neurons:
    """The neurons of ``(Z, Z')`` blocks (block ``b`` feeds region/output ``b``).

    Each block's eigenvalues below ``rtol`` of its largest are dropped and the
    thin factor is balanced by :func:`balanced_neurons`. Used where the
    blocks are small (the row-space reduction of wide data).
    """
    rows, weights, owners = [], [], []
    h = blocks[0][0].shape[0] - 1 if blocks else 0
    for index, pair in enumerate(blocks):
        for matrix, sign in zip(pair, (1.0, -1.0)):
            values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
            if values.size == 0 or values[-1] <= 0:
                continue
            keep = values > max(rtol, np.finfo(float).eps) * values[-1]
            V = balanced_neurons(vectors[:, keep] * np.sqrt(values[keep]))
            norms = np.linalg.norm(V, axis=1)
            rows.append(V / norms[:, None])
            weights.append(sign * norms * norms)
            owners.append(np.full(len(V), index))
    if not rows:
        return Neurons(U=np.zeros((0, h)), alpha=np.zeros(0), blocks=np.zeros(0, dtype=int))
    return Neurons(U=np.concatenate(rows), alpha=np.concatenate(weights),
                   blocks=np.concatenate(owners).astype(int))


def _balanced_rotation(M: np.ndarray, sizes: np.ndarray, tol: float = 1e-13) -> np.ndarray:
    """Orthogonal ``O`` with ``diag(O^T M O) ~ 0`` for a symmetric ``M`` of trace ~ 0.

    Pairs a positive with a negative diagonal entry and rotates their plane
    so that one of them becomes zero (it is then set aside), until one sign
    is left (rounding only).
    """
    r = M.shape[0]
    M = M.copy()
    rotation_total = np.eye(r)
    active = list(range(r))
    while len(active) > 1:
        diagonal = np.array([M[k, k] for k in active])
        balanced = np.abs(diagonal) <= tol * sizes[active]
        if balanced.any():
            active.pop(int(np.flatnonzero(balanced)[0]))
            continue
        i, j = active[int(np.argmax(diagonal))], active[int(np.argmin(diagonal))]
        m_ii, m_jj, m_ij = M[i, i], M[j, j], M[i, j]
        if m_ii <= 0 or m_jj >= 0:
            break
        # (e_i + s e_j)^T M (e_i + s e_j) = 0; m_ii > 0 > m_jj keeps the root real.
        s = (-m_ij - math.sqrt(m_ij * m_ij - m_ii * m_jj)) / m_jj
        cosine = 1.0 / math.sqrt(1.0 + s * s)
        rotation = np.array([[cosine, -s * cosine], [s * cosine, cosine]])
        rotation_total[:, [i, j]] = rotation_total[:, [i, j]] @ rotation
        M[:, [i, j]] = M[:, [i, j]] @ rotation
        M[[i, j], :] = rotation.T @ M[[i, j], :]
        active.remove(i)
    return rotation_total
