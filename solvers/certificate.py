"""The exact dual oracle and the duality-gap certificate (design notes, section 5).

For a dual point ``v`` (shape ``(n, C)``) the dual constraint of block
``(r, k)`` is ``max_{||u||=1} |h_rk(u)| <= beta`` with::

    h_rk(u) = u^T Q_rk u + q_rk^T u + c * sum_i v_ik
    Q_rk = (a/P) sum_i v_ik sum_p x_irp x_irp^T,   q_rk = (b/P) sum_i v_ik sum_p x_irp

a quadratic on the sphere (a trust-region subproblem with an equality
constraint). :func:`sphere_quadratic_max` solves it exactly from an
eigen-decomposition and returns an *upper bound* that is valid whatever the
accuracy of the root finding (weak duality of the subproblem), with margins for
the rounding of the eigenvalues and of the sums over samples
(:func:`summation_magnitudes`), so a scaled ``v`` is dual feasible for certain
and ``-loss.conjugate(v)`` is a true lower bound on the optimum (up to the
rounding of the conjugate's own sum, about ``n eps`` relative).

Every function that sums over samples takes ``reduce``: in a data-parallel
solve each rank passes its own rows and ``reduce`` completes the sums over
all ranks (the ``(h, h)`` matrices ``Q``, the vectors ``q``, the constants
and the conjugate's value: never an array of size ``n``); every rank then
gets the same bound.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from convexnn.solvers import _search
from convexnn.solvers.base import LossProtocol

_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)

#: Completes a sum over this process's samples (the identity in one process).
Reduce = Callable[[torch.Tensor], torch.Tensor]


def _identity(value: torch.Tensor) -> torch.Tensor:
    return value


def relative_gap(objective: float, lower_bound: float) -> float:
    """``(objective - lower_bound) / |objective|``: the gap every result reports (0 when
    both are 0).

    Relative at every scale: an absolute floor (it was 1e-12) certified any network
    of a problem whose objective is below 1e-18 (targets of scale 1e-10) as optimal.
    """
    return (objective - lower_bound) / max(abs(objective), _TINY)


@dataclass(frozen=True)
class SphereMax:
    """``max_{||u||=1} u^T Q u + q^T u``.

    Attributes
    ----------
    upper : float
        A certified upper bound on the maximum.
    value : float
        The objective at ``direction`` (a lower bound; equal to ``upper`` up to
        rounding at an exact solve).
    direction : ndarray of shape (h,)
        A unit vector attaining ``value``.
    """

    upper: float
    value: float
    direction: np.ndarray


def sphere_quadratic_max(
    eigenvalues: np.ndarray, eigenvectors: np.ndarray, q: np.ndarray
) -> SphereMax:
    """Maximise ``u^T Q u + q^T u`` over the unit sphere, ``Q = V diag(mu) V^T``.

    The maximiser is ``u = (lam I - Q)^{-1} q / 2`` with ``lam >= mu_max`` and
    ``||u|| = 1`` (the secular equation), solved by safeguarded Newton steps
    on ``1/||u(lam)|| - 1``; the hard case (``q`` orthogonal to the top
    eigenspace) is handled explicitly. For every ``lam > mu_max``,
    ``lam + q^T (lam I - Q)^{-1} q / 4`` bounds the maximum from above.
    """
    order = np.argsort(eigenvalues)[::-1]
    mu = np.asarray(eigenvalues, dtype=float)[order]
    vectors = np.asarray(eigenvectors, dtype=float)[:, order]
    g = vectors.T @ np.asarray(q, dtype=float)
    if not (np.any(mu) or np.any(g)):  # Q = 0 and q = 0: every u gives exactly 0
        return SphereMax(upper=0.0, value=0.0, direction=vectors[:, 0])
    scale = max(float(np.max(np.abs(mu))), float(np.max(np.abs(g))))  # (norm(g) overflows)
    # Solved for (Q, q) / scale, which has the same maximiser and values divided by
    # scale: at scales of 1e-300 squared eigenvalue gaps underflowed (0 / 0).
    mu, g = mu / scale, g / scale
    # Eigenvalues of a symmetric matrix are accurate to about eps * ||Q||.
    margin = 8 * _EPS * len(mu)
    top = mu >= mu[0] - 1e3 * _EPS
    g_top = float(np.linalg.norm(g[top]))
    g2 = g * g

    def secular(lam: float) -> float:
        return float(np.sum(g2 / (4 * (lam - mu) ** 2)))

    def upper_bound(lam: float) -> float:
        return float(lam + np.sum(g2 / (4 * (lam - mu))))

    rest = ~top
    hard = g_top <= 1e3 * _EPS and secular_rest(g2[rest], mu[rest], mu[0]) <= 1.0
    if hard:
        coeffs = np.zeros_like(mu)
        coeffs[rest] = g[rest] / (2 * (mu[0] - mu[rest]))
        coeffs[np.argmax(top)] = np.sqrt(max(0.0, 1.0 - float(coeffs @ coeffs)))
        lam = mu[0] + max(g_top / 2, margin)
    else:
        low = mu[0] + abs(float(g[0])) / 2
        high = max(mu[0] + float(np.linalg.norm(g)) / 2, low)
        psi_low = psi_high = None  # psi at the bracket's ends, once evaluated there
        lam = high
        for _ in range(100):
            phi = secular(lam)
            # The bound is quadratic in the root's error: 1e-12 is far below rounding.
            if abs(phi - 1.0) <= 1e-12:
                break
            # Newton on psi(lam) = 1/sqrt(phi) - 1, which is nearly linear.
            psi = 1 / np.sqrt(phi) - 1
            if phi > 1.0:
                low, psi_low = lam, psi
            else:
                high, psi_high = lam, psi
            dphi = -float(np.sum(g2 / (2 * (lam - mu) ** 3)))
            candidate = lam - psi / (-0.5 * phi**-1.5 * dphi)
            if not low < candidate < high and psi_low is not None and psi_high is not None:
                # Newton overshot the bracket (near the pole psi bends): the secant
                # between its ends converges where bisection would take 40 halvings.
                candidate = low - psi_low * (high - low) / (psi_high - psi_low)
                if not low < candidate < high:  # an end is the root to rounding
                    lam = low if -psi_low < psi_high else high
                    break
            if not low < candidate < high:
                # Bisection, geometric in the distance to the pole where the bracket
                # spans orders of magnitude (a nearly hard case: the root 1e-13 above
                # mu_max took 40 halvings).
                near, far = low - mu[0], high - mu[0]
                candidate = (mu[0] + np.sqrt(near * far) if 0 < 4 * near < far
                             else 0.5 * (low + high))
            lam = candidate
            if high - low <= 1e-15 * max(1.0, abs(lam)):
                break
        coeffs = g / (2 * (lam - mu))
        coeffs /= max(float(np.linalg.norm(coeffs)), 1e-300)
    direction = vectors @ coeffs
    value = float(coeffs @ (mu * coeffs) + g @ coeffs)
    upper = max(upper_bound(lam), value) + margin
    return SphereMax(upper=scale * upper, value=scale * value, direction=direction)


def secular_rest(g2: np.ndarray, mu: np.ndarray, mu_top: float) -> float:
    """``||u||^2`` of the hard-case candidate built from the non-top eigenpairs."""
    if g2.size == 0:
        return 0.0
    return float(np.sum(g2 / (4 * (mu_top - mu) ** 2)))


@dataclass(frozen=True)
class OracleResult:
    """The dual constraint's value for every block, with maximising neurons.

    Attributes
    ----------
    bounds : ndarray of shape (n_blocks,)
        Certified upper bounds on ``max_u |h_rk(u)|``.
    values : ndarray of shape (n_blocks,)
        ``|h_rk|`` at the returned directions (lower bounds).
    directions : ndarray of shape (n_blocks, h)
        Unit maximisers.
    signs : ndarray of shape (n_blocks,)
        ``+1`` where ``h_rk`` itself is maximal, ``-1`` where ``-h_rk`` is.
    """

    bounds: np.ndarray
    values: np.ndarray
    directions: np.ndarray
    signs: np.ndarray

    @property
    def max_bound(self) -> float:
        return float(np.max(self.bounds)) if self.bounds.size else 0.0


def block_quadratics(
    patches: torch.Tensor,
    v: torch.Tensor,
    coefficients: tuple[float, float, float],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(Q, q, const)`` of every block, shapes ``(B, h, h)``, ``(B, h)``, ``(B,)``."""
    a, b, c = coefficients
    n, regions, pool, h = patches.shape
    quads, lins, consts = [], [], []
    for r in range(regions):
        flat = patches[:, r].reshape(n * pool, h)
        weights = v.repeat_interleave(pool, dim=0) / pool  # (n*P, C)
        for k in range(v.shape[1]):
            weighted = flat * weights[:, k : k + 1]
            quads.append(a * (flat.T @ weighted))
            lins.append(b * weighted.sum(dim=0))
            consts.append(c * v[:, k].sum())
    return torch.stack(quads), torch.stack(lins), torch.stack(consts)


