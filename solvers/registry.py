"""The registry of back-ends: lookup by name, state of each, and ``auto``.

Built-in back-ends are registered on first use. Third-party back-ends register
through the entry-point group ``convexnn.solvers``; each entry point names a
:class:`~convexnn.solvers.base.Solver` subclass (or instance), loaded on first use::

    [project.entry-points."convexnn.solvers"]
    mysolver = "mypackage.module:MySolver"
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points

from convexnn.solvers.base import LossProtocol, SDPProblem, Solver
from convexnn.solvers.errors import (
    SolverNotInstalledError,
    SolverNotLicensedError,
    UnknownSolverError,
    UnsupportedProblemError,
)

logger = logging.getLogger("convexnn")

ENTRY_POINT_GROUP = "convexnn.solvers"

#: ``auto`` tries back-ends in this order; unknown (third-party) ones come last.
AUTO_PREFERENCE = ("native", "mosek", "clarabel", "scs", "cvxopt")

#: The built-in back-ends, imported on first use (the native one pulls in torch).
BUILTIN_SOLVERS = (
    "convexnn.solvers.native:NativeSolver",
    "convexnn.solvers.mosek:MosekSolver",
    "convexnn.solvers.clarabel:ClarabelSolver",
    "convexnn.solvers.scs:SCSSolver",
    "convexnn.solvers.cvxopt:CVXOPTSolver",
)

_registry: dict[str, Solver] = {}
_loaded = False  # the built-ins and plug-ins are registered
_loading = False  # ... are being registered
_lock = threading.RLock()


@dataclass(frozen=True)
class SolverInfo:
    """The state of one back-end, as :func:`available` reports it.

    Attributes
    ----------
    licensed : bool or None
        ``None`` for back-ends that need no license.
    losses : tuple of str or None
        Names of the losses passed to :func:`info` / :func:`available` that
        the back-end takes; ``None`` when none were passed.
    loss_needs : tuple of str
        What the back-end needs of a loss, in words (empty: any loss).
    """

    name: str
    description: str
    installed: bool
    licensed: bool | None
    usable: bool
    losses: tuple[str, ...] | None
    note: str
    loss_needs: tuple[str, ...] = ()

    def __str__(self) -> str:
        state = "usable" if self.usable else "unusable"
        return f"{self.name}: {state}. {self.note}".strip()


def register(solver: Solver | type[Solver], *, replace: bool = False) -> Solver:
    """Add a back-end under ``solver.name``; returns the registered instance."""
    _load()
    instance = solver() if isinstance(solver, type) else solver
    if not isinstance(instance, Solver):
        raise TypeError(f"expected a convexnn.solvers.Solver, got {type(instance).__name__}")
    name = instance.name
    if not isinstance(name, str) or not name or name != name.lower() or name == "auto":
        # Lookups are case-insensitive (they lower-case the name asked for), and "auto"
        # selects among the back-ends: a name the lookup cannot find must not get in.
        raise ValueError(
            f"a solver's name must be a non-empty lower-case string other than 'auto', got "
            f"{name!r} (from {type(instance).__name__})"
        )
    if name in _registry and not replace and type(_registry[name]) is not type(instance):
        raise ValueError(f"a solver named {name!r} is already registered")
    _registry[name] = instance
    return instance


def _load() -> None:
    """Register the built-in back-ends, then the plug-ins, once."""
    global _loaded, _loading
    if _loaded:
        return
    # Threads that make their first solve together wait for the built-ins (they used to
    # see an empty registry); re-entrant, since register() calls back here.
    with _lock:
        if _loaded or _loading:
            return
        _loading = True
        try:
            for spec in BUILTIN_SOLVERS:
                module, _, cls = spec.partition(":")
                register(getattr(importlib.import_module(module), cls))
        except BaseException:
            _loading = False
            raise
    # Plug-ins outside the lock: a plug-in module that registers itself as it is imported,
    # in another thread, would wait for the lock while this thread waits for its import.
    try:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                register(entry.load())
            except Exception as error:  # noqa: BLE001 - a broken plug-in must not break us
                logger.warning("could not load solver plug-in %r: %s", entry.name, error)
    finally:
        _loading = False
        _loaded = True


def names() -> list[str]:
    """Names of every registered back-end, in ``auto``'s preference order."""
    _load()
    known = [name for name in AUTO_PREFERENCE if name in _registry]
    return known + sorted(set(_registry) - set(known))


