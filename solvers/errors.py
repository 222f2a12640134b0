"""Exceptions raised by solver back-ends.

``convexnn`` re-exports each of these under its own ``ConvexNNError``
hierarchy (``convexnn.exceptions``); code that only uses :mod:`solvers`
catches these directly.
"""

from __future__ import annotations


class SolverError(Exception):
    """Base class of every error raised by a solver back-end."""


class UnknownSolverError(SolverError, ValueError):
    """A solver name that no back-end is registered under."""


class SolverNotInstalledError(SolverError, ImportError):
    """The back-end's Python package cannot be imported."""


class SolverNotLicensedError(SolverError):
    """The back-end is installed but refuses to solve without a license."""


class UnsupportedProblemError(SolverError, ValueError):
    """The back-end cannot solve this kind of problem (loss, variant)."""


class InvalidSolverOptionError(SolverError, ValueError):
    """An option the back-end does not accept, or an invalid option value."""


class ProblemTooLargeError(SolverError, MemoryError):
    """The problem would not fit in the memory available to this process."""


class SolverFailedError(SolverError):
    """The back-end raised an error or returned no usable solution."""


class DistributedSolveError(SolverError):
    """A data-parallel solve failed: on another rank, or in the process group itself.

    Raised on every rank with the same message (which rank failed, and why),
    never left to hang.
    """


class ShardError(DistributedSolveError, ValueError):
    """The ranks' data shards cannot form one problem (sizes, features, dtypes)."""
