"""Local refinement of every neuron: the neurons engine's second-order steps.

Two solvers, chosen by size (:func:`refine`):

* **direct Newton** (Levenberg-Marquardt) with the dense Jacobian and the
  Hessian's second-order blocks, solved by Cholesky on the smaller side
  (``min(p, nC)``, ``p = m h``; the exact matrix shifted into positive
  definiteness where it is indefinite, Gauss-Newton where that takes more than
  its largest diagonal entry or the Jacobian is wider than tall): robust and
  fast while the Jacobian is small;
* **Newton-CG with a trust region** (Steihaug-Toint) on exact
  Hessian-vector products (:meth:`NeuronModel.hessian_product`, two passes
  over the data each, ``O(n R P h m)``): never a dense Jacobian, and the
  exact Hessian (not Gauss-Newton) converges quadratically near a
  minimiser, which a tight certificate needs (the dual bound is first-order
  in the error of ``grad loss``). Negative curvature (saddles, e.g. just
  after neurons are added) is followed to the trust-region boundary.

:func:`refine_in_span` then takes the same steps within the span of the
neurons' own vectors, where the problem is exact and small (see there).

Both stop on a step budget, a time limit, or three successive relative
decreases below ``rtol``. Time is read from the model's communicator, so
the ranks of a data-parallel solve stop at the same step; such a solve
always uses Newton-CG (the direct solver's Gram matrix is ``(m h)^2`` or
``n^2``, too much to all-reduce).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from convexnn.solvers.native._model import NeuronModel, NeuronState

#: Direct Gauss-Newton solves while the dense Jacobian has at most this many entries ...
DIRECT_JACOBIAN_ENTRIES = 40_000_000

#: ... and its Gram matrix costs at most this many multiply-adds (rows * cols * min) ...
DIRECT_GRAM_FLOPS = 2_000_000_000

#: ... and has at most this many rows and columns (min(rows, cols)). Larger systems are
#: cheap enough to solve directly at small n, but their damped steps crawl along curved
#: valleys where Newton-CG's trust region does not: on 10-class digits (cross-entropy,
#: n = 240, 8-13 neurons of 65 weights) one entering neuron took 65 damped steps, and
#: bench_cv's CV took 46.4 s with direct steps up to 2e9 multiply-adds, 24.7 s with this
#: gate. Smaller systems keep their direct steps: with Newton-CG everywhere, one fold's
#: planted Huber path took 3.2 s instead of 0.7 s.
DIRECT_MAX_UNKNOWNS = 512

#: Copies of the dense Jacobian a direct step holds at once: measured 3.5-4.8 with freed
#: memory returned to the system (n = 20000-60000, h = 11-31, one output).
JACOBIAN_COPIES = 5


@dataclass
class LocalResult:
    """The refined state, its predictions, cache and objective, and the work done."""

    state: NeuronState
    yhat: torch.Tensor
    cache: tuple
    objective: float
    steps: int
    products: int  # Hessian-vector products (Newton-CG) or factorisations (direct)
    radius: float | None = None


def uses_direct(model: NeuronModel, state: NeuronState, memory_left: int | None = None) -> bool:
    """Whether the dense Jacobian of ``state`` is small enough for direct solves (never in
    a data-parallel solve), and its working set (:func:`direct_bytes`) fits in
    ``memory_left`` bytes when that is given."""
    if model.comm.distributed:
        return False
    rows, cols = model.n * model.n_outputs, state.V.numel()
    side = min(rows, cols)
    if rows * cols > DIRECT_JACOBIAN_ENTRIES or rows * cols * side > DIRECT_GRAM_FLOPS \
            or side > DIRECT_MAX_UNKNOWNS:
        return False
    return memory_left is None or direct_bytes(rows, cols, state.V.element_size()) <= memory_left


def direct_bytes(rows: int, cols: int, itemsize: int = 8) -> int:
    """Bytes a direct step holds at once: copies of the ``rows x cols`` Jacobian (the
    per-neuron one, its weighted products, the dense one of several outputs) and three
    Gram-sized matrices (Gram, shifted matrix, Cholesky factor)."""
    return itemsize * (JACOBIAN_COPIES * rows * cols + 3 * min(rows, cols) ** 2)


def refine(
    model: NeuronModel,
    state: NeuronState,
    *,
    method: str,
    max_steps: int,
    max_products: int,
    rtol: float,
    deadline: float,
    radius: float | None = None,
    memory_left: int | None = None,
) -> LocalResult:
    """Refine ``state`` with ``method`` (``"direct"``, ``"newton-cg"`` or ``"auto"``).

    ``auto`` takes direct steps only where their Jacobian fits in ``memory_left`` bytes
    (what the memory plan leaves at this width), Newton-CG otherwise.
    """
    if _takes_direct_steps(model, state, method, memory_left):
        return gauss_newton(model, state, max_steps=max_steps, rtol=rtol, deadline=deadline)
    return newton_cg(
        model, state, max_steps=max_steps, max_products=max_products, rtol=rtol,
        deadline=deadline, radius=radius,
    )


#: The span of the neurons is used while its dimension is at most this share of ``h``.
SPAN_MAX_SHARE = 0.5


def refine_in_span(
    model: NeuronModel,
    result: LocalResult,
    *,
    method: str,
    max_steps: int,
    max_products: int,
    rtol: float,
    deadline: float,
    memory_left: int | None = None,
) -> LocalResult:
    """``result`` refined by :func:`refine` within the span of its neurons' vectors.

    With ``Q`` an orthonormal basis of that span (dimension ``r``, at most the
    width), every neuron is ``v_j = Q w_j`` and the model of the patches
    ``x Q`` is the same objective in ``w``: exact, with ``r`` in place of
    ``h``. Its Newton systems are small enough to solve (directly, or by
    Newton-CG on products ``h / r`` times cheaper and free of the data's
    directions the neurons do not use), so the network becomes stationary
    within its span in a few steps, which is what the certificate needs of
    it: on image-like digits (n = 2000, h = 784, 27 neurons) the loss
    gradient certified a gap of 0.46 before ten steps within the span and
    2.2e-6 after them, which is what the exact (interior-point) optimum over
    that span certifies. The full-space steps of :func:`refine` still move the
    span itself. Skipped where :func:`refine` took direct steps (exact Newton
    on the whole problem already: on a planted Huber path the steps within
    the span only cost time) and where the span is more than
    :data:`SPAN_MAX_SHARE` of ``h`` (then it is nearly the full problem).
    """
    state = result.state
    if (not state.width or model.comm.now() >= deadline
            or _takes_direct_steps(model, state, method, memory_left)):
        return result
    basis = span_basis(state.V)
    if basis.shape[1] > SPAN_MAX_SHARE * model.h:
        return result
    in_span = NeuronModel(model.patches @ basis, model.targets, (model.a, model.b, model.c),
                          model.beta, model.loss, comm=model.comm, n_total=model.n_total)
    refined = refine(in_span, state.moved(state.V @ basis), method=method,
                     max_steps=max_steps, max_products=max_products, rtol=rtol,
                     deadline=deadline, memory_left=memory_left)
    state = state.moved(refined.state.V @ basis.T)
    yhat, cache = model.forward(state)
    return LocalResult(state, yhat, cache, model.objective(state, yhat),
                       result.steps + refined.steps, result.products + refined.products,
                       result.radius)


def span_basis(V: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis ``(h, r)`` of the span of the rows of ``V``, ``r`` its numerical
    rank (numpy's ``matrix_rank`` tolerance: the rows are in the span up to it)."""
    basis, values, _ = torch.linalg.svd(V.T, full_matrices=False)
    rank = int((values > torch.finfo(values.dtype).eps * max(V.shape) * values[0]).sum())
    return basis[:, :rank]


