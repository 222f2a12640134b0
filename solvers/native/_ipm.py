"""A structured primal-dual interior-point method for the squared-loss SDP.

For one output (targets ``y``) the SDP has a PSD pair per region ``r``; call
the ``2R`` cones ``k`` with sign ``s_k`` (+1 for ``Z``, -1 for ``Z'``)::

    min   1/2 ||sum_k s_k A_k(X_k) - y||^2 + beta/2 sum_k tr(X_k)
    s.t.  tr(G X_k) = 0,  X_k PSD            (G = diag(I_h, -1))

(``beta/2 tr(X) = beta X[h, h]`` under the trace constraint). With the
residual ``lam`` as dual variable, ``S_k = beta/2 I + s_k A_k^T(lam) +
mu_k G`` is the dual slack. Each Newton step (HKM direction, Mehrotra
predictor-corrector) reduces to an ``n x n`` system whose matrix
``I + sum_k [tr(A_i X_k A_j S_k^{-1})]_ij`` is assembled from Gram-like
matrices (:mod:`._lifted`) and factorised once; the ``2R`` trace
multipliers are eliminated by a rank-``2R`` Woodbury correction. Cost per
iteration: ``O(n^3 / 3 + n^2 h)``, memory ``O(n^2)`` -- against
``n (h+1)^2`` dense coefficients for a generic conic solver. With many
samples and small blocks (``m = R (h+1)(h+2)/2`` lifted entries, fewer than
``n``: tall data, convolutions with small filters) the same system is
solved on the lifted side instead (:class:`._lifted.LiftedSystem`): an
``m x m`` matrix per iteration, memory ``O(n m)``, chosen by operation count
when the workspace is prepared.

Outputs are independent for the squared loss and are solved one by one. A
converged output's blocks are cut to their optimal part (:func:`optimal_part`):
an interior point's last iterate still has eigenvalues of order ``mu`` off the
optimal face, which Neural Decomposition would spread over every neuron.
Far from the optimum the ``n x n`` system is assembled and factorised in
float32 (about twice as fast; residuals stay in float64, so the iteration
corrects itself); the last iterations use float64.

Along a regularisation path the same data is solved for many ``beta``:
:class:`SquaredWorkspace` holds everything that does not depend on ``beta``
(feature and target scaling, the operators of the scaled data), and
:class:`IPMWarmStart` (returned with every solve) carries the workspace and
the final primal-dual iterate to the next ``beta``. A warm start is rescaled
to the new ``beta`` and pulled back into the interior (see
:func:`_warm_cones`): the next solve starts exactly dual feasible and
strictly inside the cones instead of from the cold point ``(xi I, eta I)``.
It saves about a quarter of the iterations: the last few iterations, which
every solve needs to go from a moderate gap to ``tol``, are not saved. So a
warm-started output first tries factored Newton (:mod:`._factored`) from the
previous blocks' factors, which certifies most path points in a handful of
small Newton steps; the interior point (warm, then cold) is the fallback.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from convexnn.solvers.base import Status
from convexnn.solvers.native._lifted import (
    LiftedSystem,
    iteration_flops,
    jittered_cholesky,
    make_operator,
)

logger = logging.getLogger("convexnn")

#: Newton systems are solved in float32 while the iterate's accuracy measure
#: (the worst of relative gap and infeasibilities) is above this.
LOW_PRECISION_ABOVE = 1e-3

#: Weight of the interior point mixed into a warm start (see :func:`_warm_cones`):
#: the previous optimum is nearly complementary (eigenvalues of X and S near
#: zero on complementary subspaces), from where an interior point method can
#: only take short steps. Measured on a 20-point breast-cancer path (one fold
#: of benchmarks/bench_cv.py): 150 iterations with 0.1 and 0.03, 164 with 0.3,
#: 195 cold.
WARM_START_CENTRING = 0.1

#: Near the end an iteration whose accuracy measure is worse than the best one
#: still counts as progress while it is within this factor of the best and one of
#: its parts (gap, primal or dual infeasibility) halves its smallest value so far;
#: two iterations without progress below ``sqrt(tol)`` stop at the accuracy floor.
STALL_SCORE_FACTOR = 10.0


@dataclass
class IPMPoint:
    """One output's final primal-dual iterate, in the workspace's scaled coordinates.

    ``X``, ``S`` and ``multipliers`` are per cone (order: region, then sign
    ``+1, -1``); ``lam`` is the dual point of the predictions.
    """

    X: list[torch.Tensor]
    S: list[torch.Tensor]
    multipliers: list[float]
    lam: torch.Tensor


@dataclass
class SquaredWorkspace:
    """The ``beta``-independent part of a squared-loss problem, prepared once per data set.

    The solve runs on scaled data (features divided by their RMS, targets by
    ``kappa``); the scaling, the operators of the scaled patches (for pooled
    problems the stored lifted matrices, ``n (h+1)^2`` numbers) and the trace
    constraint depend on the data only, so a path over ``beta`` builds them
    once (:meth:`prepare`) and every solve of the path reuses them.

    Attributes
    ----------
    patches, targets : Tensor
        The data it was prepared from (kept to check that a workspace passed
        in belongs to the problem at hand, :meth:`matches`).
    coefficients : tuple of float
    operators : list
        One operator (:mod:`._lifted`) per region, on the scaled patches.
    feature_scale : Tensor of shape (h,)
    kappa : float
        Target scale.
    inverse_square : Tensor of shape (h + 1,)
        ``diag(D)^-2``: the penalty's and the trace constraint's weighting.
    G : Tensor of shape (h + 1, h + 1)
        The trace constraint's matrix in scaled coordinates.
    lifted : LiftedSystem or None
        The Newton systems' lifted side, where it is cheaper than the ``n x n``
        matrix (:func:`._lifted.iteration_flops`).
    iteration_flops : float
        Operations of one iteration on the side chosen (factored Newton
        compares its steps with it).
    """

    patches: torch.Tensor
    targets: torch.Tensor
    coefficients: tuple[float, float, float]
    operators: list
    feature_scale: torch.Tensor
    kappa: float
    inverse_square: torch.Tensor
    G: torch.Tensor
    lifted: LiftedSystem | None = None
    iteration_flops: float = math.inf

    @classmethod
    def prepare(
        cls,
        patches: torch.Tensor,
        targets: torch.Tensor,
        coefficients: tuple[float, float, float],
    ) -> SquaredWorkspace:
        """Scale the data and build its operators (see the class docstring)."""
        n, regions, pool_size, h = patches.shape
        dtype, device = patches.dtype, patches.device
        feature_scale = patches.pow(2).mean(dim=(0, 1, 2)).sqrt()
        feature_scale = torch.where(feature_scale > 0, feature_scale,
                                    torch.ones_like(feature_scale))
        kappa = float(targets.pow(2).mean().sqrt())
        kappa = kappa if kappa > 0 else 1.0
        scaled = patches / feature_scale
        operators = [make_operator(scaled[:, r], coefficients) for r in range(regions)]
        one = torch.ones(1, dtype=dtype, device=device)
        inverse_square = torch.cat([feature_scale.pow(-2), one])
        G = torch.diag(inverse_square * torch.cat([torch.ones(h, dtype=dtype, device=device),
                                                   -one]))
        n_side, lifted_side = iteration_flops(n, regions, pool_size, h + 1)
        lifted = LiftedSystem(operators) if lifted_side < n_side else None
        return cls(patches=patches, targets=targets, coefficients=tuple(coefficients),
                   operators=operators, feature_scale=feature_scale, kappa=kappa,
                   inverse_square=inverse_square, G=G, lifted=lifted,
                   iteration_flops=min(n_side, lifted_side))

    def matches(
        self,
        patches: torch.Tensor,
        targets: torch.Tensor,
        coefficients: tuple[float, float, float],
    ) -> bool:
        """Whether this workspace was prepared from exactly this data (``O(n h)`` check)."""
        return (
            tuple(coefficients) == self.coefficients
            and patches.shape == self.patches.shape
            and targets.shape == self.targets.shape
            and patches.dtype == self.patches.dtype
            and patches.device == self.patches.device
            and bool(torch.equal(patches, self.patches))
            and bool(torch.equal(targets, self.targets))
        )

    def cost(self, beta: float) -> torch.Tensor:
        """The objective's matrix ``beta/2 D^-2`` in scaled units (``/ kappa``)."""
        return torch.diag(0.5 * (beta / self.kappa) * self.inverse_square)

    @property
    def unscale(self) -> torch.Tensor:
        """``diag(D)^-1``: scaled blocks back to the user's features."""
        one = torch.ones(1, dtype=self.patches.dtype, device=self.patches.device)
        return torch.cat([1.0 / self.feature_scale, one])