def summation_magnitudes(
    patches: torch.Tensor, v: torch.Tensor, coefficients: tuple[float, float, float]
) -> torch.Tensor:
    """``sum_i |v_ik| (|a| mean_p ||x_irp||^2 + |b| mean_p ||x_irp|| + |c|)`` per block ``(B,)``.

    Whatever the order of the sums over the ``n P`` patches of a region, the computed
    ``Q``, ``q`` and constant of a block differ from the exact ones by at most
    ``(n P + 3) eps`` times this (in ``||.||_2`` for ``Q``), and so does ``max_u |h(u)|``.
    """
    a, b, c = coefficients
    norms = torch.linalg.vector_norm(patches, dim=3)  # (n, R, P), no copy of the patches
    per_sample = abs(a) * (norms * norms).mean(dim=2) + abs(b) * norms.mean(dim=2) + abs(c)
    return (per_sample.T @ v.abs()).reshape(-1)  # (R, C): block r * C + k


def unit_normal(basis: Any) -> Any:
    """A unit vector orthogonal to the orthonormal columns of ``basis`` (``h x r``,
    ``r < h``; NumPy or torch): the coordinate axis farthest from their span
    (``||e_k - B B^T e_k||^2 = 1 - ||B[k]||^2 >= 1 - r / h``), less its part in it,
    orthogonalised once more against rounding."""
    axis = int((basis * basis).sum(1).argmin())
    normal = -(basis @ basis[axis])
    normal[axis] += 1.0
    normal = normal - basis @ (basis.T @ normal)
    return normal / (normal * normal).sum() ** 0.5


