"""Input checks shared by every public entry point.

Each check names the argument, the expected and the received
shape / type / value, and what to do; all raise :class:`ValidationError`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from convexnn.exceptions import InputTypeError, ValidationError


def _is_sparse(array: Any) -> bool:
    try:
        import scipy.sparse as sparse
    except ImportError:  # pragma: no cover - scipy is a dependency
        return False
    return sparse.issparse(array)


def as_float_array(
    array: Any, name: str, *, ndims: tuple[int, ...] = (2,), min_samples: int = 1
) -> np.ndarray:
    """``array`` as a finite float64 ndarray with one of ``ndims`` dimensions.

    pandas objects are converted; sparse matrices are rejected (the SDP
    needs dense features), as are object / string / complex dtypes, NaN and
    infinity.
    """
    if array is None:
        raise ValidationError(
            f"this estimator requires {name} to be passed, but the target {name} is None"
            if name == "y"
            else f"{name} is None; expected an array"
        )
    if _is_sparse(array):
        raise ValidationError(
            f"{name} is a sparse matrix; sparse input is not supported because the "
            f"semidefinite program needs dense features. Convert with {name}.toarray()."
        )
    if hasattr(array, "to_numpy"):  # pandas DataFrame / Series
        array = array.to_numpy()
    try:
        raw = np.asarray(array)
    except Exception as error:  # ragged lists and the like
        raise ValidationError(f"{name} could not be converted to an array: {error}") from error
    if raw.dtype.kind == "c" or (
        raw.dtype.kind == "O" and any(isinstance(v, complex) for v in raw.flat)
    ):
        # Checked before any conversion: casting complex to float only warns.
        raise InputTypeError(
            f"Complex data not supported: {name} must be real; got "
            f"{'complex dtype ' + str(raw.dtype) if raw.dtype.kind == 'c' else 'complex values'}"
        )
    if raw.dtype.kind in "OUSV":
        try:
            raw = raw.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise InputTypeError(
                f"{name} must be numeric; got dtype {raw.dtype} with values that are "
                f"not numbers ({error}). Encode categorical columns first."
            ) from error
    elif raw.dtype.kind == "b":
        raw = raw.astype(np.float64)
    if raw.ndim not in ndims:
        expected = " or ".join(f"{d}-D" for d in ndims)
        hint = ""
        if raw.ndim < min(ndims) and min(ndims) == 2:
            hint = (
                ". Reshape your data either using array.reshape(-1, 1) if it has a "
                "single feature or array.reshape(1, -1) if it contains a single sample"
            )
        raise ValidationError(f"{name} must be {expected}; got shape {raw.shape}{hint}")
    values = raw.astype(np.float64, copy=False)
    if values.shape[0] < min_samples:
        raise ValidationError(
            f"{name} has {values.shape[0]} sample(s) (shape {values.shape}); at least "
            f"{min_samples} required"
        )
    if values.ndim > 1 and 0 in values.shape[1:]:
        raise ValidationError(
            f"{name} has no features: 0 feature(s) (shape={values.shape}) while a "
            "minimum of 1 is required."
        )
    if not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        kind = "NaN" if np.isnan(values).any() else "infinity"
        raise ValidationError(
            f"{name} contains {bad} non-finite value(s) ({kind}); remove or impute them "
            "before fitting"
        )
    return values


def check_targets(y: Any, n_samples: int, name: str = "y") -> np.ndarray:
    """``y`` as a float ``(n, C)`` array with ``n_samples`` rows."""
    values = as_float_array(y, name, ndims=(1, 2))
    if len(values) != n_samples:
        raise ValidationError(
            f"{name} has {len(values)} rows but X has {n_samples} samples; they must match"
        )
    return values.reshape(-1, 1) if values.ndim == 1 else values


def check_beta(beta: Any) -> float:
    """A finite, non-negative regularisation strength."""
    if (
        not isinstance(beta, numbers.Real)
        or isinstance(beta, (bool, np.bool_))
        or not np.isfinite(float(beta))
        or beta < 0
    ):
        raise ValidationError(
            f"beta must be a finite non-negative number (the l1 penalty on output "
            f"weights); got {beta!r}"
        )
    return float(beta)


def check_positive(value: Any, name: str, *, integer: bool = False, allow_none: bool = False) -> Any:
    """A positive (int or float) parameter."""
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integer else numbers.Real
    if (
        not isinstance(value, kind)
        or isinstance(value, (bool, np.bool_))
        or not np.isfinite(float(value))
        or value <= 0
    ):
        what = "positive int" if integer else "positive finite number"
        raise ValidationError(f"{name} must be a {what}, got {value!r}")
    return int(value) if integer else float(value)