def _takes_direct_steps(model: NeuronModel, state: NeuronState, method: str,
                        memory_left: int | None) -> bool:
    """Whether :func:`refine` takes direct steps (else Newton-CG) with ``method``."""
    if method == "auto":
        return uses_direct(model, state, memory_left)
    return method == "direct" and not model.comm.distributed


def gauss_newton(
    model: NeuronModel, state: NeuronState, *, max_steps: int, rtol: float, deadline: float
) -> LocalResult:
    """Damped Newton (Levenberg-Marquardt) with direct solves (see :class:`_DirectSystem`)."""
    yhat, cache = model.forward(state)
    f = model.objective(state, yhat)
    damping = 1e-6
    steps = 0
    negligible = 0
    mu = 2 * model.beta
    system = None
    for _ in range(max_steps):
        if model.comm.now() > deadline:
            break
        gradient = model.gradient(state, yhat, cache)
        system = _DirectSystem(model, state, yhat, cache, mu,
                               None if system is None else system.shift_exponent)
        accepted = False
        while not accepted:
            step = system.solve(gradient, damping)
            candidate = state.moved(state.V + step)
            new_yhat, new_cache = model.forward(candidate)
            new_f = model.objective(candidate, new_yhat)
            predicted = -(float((gradient * step).sum()) + 0.5 * system.quadratic(step))
            ratio = (f - new_f) / predicted if predicted > 0 else -1.0
            steps += 1
            # At the noise floor of f the ratio is meaningless; accept non-increasing steps.
            noise = 1e-14 * max(abs(f), 1.0)
            if ratio > 1e-4 or (abs(predicted) < noise and new_f <= f + noise):
                accepted = True
            else:
                damping = max(damping * 10.0, 1e-12)
                if damping > 1e12 or model.comm.now() > deadline:
                    return LocalResult(state, yhat, cache, f, steps, steps)
        decrease = f - new_f
        state, yhat, cache, f = candidate, new_yhat, new_cache, new_f
        damping = damping * (0.2 if ratio > 0.75 else 1.0 if ratio > 0.25 else 5.0)
        damping = max(damping, 1e-15)
        # Stationarity, not the objective, decides the certificate: keep stepping
        # through a few negligible decreases (Gauss-Newton still moves the gradient).
        negligible = negligible + 1 if decrease <= rtol * max(abs(f), 1e-300) else 0
        if negligible >= 3:
            break
    return LocalResult(state, yhat, cache, f, steps, steps)