@dataclass(frozen=True)
class _PatchSpan:
    """An orthonormal basis ``B`` (``h x m``) of a span holding all ``m`` patches, a unit
    ``normal`` to it, and the measured error of taking them as exact (see
    :func:`_patch_span`)."""

    basis: torch.Tensor
    normal: torch.Tensor
    error: float


def _patch_span(patches: torch.Tensor) -> _PatchSpan | None:
    """The span of the ``m`` patches where ``m + 1 < h`` (wide data); else None.

    ``h_rk(u)`` depends on ``u`` only through ``x^T u``, and as ``u`` runs over the unit
    sphere of ``R^h``, ``(B^T u, the rest's norm)`` runs over the unit sphere of
    ``R^(m+1)``: the oracle is exact on the patches ``x B`` with a zero coordinate
    appended, in ``m + 1`` dimensions instead of ``h`` (3001 x 3001 eigenproblems took
    seconds each on 15 samples). In floating point each ``x^T u`` is then off by at
    most ``error ||x||``: what the patches stick out of the computed span, how far the
    basis and normal are from orthonormal (both measured, ``O(m^2 h)`` like the QR),
    and the ``h``-term inner products of ``x B``.
    """
    n, regions, pool, h = patches.shape
    m = n * regions * pool
    if m + 1 >= h:
        return None
    flat = patches.reshape(m, h)
    basis, _ = torch.linalg.qr(flat.T)  # (h, m)
    normal = unit_normal(basis)
    frame = torch.cat([basis, normal[:, None]], dim=1)
    outside = torch.linalg.vector_norm(flat - (flat @ basis) @ basis.T, dim=1)
    norms = torch.linalg.vector_norm(flat, dim=1)
    sticking_out = float((outside / torch.clamp(norms, min=_TINY)).max())
    skew = float(torch.linalg.matrix_norm(
        frame.T @ frame - torch.eye(m + 1, dtype=frame.dtype, device=frame.device)))
    error = sticking_out + skew + h * math.sqrt(m) * _EPS
    return _PatchSpan(basis, normal, error)


