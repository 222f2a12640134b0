"""The error hierarchy of convexnn.

Every error the library raises on purpose is a :class:`ConvexNNError`.
Errors about the caller's input are also ``ValueError`` (or ``TypeError``),
so generic handlers keep working; solver errors are also the matching
:mod:`convexnn.solvers.errors` class, so code written against :mod:`solvers` alone
catches them too.

=============================  ===============================================
class                          raised when
=============================  ===============================================
``ValidationError``            an array or parameter is invalid (ValueError)
``InputTypeError``             an input of the wrong type / dtype (also TypeError)
``DataFormatError``            a data file is malformed (ValidationError)
``MissingFileError``           a data or model file does not exist
                               (FileNotFoundError)
``NotFittedError``             an estimator is used before ``fit`` (also
                               scikit-learn's ``NotFittedError``)
``UnknownSolverError``         no back-end has that name
``SolverNotInstalledError``    the back-end's package is missing
``SolverNotLicensedError``     the back-end needs a license it cannot find
``UnsupportedProblemError``    the back-end cannot solve this loss / variant
``InvalidSolverOptionError``   an option the back-end does not accept
``ProblemTooLargeError``       the solve would not fit in memory (MemoryError)
``SolverFailedError``          the back-end crashed or returned no solution
``DistributedSolveError``      a data-parallel solve failed on some rank (the
                               same error on every rank)
``ShardError``                 the ranks' data shards do not fit together
                               (also ValueError)
``IncompatibleVersionError``   a saved model is from an incompatible version
=============================  ===============================================

Warnings: :class:`SolverStatusWarning` (a solve stopped without proving
optimality; also scikit-learn's ``ConvergenceWarning``),
:class:`FeatureScalingWarning` (feature columns whose scales differ so much
that every solver struggles) and :class:`LongSolveWarning` (a solve that may
run for hours showing nothing), all :class:`ConvexNNWarning`.
"""

from __future__ import annotations

import convexnn.solvers.errors as _solver_errors


class ConvexNNError(Exception):
    """Base class of every error convexnn raises on purpose."""


class ValidationError(ConvexNNError, ValueError):
    """An input array or parameter is invalid; the message names it."""


class InputTypeError(ValidationError, TypeError):
    """An input has a type or dtype that cannot be used (strings, objects, ...)."""


class DataFormatError(ValidationError):
    """A data file could not be parsed."""


class MissingFileError(ConvexNNError, FileNotFoundError):
    """A data or model file does not exist (also ``FileNotFoundError``)."""


class IncompatibleVersionError(ConvexNNError, ValueError):
    """A saved model was written by an incompatible version of convexnn."""


class SolverError(ConvexNNError, _solver_errors.SolverError):
    """Base class of the errors coming from a solver back-end."""


class UnknownSolverError(SolverError, _solver_errors.UnknownSolverError):
    """No back-end is registered under the requested name."""


class SolverNotInstalledError(SolverError, _solver_errors.SolverNotInstalledError):
    """The back-end's package is not installed."""


class SolverNotLicensedError(SolverError, _solver_errors.SolverNotLicensedError):
    """The back-end is installed but not licensed."""


class UnsupportedProblemError(SolverError, _solver_errors.UnsupportedProblemError):
    """The back-end cannot solve this problem."""


class InvalidSolverOptionError(SolverError, _solver_errors.InvalidSolverOptionError):
    """An option the back-end does not accept."""


class ProblemTooLargeError(SolverError, _solver_errors.ProblemTooLargeError):
    """The problem would not fit in the available memory."""


class SolverFailedError(SolverError, _solver_errors.SolverFailedError):
    """The back-end failed."""


class DistributedSolveError(SolverError, _solver_errors.DistributedSolveError):
    """A data-parallel solve failed on some rank; every rank raises it."""


class ShardError(DistributedSolveError, _solver_errors.ShardError):
    """The ranks' data shards cannot form one problem."""


_TRANSLATION: dict[type, type] = {
    _solver_errors.ShardError: ShardError,
    _solver_errors.DistributedSolveError: DistributedSolveError,
    _solver_errors.UnknownSolverError: UnknownSolverError,
    _solver_errors.SolverNotInstalledError: SolverNotInstalledError,
    _solver_errors.SolverNotLicensedError: SolverNotLicensedError,
    _solver_errors.UnsupportedProblemError: UnsupportedProblemError,
    _solver_errors.InvalidSolverOptionError: InvalidSolverOptionError,
    _solver_errors.ProblemTooLargeError: ProblemTooLargeError,
    _solver_errors.SolverFailedError: SolverFailedError,
}


def translate_solver_error(error: _solver_errors.SolverError) -> SolverError:
    """The convexnn counterpart of an error raised inside :mod:`solvers`."""
    if isinstance(error, SolverError):
        return error
    for source, target in _TRANSLATION.items():
        if isinstance(error, source):
            translated = target(str(error))
            break
    else:
        translated = SolverError(str(error))
    translated.__cause__ = error
    return translated


from sklearn.exceptions import ConvergenceWarning as _ConvergenceWarning  # noqa: E402
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError  # noqa: E402


class NotFittedError(ConvexNNError, _SklearnNotFittedError):
    """An estimator was used before ``fit`` (also scikit-learn's ``NotFittedError``,
    itself a ``ValueError`` and an ``AttributeError``)."""


class ConvexNNWarning(UserWarning):
    """Base class of the warnings convexnn issues."""


class SolverStatusWarning(_ConvergenceWarning, ConvexNNWarning):
    """A solver stopped without proving optimality (limit reached, inaccurate).

    A subclass of scikit-learn's ``ConvergenceWarning``, so the usual
    warning filters apply.
    """


class LongSolveWarning(ConvexNNWarning):
    """A solve may run for a very long time with nothing shown (a large problem for the
    native neurons engine without ``verbose`` or ``time_limit``)."""


class FeatureScalingWarning(ConvexNNWarning):
    """Feature columns differ in scale by orders of magnitude, or are all far from 1.

    The semidefinite program (and backprop) then becomes so ill-conditioned
    that solvers stop at their limits or fail; standardise the features
    (``sklearn.preprocessing.StandardScaler``) first.
    """