class _DirectSystem:
    """``(H + (mu + damping + shift) I) step = -g`` by Cholesky on the smaller side.

    ``H`` is the exact Hessian ``J^T H_loss J`` plus the per-neuron
    second-order blocks (:meth:`NeuronModel.curvature_blocks`) when the
    Jacobian has no more columns than rows, with the ``shift`` of
    :func:`_shifted_cholesky` where it is indefinite: Newton, which converges
    quadratically where Gauss-Newton (``J^T H_loss J`` alone, ``shift = 0``:
    when the Jacobian is wider than tall or no shift up to the largest
    diagonal entry makes the exact matrix positive definite) converges
    linearly -- slowly for losses whose residuals stay large at the optimum
    (logistic, cross-entropy: about ten steps per round on digits).
    """

    def __init__(self, model: NeuronModel, state: NeuronState, yhat, cache, mu: float,
                 shift_exponent: int | None = None):
        self.mu = mu
        # The exponent of the last shift (None: none was needed; 0 after a fall back to
        # Gauss-Newton); the next search starts two powers of ten below it, so a shift can
        # be up to 100x larger than needed while it falls along the steps.
        self.shift_exponent = shift_exponent
        self.shape = state.V.shape
        cols = state.V.numel()
        self.primal = cols <= model.n * model.n_outputs
        if self.primal:
            # Each column belongs to one neuron, hence to one output: J^T H J is assembled
            # per output from the (n, p) nonzeros, n p^2 operations instead of n C p^2.
            self.J = None
            self.gram = _output_weighted_gram(
                model.neuron_jacobian(state, cache).reshape(model.n, cols),
                state.outputs.repeat_interleave(state.V.shape[1]), model.loss_hessians(yhat))
        else:
            root = model.loss_curvature_root(yhat)  # (n, C, C)
            self.J = (root @ model.jacobian(state, cache)).reshape(-1, cols)  # weighted outputs
            self.gram = self.J @ self.J.T
        self.curvature = (
            torch.block_diag(*model.curvature_blocks(state, yhat, cache))
            if self.primal and state.width else None
        )
        self.exact = False  # whether the last solve used the second-order blocks

    def solve(self, gradient: torch.Tensor, damping: float) -> torch.Tensor:
        g = gradient.reshape(-1)
        shift = self.mu + damping
        factor = None
        if self.curvature is not None:
            A = self.gram + self.curvature
            A.diagonal().add_(shift)
            first = SHIFT_EXPONENTS[0] if self.shift_exponent is None else self.shift_exponent - 2
            factor, exponent, _ = _shifted_cholesky(A, first)  # None: Gauss-Newton
            self.shift_exponent = SHIFT_EXPONENTS[-1] if factor is None else exponent
        self.exact = factor is not None
        if factor is None:
            A = self.gram.clone()
            A.diagonal().add_(shift)
            # Positive semidefinite up to rounding, which a shift at the working precision
            # covers (a fixed 1e-10 of the diagonal is below float32's: Cholesky failed
            # again on features of scale 100).
            precision = math.ceil(math.log10(torch.finfo(A.dtype).eps)) + 1
            factor, _, added = _shifted_cholesky(A, max(precision, SHIFT_EXPONENTS[0]))
            if factor is None:
                raise torch.linalg.LinAlgError(
                    "the Gauss-Newton matrix is not positive definite at any shift up to its "
                    "largest diagonal entry")
            shift += added  # what the factor holds, for the Woodbury step below
        if self.primal:
            step = -torch.cholesky_solve(g[:, None], factor)[:, 0]
        else:
            inner = torch.cholesky_solve((self.J @ g)[:, None], factor)[:, 0]
            step = -(g - self.J.T @ inner) / shift
        return step.reshape(self.shape)

    def quadratic(self, step: torch.Tensor) -> float:
        s = step.reshape(-1)
        if self.primal:
            value = float(s @ (self.gram @ s)) + self.mu * float(s @ s)
        else:
            Js = self.J @ s
            value = float(Js @ Js) + self.mu * float(s @ s)
        if self.exact:
            value += float(s @ (self.curvature @ s))
        return value