def dual_oracle(
    patches: torch.Tensor | np.ndarray,
    v: torch.Tensor | np.ndarray,
    coefficients: tuple[float, float, float],
    reduce: Reduce | None = None,
) -> OracleResult:
    """Solve ``max_{||u||=1} |h_rk(u)|`` exactly for every block (see module doc).

    ``reduce=None`` means one process: then, on wide data (fewer patches than
    features), the eigenproblems are solved in the patches' span (:func:`_patch_span`);
    a data-parallel solve's ranks hold only their own patches and use all ``h``.
    """
    patches_t = torch.as_tensor(patches, dtype=torch.float64)
    span = _patch_span(patches_t) if reduce is None else None
    reduce = reduce or _identity
    v_t = torch.as_tensor(v, dtype=torch.float64, device=patches_t.device)
    projected = patches_t
    if span is not None:
        projected = torch.nn.functional.pad(patches_t @ span.basis, (0, 1))
    quads, lins, consts = (
        reduce(part) for part in block_quadratics(projected, v_t, coefficients)
    )
    # The sums' rounding, added to every bound: eigenvalue errors are covered by the
    # sphere maximisation's own margin, these by none (relative to beta, 1e-10 to 1e-9
    # on 1000-2000 samples; far more with features of scale 1e4, where bounds exceeded
    # beta by 7e-6 without it). The magnitudes are the original patches'; in the span
    # each x^T u is off by span.error ||x|| (so its square by about twice that).
    terms = patches_t.shape[0] * patches_t.shape[2]  # each sum runs over samples x pool
    if span is not None:
        terms += math.ceil(2 * span.error / _EPS) + 1
    local = torch.cat([summation_magnitudes(patches_t, v_t, coefficients),
                       torch.tensor([float(terms)], dtype=torch.float64,
                                    device=patches_t.device)])
    magnitudes = reduce(local).cpu().numpy()
    rounding = (magnitudes[-1] + 3) * _EPS * magnitudes[:-1]
    quads = 0.5 * (quads + quads.transpose(1, 2))
    # Sums that overflowed (huge dual points or coefficients) bound nothing: such a block's
    # constraint is infinite, so only the zero dual point is known to be feasible.
    overflowed = ~(torch.isfinite(quads).flatten(1).all(dim=1) & torch.isfinite(lins).all(dim=1)
                   & torch.isfinite(consts))
    quads = torch.where(overflowed[:, None, None], torch.zeros_like(quads), quads)
    eigenvalues, eigenvectors = torch.linalg.eigh(quads)
    eigenvalues = eigenvalues.cpu().numpy()
    eigenvectors = eigenvectors.cpu().numpy()
    lins = lins.cpu().numpy()
    consts = consts.cpu().numpy()
    overflowed = overflowed.cpu().numpy()
    n_blocks = len(consts)
    bounds = np.empty(n_blocks)
    values = np.empty(n_blocks)
    signs = np.empty(n_blocks)
    directions = np.empty((n_blocks, lins.shape[1]))
    for block in range(n_blocks):
        if overflowed[block]:
            bounds[block] = values[block] = np.inf
            signs[block], directions[block] = 1.0, 0.0
            continue
        plus = sphere_quadratic_max(eigenvalues[block], eigenvectors[block], lins[block])
        minus = sphere_quadratic_max(-eigenvalues[block], eigenvectors[block], -lins[block])
        upper_plus, upper_minus = plus.upper + consts[block], minus.upper - consts[block]
        best, sign = (plus, 1.0) if upper_plus >= upper_minus else (minus, -1.0)
        bounds[block] = np.max([upper_plus, upper_minus, 0.0]) + rounding[block]  # NaN stays
        values[block] = abs(best.value + sign * consts[block])
        signs[block] = sign
        directions[block] = best.direction
    if span is not None:  # back to the features: the span's part and the normal rest
        reduced = torch.from_numpy(directions).to(span.basis)
        directions = (reduced[:, :-1] @ span.basis.T
                      + reduced[:, -1:] * span.normal).cpu().numpy()
    return OracleResult(bounds=bounds, values=values, directions=directions, signs=signs)


