"""The native solver: structure-exploiting, certified, on CPU or CUDA (PyTorch).

Generic conic solvers see the SDP as ``n`` dense affine maps of size
``(h+1)^2``. The native back-end never forms them. It has two engines:

``ipm``
    A primal-dual interior-point method for the squared loss whose Newton
    systems are ``n x n`` and assembled from Gram matrices
    (:mod:`._ipm`); memory ``O(n^2 + n h)``. Accurate (relative gaps of
    1e-7 and below) and robust to badly scaled data; used while the
    ``n x n`` matrices fit in memory.
``neurons``
    A Burer-Monteiro method over the network's neurons (:mod:`._neurons`):
    the top directions of the exact dual oracle are added several per
    round, all neurons are refined by second-order steps (matrix-free
    Newton-CG at scale), redundant ones are merged away, and the certified
    gap is tracked with the best bound seen; float32 passes while far from
    the optimum on large problems. Memory ``O(n h + h^2 + m (n + h))`` for
    ``m`` neurons, checked as neurons are added. Every smooth loss; the
    choice for large ``n``.

Wide data (fewer patch vectors than features) is solved exactly in the row
space of the patches, ``rank + 1`` dimensions (:mod:`._rowspace`), and the
solution is mapped back and certified on the original data.

Data-parallel (option ``distributed``): each rank of a ``torch.distributed``
process group passes its own rows; the neurons engine all-reduces every sum
over samples (:mod:`convexnn.solvers._distributed`) and every rank returns
the same neurons and certificate. The ``ipm`` engine (``n x n`` matrices)
and the row-space reduction (which needs every rank's rows) are not used
in that mode.

Whatever the engine, the returned solution carries a lower bound on the
optimum from the exact dual oracle (:mod:`convexnn.solvers.certificate`), so the
reported gap is certified, and the solver stops on a relative gap
tolerance, an iteration limit, a time limit or ``KeyboardInterrupt``,
always returning its best point with its certificate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from convexnn.solvers import _memory
from convexnn.solvers._checks import (
    BOOL,
    POSITIVE_INT,
    THREAD_COUNT,
    one_of,
    optional,
    without_unset,
)
from convexnn.solvers._distributed import (
    LOCAL,
    Communicator,
    communicator_for,
    is_distributed_option,
)
from convexnn.solvers.base import (
    LossNeed,
    LossProtocol,
    Neurons,
    ProblemShape,
    SDPProblem,
    SmoothLoss,
    Solver,
    SolverOutput,
    Status,
)
from convexnn.solvers.certificate import dual_bound, relative_gap
from convexnn.solvers.errors import InvalidSolverOptionError

logger = logging.getLogger("convexnn")

ENGINES = ("auto", "ipm", "neurons")


def _usable_device(value: Any) -> bool:
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        return False
    if device.type == "cuda":  # "cuda:7" on a one-GPU machine would fail inside the solve
        return torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    return device.type == "cpu"


def _ipm_solves(loss: LossProtocol) -> bool:
    """Whether the interior-point engine can minimise ``loss``.

    Its Newton systems are built for ``1/2 ||yhat - y||^2`` itself (identity
    loss Hessian, outputs that decouple), so the loss must say it is exactly
    that; being smooth or quadratic is not enough.
    """
    return getattr(loss, "squared_error", False) is True


#: ``auto``'s interior point stopped "optimal_inaccurate" above this certified gap goes
#: on with the neurons engine from its point.
IPM_RESCUE_GAP = 1e-3


def _ipm_needs_rescue(output: SolverOutput, options: Mapping[str, Any]) -> bool:
    """Whether ``auto``'s interior-point result goes on to the neurons engine: it failed,
    stopped at its own iteration cap (not one the caller set), or converged only above
    :data:`IPM_RESCUE_GAP`."""
    if output.status is Status.FAILED:
        return True
    if output.status is Status.ITERATION_LIMIT:
        return "max_iter" not in options
    return (output.status is Status.OPTIMAL_INACCURATE
            and output.stats["relative_gap"] > IPM_RESCUE_GAP)


def _ipm_reason(problem: SDPProblem) -> str | None:
    """Why the interior-point engine cannot solve ``problem`` (``None``: it can)."""
    if not _ipm_solves(problem.loss):
        return (f"engine='ipm' solves the squared loss only; the {problem.loss.name!r} loss "
                "needs engine='neurons' (or 'auto')")
    a, _, c = problem.coefficients
    if a == 0 and c == 0:
        # sigma(t) = b t: the lifted operator has neither a quadratic nor a constant part,
        # and the interior point's Newton systems are singular.
        return ("engine='ipm' needs an activation with a quadratic or constant term; "
                f"{tuple(problem.coefficients)} is linear: use engine='neurons' (or 'auto')")
    return None


class NativeSolver(Solver):
    """The structure-exploiting back-end (see the module docstring).

    Options (besides ``tol``, default 1e-6 relative certified gap,
    ``max_iter``, ``time_limit`` and ``verbose``, which shows a progress
    bar on stderr). ``max_iter`` bounds the neurons engine's rounds, and the
    interior point's iterations per output (one SDP each): its ``iterations``
    are their sum, up to ``C max_iter`` for ``C`` outputs.

    ``engine``: ``"auto"`` (default), ``"ipm"`` or ``"neurons"``.
    ``device``: ``"cpu"`` (default, also None), ``"cuda"`` or ``"cuda:i"``.
    ``dtype``: ``"float64"`` (default) or ``"float32"`` (the neurons engine; ``auto``
    then picks it).
    ``threads``: torch threads for the solve (default: torch's setting).
    ``max_neurons``: cap on the width (the neurons engine; ``auto`` then picks it).
    ``row_space``: solve wide data in the row space of the patches (default
    True; see :mod:`._rowspace` for the neurons it returns).
    ``distributed``: ``True`` (the default ``torch.distributed`` group), a
    ``ProcessGroup`` or a :class:`~convexnn.solvers._distributed.Communicator`:
    a data-parallel solve in which ``problem`` holds this rank's rows
    (neurons engine; see the module docstring).
    """

    name = "native"
    description = "native structure-exploiting solver (interior point / neurons; certified gap)"
    package = "torch"
    native_option_checks = MappingProxyType(
        {
            "engine": one_of(*ENGINES),
            "device": optional(("'cpu', or 'cuda' / 'cuda:i' where torch sees that CUDA "
                                "device", _usable_device)),
            "dtype": one_of("float64", "float32"),
            "threads": optional(THREAD_COUNT),
            "max_neurons": optional(POSITIVE_INT),
            "row_space": BOOL,
            "distributed": (
                "True, a torch.distributed ProcessGroup or a Communicator",
                is_distributed_option,
            ),
        }
    )

    def loss_needs(self) -> tuple[LossNeed, ...]:
        """Curvature, for the Gauss-Newton steps of the neurons engine.

        The neurons engine takes every loss this back-end takes; the ipm engine
        is a faster path for the squared error only (see :func:`_ipm_solves`).
        """
        return (
            (
                "a smooth loss with curvature (smooth = True, hessian_vector)",
                lambda loss: isinstance(loss, SmoothLoss) and loss.smooth,
            ),
        )

    def target_tol(self, options: Mapping[str, Any]) -> float:
        # float32 certificates level off near 1e-5; ask for what it can prove.
        default = 1e-4 if options.get("dtype") == "float32" else self.default_tol
        return float(options.get("tol", default))

    def unsupported_reason(self, problem: SDPProblem) -> str | None:
        reason = super().unsupported_reason(problem)
        if reason is not None:
            return reason + "; non-smooth losses go to a conic back-end"
        if problem.beta <= 0:
            # The certificate scales the dual point by beta / max|v^T sigma(Xu)|: at
            # beta = 0 it is the vacuous bound 0, so nothing could be certified.
            return "native needs beta > 0 (at beta = 0 no duality gap can be certified)"
        return None

    def auto_priority(self, problem: SDPProblem) -> int:
        """First for every problem it takes (the squared loss and every smooth loss).

        The neurons engine was once placed after the conic back-ends on small
        smooth-loss problems. Measured since (2026-11-29, one thread, certified
        to the same objective by both): logistic breast-cancer (426 x 30) 0.12 s
        against Clarabel's 5.7 s; cross-entropy digits (225 x 64, 10 classes)
        0.44 s against 268 s; Huber 2000 x 20 0.06-2.7 s against 12-15 s; on the
        smallest problems (iris, 30 x 4, diabetes) both take 0.02-0.5 s.
        """
        return 0

    def ipm_bytes(self, problem: SDPProblem) -> int:
        """Peak memory of the interior-point engine: its ``n x n`` matrices, or the
        lifted side's (:class:`._lifted.LiftedSystem`) where that is cheaper."""
        from convexnn.solvers.native._lifted import LiftedSystem, iteration_flops

        shape = ProblemShape.of(problem)
        side = shape.patch_size + 1
        n, regions = shape.n_samples, shape.n_regions
        pooled_matrices = n * regions * side * side if shape.pool_size > 1 else 0
        n_side, lifted_side = iteration_flops(n, regions, shape.pool_size, side)
        if lifted_side < n_side:
            newton = LiftedSystem.bytes(n, regions, side)
        else:
            newton = 8 * 5 * n * n
        return newton + 8 * (pooled_matrices + 2 * problem.patches.size)

    def choose_engine(
        self, problem: SDPProblem, requested: str, comm: Communicator = LOCAL
    ) -> str:
        """``ipm`` for the squared loss while its matrices fit in memory, else ``neurons``
        (always ``neurons`` in a data-parallel solve)."""
        if comm.distributed:
            if requested == "ipm":
                raise InvalidSolverOptionError(
                    "engine='ipm' cannot run distributed (its Newton systems are n x n over "
                    "all ranks' samples); use engine='neurons' (or 'auto'), which shards"
                )
            return "neurons"
        if requested != "auto":
            return requested
        if (_ipm_reason(problem) is None
                and self.ipm_bytes(problem) < 0.5 * _memory.available_memory()):
            return "ipm"
        return "neurons"

    def long_solve_notice(self, problem: SDPProblem, options: Mapping[str, Any]) -> str | None:
        """A large problem for the neurons engine, solved without ``verbose`` or
        ``time_limit``: 60000 x 784 takes 10-300 s a round on one core, and
        ``max_iter`` rounds can be hours of silence."""
        from convexnn.solvers.native._neurons import is_large_problem

        if options.get("verbose") or options.get("time_limit") is not None:
            return None
        # wide data is solved at its reduced size (a 100 x 5000 solve took 2.8 s)
        shape = (_effective_shape(problem) if options.get("row_space", True)
                 else ProblemShape.of(problem))
        if not is_large_problem(shape):
            return None
        if self.choose_engine(problem, _requested_engine(options)) != "neurons":
            return None
        available = _memory.available_memory()
        plan = self.neurons_plan(shape, available, options.get("dtype", "float64"))
        if plan.bytes_for(shape.n_blocks) > available:
            return None  # refused for memory before it starts: nothing to announce
        return (
            f"native: a large problem (n={shape.n_samples}, h={shape.patch_size}, "
            f"{shape.n_outputs} output(s)) for the neurons engine, which may run for hours "
            "before it certifies one, showing nothing. Pass verbose=True (-v on the command "
            "line) to watch its certified gap, width and time, or time_limit (seconds; "
            "--time-limit) to bound it: the best network found is returned with its "
            "certificate"
        )

    def estimate_memory(self, problem: SDPProblem) -> int:
        """Peak memory of the engine ``auto`` picks, at the width of its first round.

        The neurons engine grows: it checks every later width against the
        memory available when it started (:func:`._neurons.memory_plan`), so
        a problem is refused only when its data and first neurons do not fit.
        Wide data is estimated at its reduced size (at most ``n R P + 1``).
        """
        shape = _effective_shape(problem)
        if self.choose_engine(problem, "auto") == "ipm":
            solving = self.ipm_bytes(problem)
        else:
            solving = self.neurons_plan(shape, available=0, dtype="float64").bytes_for(
                _first_width(shape)
            )
        full = ProblemShape.of(problem)
        if shape.patch_size < full.patch_size:  # then certified on the original data
            return max(solving, _certificate_bytes(full))
        return solving

    def neurons_plan(self, shape: ProblemShape, available: int, dtype: str) -> _memory.GrowthPlan:
        """The neurons engine's memory: base and per-neuron bytes (see :func:`memory_plan`)."""
        from convexnn.solvers.native._neurons import is_large_problem, memory_plan

        low = dtype == "float32" or is_large_problem(shape)
        return memory_plan(shape, available, low)

    def solve(
        self,
        problem: SDPProblem,
        *,
        warm_start: SolverOutput | None = None,
        **options: Any,
    ) -> SolverOutput:
        options = without_unset(options)
        self.check_options(options)
        comm = communicator_for(options.get("distributed"))
        if comm.distributed:
            with comm.guard():
                return self._solve_distributed(problem, warm_start, options, comm)
        start = time.perf_counter()
        row_space = None
        if options.get("row_space", True):
            from convexnn.solvers.native._rowspace import find_row_space

            row_space = find_row_space(problem.patches)
        if row_space is not None:
            shape = ProblemShape.of(problem)
            _memory.ensure_fits(
                _certificate_bytes(shape),
                f"the certificate of wide data (n={shape.n_samples}, "
                f"h={shape.patch_size}) on the original features",
                "Subsample the data, or reduce the number of features first (e.g. keep the "
                "leading principal components).",
            )
        work = problem if row_space is None else row_space.reduce(problem)
        if row_space is not None and warm_start is not None:
            warm_start = row_space.reduce_output(warm_start)
        output = self._solve(work, warm_start, options)
        if row_space is not None:
            output = self._certified_on(problem, row_space.lift(output), options)
        output.solve_time = time.perf_counter() - start
        return output

    def _solve_distributed(
        self, problem: SDPProblem, warm_start, options: Mapping[str, Any], comm: Communicator
    ) -> SolverOutput:
        """One rank's part of a data-parallel solve (every rank returns the same output)."""
        start = time.perf_counter()
        n, regions, pool, h = problem.patches.shape
        # What every rank must agree on, as the values in effect (a default and the same
        # value given explicitly, or 1e-4 and np.float64(1e-4), are the same setting).
        comm.check_same({
            "beta": float(problem.beta),
            "activation": tuple(float(c) for c in problem.coefficients),
            "loss": problem.loss,
            "tol": self.target_tol(options),
            "max_iter": options.get("max_iter"),
            "engine": options.get("engine", "auto"),
            "dtype": options.get("dtype", "float64"),
            "max_neurons": options.get("max_neurons"),
        })
        total = comm.check_shards(
            n, (regions, pool, h, problem.targets.shape[1]),
            str(np.asarray(problem.patches).dtype), what="samples",
        )
        if options.get("row_space", True) and comm.rank == 0:
            if total * regions * pool + 1 < h:
                logger.info(
                    "native: distributed solve; the row-space reduction of wide data is off "
                    "(it would need every rank's rows), solving in all %d features", h,
                )
        output = self._solve(problem, warm_start, options, comm)
        output.solve_time = comm.max(time.perf_counter() - start)
        output.stats["world_size"] = comm.world_size
        return output

    def _solve(
        self, problem: SDPProblem, warm_start, options: Mapping[str, Any],
        comm: Communicator = LOCAL,
    ) -> SolverOutput:
        given = _neurons_only_options(options)
        requested = _requested_engine(options)
        engine = self.choose_engine(problem, requested, comm)
        if engine == "ipm" and given:
            name, why = next(iter(given.items()))
            raise InvalidSolverOptionError(
                f"{why}. Drop {name} or use engine='neurons' (or 'auto')"
            )
        if engine == "ipm" and (reason := _ipm_reason(problem)) is not None:
            raise InvalidSolverOptionError(reason)
        shape = ProblemShape.of(problem)
        plan = None
        if engine == "ipm":
            required = self.ipm_bytes(problem)
            advice = "Use engine='neurons' (memory linear in n) or subsample the data."
        else:
            available = _memory.available_memory()
            plan = self.neurons_plan(shape, available, options.get("dtype", "float64"))
            # Refused only if not even one neuron per block fits; later widths are
            # checked as the engine grows (it stops adding neurons where memory ends).
            required = plan.bytes_for(shape.n_blocks)
            # float32 keeps the float64 data beside its copy: it saves memory only where
            # the per-neuron arrays outweigh that copy, and large problems use it already
            smaller = self.neurons_plan(shape, available, "float32").bytes_for(shape.n_blocks)
            advice = "Subsample the data" + (" or use dtype='float32'." if smaller < required
                                             else ".")
        _memory.ensure_fits(
            required,
            f"the native {engine} engine on this problem "
            f"(n={shape.n_samples}, h={shape.patch_size})",
            advice,
        )
        device = torch.device(options.get("device") or "cpu")
        tol = self.target_tol(options)
        time_limit = options.get("time_limit")
        deadline = time.monotonic() + (float(time_limit) if time_limit is not None else math.inf)
        threads = options.get("threads")
        if threads is None and _small(shape):
            threads = 1  # thread start-up costs more than these small products gain
        verbose = bool(options.get("verbose")) and comm.rank == 0
        with _threads(threads), _progress(verbose) as bar, comm.interruptible():
            zero = _zero_network_if_optimal(problem, comm)
            if zero is not None:
                output = zero
            elif engine == "ipm":
                output = self._solve_ipm(problem, tol, options, deadline, device, bar,
                                         warm_start)
                if (requested == "auto" and _ipm_needs_rescue(output, options)
                        and time.monotonic() < deadline):
                    # The interior point can stall far from a certificate on badly scaled
                    # features (scale 3000: gap 0.54), or fail or stall where the optimum
                    # (nearly) interpolates (n = 5, d = 2, beta 1e-6: singular Newton
                    # systems; gap 0.96 after 100 iterations), where the neurons engine
                    # certifies (1e-10 in 0.3 s).
                    failed = output.status is Status.FAILED
                    logger.info("native: the interior point stopped (%s, certified gap %.1e); "
                                "going on with the neurons engine%s", output.status.value,
                                output.stats.get("relative_gap", math.nan),
                                "" if failed else " from its point")
                    plan = self.neurons_plan(shape, _memory.available_memory(), "float64")
                    rescue = self._solve_neurons(problem, tol, options, deadline, device, bar,
                                                 warm_start if failed else output, plan, comm)
                    if failed or rescue.stats["relative_gap"] < output.stats["relative_gap"]:
                        output, engine = rescue, "neurons"
            else:
                output = self._solve_neurons(problem, tol, options, deadline, device, bar,
                                             warm_start, plan, comm)
        output.stats["engine"] = engine
        return output

    @staticmethod
    def _solve_neurons(problem, tol, options, deadline, device, bar, warm_start, plan,
                       comm) -> SolverOutput:
        from convexnn.solvers.native._neurons import solve_neurons

        return solve_neurons(
            problem,
            tol=tol,
            max_iter=int(options.get("max_iter", 200)),
            deadline=deadline,
            device=device,
            dtype=torch.float32 if options.get("dtype") == "float32" else torch.float64,
            max_neurons=options.get("max_neurons"),
            warm_start=warm_start,
            progress=bar,
            memory=plan,
            comm=comm,
        )

    def _certified_on(
        self, problem: SDPProblem, output: SolverOutput, options: Mapping[str, Any]
    ) -> SolverOutput:
        """Objective and lower bound of a lifted solution, recomputed on ``problem``'s data.

        The dual point is the back-end's own (interior point) or the loss
        gradient at the predictions (neurons); the bound comes from the exact
        oracle on the original patches, independent of the reduction.
        """
        if not output.status.has_solution:
            return output
        patches = torch.as_tensor(problem.patches, dtype=torch.float64)
        targets = torch.as_tensor(problem.targets, dtype=torch.float64)
        if output.neurons is not None:
            yhat, penalty = _neuron_predictions(patches, output.neurons, problem)
        else:
            yhat = _block_predictions(patches, output.blocks, problem.coefficients)
            penalty = float(sum(z[-1, -1] + zn[-1, -1] for z, zn in output.blocks))
        objective = float(problem.loss.value(yhat, targets)) + problem.beta * penalty
        dual = output.dual_point
        if dual is None:
            dual = problem.loss.gradient(yhat, targets)
        bound = dual_bound(patches, targets, dual, problem.coefficients, problem.beta,
                           problem.loss)
        tol = self.target_tol(options)
        gap = _certified_gap(objective, bound.lower_bound, tol)
        if output.status in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE):
            output.status = Status.OPTIMAL if gap <= tol else Status.OPTIMAL_INACCURATE
        logger.info(
            "native: certified on the original data (h=%d): objective %.10g, certified "
            "relative gap %.2e (reduced problem: %.2e)", problem.patches.shape[-1], objective,
            gap, output.stats.get("relative_gap", math.nan),
        )
        output.stats["reduced_relative_gap"] = output.stats.get("relative_gap")
        output.stats["relative_gap"] = gap
        output.objective = objective
        output.lower_bound = bound.lower_bound
        return output

    def _solve_ipm(
        self, problem, tol, options, deadline, device, bar, warm_start=None
    ) -> SolverOutput:
        from convexnn.solvers.native._ipm import IPMWarmStart, solve_squared

        patches = torch.as_tensor(problem.patches, dtype=torch.float64, device=device)
        targets = torch.as_tensor(problem.targets, dtype=torch.float64, device=device)

        started = time.monotonic()

        def on_iteration(output: int, iteration: int, primal: float, gap: float) -> None:
            if bar is not None:
                bar.set_postfix_str(
                    f"output {output} iter {iteration} objective {primal:.8g} "
                    f"interior-point gap {gap:.1e} "
                    f"{time.monotonic() - started:.1f}s"
                )
                bar.update(1)

        result = solve_squared(
            patches,
            targets,
            problem.coefficients,
            problem.beta,
            tol=0.1 * tol,
            max_iter=int(options.get("max_iter", 100)),
            deadline=deadline,
            on_iteration=on_iteration,
            # Along a path: the previous point's prepared data and iterate (checked
            # against this problem's data by solve_squared).
            warm_start=(warm_start.engine_state if warm_start is not None
                        and isinstance(warm_start.engine_state, IPMWarmStart) else None),
        )
        blocks = [(z.cpu().numpy(), z_neg.cpu().numpy()) for z, z_neg in result.blocks]
        dual = result.dual.cpu().numpy()
        yhat = _block_predictions(patches, blocks, problem.coefficients)
        penalty = float(sum(z[-1, -1] + zn[-1, -1] for z, zn in blocks))
        objective = float(
            problem.loss.value(yhat, targets).item() + problem.beta * penalty
        )
        status, message = result.status, result.message
        try:
            bound = dual_bound(patches, targets, dual, problem.coefficients, problem.beta,
                               problem.loss)
        except KeyboardInterrupt:
            # The blocks stand; the network's certificate (convexnn.solve) follows.
            bound, status = None, Status.INTERRUPTED
            message += "; interrupted during the interior point's certificate"
        gap = math.inf if bound is None else _certified_gap(objective, bound.lower_bound, tol)
        if status in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE) and gap > tol:
            # its own measures are residuals of the scaled problem, which badly scaled
            # data can make small far from the optimum ("converged" at gap 0.07)
            message += f", but its certified relative gap is {gap:.1e}"
        if status is Status.OPTIMAL and gap > tol:
            status = Status.OPTIMAL_INACCURATE
        if status is Status.OPTIMAL_INACCURATE and gap <= tol:
            status = Status.OPTIMAL
        logger.info(
            "native ipm: %s after %d iterations, objective %.10g, certified relative gap %.2e",
            status.value, result.iterations, objective, gap,
        )
        return SolverOutput(
            status=status,
            objective=objective,
            iterations=result.iterations,
            solve_time=0.0,
            blocks=blocks,
            dual_point=dual,
            lower_bound=None if bound is None else bound.lower_bound,
            message=message,
            stats={"relative_gap": gap, "dual_scale": math.nan if bound is None else bound.scale,
                   "warm_started_outputs": result.warm_started,
                   "factored_outputs": result.factored},
            engine_state=result.warm_start,
        )


