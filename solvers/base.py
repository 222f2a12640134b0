"""The small interface every back-end implements.

A back-end receives an :class:`SDPProblem`: the exact semidefinite program of
a two-layer network with a degree-two polynomial activation, described by
plain arrays (so that structure-exploiting solvers can work on them) and able
to build itself as a cvxpy problem (so that conic solvers can hand it on).
It returns a :class:`SolverOutput`. This package never imports ``convexnn``;
``convexnn`` supplies objects that satisfy these protocols.

The problem, in the notation of the design notes: samples ``i = 1..n``,
pooling regions ``r = 1..R`` of ``P`` patches each, patch vectors
``x_irp`` of length ``h`` (for a fully connected network ``R = P = 1`` and
``x_i11`` is the sample), outputs ``k = 1..C`` and one pair of PSD
``(h+1) x (h+1)`` matrices ``(Z_rk, Z'_rk)`` per region and output, stored in
block order ``r * C + k``. With ``F = [x; 1]`` and
``M(Z) = [[a Z1, b/2 Z2], [b/2 Z2^T, c Z4]]``::

    yhat_ik = sum_r (1/P) sum_p F_irp^T M(Z_rk - Z'_rk) F_irp
    minimize  loss(yhat, targets) + beta * sum_rk (Z_rk[h, h] + Z'_rk[h, h])
    s.t.      Z, Z' PSD,  trace(Z1) = Z4,  trace(Z1') = Z4'
"""

from __future__ import annotations

import enum
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from convexnn.solvers.errors import InvalidSolverOptionError

if TYPE_CHECKING:  # pragma: no cover
    import cvxpy as cp
    import torch


class Status(str, enum.Enum):
    """Normalised solver status, shared by every back-end."""

    OPTIMAL = "optimal"
    OPTIMAL_INACCURATE = "optimal_inaccurate"
    ITERATION_LIMIT = "iteration_limit"
    TIME_LIMIT = "time_limit"
    INTERRUPTED = "interrupted"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    FAILED = "failed"

    @property
    def has_solution(self) -> bool:
        """Whether a primal point comes with this status."""
        return self not in (Status.INFEASIBLE, Status.UNBOUNDED, Status.FAILED)


