"""Newton on factored blocks: one output of the squared-loss SDP, from a nearby solution.

Along a regularisation path consecutive optima share their rank structure:
each block ``X_k = U_k U_k^T`` with a thin ``U_k`` (its neurons). With the
trace constraints ``c_k(U) = tr(U_k^T G U_k) = 0`` and multipliers ``mu_k``
the KKT conditions of the factored problem are smooth in ``(U, mu)``, and
Newton's method on them (exact Hessian ``J^T J + blockdiag(2 S_k (x) I)``,
``S_k = C + s_k A_k^T(r) + mu_k G`` the dual slacks) converges
quadratically from the previous ``beta``'s factors. A stationary point is the
SDP's optimum exactly when every ``S_k`` is PSD (the dual point ``(r, mu)``
is then feasible); where one is not, its most negative eigenvector is a
neuron the new ``beta`` wants, and it joins ``U_k`` at the step length that
minimises the objective along it. The stopping rule is the interior
point's: the relative gap to the dual value at ``r`` scaled into feasibility.

Steps are damped (Levenberg-Marquardt on the KKT system, accepted on an
augmented-Lagrangian decrease), so saddles and rank changes do not
derail it; whatever does not certify within a few rounds returns a status
other than ``OPTIMAL`` and the caller falls back to the interior point.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch

from convexnn.solvers.base import Status
from convexnn.solvers.native._ipm import IPMPoint, _Cone

logger = logging.getLogger("convexnn")

#: Eigenvalues of a previous block below this fraction of the largest are dropped.
RANGE_RTOL = 1e-7
#: Rounds (Newton to stationarity, then certificate or a new neuron) before giving up.
MAX_ROUNDS = 8
#: A factor is stationary when ``|S_k U_k| <= STATIONARY_RTOL |S_k| |U_k|`` for every cone.
STATIONARY_RTOL = 1e-9
#: Columns added per cone and round: eigenvectors of S_k whose eigenvalue is below this
#: fraction of the most negative one, at most this many.
NEGATIVE_FRACTION = 0.1
COLUMNS_PER_ROUND = 4
#: Newton steps per round.
MAX_STEPS = 30
#: Factors are left to the interior point when a Newton step (``n P^2 + P^3 / 3`` for
#: ``P`` factor entries) costs more than this fraction of an interior-point iteration
#: (:func:`._lifted.iteration_flops`, plus a fixed overhead). Measured on fold 0 of
#: benchmarks/bench_cv.py: breast-cancer's path took 0.76 s with factors of up to
#: ``n/2`` entries and 1.1 s with up to ``n`` (its interior point is on the ``n x n``
#: side); the planted regression's 0.33 s against 0.48 s the other way round (its
#: interior point is on the cheap lifted side, but its 11-neuron factors are small).
STEP_COST_RATIO = 0.3
ITERATION_OVERHEAD_FLOPS = 3e7


class _Factored:
    """The factored problem of one output: residuals, objective, constraints and slacks."""

    def __init__(self, operators, layout, y, cost, G):
        self.operators, self.layout, self.y = operators, layout, y
        self.cost, self.G = cost, G

    def forward(self, U):
        products = [self.operators[r].apply_factor(Uk) for Uk, (r, _) in zip(U, self.layout)]
        predictions = torch.zeros_like(self.y)
        for Uk, AU, (_, sign) in zip(U, products, self.layout):
            if Uk.shape[1]:
                predictions = predictions + sign * (AU * Uk).sum(dim=(1, 2))
        return predictions - self.y, products

    def objective(self, U, residual) -> float:
        return 0.5 * float(residual @ residual) + sum(
            float((Uk * (self.cost @ Uk)).sum()) for Uk in U
        )

    def constraints(self, U) -> torch.Tensor:
        return torch.stack([(Uk * (self.G @ Uk)).sum() for Uk in U])

    def slacks(self, U, residual, mu):
        """``S_k = C + s_k A^T(r) + mu_k G``; a cone without columns gets the ``mu_k`` that
        makes its slack most nearly PSD (written into ``mu``)."""
        adjoints = [op.adjoint(residual) for op in self.operators]
        slacks = []
        for k, ((r, sign), Uk) in enumerate(zip(self.layout, U)):
            fixed = self.cost + sign * adjoints[r]
            if Uk.shape[1] == 0 and float(torch.linalg.eigvalsh(fixed + mu[k] * self.G)[0]) < 0:
                mu[k] = _best_multiplier(fixed, self.G)
            slacks.append(fixed + mu[k] * self.G)
        return slacks


def _best_multiplier(fixed: torch.Tensor, G: torch.Tensor) -> float:
    """``mu`` maximising ``lambda_min(fixed + mu G)`` (a concave function of ``mu``)."""
    from scipy.optimize import minimize_scalar

    diagonal = G.diagonal()
    size = float(fixed.norm())
    if size == 0.0:
        return 0.0
    # Beyond these bounds one diagonal entry is below -size <= lambda_min(fixed).
    upper = 2.0 * size / float(-diagonal[diagonal < 0].max())
    lower = -2.0 * size / float(diagonal[diagonal > 0].min())
    found = minimize_scalar(
        lambda mu: -float(torch.linalg.eigvalsh(fixed + mu * G)[0]), bounds=(lower, upper),
        method="bounded", options={"xatol": 1e-12 * (upper - lower)},
    )
    return float(found.x)


@dataclass
class _Point:
    """Factors, multipliers and everything derived from them."""

    U: list
    mu: torch.Tensor
    residual: torch.Tensor
    products: list
    objective: float
    constraints: torch.Tensor

    @classmethod
    def at(cls, problem: _Factored, U, mu) -> _Point:
        residual, products = problem.forward(U)
        return cls(U, mu, residual, products, problem.objective(U, residual),
                   problem.constraints(U))

    def merit(self, mu: torch.Tensor, rho: float) -> float:
        """Augmented Lagrangian at multipliers ``mu``."""
        c = self.constraints
        return self.objective + float(mu @ c) + 0.5 * rho * float(c @ c)


def _certified_gap(problem: _Factored, point: _Point, slacks) -> tuple[float, list]:
    """Relative gap to the dual value at the residual scaled into feasibility, and the
    slacks' eigendecompositions (``inf`` while the trace constraints are violated)."""
    spectra = [torch.linalg.eigh(S) for S in slacks]
    if float(point.constraints.abs().max()) > 1e-10 * max(
        sum(float((Uk * Uk).sum()) for Uk in point.U), 1e-300
    ):
        return math.inf, spectra
    inverse_root = problem.cost.diagonal().rsqrt()
    t = 1.0
    for S in slacks:
        scaled = inverse_root[:, None] * (S - problem.cost) * inverse_root[None, :]
        smallest = float(torch.linalg.eigvalsh(scaled)[0])
        if smallest < -1.0:
            t = min(t, -1.0 / smallest)
    r, y = point.residual, problem.y
    primal = point.objective
    dual = -0.5 * t * t * float(r @ r) - t * float(r @ y)
    return abs(primal - dual) / max(abs(primal), abs(dual), 1e-300), spectra


