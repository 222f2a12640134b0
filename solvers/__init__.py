"""Solver back-ends for the semidefinite programs of convexnn.

One small interface (:class:`~solvers.base.Solver`), a registry and the
built-in back-ends: SCS, Clarabel, MOSEK and CVXOPT through cvxpy, and the
native structure-exploiting solver. This package never imports ``convexnn``.

>>> import solvers
>>> [s.name for s in solvers.available()]  # doctest: +SKIP
['native', 'mosek', 'clarabel', 'scs', 'cvxopt']
"""

from solvers.base import (
    COMMON_OPTIONS,
    CvxpyProgram,
    Loss,
    Neurons,
    ProblemShape,
    SDPProblem,
    Solver,
    SolverOutput,
    Status,
)
from solvers.clarabel import ClarabelSolver
from solvers.cvxopt import CVXOPTSolver
from solvers.mosek import MosekSolver
from solvers.native import NativeSolver
from solvers.registry import (
    SolverInfo,
    auto_candidates,
    available,
    get,
    info,
    names,
    register,
    require_usable,
)
from solvers.scs import SCSSolver

for _solver in (NativeSolver, MosekSolver, ClarabelSolver, SCSSolver, CVXOPTSolver):
    register(_solver)

__all__ = [
    "COMMON_OPTIONS",
    "CvxpyProgram",
    "Loss",
    "Neurons",
    "ProblemShape",
    "SDPProblem",
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