@dataclass(frozen=True)
class DualBound:
    """A certified lower bound on the optimum.

    Attributes
    ----------
    lower_bound : float
        ``-loss.conjugate(scale * v)`` with ``scale * v`` dual feasible.
    scale : float
        The factor applied to ``v``.
    constraint : float
        ``max_u |v^T sigma(X u)|`` before scaling (upper bound).
    oracle : OracleResult
        Of the projected point divided by its largest entry (one process): its
        ``directions`` are the maximising neurons, its values in those units.
    point : ndarray of shape (n, C)
        The dual feasible point ``scale * v`` (``v`` projected onto the
        conjugate's domain): ``-loss.conjugate(point) == lower_bound``.
    """

    lower_bound: float
    scale: float
    constraint: float
    oracle: OracleResult
    point: np.ndarray


def dual_bound(
    patches: torch.Tensor | np.ndarray,
    targets: torch.Tensor | np.ndarray,
    v: torch.Tensor | np.ndarray,
    coefficients: tuple[float, float, float],
    beta: float,
    loss: LossProtocol,
    reduce: Reduce | None = None,
) -> DualBound:
    """Scale ``v`` into the dual feasible set and return the best bound on that ray.

    ``v`` is first projected onto the conjugate's domain; then ``t * v`` is
    feasible for ``|t| <= beta / max_u |v^T sigma(X u)|``; the
    dual objective ``-loss.conjugate(t v)`` is concave in ``t`` and is
    maximised on that interval by Brent's method. ``reduce``
    completes the sums of a data-parallel solve (see the module docstring);
    ``point`` is then this rank's rows of the dual point, and the search
    over ``t`` evaluates batches of probes (one all-reduce each).
    """
    reduced = reduce is not None
    reduce = reduce or _identity
    patches_t = torch.as_tensor(patches, dtype=torch.float64)
    v_t = torch.as_tensor(v, dtype=torch.float64, device=patches_t.device)
    y_t = torch.as_tensor(targets, dtype=torch.float64, device=patches_t.device)
    v_t = loss.project_dual(v_t, y_t)
    # The scale search works near |t| = 1 (its cap, first probe and bracket): in units
    # of the projected point's largest entry, a squared, logistic or l1 point 1e-13 times
    # the optimal one is certified as well as the optimal one (it was cut off at
    # t = 1e12: 0.17-0.28 of the bound). The oracle's values are in these units too. A
    # sum all-reduce cannot give a data-parallel solve's largest entry: its points stay
    # as given (in the loss's own scale).
    peak = float(v_t.abs().max()) if v_t.numel() and not reduced else 0.0
    unit = peak if 0.0 < peak < np.inf else 1.0
    v_t = v_t / unit
    # reduce=None: one process (the oracle may then work in the patches' span)
    oracle = dual_oracle(patches_t, v_t, coefficients, reduce if reduced else None)
    constraint = oracle.max_bound
    if not constraint < np.inf:  # inf or NaN (overflow): only t = 0 is known feasible
        t_max = 0.0
    elif constraint > 0:
        t_max = min(beta / constraint, 1e12)
    else:
        t_max = unit  # t up to 1 times v as given (in its domain, after the projection)

    def dual_value(t: float) -> float:
        value = -float(reduce(torch.as_tensor(loss.conjugate(t * v_t, y_t),
                                              dtype=torch.float64)))
        return value if np.isfinite(value) else -np.inf

    # The constraint is symmetric in v, so all of [-t_max, t_max] is feasible; the
    # conjugate is finite on a sub-interval containing 0 (v as given is in its domain,
    # so [0, unit] too). The maximiser needs finite probes: find that interval, on the side
    # where the concave objective rises from 0 only (the other side's edge search took
    # 60 conjugate evaluations per bound, a fifth of a cross-entropy path's time).
    probe = 1e-6 * min(t_max, 1.0)
    if reduced:
        # One all-reduce per batch of probes instead of one per probe.
        def dual_values(ts: np.ndarray) -> np.ndarray:
            local = torch.stack([
                torch.as_tensor(loss.conjugate(float(t) * v_t, y_t), dtype=torch.float64)
                for t in ts
            ])
            return -reduce(local).cpu().numpy()

        at_zero, at_probe = dual_values(np.array([0.0, probe]))
        edge = functools.partial(_search.finite_edge, dual_values, t_max)
        maximise = functools.partial(_search.concave_max, dual_values)
    else:
        at_zero, at_probe = dual_value(0.0), dual_value(probe)
        edge = functools.partial(_domain_edge, dual_value, t_max)
        maximise = functools.partial(_concave_max, dual_value)
    low, high = (0.0, edge(sign=1.0)) if at_probe >= at_zero else (-edge(sign=-1.0), probe)
    scale, best = maximise(low, high)
    # Projected: within the conjugate's exact domain where t v overshoots its edge by the
    # rounding the conjugate forgives (an l1 point of max |v| = 1 + 1e-12 was +inf to an
    # exact check), as the conjugate evaluated it
    point = loss.project_dual(scale * v_t, y_t).cpu().numpy()
    return DualBound(  # the scale and constraint of the projected v as given
        lower_bound=best, scale=scale / unit, constraint=constraint * unit, oracle=oracle,
        point=point,
    )