def _kkt_system(problem: _Factored, point: _Point, slacks) -> tuple[torch.Tensor, torch.Tensor]:
    """The KKT matrix ``[[H, A^T], [A, 0]]`` at ``point`` and the objective's gradient.

    ``H = J^T J + blockdiag(2 S_k (x) I)`` is the Lagrangian's Hessian in the
    factor entries, ``A`` the trace constraints' gradients ``2 G U_k``.
    """
    U, mu = point.U, point.mu
    dtype, device = problem.y.dtype, problem.y.device
    sizes = [Uk.numel() for Uk in U]
    total, cones = sum(sizes), len(U)
    J = torch.cat([2.0 * sign * AU.reshape(AU.shape[0], -1)
                   for AU, (_, sign) in zip(point.products, problem.layout)], dim=1)
    # grad f = J^T r + 2 C U = 2 (S_k - mu_k G) U_k per cone.
    gradient = torch.cat([(2.0 * (S - m * problem.G) @ Uk).reshape(-1)
                          for Uk, S, m in zip(U, slacks, mu)])
    K = torch.zeros((total + cones, total + cones), dtype=dtype, device=device)
    K[:total, :total] = J.T @ J
    offset = 0
    for k, (S, Uk, size) in enumerate(zip(slacks, U, sizes)):
        if size:
            eye = torch.eye(Uk.shape[1], dtype=dtype, device=device)
            K[offset:offset + size, offset:offset + size] += 2.0 * torch.kron(S, eye)
            K[total + k, offset:offset + size] = (2.0 * problem.G @ Uk).reshape(-1)
            K[offset:offset + size, total + k] = K[total + k, offset:offset + size]
        else:  # an empty cone's constraint is 0 = 0
            K[total + k, total + k] = 1.0
        offset += size
    return K, gradient