@dataclass
class IPMWarmStart:
    """What the next solve of a path resumes from: the workspace and the last iterates.

    Attributes
    ----------
    workspace : SquaredWorkspace
    beta : float
        The ``beta`` the iterates solve.
    points : list of IPMPoint or None
        One per output; ``None`` where that output has no usable iterate
        (it then starts cold).
    """

    workspace: SquaredWorkspace
    beta: float
    points: list[IPMPoint | None]


@dataclass
class IPMOutput:
    """Blocks (block order ``r * C + k``), dual points ``(n, C)`` and status.

    ``warm_start`` resumes a solve of the same data at another ``beta``;
    ``warm_started`` counts the outputs that started from one, ``factored`` those
    that factored Newton (:mod:`._factored`) certified from it without the
    interior point.
    """

    blocks: list[tuple[torch.Tensor, torch.Tensor]]
    dual: torch.Tensor
    iterations: int
    status: Status
    message: str
    warm_start: IPMWarmStart | None = None
    warm_started: int = 0
    factored: int = 0


@dataclass
class _Cone:
    """One PSD cone of one output: primal ``X``, slack ``S``, trace multiplier."""

    region: int
    sign: float
    X: torch.Tensor
    S: torch.Tensor
    mu: float = 0.0


def _max_step(X: torch.Tensor, dX: torch.Tensor) -> float:
    """Largest ``t <= 1`` with ``X + t dX`` PSD (``X`` positive definite)."""
    L = torch.linalg.cholesky(X)
    scaled = torch.linalg.solve_triangular(
        L, torch.linalg.solve_triangular(L, dX, upper=False).T, upper=False
    )
    smallest = float(torch.linalg.eigvalsh(0.5 * (scaled + scaled.T))[0])
    return 1.0 if smallest >= 0 else min(1.0, -1.0 / smallest)


