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
``n (h+1)^2`` dense coefficients for a generic conic solver.

Outputs are independent for the squared loss and are solved one by one.
Far from the optimum the ``n x n`` system is assembled and factorised in
float32 (about twice as fast; residuals stay in float64, so the iteration
corrects itself); the last iterations use float64.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from convexnn.solvers.base import Status
from convexnn.solvers.native._lifted import make_operator

logger = logging.getLogger("convexnn")

#: Newton systems are solved in float32 while the iterate's accuracy measure
#: (the worst of relative gap and infeasibilities) is above this.
LOW_PRECISION_ABOVE = 1e-3


@dataclass
class IPMOutput:
    """Blocks (block order ``r * C + k``), dual points ``(n, C)`` and status."""

    blocks: list[tuple[torch.Tensor, torch.Tensor]]
    dual: torch.Tensor
    iterations: int
    status: Status
    message: str


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
) -> tuple[list[_Cone], torch.Tensor, int, Status, str]:
    """Interior-point solve of one output; ``operators`` has one entry per region.

    ``cost`` is the objective's matrix (``beta/2 I`` unscaled) and ``G`` the
    trace constraint's, both diagonal; ``objective_scale`` converts reported
    objectives back to the user's units.
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
    cones = [
        _Cone(r, sign, xi * eye.clone(), eta * eye.clone())
        for r in range(len(operators))
        for sign in (1.0, -1.0)
    ]
    lam = torch.zeros(n, dtype=dtype, device=device)
    best = None
    status, message = Status.ITERATION_LIMIT, "iteration limit reached"
    y_norm = float(y.norm())
    iteration = 0
    worse = 0
    start = time.monotonic()
    try:
        for iteration in range(max_iter + 1):
            adjoints = [op.adjoint(lam) for op in operators]
            predictions = sum(c.sign * operators[c.region].apply(c.X) for c in cones)
            residual = predictions - y
            rp = residual - lam
            trace_res = [float(torch.trace(G @ c.X)) for c in cones]
            Rd = [cost + c.sign * adjoints[c.region] + c.mu * G - c.S for c in cones]
            complementarity = sum(float((c.X * c.S).sum()) for c in cones)
            mu = complementarity / (len(cones) * side)
            primal = 0.5 * float(residual @ residual) + sum(
                float((cost * c.X).sum()) for c in cones
            )
            dual = -0.5 * float(lam @ lam) - float(lam @ y)
            # Relative measures: the objective may be tiny next to ||y|| (near interpolation).
            gap = abs(primal - dual) / max(abs(primal), abs(dual), 1e-300)
            p_inf = float(rp.norm()) / max(y_norm, 1e-300) + max(abs(t) for t in trace_res) / xi
            d_inf = max(float(R.norm()) for R in Rd) / max(float(cost.norm()), 1.0)
            score = max(gap, p_inf, d_inf)
            if best is None or score < best[0]:
                best = (score, [(c.X.clone(), c.S.clone()) for c in cones], lam.clone())
                worse = 0
            else:
                worse += 1
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
                    low_precision=score > LOW_PRECISION_ABOVE,
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
    for c, (X, S) in zip(cones, pairs):
        c.X, c.S = X, S
    return cones, best_lam, iteration, status, message


def _schur_factor(operators, cones, S_inv, n, dtype):
    """Cholesky factor of ``I + sum_k [tr(A_i X_k A_j S_k^{-1})]_ij`` in ``dtype``."""
    M = torch.zeros((n, n), dtype=dtype, device=S_inv[0].device)
    for c, Si in zip(cones, S_inv):
        operators[c.region].add_schur(M, c.X.to(dtype), Si.to(dtype))
    M.diagonal().add_(1.0)
    factor, info = torch.linalg.cholesky_ex(M)
    if int(info) != 0:
        M.diagonal().add_(1e-12 * float(M.diagonal().max()))
        factor = torch.linalg.cholesky(M)
    return factor


def _newton_step(operators, cones, lam, rp, trace_res, Rd, mu, G, n, low_precision):
    """Mehrotra predictor-corrector step; returns directions and step lengths.

    With ``low_precision`` (far from the optimum, where the Newton system is
    well conditioned and its direction needs few digits) the ``n x n``
    system is assembled and factorised in float32, about twice as fast;
    every residual stays in float64, so the method corrects itself.
    """
    dtype, device = lam.dtype, lam.device
    S_inv = [_symmetric(torch.linalg.inv(c.S)) for c in cones]
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
) -> IPMOutput:
    """Solve every output of the squared-loss SDP; see the module docstring.

    The solve runs on an equivalent, better scaled problem: with
    ``D = diag(feature scales, 1)`` the blocks are ``D Z D / kappa`` (features
    divided by their RMS, targets by ``kappa``), so the penalty and the trace
    constraint become diagonal weightings; blocks and duals are mapped back.
    """
    n, regions, _, h = patches.shape
    dtype, device = patches.dtype, patches.device
    feature_scale = patches.pow(2).mean(dim=(0, 1, 2)).sqrt()
    feature_scale = torch.where(feature_scale > 0, feature_scale, torch.ones_like(feature_scale))
    kappa = float(targets.pow(2).mean().sqrt())
    kappa = kappa if kappa > 0 else 1.0
    scaled = patches / feature_scale
    operators = [make_operator(scaled[:, r], coefficients) for r in range(regions)]
    inverse_square = torch.cat([feature_scale.pow(-2), torch.ones(1, dtype=dtype, device=device)])
    cost = torch.diag(0.5 * (beta / kappa) * inverse_square)
    G = torch.diag(inverse_square * torch.cat([torch.ones(h, dtype=dtype, device=device),
                                               -torch.ones(1, dtype=dtype, device=device)]))
    unscale = torch.cat([1.0 / feature_scale, torch.ones(1, dtype=dtype, device=device)])
    outputs = targets.shape[1]
    blocks: list = [None] * (regions * outputs)
    duals = []
    iterations = 0
    statuses, messages = [], []
    for k in range(outputs):
        if statuses and statuses[-1] is Status.INTERRUPTED:
            # Ctrl-C stops everything: the outputs not reached keep zero blocks.
            zero = torch.zeros((h + 1, h + 1), dtype=dtype, device=device)
            for r in range(regions):
                blocks[r * outputs + k] = [zero, zero]
            duals.append(torch.zeros(n, dtype=dtype, device=device))
            statuses.append(Status.INTERRUPTED)
            messages.append(messages[-1])
            continue
        callback = None
        if on_iteration is not None:
            def callback(it, primal, gap, k=k):
                return on_iteration(k, it, primal, gap)
        cones, lam, its, status, message = solve_output(
            operators, targets[:, k] / kappa, cost, G, tol=tol, max_iter=max_iter,
            deadline=deadline, objective_scale=kappa * kappa, on_iteration=callback,
        )
        for c in cones:
            index = c.region * outputs + k
            pair = blocks[index] or [None, None]
            pair[0 if c.sign > 0 else 1] = kappa * unscale[:, None] * c.X * unscale[None, :]
            blocks[index] = pair
        duals.append(kappa * lam)
        iterations += its
        statuses.append(status)
        messages.append(message)
    worst = max(statuses, key=_SEVERITY.index)
    message = messages[statuses.index(worst)]
    return IPMOutput(
        blocks=[(pair[0], pair[1]) for pair in blocks],
        dual=torch.stack(duals, dim=1),
        iterations=iterations,
        status=worst,
        message=message,
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
