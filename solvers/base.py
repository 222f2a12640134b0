"""The small interface every back-end implements.

A back-end receives an :class:`SDPProblem`: the exact semidefinite program of
a two-layer network with a degree-two polynomial activation, described by
plain arrays and a loss object. Each back-end turns that data into its own
model (the conic ones build a cvxpy problem, :mod:`._conic_model`; the native
one works on the arrays) and returns a :class:`SolverOutput`. This package
never imports ``convexnn``; ``convexnn`` supplies objects that satisfy these
protocols.

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

Losses are checked by capability, not by name: a back-end lists what it
needs of a loss (:meth:`Solver.loss_needs`) and accepts every loss that has
it, e.g. :class:`SmoothLoss` for the native solver, :class:`ConicLoss` with
cones the back-end supports for the conic ones.
"""

from __future__ import annotations

import enum
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from convexnn.solvers._checks import BOOL, POSITIVE_INT, OptionCheck, first_violation, is_real
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
class LossProtocol(Protocol):
    """A convex loss in the predictions, summed over samples and outputs.

    What every back-end and the certificate use. Tensors have shape
    ``(n, C)``. ``conjugate`` is the convex conjugate in the predictions,
    ``+inf`` outside its domain; it gives the dual bound ``-conjugate(v)`` for
    every dual-feasible ``v``. ``convexnn.losses.Loss`` is the class users
    subclass; back-ends ask for the capabilities below.
    """

    name: str

    def value(self, yhat: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def gradient(self, yhat: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def conjugate(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...

    def project_dual(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class SmoothLoss(LossProtocol, Protocol):
    """A loss with curvature: what second-order methods (the native solver) need.

    Every ``convexnn.losses.Loss`` has ``hessian_vector`` (the non-smooth
    ones raise), so ``smooth`` says whether the loss has curvature. An
    optional ``squared_error`` attribute, ``True`` only for
    ``1/2 sum (yhat - y)^2`` itself, admits the native interior-point engine.
    """

    smooth: bool

    def hessian_vector(
        self, yhat: torch.Tensor, y: torch.Tensor, w: torch.Tensor
    ) -> torch.Tensor: ...


@runtime_checkable
class ConicLoss(LossProtocol, Protocol):
    """A loss a conic back-end can model: its cvxpy expression and the cones it needs.

    ``cones`` names the cones the expression's conic form uses besides
    equalities, among ``"nonneg"``, ``"soc"``, ``"exp"``, ``"pow"`` and
    ``"psd"`` (e.g. ``{"exp", "nonneg"}`` for the logistic loss); a back-end
    takes the loss when it supports all of them.
    """

    cones: frozenset[str]

    def cvxpy(self, yhat: cp.Expression, y: np.ndarray) -> cp.Expression: ...


@runtime_checkable
class SDPProblem(Protocol):
    """The problem handed to every back-end, as plain data (see the module docstring)."""

    patches: np.ndarray  # (n, R, P, h)
    targets: np.ndarray  # (n, C)
    coefficients: tuple[float, float, float]
    beta: float
    loss: LossProtocol


@dataclass(frozen=True)
class ProblemShape:
    """Sizes of an :class:`SDPProblem`.

    Attributes
    ----------
    n_samples : int
    n_regions : int
        Pooling regions ``R`` (1 when fully connected).
    pool_size : int
        Patches per region ``P`` (1 when fully connected).
    patch_size : int
        Length ``h`` of one patch: the number of features when fully
        connected (the blocks are ``(h+1) x (h+1)``).
    n_outputs : int
        Outputs ``C``.
    """

    n_samples: int
    n_regions: int
    pool_size: int
    patch_size: int
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


def coefficient_matrix(coefficients: tuple[float, float, float], patch_size: int) -> np.ndarray:
    """The ``(h+1) x (h+1)`` scale ``S`` with ``M(Z) = S * Z`` (entrywise).

    ``S = [[a, b/2], [b/2, c]]`` expanded to the blocks ``Z1``, ``Z2``, ``Z4``.
    """
    a, b, c = coefficients
    h = patch_size
    scale = np.full((h + 1, h + 1), float(a))
    scale[:h, h] = scale[h, :h] = b / 2
    scale[h, h] = c
    return scale


@dataclass
class Neurons:
    """A network given directly by its neurons (what the native solver returns).

    The names are the network's (:class:`convexnn.TwoLayerPolyNet`): unit
    directions ``U`` and signed output weights ``alpha``.

    Attributes
    ----------
    U : ndarray of shape (m, h)
        Unit-norm first-layer weights (filters in the convolutional variant).
    alpha : ndarray of shape (m,)
        Signed output weights.
    blocks : ndarray of int, shape (m,)
        The block ``r * C + k`` (region, output) each neuron feeds.
    """

    U: np.ndarray
    alpha: np.ndarray
    blocks: np.ndarray


@dataclass
class SolverOutput:
    """What a back-end returns.

    Exactly one of ``blocks`` (the optimal ``(Z, Z')`` pairs) and ``neurons``
    is set when ``status.has_solution``. ``dual_point`` is the back-end's dual
    variable for the predictions, shape ``(n, C)``, when it has one;
    ``lower_bound`` a bound on the optimum the back-end certified itself.
    ``iterations`` is None where the back-end does not report them (CVXOPT:
    cvxpy passes on none of its statistics).
    ``engine_state`` is opaque, engine-specific data a later solve of the
    same data can resume from when this output is passed back as its
    ``warm_start`` (the native interior point's prepared data and last
    iterate); it is not part of the solution, and a back-end checks that it
    belongs to the problem before using it.
    """

    status: Status
    objective: float
    iterations: int | None
    solve_time: float
    # Arrays stay out of the repr (a solve's output would print thousands of lines).
    blocks: list[tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)
    neurons: Neurons | None = field(default=None, repr=False)
    dual_point: np.ndarray | None = field(default=None, repr=False)
    lower_bound: float | None = None
    message: str = ""
    stats: dict[str, Any] = field(default_factory=dict, repr=False)
    engine_state: Any = field(default=None, repr=False, compare=False)


#: Options every back-end understands, translated to its own names.
COMMON_OPTIONS: Mapping[str, str] = {
    "tol": "relative accuracy target (duality gap / objective), float > 0",
    "max_iter": "iteration limit, int > 0",
    "time_limit": "wall-clock limit in seconds, float > 0",
    "verbose": "print the back-end's own progress, bool",
}

#: Value checks of :data:`COMMON_OPTIONS` (name -> (expected, test)).
COMMON_OPTION_CHECKS: Mapping[str, OptionCheck] = {
    "tol": ("a positive float below 1", lambda v: is_real(v) and 0 < v < 1),
    "max_iter": POSITIVE_INT,
    "time_limit": ("a positive float (seconds)", lambda v: is_real(v) and v > 0),
    "verbose": BOOL,
}

#: ``(what a back-end needs of a loss, in words; test of a loss)``.
LossNeed = tuple[str, Callable[[Any], bool]]


class Solver(ABC):
    """A solver back-end.

    Subclasses set the class attributes and implement :meth:`solve`. Detection
    is by import (``package``); back-ends that need a license set
    ``needs_license`` and override :meth:`license_problem`; back-ends that
    cannot minimise every loss override :meth:`loss_needs`.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    package: ClassVar[str]
    #: Whether the back-end refuses to solve without a license.
    needs_license: ClassVar[bool] = False
    #: Back-end specific options (name -> (expected, test) of its value).
    native_option_checks: ClassVar[Mapping[str, OptionCheck]] = {}
    #: Their names (set from ``native_option_checks`` for every subclass that does not
    #: set it itself).
    native_options: ClassVar[frozenset[str]] = frozenset()
    #: Native settings that set what a common option sets (native name -> common name):
    #: passing both is refused rather than one silently winning.
    option_aliases: ClassVar[Mapping[str, str]] = {}

    def native_settings(self, options: Mapping[str, Any]) -> set[str]:
        """The names of the back-end's own settings in ``options`` (a back-end whose
        settings come in a mapping option, as MOSEK's, adds those)."""
        return set(options)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "native_options" not in cls.__dict__:
            cls.native_options = frozenset(cls.native_option_checks)

    #: The certified relative gap a solve targets when the caller passes no ``tol``.
    default_tol: ClassVar[float] = 1e-6

    def target_tol(self, options: Mapping[str, Any]) -> float:
        """The relative gap the caller asked for: ``tol``, else :attr:`default_tol`."""
        return float(options.get("tol", self.default_tol))

    def is_installed(self) -> bool:
        """Whether the back-end's package can be imported."""
        return importlib.util.find_spec(self.package) is not None

    def install_command(self) -> str:
        """The command that installs what the back-end misses."""
        return f"pip install {self.package}"

    def license_problem(self) -> str | None:
        """``None`` when the back-end may solve, else why it may not."""
        return None

    def loss_needs(self) -> tuple[LossNeed, ...]:
        """What this back-end needs of a loss; the default takes every loss."""
        return ()

    def missing_loss_needs(self, loss: LossProtocol) -> list[str]:
        """The needs of :meth:`loss_needs` that ``loss`` does not meet."""
        return [need for need, test in self.loss_needs() if not test(loss)]

    def unsupported_reason(self, problem: SDPProblem) -> str | None:
        """``None`` when this back-end can solve ``problem``, else why not."""
        missing = self.missing_loss_needs(problem.loss)
        if missing:
            return (
                f"{self.name} does not support the {problem.loss.name!r} loss "
                f"(it needs {' and '.join(missing)})"
            )
        return None

    def estimate_memory(self, problem: SDPProblem) -> int:
        """Bytes the solve is expected to need at its peak."""
        return 0

    def auto_priority(self, problem: SDPProblem) -> int:
        """Rank for ``solver="auto"``: lower goes first (ties keep the registry order)."""
        return 1

    def long_solve_notice(self, problem: SDPProblem, options: Mapping[str, Any]) -> str | None:
        """Why this solve may run very long with nothing shown, or ``None`` (the
        modelling layer turns it into a warning before solving)."""
        return None

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidSolverOptionError` for options not accepted.

        Names are checked against :data:`COMMON_OPTIONS` and
        ``native_options``, values against :data:`COMMON_OPTION_CHECKS` and
        ``native_option_checks``.
        """
        unknown = set(options) - set(COMMON_OPTIONS) - set(self.native_options)
        if unknown:
            accepted = sorted(set(COMMON_OPTIONS) | set(self.native_options))
            raise InvalidSolverOptionError(
                f"solver {self.name!r} does not accept option(s) "
                f"{', '.join(sorted(unknown))}; accepted: {', '.join(accepted)}"
            )
        settings = self.native_settings(options)
        for native, common in self.option_aliases.items():
            if native in settings and common in options:
                raise InvalidSolverOptionError(
                    f"solver {self.name!r} got both {common!r} and its own {native!r}, "
                    f"which set the same limit; pass one of them"
                )
        for owner, checks in (
            ("solver", COMMON_OPTION_CHECKS),
            (self.name, self.native_option_checks),
        ):
            violation = first_violation(options, checks)
            if violation is not None:
                raise InvalidSolverOptionError(f"{owner} option {violation}")

    @abstractmethod
    def solve(
        self,
        problem: SDPProblem,
        *,
        warm_start: SolverOutput | None = None,
        **options: Any,
    ) -> SolverOutput:
        """Solve ``problem``. Options are :data:`COMMON_OPTIONS` or native ones."""