def _domain_edge(function, limit: float, sign: float) -> float:
    """Largest ``s in [0, limit]`` with ``function(sign * s)`` finite (``function(0)`` is)."""
    if np.isfinite(function(sign * limit)):
        return limit
    inside, outside = 0.0, limit
    if limit > 1.0 and np.isfinite(function(sign * 1.0)):
        inside = 1.0
    for _ in range(60):
        middle = 0.5 * (inside + outside)
        if np.isfinite(function(sign * middle)):
            inside = middle
        else:
            outside = middle
    return inside


def _concave_max(function, low: float, high: float) -> tuple[float, float]:
    """Maximise a concave function, finite on ``[low, high]``, by Brent's method.

    About a dozen evaluations where golden-section search took 80 (it was
    most of a small problem's certificate). The maximum is often at ``high``,
    where the feasibility constraint binds: a function still rising there
    (concave: rising everywhere before) is settled with three evaluations.
    """
    from scipy.optimize import minimize_scalar

    candidates = {low: function(low), high: function(high)}
    if high > low:
        if function(high - 1e-9 * (high - low)) <= candidates[high]:
            return high, candidates[high]  # still rising at the end: the constraint binds
        low, high = _bracket_near_unit(function, low, high)
        found = minimize_scalar(lambda t: -function(t), bounds=(low, high), method="bounded",
                                options={"xatol": 1e-10 * (high - low)})
        candidates[float(found.x)] = -float(found.fun)
    scale = max(candidates, key=candidates.get)
    return scale, candidates[scale]


def _bracket_near_unit(function, low: float, high: float) -> tuple[float, float]:
    """A part of ``[low, high]`` (0 at one end, up to 1e12 long: a nearly feasible dual
    point of a large beta) holding the concave ``function``'s maximiser and at most 4x as
    long as its distance from 0, found by doubling or halving from ``|t| = 1``.

    Brent's tolerance is relative to the interval: on ``[0, 1e12]`` it missed a
    maximiser at 1 and the bound fell to 0.
    """
    sign, length = (1.0, high) if high >= -low else (-1.0, -low)
    if length <= 4.0:
        return low, high

    @functools.cache  # each step compares a point with the one before
    def along(s: float) -> float:
        return function(sign * s)

    m = 1.0
    if along(2.0) > along(1.0):
        m = 2.0
        while 2 * m < length and along(2 * m) > along(m):
            m *= 2
        near, far = m / 2, min(2 * m, length)
    else:
        while m > 1e-12 and along(m / 2) > along(m):
            m /= 2
        near, far = (m / 2 if m > 1e-12 else 0.0), 2 * m
    return (near, far) if sign > 0 else (-far, -near)


def best_dual_bound(
    patches: torch.Tensor | np.ndarray,
    targets: torch.Tensor | np.ndarray,
    dual_points: Iterable[torch.Tensor | np.ndarray],
    coefficients: tuple[float, float, float],
    beta: float,
    loss: LossProtocol,
    reduce: Reduce | None = None,
) -> DualBound:
    """The largest of :func:`dual_bound` over several candidate dual points."""
    bounds = [
        dual_bound(patches, targets, v, coefficients, beta, loss, reduce) for v in dual_points
    ]
    if not bounds:
        raise ValueError("best_dual_bound needs at least one dual point")
    return max(bounds, key=lambda bound: bound.lower_bound)
