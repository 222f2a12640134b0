"""The neurons engine: Burer-Monteiro over the network's neurons, certified.

Each neuron ``j`` is a vector ``v_j`` (length ``h``) with a fixed sign
``s_j`` and a block (region ``r_j``, output ``k_j``): it is the unit filter
``u_j = v_j / ||v_j||`` with output weight ``s_j ||v_j||^2``. With
``t_ipj = x_{i r_j p}^T v_j`` and ``nu_j = ||v_j||`` its contribution to
output ``k_j`` of sample ``i`` is
``s_j [mean_p (a t_ipj^2 + b nu_j t_ipj) + c nu_j^2]`` and its penalty
``beta nu_j^2``, so the objective is smooth in ``V`` (for a smooth loss)
and equals the SDP objective at the corresponding blocks.

One round:

1. the exact dual oracle at ``v = grad loss`` certifies the current point
   (:func:`convexnn.solvers.certificate.dual_bound`) and names the most violating
   neuron of every block;
2. if the certified gap is below ``tol``: stop; else add those neurons (with
   weights from an exact line search) when the violation is large, and
3. refine every neuron by damped Gauss-Newton steps -- solved directly
   (``min(p, nC)``-sized Cholesky, ``p = m h``) when that is small,
   matrix-free by conjugate gradients otherwise -- then drop neurons whose
   weight vanished.

Stationarity must be tight for a tight certificate (the dual bound is
first-order in the error of ``grad loss``), which is why the local solver is
second order.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from convexnn.solvers.base import Neurons, ProblemShape, SDPProblem, SolverOutput, Status
from convexnn.solvers.certificate import DualBound, dual_bound, relative_gap

logger = logging.getLogger("convexnn")

#: Direct Gauss-Newton solves while the dense Jacobian has at most this many entries.
DIRECT_JACOBIAN_ENTRIES = 40_000_000

#: Rounds without a 1% improvement of the certified gap before giving up.
STALL_ROUNDS = 30


@dataclass
class NeuronState:
    """The iterate: neuron vectors, signs, regions and outputs."""

    V: torch.Tensor  # (m, h)
    signs: torch.Tensor  # (m,)
    regions: torch.Tensor  # (m,) long
    outputs: torch.Tensor  # (m,) long

    @property
    def width(self) -> int:
        return self.V.shape[0]

    def select(self, keep: torch.Tensor) -> NeuronState:
        return NeuronState(self.V[keep], self.signs[keep], self.regions[keep], self.outputs[keep])

    def extended(self, V, signs, regions, outputs) -> NeuronState:
        return NeuronState(
            torch.cat([self.V, V]),
            torch.cat([self.signs, signs]),
            torch.cat([self.regions, regions]),
            torch.cat([self.outputs, outputs]),
        )


class NeuronModel:
    """Predictions, objective and Jacobian products of a :class:`NeuronState`."""

    def __init__(
        self, patches: torch.Tensor, targets: torch.Tensor, coefficients, beta: float, loss
    ):
        self.patches = patches
        self.n, self.n_regions, self.pool, self.h = patches.shape
        self.flat = patches.reshape(-1, self.h)
        self.targets = targets
        self.n_outputs = targets.shape[1]
        self.a, self.b, self.c = coefficients
        self.beta = beta
        self.loss = loss

    # -- forward -------------------------------------------------------------
    def _gather(self, T: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """``(n, R, P, m)`` products to each neuron's own region: ``(n, P, m)``."""
        if self.n_regions == 1:
            return T[:, 0]
        index = regions.view(1, 1, 1, -1).expand(self.n, 1, self.pool, -1)
        return T.gather(1, index)[:, 0]

    def projections(self, W: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        T = (self.flat @ W.T).reshape(self.n, self.n_regions, self.pool, -1)
        return self._gather(T, regions)

    def forward(self, state: NeuronState):
        """Predictions ``(n, C)`` and the cache ``(t, nu)``."""
        t = self.projections(state.V, state.regions)  # (n, P, m)
        nu = state.V.norm(dim=1)
        phi = self.a * (t * t).mean(dim=1) + self.b * nu * t.mean(dim=1) + self.c * nu * nu
        yhat = torch.zeros((self.n, self.n_outputs), dtype=t.dtype, device=t.device)
        yhat.index_add_(1, state.outputs, phi * state.signs)
        return yhat, (t, nu)

    def objective(self, state: NeuronState, yhat: torch.Tensor) -> float:
        penalty = float((state.V * state.V).sum())
        return float(self.loss.value(yhat, self.targets)) + self.beta * penalty

    # -- derivatives ---------------------------------------------------------
    def vjp(self, state: NeuronState, cache, w: torch.Tensor) -> torch.Tensor:
        """``J^T w`` for ``w`` of shape ``(n, C)``; result ``(m, h)``."""
        t, nu = cache
        omega = w[:, state.outputs] * state.signs  # (n, m)
        kappa = omega[:, None, :] * (2 * self.a * t + self.b * nu) / self.pool  # (n, P, m)
        if self.n_regions == 1:
            G = kappa.reshape(-1, kappa.shape[2]).T @ self.flat
        else:
            full = torch.zeros(
                (self.n, self.n_regions, self.pool, kappa.shape[2]), dtype=t.dtype, device=t.device
            )
            index = state.regions.view(1, 1, 1, -1).expand(self.n, 1, self.pool, -1)
            full.scatter_(1, index, kappa[:, None])
            G = full.reshape(-1, kappa.shape[2]).T @ self.flat
        radial = self.b * (omega * t.mean(dim=1)).sum(dim=0) / nu + 2 * self.c * omega.sum(dim=0)
        return G + radial[:, None] * state.V

    def jvp(self, state: NeuronState, cache, D: torch.Tensor) -> torch.Tensor:
        """``J D`` for a direction ``D`` of shape ``(m, h)``; result ``(n, C)``."""
        t, nu = cache
        t_dir = self.projections(D, state.regions)
        nu_dir = (state.V * D).sum(dim=1) / nu
        phi = (
            2 * self.a * (t * t_dir).mean(dim=1)
            + self.b * (nu_dir * t.mean(dim=1) + nu * t_dir.mean(dim=1))
            + 2 * self.c * nu * nu_dir
        )
        out = torch.zeros((self.n, self.n_outputs), dtype=t.dtype, device=t.device)
        out.index_add_(1, state.outputs, phi * state.signs)
        return out

    def gradient(self, state: NeuronState, yhat: torch.Tensor, cache) -> torch.Tensor:
        return (
            self.vjp(state, cache, self.loss.gradient(yhat, self.targets))
            + 2 * self.beta * state.V
        )

    def jacobian(self, state: NeuronState, cache) -> torch.Tensor:
        """Dense Jacobian of the outputs, ``(n, C, m h)`` (outputs of other neurons are 0)."""
        t, nu = cache
        m = state.width
        coefficient = (2 * self.a * t + self.b * nu) * state.signs / self.pool  # (n, P, m)
        J = torch.empty((self.n, m, self.h), dtype=t.dtype, device=t.device)
        for r in range(self.n_regions):
            members = (state.regions == r).nonzero().flatten()
            if len(members):
                J[:, members] = torch.einsum(
                    "npm,nph->nmh", coefficient[:, :, members], self.patches[:, r]
                )
        radial = (self.b * t.mean(dim=1) / nu + 2 * self.c) * state.signs  # (n, m)
        J += radial[:, :, None] * state.V[None]
        full = torch.zeros((self.n, self.n_outputs, m, self.h), dtype=t.dtype, device=t.device)
        full[:, state.outputs, torch.arange(m)] = J
        return full.reshape(self.n, self.n_outputs, m * self.h)

    def loss_curvature_root(self, yhat: torch.Tensor) -> torch.Tensor:
        """``H_i^{1/2}`` of the per-sample loss Hessians, ``(n, C, C)``."""
        C = self.n_outputs
        eye = torch.eye(C, dtype=yhat.dtype, device=yhat.device)
        columns = torch.stack(
            [
                self.loss.hessian_vector(yhat, self.targets, eye[k].expand_as(yhat))
                for k in range(C)
            ],
            dim=2,
        )  # (n, C, C): H_i e_k in column k
        values, vectors = torch.linalg.eigh(0.5 * (columns + columns.transpose(1, 2)))
        return (vectors * values.clamp(min=0).sqrt()[:, None, :]) @ vectors.transpose(1, 2)


def _gauss_newton(
    model: NeuronModel, state: NeuronState, *, max_steps: int, rtol: float, deadline: float
):
    """Damped Gauss-Newton (Levenberg-Marquardt) refinement of every neuron."""
    yhat, cache = model.forward(state)
    f = model.objective(state, yhat)
    damping = 1e-6
    steps = 0
    negligible = 0
    mu = 2 * model.beta
    for _ in range(max_steps):
        if time.monotonic() > deadline:
            break
        gradient = model.gradient(state, yhat, cache)
        direct = model.n * model.n_outputs * gradient.numel() <= DIRECT_JACOBIAN_ENTRIES
        if direct:
            solver = _DirectSystem(model, state, yhat, cache, mu)
        else:
            solver = _IterativeSystem(model, state, yhat, cache, mu)
        accepted = False
        while not accepted:
            step = solver.solve(gradient, damping)
            candidate = NeuronState(state.V + step, state.signs, state.regions, state.outputs)
            new_yhat, new_cache = model.forward(candidate)
            new_f = model.objective(candidate, new_yhat)
            predicted = -(float((gradient * step).sum()) + 0.5 * solver.quadratic(step))
            ratio = (f - new_f) / predicted if predicted > 0 else -1.0
            steps += 1
            # At the noise floor of f the ratio is meaningless; accept non-increasing steps.
            noise = 1e-14 * max(abs(f), 1.0)
            if ratio > 1e-4 or (abs(predicted) < noise and new_f <= f + noise):
                accepted = True
            else:
                damping = max(damping * 10.0, 1e-12)
                if damping > 1e12 or time.monotonic() > deadline:
                    return state, yhat, cache, f, steps
        decrease = f - new_f
        state, yhat, cache, f = candidate, new_yhat, new_cache, new_f
        damping = damping * (0.2 if ratio > 0.75 else 1.0 if ratio > 0.25 else 5.0)
        damping = max(damping, 1e-15)
        # Stationarity, not the objective, decides the certificate: keep stepping
        # through a few negligible decreases (Gauss-Newton still moves the gradient).
        negligible = negligible + 1 if decrease <= rtol * max(abs(f), 1e-300) else 0
        if negligible >= 3:
            break
    return state, yhat, cache, f, steps


class _DirectSystem:
    """``(J^T H J + (mu + damping) I) step = -g`` by Cholesky on the smaller side."""

    def __init__(self, model: NeuronModel, state: NeuronState, yhat, cache, mu: float):
        root = model.loss_curvature_root(yhat)  # (n, C, C)
        J = model.jacobian(state, cache)  # (n, C, p)
        self.J = (root @ J).reshape(-1, J.shape[2])  # rows: weighted outputs
        self.mu = mu
        self.shape = state.V.shape
        rows, cols = self.J.shape
        self.primal = cols <= rows
        self.gram = self.J.T @ self.J if self.primal else self.J @ self.J.T

    def solve(self, gradient: torch.Tensor, damping: float) -> torch.Tensor:
        g = gradient.reshape(-1)
        shift = self.mu + damping
        A = self.gram.clone()
        A.diagonal().add_(shift)
        factor, info = torch.linalg.cholesky_ex(A)
        if int(info) != 0:
            A.diagonal().add_(1e-10 * float(A.diagonal().abs().max()))
            factor = torch.linalg.cholesky(A)
        if self.primal:
            step = -torch.cholesky_solve(g[:, None], factor)[:, 0]
        else:
            inner = torch.cholesky_solve((self.J @ g)[:, None], factor)[:, 0]
            step = -(g - self.J.T @ inner) / shift
        return step.reshape(self.shape)

    def quadratic(self, step: torch.Tensor) -> float:
        s = step.reshape(-1)
        Js = self.J @ s
        return float(Js @ Js) + self.mu * float(s @ s)


class _IterativeSystem:
    """The same system by Jacobi-preconditioned conjugate gradients (matrix-free)."""

    def __init__(self, model: NeuronModel, state: NeuronState, yhat, cache, mu: float):
        self.model, self.state, self.yhat, self.cache, self.mu = model, state, yhat, cache, mu
        t, nu = cache
        ones = torch.ones_like(yhat)
        weights = model.loss.hessian_vector(yhat, model.targets, ones)[:, state.outputs]  # (n, m)
        scale = ((2 * model.a * t + model.b * nu) / model.pool).pow(2).sum(dim=1) * weights
        if model.n_regions == 1:
            self.diagonal = scale.T @ model.flat.pow(2)
        else:
            squares = model.patches.pow(2).sum(dim=2)  # (n, R, h), an upper bound per pool
            self.diagonal = torch.stack(
                [scale[:, j] @ squares[:, int(state.regions[j])] for j in range(state.width)]
            )
        self.diagonal = self.diagonal + mu

    def hessian(self, D: torch.Tensor) -> torch.Tensor:
        JD = self.model.jvp(self.state, self.cache, D)
        HJD = self.model.loss.hessian_vector(self.yhat, self.model.targets, JD)
        return self.model.vjp(self.state, self.cache, HJD) + self.mu * D

    def solve(self, gradient: torch.Tensor, damping: float, max_iter: int = 30) -> torch.Tensor:
        precond = self.diagonal + damping
        x = torch.zeros_like(gradient)
        r = -gradient
        z = r / precond
        p = z.clone()
        rz = float((r * z).sum())
        initial = math.sqrt(max(rz, 0.0))
        for _ in range(max_iter):
            Hp = self.hessian(p) + damping * p
            curvature = float((p * Hp).sum())
            if curvature <= 0:
                break
            step = rz / curvature
            x = x + step * p
            r = r - step * Hp
            z = r / precond
            rz_new = float((r * z).sum())
            if math.sqrt(max(rz_new, 0.0)) <= min(0.5, math.sqrt(initial)) * initial:
                break
            p = z + (rz_new / rz) * p
            rz = rz_new
        return x

    def quadratic(self, step: torch.Tensor) -> float:
        return float((step * self.hessian(step)).sum())


def _line_search_weight(
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
        return float(g @ atom)

    slope = derivative(0.0)
    if abs(slope) <= model.beta:
        return 0.0
    sign = -math.copysign(1.0, slope)

    def along(s: float) -> float:  # derivative of the objective along the signed ray
        return sign * derivative(sign * s) + model.beta

    curvature = float(
        (model.loss.hessian_vector(yhat, model.targets, direction)[:, output] * atom).sum()
    )
    scale = float(atom @ atom)
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


def _initial_state(
    problem_shape: ProblemShape, warm_start: SolverOutput | None, dtype, device
) -> NeuronState:
    h = problem_shape.patch_size
    empty = NeuronState(
        torch.zeros((0, h), dtype=dtype, device=device),
        torch.zeros(0, dtype=dtype, device=device),
        torch.zeros(0, dtype=torch.long, device=device),
        torch.zeros(0, dtype=torch.long, device=device),
    )
    if warm_start is None:
        return empty
    C = problem_shape.n_outputs
    if warm_start.neurons is not None:
        neurons = warm_start.neurons
        weights = np.asarray(neurons.alpha, dtype=float)
        keep = np.abs(weights) > 0
        V = np.asarray(neurons.U, dtype=float)[keep] * np.sqrt(np.abs(weights[keep]))[:, None]
        blocks = np.asarray(neurons.blocks)[keep]
        signs = np.sign(weights[keep])
    elif warm_start.blocks is not None:
        rows, signs_list, blocks_list = [], [], []
        for index, pair in enumerate(warm_start.blocks):
            for matrix, sign in zip(pair, (1.0, -1.0)):
                values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
                top = values.max() if len(values) else 0.0
                for value, vector in zip(values, vectors.T):
                    if top > 0 and value > 1e-8 * top:
                        # p = [v; t]: neuron sign(t) v / ||v|| with weight ||v|| |t|
                        p = vector * math.sqrt(value)
                        norm = max(float(np.linalg.norm(p[:-1])), 1e-300)
                        direction = math.copysign(1.0, p[-1]) * p[:-1] / norm
                        rows.append(direction * math.sqrt(norm * abs(p[-1])))
                        signs_list.append(sign)
                        blocks_list.append(index)
        if not rows:
            return empty
        V, signs, blocks = np.array(rows), np.array(signs_list), np.array(blocks_list)
    else:
        return empty
    if V.shape[1] != h or (len(blocks) and blocks.max() >= problem_shape.n_blocks):
        logger.warning("native: warm start does not match the problem's shape; starting cold")
        return empty
    return NeuronState(
        torch.as_tensor(V, dtype=dtype, device=device),
        torch.as_tensor(signs, dtype=dtype, device=device),
        torch.as_tensor(blocks // C, dtype=torch.long, device=device),
        torch.as_tensor(blocks % C, dtype=torch.long, device=device),
    )


def solve_neurons(
    problem: SDPProblem,
    *,
    tol: float,
    max_iter: int,
    deadline: float,
    device: torch.device,
    dtype: torch.dtype,
    max_neurons: int | None,
    warm_start: SolverOutput | None,
    progress,
) -> SolverOutput:
    """Run the neurons engine (see the module docstring)."""
    shape = ProblemShape.of(problem)
    patches = torch.as_tensor(problem.patches, dtype=dtype, device=device)
    targets = torch.as_tensor(problem.targets, dtype=dtype, device=device)
    model = NeuronModel(patches, targets, problem.coefficients, problem.beta, problem.loss)
    state = _initial_state(shape, warm_start, dtype, device)
    cap = max_neurons or 4 * shape.n_blocks * (shape.patch_size + 1)
    best: tuple[float, float, NeuronState, DualBound] | None = None
    best_round = 0
    status, message = Status.ITERATION_LIMIT, "iteration limit reached"
    rounds = 0
    local_steps = 0
    start = time.monotonic()
    try:
        for rounds in range(max_iter + 1):
            if state.width:
                # Far from optimal a few Gauss-Newton steps per round suffice (the next
                # neuron changes the landscape anyway); near it, polish for the certificate.
                effort = 50 if best is None or best[0] < 1e-3 else 10
                state, _, _, _, steps = _gauss_newton(
                    model, state, max_steps=effort, rtol=1e-12, deadline=deadline
                )
                local_steps += steps
                state = _prune(state)
            yhat, _ = model.forward(state)
            f = model.objective(state, yhat)
            v = problem.loss.gradient(yhat, targets)
            bound = dual_bound(
                patches.double(), targets.double(), v.double(),
                problem.coefficients, problem.beta, problem.loss,
            )
            gap = relative_gap(f, bound.lower_bound)
            # Best certified point; on a tie (e.g. beta = 0, where every bound is 0) the lower
            # objective.
            if (
                best is None
                or (gap, f) < (best[0] * (1 - 1e-3), best[1])
                or (gap <= best[0] and f < best[1])
            ):
                if best is None or gap < 0.99 * best[0]:
                    best_round = rounds
                best = (gap, f, state, bound)
            violation = bound.constraint / problem.beta - 1 if problem.beta > 0 else math.inf
            logger.info(
                "native neurons round %d: objective %.10g, certified gap %.2e, violation %.2e, "
                "%d neurons, %d local steps, %.1fs",
                rounds, f, gap, violation, state.width, local_steps, time.monotonic() - start,
            )
            if progress is not None:
                progress.set_postfix_str(f"objective {f:.8g} gap {gap:.1e} neurons {state.width}")
                progress.update(1)
            if gap <= tol:
                status, message = Status.OPTIMAL, f"certified gap {gap:.2e} after {rounds} rounds"
                break
            if rounds == max_iter:
                break
            if time.monotonic() > deadline:
                status, message = Status.TIME_LIMIT, "time limit reached"
                break
            if rounds - best_round >= STALL_ROUNDS:
                message = f"stalled: no certified progress in {STALL_ROUNDS} rounds"
                break
            if state.width < cap:
                state = _add_neurons(model, state, yhat, bound)
    except KeyboardInterrupt:
        if best is None:
            raise
        status, message = Status.INTERRUPTED, "interrupted; returning the best point"
    gap, f, state, bound = best
    if status is Status.OPTIMAL and gap > tol:
        status = Status.OPTIMAL_INACCURATE
    nu = state.V.norm(dim=1)
    filters = (state.V / nu.clamp(min=1e-300)[:, None]).double().cpu().numpy()
    weights = (state.signs * nu * nu).double().cpu().numpy()
    blocks = (state.regions * shape.n_outputs + state.outputs).cpu().numpy()
    return SolverOutput(
        status=status,
        objective=f,
        iterations=rounds,
        solve_time=0.0,
        neurons=Neurons(U=filters, alpha=weights, blocks=blocks),
        lower_bound=bound.lower_bound,
        message=message,
        stats={"relative_gap": gap, "local_steps": local_steps, "neurons": state.width},
    )


def _prune(state: NeuronState) -> NeuronState:
    """Drop neurons whose weight vanished (they carry no function and stall Newton)."""
    if state.width == 0:
        return state
    weights = (state.V * state.V).sum(dim=1)
    keep = weights > 1e-9 * float(weights.max())
    return state.select(keep) if not bool(keep.all()) else state


def _add_neurons(
    model: NeuronModel, state: NeuronState, yhat: torch.Tensor, bound: DualBound
) -> NeuronState:
    """Add the oracle's neuron of every violated block, with line-searched weights."""
    oracle = bound.oracle
    order = np.argsort(-oracle.bounds)
    new_V, new_signs, new_regions, new_outputs = [], [], [], []
    C = model.n_outputs
    for block in order:
        if oracle.bounds[block] <= model.beta:
            break
        region, output = divmod(int(block), C)
        u = torch.as_tensor(oracle.directions[block], dtype=state.V.dtype, device=state.V.device)
        t = (model.patches[:, region] @ u)  # (n, P)
        atom = (model.a * t * t + model.b * t + model.c).mean(dim=1)
        weight = _line_search_weight(model, yhat, atom, output)
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
        torch.stack(new_V),
        torch.tensor(new_signs, dtype=dtype, device=device),
        torch.tensor(new_regions, dtype=torch.long, device=device),
        torch.tensor(new_outputs, dtype=torch.long, device=device),
    )
