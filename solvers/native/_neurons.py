"""The neurons engine: Burer-Monteiro over the network's neurons, certified.

The iterate is a set of neurons (:mod:`._model`). One round:

1. **refine** every neuron by second-order steps (:mod:`._local`): direct
   Newton while the dense Jacobian is small, else trust-region
   Newton-CG on exact Hessian-vector products (``O(n h m)`` each); then
   the same within the span of the neurons' vectors, an exact smaller problem;
2. **consolidate** (:mod:`._consolidate`): refit the output weights over the
   fixed directions (a convex problem; redundant neurons get weight zero),
   drop vanished neurons, and compress each block's neurons to the rank of
   its matrix ``Z``;
3. **certify** with the exact dual oracle in float64
   (:func:`convexnn.solvers.certificate.dual_bound`) -- every round when that
   is cheap, otherwise on a schedule that keeps certificates to about a
   quarter of the time, whenever the working-precision oracle says the
   target may be met, and at the end; stop once the certified relative gap
   is below ``tol``;
4. **add** the top-``k`` oracle directions of every violated block
   (:mod:`._oracle`), with line-searched weights, as far as memory allows
   (the width is checked against the memory budget before every addition).

Large problems (see :func:`is_large_problem`) run steps 1, 2 and 4 on float32
copies of the data while the certified gap is above
:data:`LOW_PRECISION_ABOVE`, then in float64; certificates are always float64.
The best primal point and the best lower bound are kept separately (a bound
certified at any round bounds the optimum), so the reported gap is
``best objective - best bound``.

Data-parallel (``comm``, :mod:`convexnn.solvers._distributed`): each rank
holds its rows; every sum over samples is all-reduced by the models, the
certificate's by :func:`~convexnn.solvers.certificate.dual_bound`'s
``reduce``; time and the memory cap are agreed over the ranks, so every rank
runs the same rounds and returns the same neurons.

Stationarity must be tight for a tight certificate (the dual bound is
first-order in the error of ``grad loss``), which is why the local solvers
are second order.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from convexnn.solvers._distributed import LOCAL, Communicator
from convexnn.solvers._memory import GrowthPlan, format_bytes
from convexnn.solvers.base import Neurons, ProblemShape, SDPProblem, SolverOutput, Status
from convexnn.solvers.certificate import DualBound, dual_bound, relative_gap
from convexnn.solvers.native import _dual
from convexnn.solvers.native._consolidate import compress, prune, refit_weights
from convexnn.solvers.native._dual import DualCuts
from convexnn.solvers.native._local import refine, refine_in_span
from convexnn.solvers.native._model import NeuronModel, NeuronState
from convexnn.solvers.native._oracle import Oracle, add_neurons

logger = logging.getLogger("convexnn")

#: Rounds without a 1% fall of the certified gap (objective - bound) before giving up.
STALL_ROUNDS = 30

#: Large problems use float32 passes while the best certified gap is above this.
LOW_PRECISION_ABOVE = 1e-3

#: Share of the solve time certificates may take when they are expensive.
CERTIFICATE_SHARE = 0.25

#: Far from the optimum, a round's local solve may take this many times the rest of the round.
LOCAL_SHARE = 3.0

#: Certificates cheaper than this (seconds) are computed every round.
CHEAP_CERTIFICATE = 0.5

#: ``n R P (h + 1)^2`` from which a problem is large (float32 passes, scheduled certificates).
LARGE_PROBLEM = 2_000_000_000


@dataclass(frozen=True)
class NeuronSettings:
    """Internal choices of the neurons engine (benchmarks switch them to measure each).

    Attributes
    ----------
    directions_per_block : int
        Oracle directions added per block and round (1: one neuron per round).
    refit : bool
        Fully corrective output weights over fixed directions every round.
    compress : bool
        Compress each block's neurons to the rank of its ``Z`` every round.
    local : {"auto", "direct", "newton-cg"}
        Local solver (``auto``: direct while the dense Jacobian is small).
    low_precision : bool or None
        float32 passes while the gap is large; ``None``: for large problems.
    keep_best_bound : bool
        Report the best bound of all rounds (else the last certified one).
    formed_oracle_max_h : int
        Form the oracle matrix up to this patch size; LOBPCG above.
    dual_cuts : bool
        Certify the gradient moved off the oracle directions it violates
        (:mod:`._dual`), not the gradient itself.
    refine_in_span : bool
        After the local steps, take them again within the span of the neurons
        (:func:`._local.refine_in_span`).
    """

    directions_per_block: int = 16
    refit: bool = True
    compress: bool = True
    local: str = "auto"
    low_precision: bool | None = None
    keep_best_bound: bool = True
    formed_oracle_max_h: int = 2048
    dual_cuts: bool = True
    refine_in_span: bool = True


DEFAULT_SETTINGS = NeuronSettings()


def is_large_problem(shape: ProblemShape) -> bool:
    """Whether one pass of the oracle matrix costs enough for float32 and scheduling."""
    side = shape.patch_size + 1
    size = shape.n_samples * shape.n_regions * shape.pool_size * side * side
    return size * shape.n_outputs >= LARGE_PROBLEM


def memory_plan(shape: ProblemShape, available: int, low_precision: bool) -> GrowthPlan:
    """Bytes of the engine: a base and a cost per neuron (grow-as-you-go).

    Base: the float64 patches (the caller's array), a float32 copy when
    passes run in float32, the certificate's temporary weighted copy of one
    region's patches, ``(h+1)^2`` oracle matrices with their eigenvectors,
    and the dual cuts (:func:`._dual.memory_bytes`). Per neuron: about eight
    ``n R P`` arrays of the working precision (projections, directions,
    adjoint coefficients), two more while the steps within the span run (the
    patches projected on it, of dimension at most the width, and the full
    steps' projections, still held; their own arrays are as large as the full
    steps': n = 4000, P = 50, h = 64, 24 neurons peaked at 239 MB without
    them, 317 MB with them),
    two float64 ``n`` arrays (refit, certificate), its dual cut and ``O(h)``.
    Not counted: the direct local steps' dense Jacobian, which the engine
    takes only where it fits in what the plan leaves
    (:func:`._local.uses_direct`).
    """
    n, regions, pool, h = (
        shape.n_samples, shape.n_regions, shape.pool_size, shape.patch_size,
    )
    entries = n * regions * pool * h
    working = 4 if low_precision else 8
    cuts_base, cuts_per_neuron = _dual.memory_bytes(n, regions * pool)
    base = (
        8 * entries
        + (4 * entries if low_precision else 0)
        + 8 * n * pool * h
        + 8 * 3 * shape.n_blocks * (h + 1) ** 2
        + cuts_base
    )
    per_neuron = working * (10 * n * regions * pool + 4 * h) + 8 * 2 * n + cuts_per_neuron
    return GrowthPlan(base=base, per_unit=per_neuron, available=available)


def stall_status(width: int, max_neurons: int | None,
                 memory_cap: int | None) -> tuple[Status, str]:
    """The status of a solve without certified progress at ``width``, and why.

    Held at ``max_neurons`` or at what memory allows, the optimum may need more
    neurons: a limit (``iteration_limit``). Anywhere else -- the engine's own cap
    included, twice the ``2 (h + 1)`` neurons an optimal block needs -- it is the
    engine's accuracy floor (``optimal_inaccurate``): a larger tol helps, not more
    rounds or time.
    """
    limits = [cap for cap in (max_neurons, memory_cap) if cap is not None]
    if limits and width >= min(limits):
        return Status.ITERATION_LIMIT, (
            f" at the width cap ({'max_neurons' if min(limits) == max_neurons else 'memory'})"
        )
    return Status.OPTIMAL_INACCURATE, ""


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
    memory: GrowthPlan | None = None,
    settings: NeuronSettings = DEFAULT_SETTINGS,
    on_round=None,
    comm: Communicator = LOCAL,
) -> SolverOutput:
    """Run the neurons engine (see the module docstring).

    ``memory`` caps the width (grow-as-you-go); ``on_round(record)`` is
    called with a dict after every round (benchmarks record the trace).
    ``comm`` makes the solve data-parallel: ``problem`` holds this rank's
    rows, ``deadline`` is this process's ``time.monotonic()`` deadline.
    """
    local_shape = ProblemShape.of(problem)
    shape = dataclasses.replace(local_shape, n_samples=int(comm.sum(local_shape.n_samples)))
    clock = comm.now
    deadline = comm.deadline(deadline)
    patches = torch.as_tensor(problem.patches, dtype=torch.float64, device=device)
    targets = torch.as_tensor(problem.targets, dtype=torch.float64, device=device)
    exact = NeuronModel(patches, targets, problem.coefficients, problem.beta, problem.loss,
                        comm=comm, n_total=shape.n_samples)
    low = settings.low_precision
    if low is None:
        low = is_large_problem(shape)
    fast = None
    if dtype == torch.float32 or low:
        fast = NeuronModel(patches.float(), targets.float(), problem.coefficients, problem.beta,
                           problem.loss, comm=comm, n_total=shape.n_samples)
    state = _initial_state(shape, warm_start, torch.float64, device)
    cap = max_neurons or 4 * shape.n_blocks * (shape.patch_size + 1)
    if state.width > cap:  # a warm start wider than max_neurons: its strongest neurons
        state = state.select(torch.argsort((state.V ** 2).sum(dim=1), descending=True)[:cap])
    if state.width and clock() < deadline:
        # A warm start (a neighbouring beta's network) first gets the output weights of
        # this beta over its directions, a convex refit: the local solve then starts
        # near the optimum (digits, cross-entropy: a 20-point path 23 s -> 16 s).
        state = _consolidated(exact, state, exact.objective(state, exact.forward(state)[0]),
                              settings)
    # The smallest rank's memory caps everyone's width (the ranks must add alike).
    memory_cap = int(comm.min(memory.max_width())) if memory is not None else None
    oracle = Oracle(settings.directions_per_block, settings.formed_oracle_max_h)
    tracker = _Best(settings.keep_best_bound)
    cuts = DualCuts(shape.patch_size) if settings.dual_cuts else None
    status, message = Status.ITERATION_LIMIT, "iteration limit reached"
    rounds = local_steps = products = 0
    radius = None
    certificate_cost = 0.0
    last_certificate = -math.inf
    capped = False
    per_block = settings.directions_per_block
    added = before_added = 0
    fixed_cost = local_time = 0.0
    previous_start = None
    start = clock()
    try:
        for rounds in range(max_iter + 1):
            in_float32 = fast is not None and (
                dtype == torch.float32 or tracker.gap > LOW_PRECISION_ABOVE
            )
            model = fast if in_float32 else exact
            state = state.to(model.dtype)
            round_start = clock()
            if previous_start is not None:  # what the last round cost besides its local solve
                fixed_cost = round_start - previous_start - local_time
            previous_start, local_time = round_start, 0.0
            if state.width and round_start < deadline:
                steps, budget = _local_effort(tracker.gap)
                # Leave time for the rest of the round and a last certificate: the solve
                # should end by the time limit, not one certificate after it.
                local_deadline = deadline - fixed_cost - certificate_cost
                if tracker.gap >= 1e-3 and fixed_cost > 0:
                    # Far from the optimum, refine for a few times what the rest of a
                    # round costs: more neurons soon beat a polished wrong width.
                    local_deadline = min(local_deadline, round_start + LOCAL_SHARE * fixed_cost)
                memory_left = (None if memory is None
                               else memory.available - memory.bytes_for(state.width))
                result = refine(
                    model, state, method=settings.local, max_steps=steps,
                    max_products=budget, rtol=1e-12, deadline=local_deadline, radius=radius,
                    memory_left=memory_left,
                )
                if settings.refine_in_span:
                    result = refine_in_span(
                        model, result, method=settings.local, max_steps=steps,
                        max_products=budget, rtol=1e-12, deadline=local_deadline,
                        memory_left=memory_left,
                    )
                local_time = clock() - round_start
                state, radius = result.state, result.radius
                local_steps += result.steps
                products += result.products
                state = _consolidated(model, state, result.objective, settings)
                if added:
                    # Directions that consolidation merged away were not new neurons:
                    # add fewer next time; when every one survived, add more.
                    survived = state.width - before_added
                    per_block = _adapted(per_block, added, survived, settings)
                    added = 0
            yhat, _ = model.forward(state)
            v = problem.loss.gradient(yhat, model.targets)
            oracle.per_block = max(per_block, 1)
            candidates = oracle.candidates(model, v) if state.width < cap else None
            if cuts is not None and candidates is not None:
                cuts.add(candidates.vectors, candidates.blocks)
            violation = (
                candidates.largest / problem.beta - 1 if candidates is not None else math.nan
            )
            now = clock()
            cheap = certificate_cost <= CHEAP_CERTIFICATE
            due = now - last_certificate >= certificate_cost * (1 / CERTIFICATE_SHARE - 1)
            final = now + 2 * certificate_cost + fixed_cost > deadline or rounds == max_iter
            if cheap or due or final or violation <= tol or candidates is None:
                t0 = clock()
                state64 = state.to(torch.float64)
                yhat64, _ = exact.forward(state64)
                f = exact.objective(state64, yhat64)
                dual = problem.loss.gradient(yhat64, targets)
                if cuts is not None:
                    # The neurons' own directions, where the constraint is tight at the optimum.
                    filters, _, blocks = state64.unit_neurons(shape.n_outputs)
                    dual = cuts.project(exact, dual, (filters, blocks))
                bound = dual_bound(
                    patches, targets, dual, problem.coefficients, problem.beta, problem.loss,
                    reduce=exact.reduce if comm.distributed else None,
                )
                if cuts is not None:
                    cuts.add(bound.oracle.directions, np.arange(shape.n_blocks))
                tracker.update(rounds, f, state64, bound)
                last_certificate = clock()
                certificate_cost = last_certificate - t0
            gap = tracker.gap
            elapsed = clock() - start
            logger.info(
                "native neurons round %d: objective %.10g, certified gap %.2e, violation %s, "
                "%d neurons, %d local steps (%d products), %s, %.1fs",
                rounds, model.objective(state, yhat), gap,
                # no oracle at the width cap: nothing to add (it read "violation nan")
                "n/a (width cap)" if candidates is None else f"{violation:.2e}",
                state.width, local_steps, products, "float32" if in_float32 else "float64",
                elapsed,
            )
            if progress is not None:
                progress.set_postfix_str(
                    f"gap {gap:.1e} width {state.width} objective {tracker.objective:.8g} "
                    f"{elapsed:.1f}s"
                )
                progress.update(1)
            if on_round is not None:
                on_round({
                    "round": rounds, "seconds": elapsed, "gap": gap,
                    "objective": tracker.objective, "lower_bound": tracker.lower_bound,
                    "width": state.width, "violation": violation, "float32": in_float32,
                })
            # An empty network within tol is still not returned while the oracle has a
            # direction that improves it (just below beta_max: the user expects a neuron).
            if gap <= tol and (state.width > 0 or not violation > 0):
                status, message = Status.OPTIMAL, f"certified gap {gap:.2e} after {rounds} rounds"
                break
            if rounds == max_iter:
                break
            if clock() + fixed_cost > deadline:  # no time for another round
                status, message = Status.TIME_LIMIT, "time limit reached"
                break
            if rounds - tracker.improved_round >= STALL_ROUNDS:
                status, why = stall_status(state.width, max_neurons, memory_cap)
                message = f"stalled: no certified progress in {STALL_ROUNDS} rounds{why}"
                break
            if candidates is None:
                continue
            if per_block == 0:
                per_block = 1  # a round of refinement only (see _adapted)
                continue
            room = min(cap - state.width, len(candidates.blocks))  # what this round would add
            if memory_cap is not None and state.width + room > memory_cap:
                room = max(memory_cap - state.width, 0)
                if not capped:
                    capped = True
                    logger.warning(
                        "native: memory caps the width at %d neurons (%s each, %s available)",
                        memory_cap, format_bytes(memory.per_unit), format_bytes(memory.available),
                    )
            if room > 0:
                before_added = state.width
                state = add_neurons(model, state, yhat, candidates, room)
                added = state.width - before_added
    except KeyboardInterrupt:
        if tracker.state is None:
            raise
        status, message = Status.INTERRUPTED, "interrupted; returning the best point"
    if status is Status.OPTIMAL and tracker.gap > tol:
        status = Status.OPTIMAL_INACCURATE
    if capped:
        message += f"; width capped at {memory_cap} neurons by memory"
    best = tracker.state
    if status is not Status.OPTIMAL and max_neurons is not None and best.width >= max_neurons:
        message += f"; width capped at max_neurons={max_neurons}"
    filters, weights, blocks = best.unit_neurons(shape.n_outputs)
    return SolverOutput(
        status=status,
        objective=tracker.objective,
        iterations=rounds,
        solve_time=0.0,
        neurons=Neurons(U=filters, alpha=weights, blocks=blocks),
        # The dual point of the best bound (of any round, this rank's rows): the
        # final network's own gradient can certify less than an earlier round did.
        dual_point=tracker.bound.point if tracker.bound is not None else None,
        lower_bound=tracker.lower_bound,
        message=message,
        stats={
            "relative_gap": tracker.gap, "local_steps": local_steps,
            "hessian_products": products, "neurons": best.width,
            "memory_width_cap": memory_cap,
        },
    )


class _Best:
    """The best certified primal point and the best lower bound seen so far."""

    def __init__(self, keep_best_bound: bool) -> None:
        self.keep_best_bound = keep_best_bound
        self.objective = math.inf
        self.state: NeuronState | None = None
        self.bound: DualBound | None = None
        self.gap = math.inf
        self.improved_round = 0
        # Progress is measured on the absolute gap: far from the optimum the bound is near 0
        # and the relative gap stays near 1 while the objective falls by orders of magnitude.
        self._progress = math.inf

    @property
    def lower_bound(self) -> float:
        return self.bound.lower_bound if self.bound is not None else -math.inf

    def update(self, round_: int, objective: float, state: NeuronState, bound: DualBound) -> None:
        if self.state is None or objective < self.objective:
            self.objective, self.state = objective, state
        if self.bound is None or not self.keep_best_bound or (
            bound.lower_bound > self.bound.lower_bound
        ):
            self.bound = bound
        self.gap = relative_gap(self.objective, self.lower_bound)
        absolute = self.objective - self.lower_bound
        if absolute < 0.99 * self._progress:
            self.improved_round, self._progress = round_, absolute


def _local_effort(gap: float) -> tuple[int, int]:
    """Local steps and Hessian products per round: loose far from the optimum, where the
    next neurons change the landscape anyway, tight near it, where the certificate needs
    stationarity."""
    if gap < 1e-3:
        return 50, 400
    return 10, 100


def _adapted(per_block: int, added: int, survived: int, settings: NeuronSettings) -> int:
    """Directions per block for the next round, from how many of the last ones survived.

    Halved when most were merged away, doubled when all survived; when even a single
    direction per block does not survive, the next round only refines (0), and the one
    after adds again (near the optimum, additions mostly perturb a converging solve).
    """
    if survived <= 0 and per_block <= 1:
        return 0
    if survived < added / 2:
        return max(1, per_block // 2)
    if survived >= added:
        return min(settings.directions_per_block, 2 * per_block)
    return per_block


def _consolidated(
    model: NeuronModel, state: NeuronState, objective: float, settings: NeuronSettings
) -> NeuronState:
    """Refit, prune and compress, keeping each step only if the objective does not rise."""
    noise = 1e-14 * max(abs(objective), 1.0)
    if settings.refit and state.width:
        refitted = refit_weights(model, state)
        f = model.objective(refitted, model.forward(refitted)[0]) if refitted.width else math.inf
        if f <= objective + noise:
            state, objective = refitted, f
    state = prune(state)
    if settings.compress and state.width:
        for rtol in (1e-3, 1e-6, 1e-10):
            smaller = compress(state, rtol)
            if smaller.width == state.width or smaller.width == 0:
                continue
            f = model.objective(smaller, model.forward(smaller)[0])
            if f <= objective + noise:
                state, objective = smaller, f
                break
    return state


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
