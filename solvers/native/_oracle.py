"""New neurons from the dual oracle: several per block and round.

At the dual point ``v = grad loss`` the oracle function of block ``(r, k)``
is ``h(u) = u^T Q u + q^T u + c sum_i v_ik`` on the unit sphere (see
:mod:`convexnn.solvers.certificate`). Every unit ``u`` with ``|h(u)| > beta``
is a neuron that lowers the objective when added with a small weight of
sign ``-sign(h(u))``. One neuron per round (classical conditional
gradient) cannot finish when the optimum has hundreds; adding the top ``k``
directions of the oracle per call ("rank-k Frank-Wolfe") converges
linearly once ``k`` reaches the optimal rank (Allen-Zhu et al., 2017).

Candidates per block: the exact maximisers of ``+h`` and ``-h`` (trust-region
subproblems) and the eigenvectors of ``Q`` with the largest and smallest
eigenvalues, signed so that the linear term helps; those with
``|h(u)| > beta`` are taken in decreasing order, skipping near-duplicates.
``Q`` is formed (``O(n R P h^2)`` per block) while that is cheaper than a
block eigensolver on matrix-vector products (``O(n R P h)`` each); for large
``h`` the eigenvectors come from LOBPCG on products and the
trust-region refinement of the top candidate is left to the local solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from convexnn.solvers import _search
from convexnn.solvers._warnings import ignoring
from convexnn.solvers.certificate import block_quadratics, sphere_quadratic_max
from convexnn.solvers.native._model import NeuronModel, NeuronState

#: Candidates whose cosine with an already chosen one exceeds this are skipped.
DUPLICATE_COSINE = 0.9

#: LOBPCG iterations per call (warm-started from the previous round's vectors).
LOBPCG_ITERATIONS = 25


@dataclass(frozen=True)
class Candidates:
    """Oracle directions for new neurons, best first.

    Attributes
    ----------
    blocks : ndarray of int, shape (k,)
        Block ``r * C + k`` of each direction.
    vectors : ndarray of shape (k, h)
        Unit directions.
    values : ndarray of shape (k,)
        ``|h(u)|`` at each direction.
    largest : float
        The largest ``|h(u)|`` found, over all blocks (an estimate of the
        dual constraint's value; the certificate computes it exactly).
    """

    blocks: np.ndarray
    vectors: np.ndarray
    values: np.ndarray
    largest: float


class Oracle:
    """Top-``k`` oracle directions per block, formed or matrix-free (see the module doc).

    Parameters
    ----------
    per_block : int
        Directions kept per block and call.
    formed_max_h : int
        Form ``Q`` (and eigen-decompose it) up to this patch size; LOBPCG above.
    """

    def __init__(self, per_block: int, formed_max_h: int) -> None:
        self.per_block = per_block
        self.formed_max_h = formed_max_h
        self._previous: dict[tuple[int, float], np.ndarray] = {}

    def candidates(self, model: NeuronModel, v: torch.Tensor) -> Candidates:
        """Candidate directions at the dual point ``v`` (shape ``(n, C)``)."""
        if model.h <= self.formed_max_h:
            per_block = self._formed(model, v)
        else:
            per_block = self._matrix_free(model, v)
        blocks, vectors, values = [], [], []
        largest = 0.0
        for block, found in enumerate(per_block):
            found.sort(key=lambda item: -item[0])
            largest = max(largest, found[0][0] if found else 0.0)
            # Take directions that violate the constraint by at least a hundredth of the
            # block's worst violation (weaker ones are mostly noise of the local solve).
            floor = model.beta + 0.01 * max((found[0][0] - model.beta) if found else 0.0, 0.0)
            chosen: list[np.ndarray] = []
            for value, vector in found:
                if value <= floor or len(chosen) >= self.per_block:
                    break
                if any(abs(float(vector @ other)) > DUPLICATE_COSINE for other in chosen):
                    continue
                chosen.append(vector)
                blocks.append(block)
                vectors.append(vector)
                values.append(value)
        order = np.argsort(-np.asarray(values)) if values else np.zeros(0, dtype=int)
        return Candidates(
            blocks=np.asarray(blocks, dtype=int)[order],
            vectors=np.asarray(vectors).reshape(-1, model.h)[order],
            values=np.asarray(values, dtype=float)[order],
            largest=largest,
        )

    def _formed(self, model: NeuronModel, v: torch.Tensor) -> list[list]:
        quads, lins, consts = block_quadratics(model.patches, v, (model.a, model.b, model.c))
        quads = model.reduce(quads).double()
        lins = model.reduce(lins).double().cpu().numpy()
        consts = model.reduce(consts).double().cpu().numpy()
        eigenvalues, eigenvectors = torch.linalg.eigh(0.5 * (quads + quads.transpose(1, 2)))
        eigenvalues, eigenvectors = eigenvalues.cpu().numpy(), eigenvectors.cpu().numpy()
        found = []
        for block in range(len(consts)):
            mu, E, q, const = eigenvalues[block], eigenvectors[block], lins[block], consts[block]
            items = []
            for sign in (1.0, -1.0):
                exact = sphere_quadratic_max(sign * mu, E, sign * q)
                items.append((abs(exact.value + sign * const), exact.direction))
                items.extend(_eigen_candidates(sign, mu, E, q, const, self.per_block))
            found.append(items)
        return found

    def _matrix_free(self, model: NeuronModel, v: torch.Tensor) -> list[list]:
        from scipy.sparse.linalg import LinearOperator, lobpcg

        found = []
        C = model.n_outputs
        for block in range(model.n_regions * C):
            region, output = divmod(block, C)
            patches = model.patches[:, region]  # (n, P, h)
            weights = v[:, output].to(model.dtype) / model.pool
            flat = patches.reshape(-1, model.h)
            repeated = weights.repeat_interleave(model.pool)
            q = model.b * model.reduce(repeated @ flat).double().cpu().numpy()
            const = model.c * float(model.reduce(v[:, output].sum()))

            def matvec(U: np.ndarray, flat=flat, repeated=repeated) -> np.ndarray:
                X = torch.as_tensor(np.asarray(U).reshape(model.h, -1), dtype=model.dtype,
                                    device=flat.device)
                product = model.reduce(flat.T @ (repeated[:, None] * (flat @ X)))
                return (model.a * product).double().cpu().numpy()

            items = []
            k = min(self.per_block + 1, max(1, model.h // 4))
            for sign in (1.0, -1.0):
                operator = LinearOperator(
                    (model.h, model.h), matvec=lambda u, s=sign: s * matvec(u),
                    matmat=lambda U, s=sign: s * matvec(U), dtype=np.float64,
                )
                start = self._previous.get((block, sign))
                rng = np.random.default_rng(block)
                X0 = rng.standard_normal((model.h, k))
                if start is not None and start.shape == X0.shape:
                    X0 = start
                # An iteration cap, not convergence, ends most calls: candidate
                # directions need not be exact (the local solver refines them).
                with ignoring(UserWarning, module=r"convexnn\.solvers\.|scipy\."):
                    values, vectors = lobpcg(
                        operator, X0, largest=True, maxiter=LOBPCG_ITERATIONS, tol=1e-6
                    )
                self._previous[(block, sign)] = vectors
                items.extend(_eigen_candidates(sign, sign * values, vectors, q, const, k))
            found.append(items)
        return found


def _eigen_candidates(sign, mu, E, q, const, count) -> list[tuple[float, np.ndarray]]:
    """``(|h(u)|, u)`` for the ``count`` eigenvectors of ``Q`` best for ``sign * h``."""
    items = []
    for index in np.argsort(-sign * mu)[:count]:
        vector = E[:, index]
        if sign * float(q @ vector) < 0:
            vector = -vector
        value = float(mu[index]) + float(q @ vector) + const
        items.append((abs(value), vector))
    return items


def add_neurons(
    model: NeuronModel, state: NeuronState, yhat: torch.Tensor, candidates: Candidates,
    room: int,
) -> NeuronState:
    """Add up to ``room`` candidates, each with its line-searched weight."""
    new_V, new_signs, new_regions, new_outputs = [], [], [], []
    C = model.n_outputs
    for block, vector in zip(candidates.blocks, candidates.vectors):
        if len(new_V) >= room:
            break
        region, output = divmod(int(block), C)
        u = torch.as_tensor(vector, dtype=model.dtype, device=yhat.device)
        atom = model.atoms(u[None], torch.tensor([region], device=yhat.device))[:, 0]
        weight = line_search_weight(model, yhat, atom, output)
        if weight == 0.0:
            continue
        yhat = yhat.clone()
        yhat[:, output] += weight * atom
        new_V.append(math.sqrt(abs(weight)) * u)
        new_signs.append(math.copysign(1.0, weight))
        new_regions.append(region)
        new_outputs.append(output)
    if not new_V:
        return state
    device, dtype = state.V.device, state.V.dtype
    return state.extended(
        torch.stack(new_V).to(dtype),
        torch.tensor(new_signs, dtype=dtype, device=device),
        torch.tensor(new_regions, dtype=torch.long, device=device),
        torch.tensor(new_outputs, dtype=torch.long, device=device),
    )


def line_search_weight(
    model: NeuronModel, yhat: torch.Tensor, atom: torch.Tensor, output: int
) -> float:
    """``argmin_w loss(yhat + w * atom e_k) + beta |w|`` (a one-dimensional convex problem).

    The sign is that of the descent direction at ``w = 0``; the step is
    bracketed by doubling, then refined by bisection on the derivative.
    """
    direction = torch.zeros_like(yhat)
    direction[:, output] = atom

    def derivative(w: float) -> float:
        g = model.loss.gradient(yhat + w * direction, model.targets)[:, output]
        return float(model.reduce(g @ atom))

    if model.comm.distributed:
        return _batched_line_search(model, yhat, atom, output, direction)
    slope = derivative(0.0)
    if abs(slope) <= model.beta:
        return 0.0
    sign = -math.copysign(1.0, slope)

    def along(s: float) -> float:  # derivative of the objective along the signed ray
        return sign * derivative(sign * s) + model.beta

    curvature = float(model.reduce(
        (model.loss.hessian_vector(yhat, model.targets, direction)[:, output] * atom).sum()
    ))
    scale = float(model.reduce(atom @ atom))
    high = (abs(slope) - model.beta) / curvature if curvature > 0 else 1.0 / max(scale, 1e-300)
    low = 0.0
    for _ in range(200):
        if along(high) >= 0:
            break
        low, high = high, 2.0 * high
    for _ in range(100):
        middle = 0.5 * (low + high)
        if along(middle) < 0:
            low = middle
        else:
            high = middle
        if high - low <= 1e-13 * high:
            break
    return sign * 0.5 * (low + high)


def _batched_line_search(
    model: NeuronModel, yhat: torch.Tensor, atom: torch.Tensor, output: int,
    direction: torch.Tensor,
) -> float:
    """:func:`line_search_weight` of a data-parallel solve: the same minimiser, with the
    derivative evaluated in batches of points (one all-reduce per batch, not per point)."""
    first = model.reduce(torch.stack([
        model.loss.gradient(yhat, model.targets)[:, output] @ atom,
        (model.loss.hessian_vector(yhat, model.targets, direction)[:, output] * atom).sum(),
        atom @ atom,
    ]))
    slope, curvature, scale = (float(value) for value in first)
    if abs(slope) <= model.beta:
        return 0.0
    sign = -math.copysign(1.0, slope)

    def along(steps: np.ndarray) -> np.ndarray:  # the objective's derivative on the ray
        local = torch.stack([
            model.loss.gradient(yhat + sign * float(s) * direction, model.targets)[:, output]
            @ atom
            for s in steps
        ])
        return sign * model.reduce(local).double().cpu().numpy() + model.beta

    start = (abs(slope) - model.beta) / curvature if curvature > 0 else 1.0 / max(scale, 1e-300)
    low, high = _search.growing_bracket(along, start)
    return sign * _search.increasing_root(along, low, high, rtol=1e-13)