#: Shifts tried by :func:`_shifted_cholesky`: ``10^e a`` for ``e`` in this range.
SHIFT_EXPONENTS = range(-10, 1)


def _shifted_cholesky(
    A: torch.Tensor, first: int = SHIFT_EXPONENTS[0]
) -> tuple[torch.Tensor | None, int | None, float | None]:
    """Cholesky factor of ``A + s I`` for the smallest ``s`` of ``0, 10^first a, ...,
    10^0 a`` (``a`` the largest absolute diagonal entry) that makes it positive
    definite, ``s``'s exponent (``None``: no shift) and ``s``; ``(None, None, None)`` if
    none does.

    ``A`` is modified in place. Near a minimiser the exact Hessian is indefinite only
    by curvature that vanishes at it (measured on the breast-cancer logistic path:
    smallest eigenvalues -0.2 to -0.01 against 250), so the shift vanishes too and
    the steps converge like Newton's. Gauss-Newton instead keeps the penalty's
    ``2 beta`` along those directions and crawls (4% less gradient per step): the
    path took 2.2x the time. ``first`` lets consecutive steps start near the last
    step's shift instead of trying every power from ``1e-10``.
    """
    largest = float(A.diagonal().abs().max())
    added = 0.0
    for exponent in [None, *range(max(first, SHIFT_EXPONENTS[0]), SHIFT_EXPONENTS[-1] + 1)]:
        shift = 0.0 if exponent is None else largest * 10.0 ** exponent
        A.diagonal().add_(shift - added)
        added = shift
        factor, info = torch.linalg.cholesky_ex(A)
        if int(info) == 0:
            return factor, exponent, shift
    return None, None, None


def _output_weighted_gram(
    J: torch.Tensor, outputs: torch.Tensor, hessians: torch.Tensor
) -> torch.Tensor:
    """``sum_i J_i^T H_i J_i`` where column ``q`` of ``J`` (``(n, p)``) is the derivative of
    output ``outputs[q]`` only and ``H_i`` (``(n, C, C)``) are the loss Hessians."""
    gram = torch.empty((J.shape[1], J.shape[1]), dtype=J.dtype, device=J.device)
    for k in outputs.unique().tolist():
        columns = (outputs == k).nonzero().flatten()
        gram[columns] = J[:, columns].T @ (J * hessians[:, k, outputs])
    return gram