def get(name: str) -> Solver:
    """The back-end registered as ``name`` (case-insensitive)."""
    _load()
    key = name.lower() if isinstance(name, str) else name
    if key == "auto":
        raise UnknownSolverError(
            "'auto' is not a back-end but the choice among them: pass it to convexnn.solve "
            "or an estimator, or see auto_candidates(problem)"
        )
    if key not in _registry:
        raise UnknownSolverError(
            f"unknown solver {name!r}; registered solvers: {', '.join(names())} "
            "(or 'auto')"
        )
    return _registry[key]


def info(name: str, losses: Iterable[LossProtocol] | None = None) -> SolverInfo:
    """The state of one back-end: installed, licensed, usable, what losses it takes.

    Parameters
    ----------
    name : str
    losses : iterable of loss objects, optional
        Losses to report on (e.g. every built-in one of ``convexnn.losses``):
        ``SolverInfo.losses`` lists the names of those the back-end takes.
    """
    solver = get(name)
    installed = solver.is_installed()
    licensed: bool | None = None
    note = solver.description
    if not installed:
        note = f"not installed ({solver.install_command()}). {note}"
    else:
        problem = solver.license_problem()
        if problem is not None:
            licensed, note = False, problem
        elif solver.needs_license:
            licensed = True
    taken = None
    if losses is not None:
        taken = tuple(loss.name for loss in _loss_objects(losses)
                      if not solver.missing_loss_needs(loss))
    return SolverInfo(
        name=solver.name,
        description=solver.description,
        installed=installed,
        licensed=licensed,
        usable=installed and licensed is not False,
        losses=taken,
        note=note,
        loss_needs=tuple(need for need, _ in solver.loss_needs()),
    )


def _loss_objects(losses: object) -> list[LossProtocol]:
    """``losses`` (one loss object or several) as a list; names are refused: this layer
    does not know the modelling layer's catalogue of losses."""
    listed = [losses] if hasattr(losses, "name") or isinstance(losses, str) else list(losses)
    for loss in listed:
        if not hasattr(loss, "name") or isinstance(loss, str):
            raise TypeError(
                f"losses must be loss objects, e.g. convexnn.get_loss('logistic'); got {loss!r}"
            )
    return listed


def available(losses: Iterable[LossProtocol] | None = None) -> list[SolverInfo]:
    """Every registered back-end with its state (``losses``: see :func:`info`)."""
    catalogue = None if losses is None else _loss_objects(losses)
    return [info(name, catalogue) for name in names()]


def require_usable(
    name: str, problem: SDPProblem | None = None, *, instead: str | None = None
) -> Solver:
    """The back-end ``name``, or a clear error saying why it cannot be used (ending with
    ``instead``: by default, the back-ends usable in its place)."""
    solver = get(name)
    state = info(solver.name)
    error: type[Exception]
    if not state.installed:
        error = SolverNotInstalledError
        reason = f"solver {solver.name!r} is not installed: {solver.install_command()}."
    elif state.licensed is False:
        error, reason = SolverNotLicensedError, state.note
    elif problem is not None and (unsupported := solver.unsupported_reason(problem)) is not None:
        error, reason = UnsupportedProblemError, f"{unsupported}."
    else:
        return solver
    if instead is None:  # only now: it probes every other back-end (imports, licenses)
        usable = [s.name for s in available() if s.usable and s.name != solver.name
                  and (problem is None or get(s.name).unsupported_reason(problem) is None)]
        instead = f"Usable instead: {', '.join(usable) or 'none'}."
    raise error(f"{reason} {instead}")


def auto_candidates(problem: SDPProblem) -> list[Solver]:
    """Usable back-ends that support ``problem``, best first.

    Back-ends are ordered by :meth:`~convexnn.solvers.base.Solver.auto_priority`, then
    by :data:`AUTO_PREFERENCE`. Skipped back-ends are logged with the reason.
    """
    order = names()
    order.sort(key=lambda name: get(name).auto_priority(problem))
    candidates = []
    for name in order:
        state = info(name)
        solver = get(name)
        if not state.usable:
            logger.debug("auto: skipping %s: %s", name, state.note)
            continue
        reason = solver.unsupported_reason(problem)
        if reason is None:
            candidates.append(solver)
        else:  # a usable back-end handing the problem over is worth saying
            logger.info("auto: skipping %s: %s", name, reason)
    return candidates