@runtime_checkable
class Loss(Protocol):
    """A convex loss in the predictions, summed over samples and outputs.

    Tensors have shape ``(n, C)``. ``conjugate`` is the convex conjugate in the
    predictions, ``+inf`` outside its domain; it gives the dual bound
    ``-conjugate(v)`` for every dual-feasible ``v``.
    """

    name: str
    smooth: bool

    def value(self, yhat: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def gradient(self, yhat: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def hessian_vector(
        self, yhat: torch.Tensor, y: torch.Tensor, w: torch.Tensor
    ) -> torch.Tensor: ...

    def conjugate(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def project_dual(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def cvxpy(self, yhat: cp.Expression, y: np.ndarray) -> cp.Expression: ...


@dataclass
class CvxpyProgram:
    """A problem as cvxpy sees it.

    Attributes
    ----------
    problem : cvxpy.Problem
    blocks : list of (cvxpy.Variable, cvxpy.Variable)
        The ``(Z, Z')`` pairs in block order ``r * C + k``.
    predictions : cvxpy.Variable
        The ``(n, C)`` predictions, tied to the blocks by ``link``.
    link : cvxpy.Constraint
        ``predictions == yhat(blocks)``; its dual value is the dual point.
    """

    problem: Any
    blocks: list[tuple[Any, Any]]
    predictions: Any
    link: Any


@runtime_checkable
class SDPProblem(Protocol):
    """The problem handed to every back-end (see the module docstring)."""

    patches: np.ndarray  # (n, R, P, h)
    targets: np.ndarray  # (n, C)
    coefficients: tuple[float, float, float]
    beta: float
    loss: Loss

    def to_cvxpy(self) -> CvxpyProgram: ...


@dataclass(frozen=True)
class ProblemShape:
    """Sizes of an :class:`SDPProblem`."""

    n_samples: int
    n_regions: int
    pool_size: int
    n_features: int
    n_outputs: int

    @property
    def n_blocks(self) -> int:
        return self.n_regions * self.n_outputs

    @property
    def variant(self) -> str:
        """``"scalar"``, ``"vector"`` or ``"conv"``."""
        if self.n_regions > 1 or self.pool_size > 1:
            return "conv"
        return "vector" if self.n_outputs > 1 else "scalar"

    @classmethod
    def of(cls, problem: SDPProblem) -> ProblemShape:
        n, regions, pool, h = problem.patches.shape
        return cls(n, regions, pool, h, problem.targets.shape[1])


@dataclass
class Neurons:
    """A network given directly by its neurons (what the native solver returns).

    Attributes
    ----------
    filters : ndarray of shape (m, h)
        Unit-norm first-layer weights.
    weights : ndarray of shape (m,)
        Signed output weights.
    blocks : ndarray of int, shape (m,)
        The block ``r * C + k`` (region, output) each neuron feeds.
    """

    filters: np.ndarray
    weights: np.ndarray
    blocks: np.ndarray


@dataclass
class SolverOutput:
    """What a back-end returns.

    Exactly one of ``blocks`` (the optimal ``(Z, Z')`` pairs) and ``neurons``
    is set when ``status.has_solution``. ``dual_point`` is the back-end's dual
    variable for the predictions, shape ``(n, C)``, when it has one;
    ``lower_bound`` a bound on the optimum the back-end certified itself.
    """

    status: Status
    objective: float
    iterations: int | None
    solve_time: float
    blocks: list[tuple[np.ndarray, np.ndarray]] | None = None
    neurons: Neurons | None = None
    dual_point: np.ndarray | None = None
    lower_bound: float | None = None
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)


#: Options every back-end understands, translated to its own names.
COMMON_OPTIONS: Mapping[str, str] = {
    "tol": "relative accuracy target (duality gap / objective), float > 0",
    "max_iter": "iteration limit, int > 0",
    "time_limit": "wall-clock limit in seconds, float > 0",
    "verbose": "print the back-end's own progress, bool",
}


class Solver(ABC):
    """A solver back-end.

    Subclasses set the class attributes and implement :meth:`solve`. Detection
    is by import (``package``); back-ends that need a license override
    :meth:`license_problem`.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    package: ClassVar[str]
    #: Loss names this back-end handles (``None``: every loss).
    losses: ClassVar[frozenset[str] | None] = None
    #: Back-end specific options passed through unchanged.
    native_options: ClassVar[frozenset[str]] = frozenset()

    def is_installed(self) -> bool:
        """Whether the back-end's package can be imported."""
        return importlib.util.find_spec(self.package) is not None

    def license_problem(self) -> str | None:
        """``None`` when the back-end may solve, else why it may not."""
        return None

    def unsupported_reason(self, problem: SDPProblem) -> str | None:
        """``None`` when this back-end can solve ``problem``, else why not."""
        if self.losses is not None and problem.loss.name not in self.losses:
            return (
                f"{self.name} does not support the {problem.loss.name!r} loss "
                f"(supported: {', '.join(sorted(self.losses))})"
            )
        return None

    def estimate_memory(self, problem: SDPProblem) -> int:
        """Bytes the solve is expected to need at its peak."""
        return 0

    def auto_priority(self, problem: SDPProblem) -> int:
        """Rank for ``solver="auto"``: lower goes first (ties keep the registry order)."""
        return 1

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidSolverOptionError` for options not accepted."""
        unknown = set(options) - set(COMMON_OPTIONS) - set(self.native_options)
        if unknown:
            accepted = sorted(set(COMMON_OPTIONS) | set(self.native_options))
            raise InvalidSolverOptionError(
                f"solver {self.name!r} does not accept option(s) "
                f"{', '.join(sorted(unknown))}; accepted: {', '.join(accepted)}"
            )
        for key, kind, test in (
            ("tol", "a positive float", lambda v: _is_real(v) and 0 < v < 1),
            ("max_iter", "a positive int", lambda v: _is_int(v) and v > 0),
            ("time_limit", "a positive float (seconds)", lambda v: _is_real(v) and v > 0),
            ("verbose", "a bool", lambda v: isinstance(v, (bool, np.bool_))),
        ):
            if key in options and not test(options[key]):
                raise InvalidSolverOptionError(
                    f"solver option {key!r} must be {kind}"
                    f"{' below 1' if key == 'tol' else ''}, got {options[key]!r}"
                )

    @abstractmethod
    def solve(
        self,
        problem: SDPProblem,
        *,
        warm_start: SolverOutput | None = None,
        **options: Any,
    ) -> SolverOutput:
        """Solve ``problem``. Options are :data:`COMMON_OPTIONS` or native ones."""


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and bool(np.isfinite(value))
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
