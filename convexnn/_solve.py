"""Solve a :class:`~convexnn.formulations.PolySDP` with a chosen back-end.

:func:`solve` picks the back-end (``"auto"`` walks the usable ones in order
and moves on when one fails) and turns its output into a
:class:`~convexnn.network.TwoLayerPolyNet` (Neural Decomposition of the
blocks, or the solver's own neurons). Every :class:`SolveResult` carries a
certified lower bound from the exact dual oracle
(:mod:`convexnn.solvers.certificate`): the native back-end certifies its
own point with that oracle and reports the bound; for the other back-ends the
bound is the best of two dual candidates, the loss gradient at the
network's predictions and the back-end's dual point when it returns one,
each scaled to feasibility by the oracle. The objective is always the
returned network's, recomputed here.

With the ``distributed`` option (``True``, a ``torch.distributed`` process
group or a communicator) the solve is data-parallel: ``problem`` holds this
rank's rows, the native back-end solves (the only one that shards), and
polish and certificate complete their sums over the ranks, so every rank
returns the same network and result (see :mod:`convexnn.distributed`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import warnings
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from convexnn import solvers
from convexnn._polish import polish_network
from convexnn._validation import (
    check_beta,
    check_bool,
    check_interval,
    check_solver,
    check_solver_options,
    user_stacklevel,
)
from convexnn.certificates import Certificate, certify_network, gradient_dual
from convexnn.decomposition import solution_neurons
from convexnn.exceptions import (
    LongSolveWarning,
    ProblemTooLargeError,
    SolverFailedError,
    SolverStatusWarning,
    ValidationError,
    translate_solver_error,
)
from convexnn.formulations import PolySDP
from convexnn.network import TwoLayerPolyNet
from convexnn.solvers._memory import lifted_problem_advice
from convexnn.solvers.base import SolverOutput, Status
from convexnn.solvers.certificate import relative_gap
from convexnn.solvers.errors import InvalidSolverOptionError, SolverError

logger = logging.getLogger("convexnn")


@dataclass(frozen=True)
class SolveResult:
    """The outcome of one solve.

    Attributes
    ----------
    status : str
        One of :class:`convexnn.solvers.base.Status`' values, for the returned
        *network*: ``"optimal"`` exactly when the network's certified relative
        gap is at most ``tol``, whatever stopped the back-end (an optimum, its
        "inaccurate", or a time or iteration limit reached before polishing
        closed the gap; ``stats["solver_status"]`` keeps what it said). A
        back-end's optimum whose network misses ``tol`` is
        ``"optimal_inaccurate"``, a limit that misses it keeps its own status;
        every status but ``"optimal"`` comes with a
        :class:`~convexnn.exceptions.SolverStatusWarning`.
    objective : float
        Objective of the returned network (loss + beta * sum |alpha|).
    lower_bound : float
        Certified lower bound on the optimum (dual oracle).
    duality_gap : float
        ``objective - lower_bound`` (>= 0 up to rounding).
    relative_gap : float
        ``duality_gap / |objective|``.
    iterations : int or None
    solve_time : float
        Wall time of the back-end call, seconds.
    solver : str
    solver_objective : float
        The objective the back-end reported for its own solution.
    n_neurons : int
    message : str
    stats : dict
        The back-end's own figures and statistics (``solver_status``,
        ``solver_lower_bound`` when it certifies its own point, ...) and
        ``polish``: the decomposed network's objective, gap and width before
        polishing, and the polish time (see :mod:`convexnn._polish`).
    tol : float or None
        The certified relative gap asked for (the ``tol`` option, else the
        back-end's default).
    dual_point : ndarray of shape (n, C) or None
        The dual feasible point behind ``lower_bound``, in the loss's own
        scale: :func:`convexnn.lower_bound_from_dual` recomputes the bound
        from it, independently of the back-end. In a distributed solve:
        this rank's rows of it.
    """

    status: str
    objective: float
    lower_bound: float
    duality_gap: float
    relative_gap: float
    iterations: int | None
    solve_time: float
    solver: str
    solver_objective: float
    n_neurons: int
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict, repr=False)
    tol: float | None = None
    dual_point: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def optimal(self) -> bool:
        return self.status == Status.OPTIMAL.value


#: Seconds polishing may always take (without a time limit); see :func:`_finish`.
POLISH_MIN_SECONDS = 10.0


class Solution(NamedTuple):
    """What :func:`solve` returns; unpacks as ``result, network, output``."""

    #: Status and certificate of the returned network.
    result: SolveResult
    #: The network (Neural Decomposition of the back-end's solution, polished).
    network: TwoLayerPolyNet
    #: The back-end's raw output (a warm start for a nearby problem).
    output: SolverOutput


def network_from_output(problem: PolySDP, output: SolverOutput, rtol: float) -> TwoLayerPolyNet:
    """The network of a back-end's solution (decomposing blocks if needed)."""
    shape = problem.shape
    if output.neurons is not None:
        neurons = output.neurons
    elif output.blocks is not None:
        neurons = solution_neurons(output.blocks, rtol)
    else:
        raise SolverFailedError(f"{output.status.value}: the back-end returned no solution")
    return TwoLayerPolyNet.from_neurons(
        neurons,
        n_regions=shape.n_regions,
        n_outputs=shape.n_outputs,
        single_output=shape.n_outputs == 1,
        activation=problem.activation,
        geometry=problem.geometry,
    )


#: Whether :func:`solve` issues :class:`SolverStatusWarning` (per thread / context).
_STATUS_WARNINGS: ContextVar[bool] = ContextVar("convexnn_status_warnings", default=True)


@contextlib.contextmanager
def status_warnings_off() -> Iterator[None]:
    """No :class:`SolverStatusWarning` from :func:`solve` in this block (and thread).

    For callers that report statuses in a warning of their own (the CV estimators'
    folds). Not ``warnings.catch_warnings``, which swaps the process-wide filter
    list: two such blocks overlapping in threads left the filter behind for good.
    """
    token = _STATUS_WARNINGS.set(False)
    try:
        yield
    finally:
        _STATUS_WARNINGS.reset(token)


def solve(
    problem: PolySDP,
    solver: str = "auto",
    solver_options: Mapping[str, Any] | None = None,
    *,
    warm_start: SolverOutput | None = None,
    decomposition_rtol: float = 1e-9,
    polish: bool = True,
) -> Solution:
    """Solve ``problem`` and return the result, the network and the raw output.

    Parameters
    ----------
    problem : PolySDP
    solver : str
        A registered back-end name or ``"auto"``.
    solver_options : mapping, optional
        :data:`convexnn.solvers.base.COMMON_OPTIONS` or back-end specific
        options (the estimators' ``solver_options``).
    warm_start : SolverOutput, optional
        A previous output to start from (back-ends that cannot use it ignore it).
    decomposition_rtol : float
        Relative eigenvalue cut-off of Neural Decomposition.
    polish : bool, default=True
        Refit the decomposed network's output weights, drop the neurons that
        carry nothing and re-certify (:mod:`convexnn._polish`). With
        ``False`` the network is the plain Neural Decomposition of the
        back-end's solution.

    Returns
    -------
    Solution
        ``(result, network, output)``: the :class:`SolveResult`, the
        :class:`~convexnn.TwoLayerPolyNet` and the back-end's raw output.

    Raises
    ------
    UnknownSolverError, SolverNotInstalledError, SolverNotLicensedError,
    UnsupportedProblemError, InvalidSolverOptionError, ProblemTooLargeError,
    SolverFailedError
    """
    if not isinstance(problem, PolySDP):
        raise ValidationError(
            "problem must be a PolySDP from convexnn.make_problem / make_conv_problem, got "
            f"{type(problem).__name__}"
        )
    # (a PolySDP is a dataclass: dataclasses.replace(problem, beta=...) skips make_problem)
    check_beta(problem.beta)
    options = dict(check_solver_options(solver_options) or {})
    check_solver(solver)
    check_interval(decomposition_rtol, "decomposition_rtol", low=0.0, high=1.0)
    check_bool(polish, "polish")
    problem.activation.check_solvable()
    if warm_start is not None and not isinstance(warm_start, SolverOutput):
        raise ValidationError(
            "warm_start must be the SolverOutput a previous solve returned (the third item of "
            f"convexnn.solve's result), got {type(warm_start).__name__}"
        )
    if options.get("distributed") not in (None, False):
        return _solve_distributed(problem, solver, options, warm_start, decomposition_rtol,
                                  polish)
    options.pop("distributed", None)  # (not distributed: every back-end's plain solve)
    try:
        if solver.lower() == "auto":
            candidates = solvers.auto_candidates(problem)
            if not candidates:
                raise SolverFailedError(
                    "no usable solver supports this problem; see `convexnn solvers`"
                )
        else:
            candidates = [solvers.require_usable(solver, problem)]
        per_candidate = _options_per_candidate(candidates, options, solver.lower() == "auto")
    except SolverError as error:
        raise translate_solver_error(error) from error
    failures: list[str] = []
    fits_nowhere = True  # every candidate so far refused for memory
    started = time.monotonic()
    for index, candidate in enumerate(candidates):
        own = per_candidate[candidate.name]
        if index and own.get("time_limit") is not None:
            # time_limit bounds the whole solve: a candidate after a failed one gets
            # what is left of it
            left = own["time_limit"] - (time.monotonic() - started)
            if left <= 0:
                failures.append(f"{candidate.name}: not started, time_limit="
                                f"{own['time_limit']:g} s used up")
                fits_nowhere = False
                break
            own = dict(own, time_limit=left)
        notice = candidate.long_solve_notice(problem, own)
        if notice is not None:
            warnings.warn(notice, LongSolveWarning, stacklevel=user_stacklevel())
        try:
            output = candidate.solve(problem, warm_start=warm_start, **own)
        except InvalidSolverOptionError as error:
            raise translate_solver_error(error) from error
        except Exception as error:  # a back-end's own exception types, wrapped with context
            failure = (
                translate_solver_error(error)
                if isinstance(error, SolverError)
                else _wrap_backend_error(candidate.name, problem, error)
            )
            if len(candidates) == 1:
                if failure is error:
                    raise
                raise failure from error
            logger.warning("auto: %s failed (%s); trying the next solver", candidate.name, failure)
            failures.append(f"{candidate.name}: {failure}")
            fits_nowhere = fits_nowhere and isinstance(failure, ProblemTooLargeError)
            continue
        message = _unusable_output(candidate.name, output)
        if message is not None:
            if len(candidates) == 1:
                raise SolverFailedError(message)
            logger.warning("auto: %s; trying the next solver", message)
            failures.append(message)
            fits_nowhere = False
            continue
        solution = _finish(
            problem,
            candidate.name,
            output,
            decomposition_rtol,
            candidate.target_tol(own),
            polish,
            own.get("time_limit"),
        )
        if (solver.lower() == "auto" and index + 1 < len(candidates)
                and _second_opinion_wanted(problem, solution.result, options, candidates)):
            following = candidates[index + 1]
            solution = _second_opinion(problem, solution, following,
                                       per_candidate[following.name], warm_start,
                                       decomposition_rtol, polish)
        _warn_about_status(problem, solution)
        return solution
    if fits_nowhere:  # what to catch when the problem fits nowhere
        raise ProblemTooLargeError("no candidate solver has the memory for this problem: "
                                   + "; ".join(failures))
    raise SolverFailedError("every candidate solver failed: " + "; ".join(failures))


def _solve_distributed(
    problem: PolySDP,
    solver: str,
    options: dict[str, Any],
    warm_start: SolverOutput | None,
    decomposition_rtol: float,
    polish: bool,
) -> Solution:
    """:func:`solve` of one rank of a data-parallel solve (native back-end only)."""
    from convexnn.solvers._distributed import communicator_for, is_distributed_option

    if solver.lower() not in ("auto", "native"):
        raise ValidationError(
            f"a distributed solve runs on solver='native' (the back-end that shards the "
            f"data); got solver={solver!r}"
        )
    if not is_distributed_option(options["distributed"]):
        raise translate_solver_error(InvalidSolverOptionError(
            "the distributed option must be True, a torch.distributed ProcessGroup or a "
            f"Communicator, got {type(options['distributed']).__name__}"
        ))
    try:
        comm = communicator_for(options["distributed"])
        options = dict(options, distributed=comm)
        problem = dataclasses.replace(problem, communicator=comm)
        with comm.guard():
            # The back-end compares the problem and its options; these steer the
            # decomposition and polish, whose collectives must match too.
            comm.check_same({"decomposition_rtol": decomposition_rtol, "polish": polish})
            backend = solvers.require_usable(
                "native", problem, instead="(A distributed solve runs on native only.)")
            backend.check_options(options)
            output = backend.solve(problem, warm_start=warm_start, **options)
            message = _unusable_output("native", output)
            if message is not None:
                raise SolverFailedError(message)
            solution = _finish(problem, "native", output, decomposition_rtol,
                               backend.target_tol(options), polish, options.get("time_limit"))
            _warn_about_status(problem, solution)
            return solution
    except SolverError as error:
        translated = translate_solver_error(error)
        if translated is error:
            raise
        raise translated from error


def _unusable_output(name: str, output: SolverOutput) -> str | None:
    """Why a back-end's output has no usable solution, or ``None`` when it has one."""
    if not output.status.has_solution:
        return (f"{name} returned status {output.status.value!r} and no solution. "
                f"{output.message}").strip()
    arrays = ([output.neurons.U, output.neurons.alpha] if output.neurons is not None
              else [z for pair in output.blocks or () for z in pair])
    if not all(np.all(np.isfinite(array)) for array in arrays):
        return f"{name} returned a solution with NaN or infinite entries (a back-end fault)"
    return None


def _options_per_candidate(
    candidates: list[solvers.Solver], options: dict[str, Any], auto: bool
) -> dict[str, dict[str, Any]]:
    """The options each candidate receives, validated.

    A named back-end gets every option (and rejects those it does not
    accept). Under ``auto`` a back-end-specific option (e.g. the native
    solver's ``engine``) goes only to the candidates that accept it, and is
    dropped (with a log line) when only back-ends that are not candidates for
    this problem take it (the same code then runs whatever ``auto`` picks,
    e.g. with or without a MOSEK license); an option no registered back-end
    accepts is an error.
    """
    if not auto:
        candidates[0].check_options(options)
        return {candidates[0].name: dict(options)}
    _refuse_options_no_back_end_takes(options)
    unused = set(options) - set().union(*(_accepted(c) for c in candidates))
    if unused:
        logger.info("auto: option(s) %s ignored: no candidate for this problem (%s) takes them",
                    ", ".join(sorted(unused)), ", ".join(c.name for c in candidates))
    per_candidate = {}
    for candidate in candidates:
        own = {key: value for key, value in options.items() if key in _accepted(candidate)}
        candidate.check_options(own)
        per_candidate[candidate.name] = own
    return per_candidate


def _accepted(solver: solvers.Solver) -> set[str]:
    return set(solvers.COMMON_OPTIONS) | set(solver.native_options)


def _refuse_options_no_back_end_takes(options: Mapping[str, Any]) -> None:
    unknown = set(options) - set().union(
        *(_accepted(solvers.get(name)) for name in solvers.names()))
    if unknown:
        raise InvalidSolverOptionError(
            f"no solver accepts option(s) {', '.join(sorted(unknown))}; every back-end "
            f"takes {', '.join(solvers.COMMON_OPTIONS)}; their own: "
            + "; ".join(f"{name}: {', '.join(sorted(solvers.get(name).native_options))}"
                        for name in solvers.names() if solvers.get(name).native_options)
        )


def check_auto_options(options: Mapping[str, Any]) -> None:
    """Check ``auto``'s options before any problem exists (so before its candidates are
    known): each one taken by some back-end, and valid for every back-end that takes it.

    Raises
    ------
    InvalidSolverOptionError
    """
    _refuse_options_no_back_end_takes(options)
    for name in solvers.names():
        backend = solvers.get(name)
        backend.check_options({key: value for key, value in options.items()
                               if key in _accepted(backend)})


def _wrap_backend_error(name: str, problem: PolySDP, error: Exception) -> SolverError:
    """A back-end's unexpected exception as a solver error naming the back-end and problem."""
    shape = problem.shape
    where = (
        f"{name} failed on the {shape.variant} problem (n={shape.n_samples}, "
        f"h={shape.patch_size}, {problem.loss.name} loss, beta={problem.beta:g})"
    )
    if isinstance(error, MemoryError):
        wrapped: SolverError = ProblemTooLargeError(
            f"{where}: out of memory. "
            + ("Subsample the data, or try engine='neurons' (memory linear in n) or "
               "dtype='float32'." if name == "native" else lifted_problem_advice(problem.loss))
        )
    else:
        wrapped = SolverFailedError(
            f"{where}: {type(error).__name__}: {error}. Try another solver (solver='auto' "
            "tries each usable one)."
        )
    return wrapped


#: ``auto``'s first result that converged only to a certified relative gap above this
#: (``"optimal_inaccurate"``), or stopped at the back-end's own iteration cap above it,
#: is solved again by the next candidate, where the problem is this small (lifted
#: entries ``n (h+1)^2`` summed over blocks) and no ``time_limit`` is set: a conic
#: back-end takes seconds there, and the native solver can stall on badly scaled
#: features (Huber, 20 x 5 with column scales 30 to 0.03: its iteration cap at gap
#: 0.08-0.12 where Clarabel certifies 1e-6 in 0.05 s).
SECOND_OPINION_GAP = 1e-3
SECOND_OPINION_ENTRIES = 500_000


def _second_opinion_wanted(problem: PolySDP, result: SolveResult, options: Mapping[str, Any],
                           candidates: list[solvers.Solver]) -> bool:
    """A converged result above :data:`SECOND_OPINION_GAP`, or one stopped at the
    back-end's own iteration cap (not at the caller's limits, nor interrupted); never
    under ``max_neurons``, a width the other back-ends cannot keep to."""
    shape = problem.shape
    entries = shape.n_samples * (shape.patch_size + 1) ** 2 * shape.n_blocks
    iteration_limits = {"max_iter"} | {native for candidate in candidates
                                       for native, common in candidate.option_aliases.items()
                                       if common == "max_iter"}
    stalled = result.status == Status.OPTIMAL_INACCURATE.value or (
        result.status == Status.ITERATION_LIMIT.value and not iteration_limits & set(options))
    return (stalled and problem.beta > 0 and result.relative_gap > SECOND_OPINION_GAP
            and options.get("time_limit") is None and options.get("max_neurons") is None
            and entries <= SECOND_OPINION_ENTRIES)


def _second_opinion(problem: PolySDP, first: Solution, candidate: solvers.Solver,
                    options: dict[str, Any], warm_start: SolverOutput | None, rtol: float,
                    polish: bool) -> Solution:
    """The better certified of ``first`` and ``candidate``'s solution; ``first`` when the
    candidate fails (nothing of it is needed; Ctrl-C still stops everything)."""
    logger.warning("auto: %s stopped at certified relative gap %.1e (%s); the problem is "
                   "small, so %s solves it too and the better certificate is kept",
                   first.result.solver, first.result.relative_gap, first.result.status,
                   candidate.name)
    try:
        output = candidate.solve(problem, warm_start=warm_start, **options)
        unusable = _unusable_output(candidate.name, output)
        if unusable is not None:
            logger.warning("auto: %s; keeping %s's result", unusable, first.result.solver)
            return first
        second = _finish(problem, candidate.name, output, rtol, candidate.target_tol(options),
                         polish, options.get("time_limit"))
    except Exception as error:  # a back-end's own exception types
        logger.warning("auto: %s failed too (%s: %s); keeping %s's result", candidate.name,
                       type(error).__name__, error, first.result.solver)
        return first
    gaps = [np.nan_to_num(s.result.relative_gap, nan=np.inf) for s in (first, second)]
    return second if gaps[1] < gaps[0] else first


def _warn_about_status(problem: PolySDP, solution: Solution) -> None:
    """The :class:`SolverStatusWarning` of a result that is not ``"optimal"`` (one per
    solve, not one per rank of a data-parallel one)."""
    result = solution.result
    first_rank = problem.communicator is None or problem.communicator.rank == 0
    if result.status == Status.OPTIMAL.value or not first_rank or not _STATUS_WARNINGS.get():
        return
    if problem.beta == 0:
        reason = "at beta=0 no duality gap can be certified: the lower bound is 0"
    elif solution.output.status is Status.OPTIMAL:
        reason = (f"the network's certified relative gap {result.relative_gap:.2e} is "
                  f"above tol={result.tol:g}")
    else:
        reason = f"certified relative gap {result.relative_gap:.2e}"
    advice = ("Use beta > 0 for a certified result." if problem.beta == 0 else
              "Raise max_iter / time_limit, try another solver, or accept a larger tol.")
    warnings.warn(
        f"{result.solver} stopped with status {result.status!r} ({reason}); the network "
        f"may be suboptimal. {advice}",
        SolverStatusWarning,
        stacklevel=user_stacklevel(),
    )


def _finish(
    problem: PolySDP,
    solver_name: str,
    output: SolverOutput,
    rtol: float,
    tol: float,
    polish: bool,
    time_limit: float | None = None,
) -> Solution:
    start = time.perf_counter()
    decomposed = network_from_output(problem, output, rtol)
    # Polishing must stay small against the solve: a quarter of it, and no more than what
    # the user's time limit leaves (a solve stopped by the limit must not run on for
    # minutes: 60000 x 784 x 10 outputs polished for 290 s). The floor keeps the polish of
    # a small problem (milliseconds, 0.8 s on a loaded machine) from being cut short, which
    # made two fits of the same data differ.
    budget = max(POLISH_MIN_SECONDS, 0.25 * output.solve_time)
    if time_limit is not None:
        budget = min(budget, max(1.0, float(time_limit) - output.solve_time))
    if problem.communicator is not None:  # the ranks' polishes stop at the same step
        budget = problem.communicator.min(budget)
    # Ctrl-C here, after the back-end stopped, keeps its network and, where it has one,
    # its own certificate: a long solve is not lost to an impatient key (the README's
    # promise). A data-parallel solve's ranks must not diverge: they re-raise.
    interrupted = ""
    try:
        network, report = (
            polish_network(problem, decomposed, budget) if polish else (decomposed, None)
        )
    except KeyboardInterrupt:
        if problem.communicator is not None:
            raise
        network, report, interrupted = decomposed, None, "the polish"
    # Dual candidates: the back-end's dual point and, when polishing moved the
    # network, the gradient at the decomposed one (the back-end's own point).
    candidates = [output.dual_point]
    if network is not decomposed:
        candidates.append(gradient_dual(problem, decomposed))
    try:
        certificate = certify_network(problem, network, candidates)
    except KeyboardInterrupt:
        if problem.communicator is not None or output.lower_bound is None:
            raise
        # The back-end's bound is one on the optimum: it certifies any network, the
        # polished one included
        interrupted = "the certificate"
        certificate = Certificate.of(
            problem.network_objective(network),
            output.lower_bound, dual_point=output.dual_point,
        )
    message = output.message
    if interrupted:
        message += (f"; interrupted during {interrupted}: the back-end's "
                    + ("network and " if interrupted == "the polish" else "")
                    + "certificate stand")
    zero_objective = problem.objective(np.zeros_like(problem.targets), 0.0)
    if certificate.objective > zero_objective:
        # A back-end stopped far off (e.g. on unscaled features) is never worth more than
        # no network at all, which is feasible; return that instead.
        message += (f"; its network (objective {certificate.objective:.6g}) was worse than "
                    f"the zero network ({zero_objective:.6g}), which is returned instead")
        logger.warning("%s: %s", solver_name, message)
        network = TwoLayerPolyNet.zero(network.U.shape[1], network.alpha.shape[1:],
                                       network.activation, network.geometry)
        certificate = certify_network(problem, network, candidates)
    # The status describes the network against tol, by the independent certificate:
    # a back-end's "optimal" whose network misses tol is inaccurate, and a network
    # certified within tol is optimal, whatever stopped the back-end ("inaccurate", or a
    # time or iteration limit it reached before polishing closed the gap).
    status = Status.INTERRUPTED if interrupted else output.status
    within = certificate.relative_gap <= tol and problem.beta > 0
    if status in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE):
        status = Status.OPTIMAL if within else Status.OPTIMAL_INACCURATE
    elif within and status in (Status.TIME_LIMIT, Status.ITERATION_LIMIT, Status.INTERRUPTED):
        status = Status.OPTIMAL
    logger.info(
        "%s: status %s, objective %.8g, certified relative gap %.2e, %d neurons "
        "(solve %.2fs, decomposition, polish and certificate %.2fs)",
        solver_name,
        status.value,
        certificate.objective,
        certificate.relative_gap,
        network.n_neurons,
        output.solve_time,
        time.perf_counter() - start,
    )
    stats = dict(output.stats, solver_status=output.status.value)
    if report is not None:
        stats["polish"] = dict(
            dataclasses.asdict(report),
            relative_gap_before=relative_gap(report.objective_before, certificate.lower_bound),
        )
    if output.lower_bound is not None:
        stats["solver_lower_bound"] = output.lower_bound
    result = SolveResult(
        status=status.value,
        objective=certificate.objective,
        lower_bound=certificate.lower_bound,
        duality_gap=certificate.duality_gap,
        relative_gap=certificate.relative_gap,
        iterations=output.iterations,
        solve_time=output.solve_time,
        solver=solver_name,
        solver_objective=output.objective,
        n_neurons=network.n_neurons,
        message=message,
        stats=stats,
        tol=tol,
        dual_point=certificate.dual_point,
    )
    return Solution(result, network, output)