def _symmetric(W: torch.Tensor) -> torch.Tensor:
    return 0.5 * (W + W.T)


def solve_output(
    operators: list,
    y: torch.Tensor,
    cost: torch.Tensor,
    G: torch.Tensor,
    *,
    tol: float,
    max_iter: int,
    deadline: float,
    objective_scale: float = 1.0,
    on_iteration: Callable[[int, float, float], None] | None = None,
    start: IPMPoint | None = None,
    beta_ratio: float = 1.0,
    lifted: LiftedSystem | None = None,
) -> tuple[list[_Cone], torch.Tensor, int, Status, str]:
    """Interior-point solve of one output; ``operators`` has one entry per region.

    ``cost`` is the objective's matrix (``beta/2 I`` unscaled) and ``G`` the
    trace constraint's, both diagonal; ``objective_scale`` converts reported
    objectives back to the user's units. ``start`` is a warm start (the final
    iterate of a solve at ``beta / beta_ratio``), else the cold point. Newton
    systems are solved on the ``lifted`` side where one is given.
    """
    n = y.shape[0]
    h = operators[0].h
    side = h + 1
    dtype, device = y.dtype, y.device
    eye = torch.eye(side, dtype=dtype, device=device)
    # Start: X = xi I (predictions of the order of y), S = eta I >= cost.
    unit = sum(float(op.apply(eye).norm()) for op in operators)
    xi = max(1.0, float(y.norm()) / max(unit, 1e-300))
    eta = max(1.0, float(cost.diagonal().max()))
    if start is None:
        cones = [
            _Cone(r, sign, xi * eye.clone(), eta * eye.clone())
            for r in range(len(operators))
            for sign in (1.0, -1.0)
        ]
        lam = torch.zeros(n, dtype=dtype, device=device)
    else:
        cones, lam = _warm_cones(start, len(operators), xi, cost, beta_ratio)
    best = None
    status, message = Status.ITERATION_LIMIT, "iteration limit reached"
    y_norm = float(y.norm())
    iteration = 0
    worse = 0
    records = [math.inf] * 3  # the smallest gap, primal and dual infeasibility so far
    start = time.monotonic()
    try:
        for iteration in range(max_iter + 1):
            adjoints = [op.adjoint(lam) for op in operators]
            primal, residual = _primal(operators, cones, [c.X for c in cones], y, cost)
            rp = residual - lam
            trace_res = [float(torch.trace(G @ c.X)) for c in cones]
            Rd = [cost + c.sign * adjoints[c.region] + c.mu * G - c.S for c in cones]
            complementarity = sum(float((c.X * c.S).sum()) for c in cones)
            mu = complementarity / (len(cones) * side)
            dual = -0.5 * float(lam @ lam) - float(lam @ y)
            # Relative measures: the objective may be tiny next to ||y|| (near interpolation).
            gap = abs(primal - dual) / max(abs(primal), abs(dual), 1e-300)
            p_inf = float(rp.norm()) / max(y_norm, 1e-300) + max(abs(t) for t in trace_res) / xi
            # Relative to the cost (beta): the certificate scales the dual point by how far
            # it violates beta, so an absolute measure lets small betas stop uncertifiable.
            d_inf = max(float(R.norm()) for R in Rd) / max(float(cost.norm()), 1e-300)
            score = max(gap, p_inf, d_inf)
            measures = (gap, p_inf, d_inf)
            # Progress: a better score, or (near the best) one measure halving its record.
            # Where the primal step is cut short the infeasibility stalls for a few
            # iterations while the gap keeps falling; that is not the accuracy floor.
            progress = best is None or score < best[0] or (
                score <= STALL_SCORE_FACTOR * best[0]
                and any(m < 0.5 * r for m, r in zip(measures, records))
            )
            records = [min(m, r) for m, r in zip(measures, records)]
            if best is None or score < best[0]:
                best = (score, [(c.X.clone(), c.S.clone(), c.mu) for c in cones], lam.clone())
            worse = 0 if progress else worse + 1
            logger.info(
                "native ipm iteration %d: objective %.10g, gap %.2e, infeasibility %.2e / %.2e, "
                "%.1fs",
                iteration, objective_scale * primal, gap, p_inf, d_inf, time.monotonic() - start,
            )
            if on_iteration is not None:
                on_iteration(iteration, objective_scale * primal, gap)
            if score <= tol:
                status, message = Status.OPTIMAL, f"converged in {iteration} iterations"
                break
            if worse >= 2 and best[0] <= math.sqrt(tol):
                # rounding has taken over near the end; more iterations only degrade the point
                status = Status.OPTIMAL_INACCURATE
                message = (
                    f"stopped at the accuracy floor ({best[0]:.1e}) after {iteration} iterations"
                )
                break
            if iteration == max_iter:
                break
            if time.monotonic() > deadline:
                status, message = Status.TIME_LIMIT, "time limit reached"
                break
            try:
                step = _newton_step(
                    operators, cones, lam, rp, trace_res, Rd, mu, G, n,
                    low_precision=score > LOW_PRECISION_ABOVE, lifted=lifted,
                )
            except torch.linalg.LinAlgError:
                status = Status.OPTIMAL_INACCURATE if best[0] <= math.sqrt(tol) else Status.FAILED
                message = "the Newton system became numerically singular"
                break
            d_lam, d_mu, d_X, d_S, step_p, step_d = step
            for c, dX, dS, dm in zip(cones, d_X, d_S, d_mu):
                c.X = _symmetric(c.X + step_p * dX)
                c.S = _symmetric(c.S + step_d * dS)
                c.mu += step_d * dm
            lam = lam + step_d * d_lam
    except KeyboardInterrupt:
        if best is None:
            raise
        status, message = Status.INTERRUPTED, "interrupted; returning the best iterate"
    _, pairs, best_lam = best
    for c, (X, S, multiplier) in zip(cones, pairs):
        c.X, c.S, c.mu = X, S, multiplier
    return cones, best_lam, iteration, status, message