def _neurons_only_options(options: Mapping[str, Any]) -> dict[str, str]:
    """The options set that only the neurons engine has, each with why the interior
    point refuses it."""
    why = {
        "max_neurons": (options.get("max_neurons") is not None,
                        "max_neurons caps the width of engine='neurons'; engine='ipm' "
                        "returns the optimum at its own width"),
        "dtype": (options.get("dtype") == "float32",
                  "dtype='float32' runs engine='neurons' in float32; engine='ipm' "
                  "solves in float64"),
    }
    return {name: reason for name, (used, reason) in why.items() if used}


def _requested_engine(options: Mapping[str, Any]) -> str:
    """The ``engine`` option, with ``auto`` taken as ``neurons`` when options only that
    engine has are set."""
    requested = options.get("engine", "auto")
    return "neurons" if requested == "auto" and _neurons_only_options(options) else requested


def _certified_gap(objective: float, lower_bound: float, tol: float) -> float:
    """The relative gap of a lifted solution, ``inf`` when its objective is below the
    certified bound: the iterate is infeasible (stopped early) and bounds nothing."""
    gap = relative_gap(objective, lower_bound)
    if gap < -tol:
        logger.info("native: the solution is infeasible (objective %.6g below the certified "
                    "bound %.6g): no certified gap", objective, lower_bound)
        return math.inf
    return gap


