"""Solver back-ends for the semidefinite programs of convexnn.

One small interface (:class:`~convexnn.solvers.base.Solver`), a registry and the
built-in back-ends: SCS, Clarabel, MOSEK and CVXOPT through cvxpy, and the
native structure-exploiting solver. This package never imports ``convexnn``.

>>> from convexnn import solvers
>>> [s.name for s in solvers.available()]  # doctest: +SKIP
['native', 'mosek', 'clarabel', 'scs', 'cvxopt']

Back-ends take losses by capability (:class:`~convexnn.solvers.base.SmoothLoss`,
:class:`~convexnn.solvers.base.ConicLoss`); to see which of some losses each
one takes, pass them: ``solvers.available(losses=[...])``.
"""

from convexnn.solvers.base import (
    COMMON_OPTIONS,
    ConicLoss,
    LossProtocol,
    Neurons,
    ProblemShape,
    SDPProblem,
    SmoothLoss,
    Solver,
    SolverOutput,
    Status,
)
from convexnn.solvers.registry import (
    SolverInfo,
    auto_candidates,
    available,
    get,
    info,
    names,
    register,
    require_usable,
)

__all__ = [
    "COMMON_OPTIONS",
    "ConicLoss",
    "LossProtocol",
    "Neurons",
    "ProblemShape",
    "SDPProblem",
    "SmoothLoss",
    "Solver",
    "SolverInfo",
    "SolverOutput",
    "Status",
    "auto_candidates",
    "available",
    "get",
    "info",
    "names",
    "register",
    "require_usable",
]