def _newton(problem: _Factored, point: _Point, *, tol: float, deadline: float):
    """Damped Newton on the KKT conditions until the gap is certified or steps stall.

    Returns ``(point, slacks, gap, spectra, steps)`` at the last point.
    """
    rho = 1.0  # weight of the squared constraint residuals in the merit function
    steps = 0
    damping = 0.0  # Levenberg-Marquardt, carried from step to step
    while True:
        slacks = problem.slacks(point.U, point.residual, point.mu)
        gap, spectra = _certified_gap(problem, point, slacks)
        # The slacks' negative curvature (a saddle after a neuron was added) sets the
        # smallest damping worth trying when a step is rejected.
        negative = max(0.0, -min(float(values[0]) for values, _ in spectra))
        logger.debug("native factored step %d: objective %.12g, gap %.2e, damping %.1e, "
                     "constraints %.1e, lambda_min %.2e", steps, point.objective, gap, damping,
                     float(point.constraints.abs().max()), -negative)
        # Stationary at this rank (grad L = 2 S_k U_k): a certificate needs more columns.
        stationary = math.isfinite(gap) and all(
            float((S @ Uk).norm()) <= STATIONARY_RTOL * float(S.norm()) * float(Uk.norm())
            for S, Uk in zip(slacks, point.U)
        )
        if gap <= tol or stationary or steps >= MAX_STEPS or time.monotonic() > deadline:
            return point, slacks, gap, spectra, steps
        U, mu = point.U, point.mu
        sizes = [Uk.numel() for Uk in U]
        total = sum(sizes)
        K, gradient = _kkt_system(problem, point, slacks)
        H = K[:total, :total]
        rhs = torch.cat([-gradient, -point.constraints])
        # Damping raised until the augmented Lagrangian decreases.
        while True:
            if damping > 0:
                H.diagonal().add_(damping)
            try:
                solution = torch.linalg.solve(K, rhs)
            except torch.linalg.LinAlgError:
                solution = torch.linalg.lstsq(K, rhs[:, None]).solution[:, 0]
            if damping > 0:
                H.diagonal().sub_(damping)
            step, new_mu = solution[:total], solution[total:].clone()
            for k, size in enumerate(sizes):
                if size == 0:
                    new_mu[k] = mu[k]
            moved, offset = [], 0
            for Uk, size in zip(U, sizes):
                moved.append(Uk + step[offset:offset + size].reshape(Uk.shape))
                offset += size
            candidate = _Point.at(problem, moved, new_mu)
            before = point.merit(new_mu, rho)
            if candidate.merit(new_mu, rho) <= before + 1e-13 * max(abs(before), 1.0):
                break
            damping = max(10.0 * damping, 1e-3 * negative,
                          1e-10 * max(float(H.diagonal().max()), 1e-300))
            if damping > 1e8 * max(float(H.diagonal().max()), 1e-300):
                return point, slacks, gap, spectra, steps
        point = candidate
        steps += 1
        damping = 0.0 if damping < 1e-300 else 0.1 * damping


def _too_large(U, n: int, iteration_flops: float) -> bool:
    """Whether a Newton step (one unknown per factor entry) costs more than its share of
    an interior-point iteration (see :data:`STEP_COST_RATIO`)."""
    entries = sum(Uk.numel() for Uk in U)
    step = n * entries ** 2 + entries ** 3 / 3
    return entries > n or step > STEP_COST_RATIO * (iteration_flops + ITERATION_OVERHEAD_FLOPS)