def _zero_network_if_optimal(
    problem: SDPProblem, comm: Communicator = LOCAL
) -> SolverOutput | None:
    """The empty network, certified, when it is already optimal (else None).

    At ``yhat = 0`` the dual point ``v = grad loss(0)`` is feasible exactly when
    ``max_u |v^T sigma(X u)| <= beta``; its bound then equals ``loss(0)``
    (Fenchel-Young), so the zero network is optimal with a zero gap. This
    catches large ``beta`` and all-zero targets, where an interior or
    neuron-adding method would only approach zero.
    """
    targets = torch.as_tensor(problem.targets, dtype=torch.float64)
    zero = torch.zeros_like(targets)
    v = problem.loss.gradient(zero, targets)
    bound = dual_bound(
        problem.patches, targets, v, problem.coefficients, problem.beta, problem.loss,
        reduce=comm.all_reduce if comm.distributed else None,
    )
    if bound.constraint > problem.beta:
        return None
    objective = comm.sum(float(problem.loss.value(zero, targets)))
    h = problem.patches.shape[3]
    logger.info("native: the zero network is optimal (objective %.10g)", objective)
    return SolverOutput(
        status=Status.OPTIMAL,
        objective=objective,
        iterations=0,
        solve_time=0.0,
        neurons=Neurons(np.zeros((0, h)), np.zeros(0), np.zeros(0, dtype=int)),
        lower_bound=bound.lower_bound,
        message="the zero network is optimal (beta exceeds every neuron's gain)",
        stats={"relative_gap": 0.0},
    )