def optimal_part(X: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """``X`` restricted to the eigendirections where it exceeds its dual slack ``S``.

    An interior point stops at ``X S ~ mu I`` with ``mu`` small but not zero:
    ``X`` still has small eigenvalues on directions outside the optimal face
    (where ``S`` is the larger), while on the face it is ``X`` that is large
    and ``S`` of order ``mu``. The leftover directions cost penalty without
    fitting anything, and Neural Decomposition mixes them into every neuron,
    where the refit cannot remove them. A neuron still entering the optimum
    (just below ``beta_max``) has ``x`` near ``s`` too: :func:`_cut_to_optimal_part`
    keeps the cut only where it does not raise the objective.
    """
    values, vectors = torch.linalg.eigh(X)
    slack = torch.einsum("ij,ik,kj->j", vectors, S, vectors)  # v_j^T S v_j
    keep = values > slack
    return (vectors[:, keep] * values[keep]) @ vectors[:, keep].T


def _primal(operators, cones, Xs, y, cost) -> tuple[float, torch.Tensor]:
    """The objective of the blocks ``Xs`` (one per cone) and their residual."""
    residual = sum(c.sign * operators[c.region].apply(X) for c, X in zip(cones, Xs)) - y
    penalty = sum(float((cost * X).sum()) for X in Xs)
    return 0.5 * float(residual @ residual) + penalty, residual


def _cut_to_optimal_part(operators, cones, y, cost, tol: float) -> None:
    """Replace each cone's ``X`` by :func:`optimal_part` unless that raises the objective
    by more than a tenth of the interior point's ``tol``: just below ``beta_max`` the only
    neuron has ``x ~ s``, and dropping it cost the whole tolerance (at ``tol = 1e-4``: gap
    1.02e-4 and no neuron, against 1e-15 and one)."""
    cut = [optimal_part(c.X, c.S) for c in cones]
    before, _ = _primal(operators, cones, [c.X for c in cones], y, cost)
    after, _ = _primal(operators, cones, cut, y, cost)
    if after <= before + 0.1 * tol * abs(before):
        for c, X in zip(cones, cut):
            c.X = X


def _warm_cones(
    start: IPMPoint,
    regions: int,
    xi: float,
    cost: torch.Tensor,
    beta_ratio: float,
) -> tuple[list[_Cone], torch.Tensor]:
    """A strictly feasible, centred start from the optimum of a neighbouring ``beta``.

    With ``t`` = :data:`WARM_START_CENTRING` and ``rho = beta_new / beta_old``:

    * dual: ``S = C + s A^T(lam) + mu G`` is linear in ``(C, lam, mu)``, and
      ``(lam, mu, S) = (0, 0, C)`` is dual feasible with ``C`` positive
      definite. The previous dual point rescaled by ``rho`` solves the dual
      equation of the new ``C = rho C_old`` exactly; mixing it with
      ``(0, 0, C)``, ``((1-t) rho lam, (1-t) rho mu, (1-t) rho S + t C)``,
      keeps it exactly feasible and puts ``S`` at least ``t C`` inside the
      cone -- the change of ``beta`` costs no dual infeasibility;
    * primal: ``(1-t) X + t xi I`` (the cold point's scale ``xi``) moves the
      previous, nearly rank-deficient optimum off the boundary, where
      Newton steps would be cut short.
    """
    t, rho = WARM_START_CENTRING, beta_ratio
    cones = []
    index = 0
    for r in range(regions):
        for sign in (1.0, -1.0):
            X, S = start.X[index], start.S[index]
            eye = torch.eye(X.shape[0], dtype=X.dtype, device=X.device)
            cones.append(_Cone(
                r, sign,
                _symmetric((1.0 - t) * X + (t * xi) * eye),
                _symmetric((rho * (1.0 - t)) * S + t * cost),
                rho * (1.0 - t) * start.multipliers[index],
            ))
            index += 1
    return cones, (rho * (1.0 - t)) * start.lam


def _schur_factor(operators, cones, S_inv, n, dtype):
    """Cholesky factor of ``I + sum_k [tr(A_i X_k A_j S_k^{-1})]_ij`` in ``dtype``."""
    M = torch.zeros((n, n), dtype=dtype, device=S_inv[0].device)
    for c, Si in zip(cones, S_inv):
        operators[c.region].add_schur(M, c.X.to(dtype), Si.to(dtype))
    M.diagonal().add_(1.0)
    return jittered_cholesky(M)


def _newton_step(operators, cones, lam, rp, trace_res, Rd, mu, G, n, low_precision,
                 lifted=None):
    """Mehrotra predictor-corrector step; returns directions and step lengths.

    With ``low_precision`` (far from the optimum, where the Newton system is
    well conditioned and its direction needs few digits) the ``n x n``
    system is assembled and factorised in float32, about twice as fast;
    every residual stays in float64, so the method corrects itself. With
    ``lifted`` the system is solved on the lifted side, in float64.
    """
    dtype, device = lam.dtype, lam.device
    S_inv = [_symmetric(torch.linalg.inv(c.S)) for c in cones]
    if lifted is not None:
        solve_schur = lifted.solver(cones, S_inv)
    else:
        schur_dtype = torch.float32 if low_precision else dtype
        try:
            factor = _schur_factor(operators, cones, S_inv, n, schur_dtype)
        except torch.linalg.LinAlgError:
            if not low_precision:
                raise
            factor, schur_dtype = _schur_factor(operators, cones, S_inv, n, dtype), dtype

        def solve_schur(B: torch.Tensor) -> torch.Tensor:
            return torch.cholesky_solve(B.to(schur_dtype), factor).to(dtype)

    g = [operators[c.region].apply(c.X @ G @ Si) for c, Si in zip(cones, S_inv)]
    gamma = [float(torch.trace(G @ c.X @ G @ Si)) for c, Si in zip(cones, S_inv)]
    U = torch.stack([gi / math.sqrt(gm) for gi, gm in zip(g, gamma)], dim=1)
    M_inv_U = solve_schur(U)
    capacitance = torch.eye(U.shape[1], dtype=dtype, device=device) - U.T @ M_inv_U

    def direction(sigma_mu: float, corrections):
        C = []
        for c, Si, R, corr in zip(cones, S_inv, Rd, corrections):
            Ck = sigma_mu * Si - c.X - c.X @ R @ Si
            if corr is not None:
                Ck = Ck - corr
            C.append(Ck)
        h = rp + sum(c.sign * operators[c.region].apply(Ck) for c, Ck in zip(cones, C))
        e = [float(torch.trace(G @ Ck)) + t for Ck, t in zip(C, trace_res)]
        rhs = h - sum(c.sign * gi * ei / gm for c, gi, ei, gm in zip(cones, g, e, gamma))
        base = solve_schur(rhs[:, None])[:, 0]
        d_lam = base + M_inv_U @ torch.linalg.solve(capacitance, U.T @ base)
        d_mu = [(ei - c.sign * float(gi @ d_lam)) / gm for c, gi, ei, gm in zip(cones, g, e, gamma)]
        adj = [op.adjoint(d_lam) for op in operators]
        d_S, d_X = [], []
        for c, Si, R, Ck, dm in zip(cones, S_inv, Rd, C, d_mu):
            change = c.sign * adj[c.region] + dm * G
            d_S.append(change + R)
            d_X.append(_symmetric(Ck - c.X @ change @ Si))
        return d_lam, d_mu, d_X, d_S

    def lengths(d_X, d_S):
        primal = min(_max_step(c.X, dX) for c, dX in zip(cones, d_X))
        dual = min(_max_step(c.S, dS) for c, dS in zip(cones, d_S))
        return primal, dual

    d_lam, d_mu, d_X, d_S = direction(0.0, [None] * len(cones))
    step_p, step_d = lengths(d_X, d_S)
    affine = sum(
        float(((c.X + step_p * dX) * (c.S + step_d * dS)).sum())
        for c, dX, dS in zip(cones, d_X, d_S)
    ) / (len(cones) * G.shape[0])
    sigma = min(1.0, (affine / mu) ** 3) if mu > 0 else 0.0
    corrections = [dX @ dS @ Si for dX, dS, Si in zip(d_X, d_S, S_inv)]
    d_lam, d_mu, d_X, d_S = direction(sigma * mu, corrections)
    step_p, step_d = lengths(d_X, d_S)
    return d_lam, d_mu, d_X, d_S, min(1.0, 0.98 * step_p), min(1.0, 0.98 * step_d)


def solve_squared(
    patches: torch.Tensor,
    targets: torch.Tensor,
    coefficients: tuple[float, float, float],
    beta: float,
    *,
    tol: float,
    max_iter: int,
    deadline: float,
    on_iteration: Callable[[int, int, float, float], None] | None = None,
    workspace: SquaredWorkspace | None = None,
    warm_start: IPMWarmStart | None = None,
) -> IPMOutput:
    """Solve every output of the squared-loss SDP; see the module docstring.

    The solve runs on an equivalent, better scaled problem: with
    ``D = diag(feature scales, 1)`` the blocks are ``D Z D / kappa`` (features
    divided by their RMS, targets by ``kappa``), so the penalty and the trace
    constraint become diagonal weightings; blocks and duals are mapped back.

    Parameters
    ----------
    patches, targets, coefficients, beta
        The problem.
    tol, max_iter, deadline, on_iteration
        Stopping rules and progress callback ``(output, iteration, objective, gap)``.
    workspace : SquaredWorkspace, optional
        The prepared data (:meth:`SquaredWorkspace.prepare`); a workspace of
        other data is ignored (prepared afresh).
    warm_start : IPMWarmStart, optional
        The :attr:`IPMOutput.warm_start` of a solve of the same data at
        another ``beta``: its workspace is reused and every output starts
        from its iterate. An output whose warm-started solve does not
        converge is solved again from the cold point.
    """
    n, regions, _, h = patches.shape
    dtype, device = patches.dtype, patches.device
    if warm_start is not None and not warm_start.workspace.matches(patches, targets,
                                                                   coefficients):
        logger.info("native ipm: the warm start belongs to other data; starting cold")
        warm_start = None
    if warm_start is not None:
        workspace = warm_start.workspace
    if workspace is None or not workspace.matches(patches, targets, coefficients):
        workspace = SquaredWorkspace.prepare(patches, targets, coefficients)
    operators, kappa, G = workspace.operators, workspace.kappa, workspace.G
    cost = workspace.cost(beta)
    unscale = workspace.unscale
    outputs = targets.shape[1]
    blocks: list = [None] * (regions * outputs)
    duals = []
    points: list[IPMPoint | None] = []
    iterations = 0
    warm_started = 0
    factored = 0
    statuses, messages = [], []
    for k in range(outputs):
        interrupted = bool(statuses) and statuses[-1] is Status.INTERRUPTED
        if interrupted or not bool(torch.any(targets[:, k])):
            # Ctrl-C stops everything: the outputs not reached keep zero blocks. An
            # all-zero target column's optimum is the zero blocks (the loss's gradient at
            # zero predictions vanishes), certified by the zero dual point; the interior
            # point only approached it, its objective falling to 0 and its relative gap
            # staying near 1 for max_iter iterations.
            zero = torch.zeros((h + 1, h + 1), dtype=dtype, device=device)
            for r in range(regions):
                blocks[r * outputs + k] = [zero, zero]
            duals.append(torch.zeros(n, dtype=dtype, device=device))
            points.append(None)
            statuses.append(Status.INTERRUPTED if interrupted else Status.OPTIMAL)
            messages.append(messages[-1] if interrupted else None)  # (none of its own)
            continue
        callback = None
        if on_iteration is not None:
            def callback(it, primal, gap, k=k):
                return on_iteration(k, it, primal, gap)
        start = None if warm_start is None else warm_start.points[k]
        arguments = dict(tol=tol, max_iter=max_iter, deadline=deadline,
                         objective_scale=kappa * kappa, on_iteration=callback,
                         lifted=workspace.lifted)
        y = targets[:, k] / kappa
        beta_ratio = 1.0 if start is None else beta / warm_start.beta
        status = None
        if start is not None:
            # (imported here: _factored builds on this module's cones and points)
            from convexnn.solvers.native._factored import solve_output_factored

            cones, lam, its, status, message = solve_output_factored(
                operators, y, cost, G, tol=tol, deadline=deadline, start=start,
                beta_ratio=beta_ratio, iteration_flops=workspace.iteration_flops)
            if status is Status.OPTIMAL:
                factored += 1
            elif status is not Status.INTERRUPTED:
                logger.info("native ipm: output %d: factored Newton did not certify (%s)",
                            k, message)
                iterations += its
        if status not in (Status.OPTIMAL, Status.INTERRUPTED):
            cones, lam, its, status, message = solve_output(
                operators, y, cost, G, start=start, beta_ratio=beta_ratio, **arguments,
            )
        if start is not None:
            warm_started += 1
            if status not in (Status.OPTIMAL, Status.INTERRUPTED):
                # A warm start is a heuristic; the cold point is the method's own. A
                # stop at the accuracy floor counts as a miss too: its point can lose
                # the network's certified gap in Neural Decomposition.
                logger.info("native ipm: output %d did not converge from the warm start (%s); "
                            "solving it from the cold point", k, message)
                iterations += its
                cones, lam, its, status, message = solve_output(operators, y, cost, G,
                                                                **arguments)
        if status is Status.OPTIMAL:
            _cut_to_optimal_part(operators, cones, y, cost, tol)
        for c in cones:
            index = c.region * outputs + k
            pair = blocks[index] or [None, None]
            pair[0 if c.sign > 0 else 1] = kappa * unscale[:, None] * c.X * unscale[None, :]
            blocks[index] = pair
        duals.append(kappa * lam)
        points.append(
            IPMPoint([c.X for c in cones], [c.S for c in cones], [c.mu for c in cones], lam)
            if status in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE) else None
        )
        iterations += its
        statuses.append(status)
        messages.append(message)
    worst = max(statuses, key=_SEVERITY.index)
    message = next((m for m, st in zip(messages, statuses) if st is worst and m is not None),
                   "every output's targets are zero: zero blocks")
    return IPMOutput(
        blocks=[(pair[0], pair[1]) for pair in blocks],
        dual=torch.stack(duals, dim=1),
        iterations=iterations,
        status=worst,
        message=message,
        warm_start=IPMWarmStart(workspace, float(beta), points),
        warm_started=warm_started,
        factored=factored,
    )


_SEVERITY = [
    Status.OPTIMAL,
    Status.OPTIMAL_INACCURATE,
    Status.ITERATION_LIMIT,
    Status.TIME_LIMIT,
    Status.INTERRUPTED,
    Status.INFEASIBLE,
    Status.UNBOUNDED,
    Status.FAILED,
]