def newton_cg(
    model: NeuronModel,
    state: NeuronState,
    *,
    max_steps: int,
    max_products: int,
    rtol: float,
    deadline: float,
    radius: float | None = None,
) -> LocalResult:
    """Trust-region Newton with Steihaug-Toint conjugate gradients (exact Hessian products).

    The inner solve is inexact: it stops at a residual of
    ``eta * ||g_0||`` with ``eta = min(0.5, sqrt(||g|| / ||g_first||))``
    (superlinear convergence), on negative curvature or at the boundary.
    ``radius`` (the previous call's final radius) warm-starts the region
    (at least ``1e-3 ||V||``).
    """
    yhat, cache = model.forward(state)
    f = model.objective(state, yhat)
    gradient = model.gradient(state, yhat, cache)
    first = max(float(gradient.norm()), 1e-300)
    scale = max(float(state.V.norm()), 1e-12)
    # A region carried over from the last round, but never so small that a round stalls.
    radius = 0.1 * scale if radius is None or not radius > 0 else max(radius, 1e-3 * scale)
    steps = products = negligible = 0
    while steps < max_steps and products < max_products and model.comm.now() < deadline:
        norm = float(gradient.norm())
        if norm == 0.0:
            break
        hessian = model.hessian_product(state, yhat, cache)
        eta = min(0.5, math.sqrt(norm / first))
        step, used, boundary = _steihaug(
            hessian, gradient, radius, eta, max_iter=max(1, max_products - products)
        )
        products += used + 1
        steps += 1
        candidate = state.moved(state.V + step)
        new_yhat, new_cache = model.forward(candidate)
        new_f = model.objective(candidate, new_yhat)
        predicted = -(float((gradient * step).sum()) + 0.5 * float((step * hessian(step)).sum()))
        ratio = (f - new_f) / predicted if predicted > 0 else -1.0
        if ratio < 0.25:
            radius *= 0.25
        elif ratio > 0.75 and boundary:
            radius *= 2.5
        noise = 1e-14 * max(abs(f), 1.0)
        if ratio > 1e-4 or (abs(predicted) < noise and new_f <= f + noise):
            decrease = f - new_f
            state, yhat, cache, f = candidate, new_yhat, new_cache, new_f
            gradient = model.gradient(state, yhat, cache)
            negligible = negligible + 1 if decrease <= rtol * max(abs(f), 1e-300) else 0
            if negligible >= 3:
                break
        if radius < 1e-14 * max(float(state.V.norm()), 1e-300):
            break
    return LocalResult(state, yhat, cache, f, steps, products, radius)


def _steihaug(hessian, gradient: torch.Tensor, radius: float, eta: float, max_iter: int):
    """Approximate ``argmin g^T s + s^T H s / 2`` over ``||s|| <= radius`` (CG-Steihaug).

    Returns the step, the number of Hessian products and whether it stopped
    at the boundary (negative curvature or a long step).
    """
    x = torch.zeros_like(gradient)
    r = -gradient
    p = r.clone()
    rr = float((r * r).sum())
    target = eta * math.sqrt(rr)
    for iteration in range(1, max_iter + 1):
        Hp = hessian(p)
        curvature = float((p * Hp).sum())
        if curvature <= 0:
            return x + _to_boundary(x, p, radius) * p, iteration, True
        alpha = rr / curvature
        candidate = x + alpha * p
        if float(candidate.norm()) >= radius:
            return x + _to_boundary(x, p, radius) * p, iteration, True
        x = candidate
        r = r - alpha * Hp
        rr_new = float((r * r).sum())
        if math.sqrt(rr_new) <= target:
            return x, iteration, False
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, max_iter, False


def _to_boundary(x: torch.Tensor, p: torch.Tensor, radius: float) -> float:
    """``tau >= 0`` with ``||x + tau p|| = radius``."""
    xp, pp, xx = float((x * p).sum()), float((p * p).sum()), float((x * x).sum())
    if pp == 0.0:
        return 0.0
    return (-xp + math.sqrt(max(xp * xp + pp * (radius * radius - xx), 0.0))) / pp
