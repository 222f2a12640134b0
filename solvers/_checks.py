"""Value checks for option tables: one notion of a real number and of an int.

An option table maps an option name to an :data:`OptionCheck`, a pair
``(what is expected, test)``; :func:`first_violation` runs a table. Every
back-end's options, and the common ones, are checked this way
(:meth:`convexnn.solvers.base.Solver.check_options`), so the error messages
name the option and the accepted values alike everywhere.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

#: ``(what is expected, in words; test of a value)``.
OptionCheck = tuple[str, Callable[[Any], bool]]


def is_real(value: Any) -> bool:
    """Whether ``value`` is a finite real number, numpy scalars too (``bool`` is not a number here).

    The one notion of a real number in convexnn: the modelling layer's checks use it too.
    """
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        return False
    try:
        return bool(np.isfinite(float(value)))
    except OverflowError:  # an int beyond float's range (10**400)
        return False


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer, numpy integers too (``bool`` is not an integer here)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


#: The largest integer option: the back-ends' C code holds them in 32-bit ints (a larger
#: one passed the checks and then failed inside Clarabel or SCS with an OverflowError).
INT_OPTION_MAX = 2**31 - 1


def _int_in(low: int) -> Callable[[Any], bool]:
    return lambda v: is_int(v) and low <= v <= INT_OPTION_MAX


BOOL: OptionCheck = ("a bool", lambda v: isinstance(v, (bool, np.bool_)))
POSITIVE: OptionCheck = ("a positive number", lambda v: is_real(v) and v > 0)
NON_NEGATIVE: OptionCheck = ("a non-negative number", lambda v: is_real(v) and v >= 0)
INT: OptionCheck = (f"an int (of at most {INT_OPTION_MAX} in absolute value)",
                    lambda v: is_int(v) and abs(v) <= INT_OPTION_MAX)
POSITIVE_INT: OptionCheck = (f"a positive int (at most {INT_OPTION_MAX})", _int_in(1))
NON_NEGATIVE_INT: OptionCheck = (f"a non-negative int (at most {INT_OPTION_MAX})", _int_in(0))
STRING: OptionCheck = ("a string", lambda v: isinstance(v, str))
MAPPING: OptionCheck = ("a dict", lambda v: isinstance(v, Mapping))


def cpu_count() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


#: Threads per CPU a ``threads`` option may ask for: more only slow a solve down (1000
#: threads on 2 CPUs: 24 s for a 0.04 s solve), and thousands made OpenMP abort the
#: process.
THREADS_PER_CPU = 4


#: A positive number of threads, at most :data:`THREADS_PER_CPU` per CPU this process
#: may run on when the option is checked (not when convexnn was imported).
THREAD_COUNT: OptionCheck = (
    f"a positive int, at most {THREADS_PER_CPU} per CPU this process may use",
    lambda v: is_int(v) and 1 <= v <= THREADS_PER_CPU * cpu_count(),
)


def one_of(*choices: Any) -> OptionCheck:
    """A value among ``choices``."""
    return (f"one of {', '.join(map(repr, choices))}", lambda v: v in choices)


def in_interval(low: float, high: float, *, closed_high: bool = False) -> OptionCheck:
    """A real number in ``(low, high)``, or ``(low, high]`` with ``closed_high``."""
    bracket = "]" if closed_high else ")"
    return (
        f"a number in ({low:g}, {high:g}{bracket}",
        lambda v: is_real(v) and low < v and (v <= high if closed_high else v < high),
    )


def optional(check: OptionCheck) -> OptionCheck:
    """``check``, or ``None`` (the back-end's default)."""
    expected, test = check
    return (f"{expected} or None", lambda v: v is None or test(v))


def first_violation(options: Mapping[str, Any], checks: Mapping[str, OptionCheck]) -> str | None:
    """``"'name' must be ..., got ..."`` for the first option ``checks`` refuses, else ``None``."""
    for key, (expected, test) in checks.items():
        if key in options and not test(options[key]):
            return f"{key!r} must be {expected}, got {options[key]!r}"
    return None


#: Common options that mean "the back-end's default" when set to None.
DEFAULT_WHEN_NONE = ("tol", "max_iter", "time_limit")


def without_unset(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` less the common ones set to None (:data:`DEFAULT_WHEN_NONE`)."""
    return {key: value for key, value in options.items()
            if not (key in DEFAULT_WHEN_NONE and value is None)}