def _block_predictions(
    patches: torch.Tensor, blocks: list[tuple[np.ndarray, np.ndarray]], coefficients
) -> torch.Tensor:
    """``(n, C)`` predictions of ``(Z, Z')`` pairs (block order ``r * C + k``)."""
    from convexnn.solvers.native._lifted import make_operator

    n, regions = patches.shape[:2]
    outputs = len(blocks) // regions
    yhat = torch.zeros((n, outputs), dtype=patches.dtype, device=patches.device)
    for r in range(regions):
        operator = make_operator(patches[:, r], coefficients)
        for k in range(outputs):
            z, z_neg = blocks[r * outputs + k]
            difference = torch.as_tensor(z - z_neg, dtype=patches.dtype, device=patches.device)
            yhat[:, k] += operator.apply(difference)
    return yhat


def _neuron_predictions(patches: torch.Tensor, neurons: Neurons, problem: SDPProblem):
    """``(n, C)`` predictions and the penalty ``sum |alpha|`` of a network's neurons."""
    from convexnn.solvers.native._model import NeuronModel, NeuronState

    C = problem.targets.shape[1]
    alpha = torch.as_tensor(neurons.alpha, dtype=torch.float64)
    blocks = torch.as_tensor(neurons.blocks, dtype=torch.long)
    state = NeuronState(
        torch.as_tensor(neurons.U, dtype=torch.float64) * alpha.abs().sqrt()[:, None],
        torch.sign(alpha), blocks // C, blocks % C,
    )
    model = NeuronModel(patches, torch.as_tensor(problem.targets, dtype=torch.float64),
                        problem.coefficients, problem.beta, problem.loss)
    return model.forward(state)[0], float(alpha.abs().sum())