def solve_output_factored(
    operators: list,
    y: torch.Tensor,
    cost: torch.Tensor,
    G: torch.Tensor,
    *,
    tol: float,
    deadline: float,
    start: IPMPoint,
    beta_ratio: float = 1.0,
    iteration_flops: float = math.inf,
) -> tuple[list[_Cone], torch.Tensor, int, Status, str]:
    """Factored Newton for one output from ``start`` (the optimum at ``beta / beta_ratio``).

    The same arguments and returns as :func:`._ipm.solve_output`; the
    iteration count is the number of Newton steps. ``iteration_flops`` is the
    cost of an interior-point iteration: factors whose Newton steps cost
    more are left to the interior point.
    """
    dtype, device = y.dtype, y.device
    layout = [(r, sign) for r in range(len(operators)) for sign in (1.0, -1.0)]
    problem = _Factored(operators, layout, y, cost, G)
    spectra = [torch.linalg.eigh(X) for X in start.X]
    largest = max(float(values[-1]) for values, _ in spectra)
    U = []
    for values, vectors in spectra:
        keep = values > RANGE_RTOL * largest
        U.append(vectors[:, keep] * values[keep].sqrt())
    if _too_large(U, y.shape[0], iteration_flops):
        return [], y, 0, Status.ITERATION_LIMIT, "the factors are too wide for Newton steps"
    mu = torch.tensor([beta_ratio * m for m in start.multipliers], dtype=dtype, device=device)
    point = _Point.at(problem, U, mu)
    slacks = problem.slacks(point.U, point.residual, point.mu)
    steps = 0
    status, message = Status.ITERATION_LIMIT, f"no certificate after {MAX_ROUNDS} rounds"
    try:
        for rounds in range(1, MAX_ROUNDS + 1):
            point, slacks, gap, spectra, taken = _newton(problem, point, tol=tol,
                                                         deadline=deadline)
            steps += taken
            logger.info("native factored round %d: objective %.10g, gap %.2e, ranks %s, %d steps",
                        rounds, point.objective, gap, [Uk.shape[1] for Uk in point.U], taken)
            if gap <= tol:
                status, message = Status.OPTIMAL, f"certified after {steps} Newton steps"
                break
            if time.monotonic() > deadline:
                status, message = Status.TIME_LIMIT, "time limit reached"
                break
            # New columns where a slack is not PSD: its most negative eigenvectors, each at
            # the length minimising lambda tau^2 + |A(v v^T)|^2 tau^4 / 2 along X + tau^2 v v^T.
            U = list(point.U)
            for k, (values, vectors) in enumerate(spectra):
                if float(values[0]) >= 0:
                    continue
                wanted = int((values < NEGATIVE_FRACTION * values[0]).sum())
                for j in range(min(COLUMNS_PER_ROUND, wanted)):
                    v = vectors[:, j:j + 1]
                    curvature = float(operators[layout[k][0]].apply(v @ v.T).norm()) ** 2
                    tau = math.sqrt(-float(values[j]) / max(curvature, 1e-300))
                    U[k] = torch.cat([U[k], tau * v], dim=1)
            if all(Uk.shape[1] == Vk.shape[1] for Uk, Vk in zip(U, point.U)):
                status = Status.OPTIMAL_INACCURATE
                message = f"stationary but not certified (gap {gap:.1e})"
                break
            if _too_large(U, y.shape[0], iteration_flops):
                status = Status.ITERATION_LIMIT
                message = "the factors grew too wide for Newton steps"
                break
            point = _Point.at(problem, U, point.mu)
    except KeyboardInterrupt:
        status, message = Status.INTERRUPTED, "interrupted; returning the last Newton iterate"
    cones = [_Cone(r, sign, Uk @ Uk.T, S, float(m))
             for (r, sign), Uk, S, m in zip(layout, point.U, slacks, point.mu)]
    return cones, point.residual, steps, status, message