def _effective_shape(problem: SDPProblem) -> ProblemShape:
    """The shape a solve works at: wide patches shrink to at most ``n R P + 1`` features."""
    shape = ProblemShape.of(problem)
    vectors = shape.n_samples * shape.n_regions * shape.pool_size
    if vectors + 1 < shape.patch_size:
        return dataclasses.replace(shape, patch_size=vectors + 1)
    return shape


def _certificate_bytes(shape: ProblemShape) -> int:
    """The exact oracle's peak on ``shape``: per block a ``k x k`` matrix, its symmetric
    part, eigenvectors and copies (measured 4-5 float64 ones), ``k = h``; on wide data
    (``m + 1 < h`` patches) ``k = m + 1``, plus the patches' span's ``h x m`` basis, the
    QR's copy and the projected patches (:func:`~convexnn.solvers.certificate.dual_oracle`;
    at n = 100, d = 4000 the full oracle took 0.52 GB)."""
    patches = shape.n_samples * shape.n_regions * shape.pool_size
    if patches + 1 < shape.patch_size:
        return 40 * shape.n_blocks * (patches + 1) ** 2 + 3 * 8 * shape.patch_size * patches
    return 40 * shape.n_blocks * shape.patch_size ** 2


def _first_width(shape: ProblemShape) -> int:
    """Neurons after the first round of the neurons engine (its first memory check)."""
    from convexnn.solvers.native._neurons import DEFAULT_SETTINGS

    return DEFAULT_SETTINGS.directions_per_block * shape.n_blocks


def _small(shape: ProblemShape) -> bool:
    """Problems whose per-iteration products are too small to gain from threads."""
    side = shape.patch_size + 1
    return shape.n_samples * shape.n_regions * shape.pool_size * side * side < 20_000_000


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` torch threads, restoring the previous setting."""
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _progress(enabled: bool):
    """A tqdm progress bar (or None) for the solve."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(desc="native", unit="it", leave=True)
    try:
        yield bar
    finally:
        bar.close()


__all__ = ["NativeSolver"]
