"""Input checks shared by every public entry point.

Each check names the argument, the expected and the received
shape / type / value, and what to do; all raise :class:`ValidationError`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convexnn.exceptions import FeatureScalingWarning, InputTypeError, ValidationError
from convexnn.solvers._checks import is_int, is_real, without_unset
from convexnn.solvers._warnings import caller_stacklevel

#: Column scales (root mean square) further apart than this trigger a
#: :class:`FeatureScalingWarning` (raw breast-cancer data: about 2e5).
SCALE_RATIO_LIMIT = 1e4
#: So does a largest column scale above this: a degree-2 activation of such
#: features puts its quadratic, linear and constant parts ``scale**2 : scale : 1``
#: apart (features of scale 1e6: every back-end fails or stops far from the
#: optimum; at 3e3 the interior point stalls at gap 0.5 on 2000 x 4 planted data
#: and the neurons engine it hands over to needs 19 s; at 1e3 it ends at 1.8e-6).
SCALE_LIMIT = 1e3
#: And a largest column scale below this: the quadratic part is then below 1e-8 of
#: the constant one (features of scale 1e-100 made the native solver fail on NaN).
SMALL_SCALE_LIMIT = 1e-4
#: Targets beyond this in absolute value are refused: squared, summed over the
#: samples, they overflow float64.
TARGET_LIMIT = 1e100
#: Features beyond this in absolute value are refused: a degree-2 network's outputs
#: grow as their squares, the loss and the lifted problem as their fourth powers
#: (features of 1e160 gave NaN predictions and certificates, silently).
FEATURE_LIMIT = 1e50


def is_sparse(array: Any) -> bool:
    try:
        from scipy import sparse
    except ImportError:  # pragma: no cover - scipy is a dependency
        return False
    return sparse.issparse(array)


def _check_real_numbers(dtype: Any, name: str) -> None:
    """Refuse complex numbers, dates and durations (a float cast would mangle them)."""
    kind = getattr(dtype, "kind", "O")
    if kind == "c":
        raise InputTypeError(
            f"Complex data not supported: {name} must be real; got complex dtype {dtype}")
    if kind in ("m", "M"):  # dates and durations would become raw counts of units
        raise InputTypeError(
            f"{name} must be numeric; got dtype {dtype}. Convert dates or durations to "
            "numbers in a unit you choose first"
        )


def from_tensor(value: Any) -> Any:
    """A torch tensor as an ndarray (detached, on the CPU, bfloat16 widened to float32,
    which numpy lacks); anything else as given."""
    if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach"):
        import torch  # (only where a tensor was given: importing convexnn stays light)

        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return value


def as_float_array(
    array: Any, name: str, *, ndims: tuple[int, ...] = (2,), min_samples: int = 1,
    limit: float | None = None,
) -> np.ndarray:
    """``array`` as a finite float64 ndarray with one of ``ndims`` dimensions.

    pandas objects are converted; object and string arrays are converted
    when every value is a number (``"1.5"`` included), as numpy does. Rejected:
    sparse matrices (the SDP needs dense features), other object / string
    values, complex numbers, dates and durations, NaN and infinity, and values
    beyond ``limit`` in absolute value (e.g. :data:`FEATURE_LIMIT` for features).
    """
    array = from_tensor(array)
    if array is None:
        raise ValidationError(
            f"this estimator requires {name} to be passed, but the target {name} is None"
            if name == "y"
            else f"{name} is None; expected an array"
        )
    if is_sparse(array):
        raise ValidationError(
            f"{name} is a sparse matrix; sparse input is not supported because the "
            f"semidefinite program needs dense {'features' if name == 'X' else 'arrays'}. "
            f"Convert with {name}.toarray()."
        )
    if np.ma.isMaskedArray(array) and np.ma.getmaskarray(array).any():
        # np.asarray drops the mask: the masked (missing) entries would be fitted.
        raise ValidationError(
            f"{name} is a masked array with {int(np.ma.getmaskarray(array).sum())} masked "
            f"value(s); fill them ({name}.filled(value)) or drop their rows first"
        )
    if hasattr(array, "to_numpy"):  # pandas DataFrame / Series
        # Checked on the columns' own dtypes: the float conversion below would turn
        # dates into nanosecond counts and drop imaginary parts with only a warning.
        dtypes = getattr(array, "dtypes", getattr(array, "dtype", None))  # (an Index: dtype)
        for dtype in np.atleast_1d(np.asarray(dtypes, dtype=object)):
            _check_real_numbers(dtype, name)
        try:  # nullable dtypes: missing values become NaN (reported below)
            array = array.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            array = array.to_numpy()
    try:
        raw = np.asarray(array)
    except Exception as error:  # ragged lists and the like
        raise ValidationError(f"{name} could not be converted to an array: {error}") from error
    if raw.dtype.kind == "O" and any(isinstance(v, complex) for v in raw.flat):
        raise InputTypeError(f"Complex data not supported: {name} must be real; got "
                             "complex values")
    # Checked before any conversion: casting complex to float only warns.
    _check_real_numbers(raw.dtype, name)
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
        elif raw.ndim > max(ndims):
            hint = (
                f". Flatten each sample ({name}.reshape(len({name}), -1))"
                + (" or, for images, use a convolutional estimator (or geometry= of the "
                   "functions that take one)" if name == "X" and max(ndims) < 4 else "")
            )
        raise ValidationError(f"{name} must be {expected}; got shape {raw.shape}{hint}")
    values = raw.astype(np.float64, copy=False)
    if values.shape[0] < min_samples:
        raise ValidationError(
            f"{name} has {values.shape[0]} sample(s) (shape {values.shape}); at least "
            f"{min_samples} required{'' if values.shape[0] else ' (the array is empty)'}"
        )
    if values.ndim > 1 and 0 in values.shape[1:]:
        if name.startswith("y"):
            raise ValidationError(f"{name} has no columns (outputs): shape {values.shape}")
        raise ValidationError(  # (scikit-learn's words, which its estimator checks expect)
            f"{name} has no features: 0 feature(s) (shape={values.shape}) while a "
            "minimum of 1 is required."
        )
    if not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        kind = "NaN" if np.isnan(values).any() else "infinity"
        raise ValidationError(
            f"{name} contains {bad} non-finite value(s) ({kind}); remove or impute them"
        )
    if limit is not None and (largest := float(np.abs(values).max(initial=0.0))) > limit:
        raise ValidationError(
            f"{name} has values up to {largest:.3g}; beyond {limit:g} a degree-2 network's "
            "outputs and the loss overflow float64. Rescale the features, e.g. with "
            "sklearn.preprocessing.StandardScaler"
        )
    return values


def check_targets(y: Any, n_samples: int, name: str = "y") -> np.ndarray:
    """``y`` as a float ``(n, C)`` array with ``n_samples`` rows."""
    values = as_float_array(y, name, ndims=(1, 2))
    if len(values) != n_samples:
        raise ValidationError(
            f"{name} has {len(values)} rows but X has {n_samples} samples; they must match"
        )
    largest = float(np.abs(values).max(initial=0.0))
    if largest > TARGET_LIMIT:
        raise ValidationError(
            f"{name} has values up to {largest:.3g}; a loss of such targets overflows "
            f"float64 (limit {TARGET_LIMIT:g}). Rescale {name}, e.g. divide it by its "
            "standard deviation"
        )
    return values.reshape(-1, 1) if values.ndim == 1 else values


def check_nonnegative(value: Any, name: str, meaning: str) -> float:
    """A finite number ``>= 0``; ``meaning`` goes into the error message."""
    if not is_real(value) or value < 0:
        raise ValidationError(
            f"{name} must be a finite non-negative number ({meaning}); got {value!r}"
        )
    return float(value)


def check_beta(beta: Any) -> float:
    """A finite, non-negative regularisation strength."""
    return check_nonnegative(beta, "beta", "the l1 penalty on output weights")


def as_real_array(value: Any, name: str, what: str) -> np.ndarray:
    """``value`` as a float64 array of real numbers (no finiteness or shape check)."""
    try:
        array = np.asarray(from_tensor(value))
        if array.dtype.kind not in "biuf":
            raise TypeError(f"dtype {array.dtype}")
        return array.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise InputTypeError(f"{name} must be a real numeric {what}, got {error}") from error


def check_positive(
    value: Any, name: str, *, integer: bool = False, allow_none: bool = False
) -> Any:
    """A positive (int or float) parameter."""
    if value is None and allow_none:
        return None
    if not (is_int(value) if integer else is_real(value)) or value <= 0:
        what = "positive int" if integer else "positive finite number"
        raise ValidationError(f"{name} must be a {what}, got {value!r}")
    return int(value) if integer else float(value)


def check_bool(value: Any, name: str) -> bool:
    """``True`` or ``False`` (numpy booleans too), nothing else."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValidationError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_instance(value: Any, types: type | tuple[type, ...], name: str, what: str) -> Any:
    """``value`` if it is an instance of ``types``; the error says ``name must be what``."""
    if not isinstance(value, types):
        raise ValidationError(f"{name} must be {what}, got {value!r}")
    return value


def check_solver(value: Any) -> str:
    """A back-end name or ``"auto"`` (whether it is registered is the registry's to say)."""
    return check_instance(value, str, "solver", "a back-end name or 'auto'")


def check_solver_options(value: Any) -> dict[str, Any] | None:
    """A mapping of solver options named by strings, or None; ``tol``, ``time_limit`` and
    ``max_iter`` set to None are left out (the default), as for the other options."""
    options = check_instance(value, (Mapping, type(None)), "solver_options",
                             "a dict of solver options or None")
    if options is None:
        return None
    names = [key for key in options if not isinstance(key, str)]
    if names:
        raise ValidationError(f"solver_options keys must be option names (strings), got "
                              f"{names[0]!r}")
    return without_unset(options)


def check_interval(value: Any, name: str, *, low: float, high: float) -> float:
    """A real number in ``[low, high)``."""
    if not is_real(value) or not low <= value < high:
        raise ValidationError(f"{name} must be a number in [{low:g}, {high:g}), got {value!r}")
    return float(value)


def check_choice(value: Any, name: str, options: Sequence[str]) -> str:
    """One of ``options`` (case-insensitive, ``_`` for ``-``); the error lists them."""
    if isinstance(value, str):
        key = value.strip().lower().replace("_", "-")
        if key in options:
            return key
    raise ValidationError(f"{name} must be one of {', '.join(options)}; got {value!r}")


def check_seed(seed: Any, name: str = "seed") -> int:
    """An int seed in ``[0, 2**32 - 1]`` (numpy integers too, not bools): NumPy's range,
    which the data generators' ``random_state`` has too (torch's would fail past 2**64
    with an error naming neither)."""
    if not is_int(seed) or not 0 <= seed < 2**32:
        raise ValidationError(f"{name} must be an int in [0, 2**32 - 1], got {seed!r}")
    return int(seed)


def check_seeds(seeds: Any) -> list[int]:
    """``k`` as the seeds ``0..k-1``, or the distinct seeds of an iterable, in order."""
    if is_int(seeds):
        return list(range(check_positive(seeds, "seeds", integer=True)))
    if isinstance(seeds, (str, bytes)):
        raise ValidationError(f"seeds must be an int or a list of ints, got {seeds!r}")
    try:
        seed_list = [check_seed(s, "each seed") for s in seeds]
    except TypeError:
        raise ValidationError(f"seeds must be an int or a list of ints, got {seeds!r}") from None
    if not seed_list:
        raise ValidationError("seeds is empty; give at least one seed")
    return list(dict.fromkeys(seed_list))


def local_random_state(random_state: Any, name: str = "random_state") -> np.random.RandomState:
    """A *local* ``RandomState``: from an int seed, passed through, or fresh for None.

    Unlike scikit-learn's ``check_random_state``, ``None`` never means NumPy's
    global generator: nothing here reads or advances global random state.
    """
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if random_state is not None and not is_int(random_state):
        raise ValidationError(
            f"{name} must be None, an int or a numpy RandomState, got {random_state!r}"
        )
    try:
        return np.random.RandomState(random_state)
    except ValueError as error:
        raise ValidationError(
            f"{name} must be an int in [0, 2**32 - 1], got {random_state!r}"
        ) from error


def check_path(path: Any, name: str = "path") -> Path:
    """A ``str`` or path-like as a :class:`~pathlib.Path`."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"{name} must be a file path (str or os.PathLike), got {path!r}")
    return Path(path)


def feature_scales(X: np.ndarray) -> np.ndarray:
    """Root mean square of every column of ``X`` (flattened per sample)."""
    flat = X.reshape(len(X), -1)
    return np.sqrt(np.einsum("ij,ij->j", flat, flat) / max(len(flat), 1))


def writable(array: np.ndarray) -> np.ndarray:
    """``array``, copied if it is read-only (memory maps, pandas' copy-on-write views,
    sliding-window views): torch warns when it wraps one."""
    return array if array.flags.writeable else array.copy()


def check_device(device: Any) -> Any:
    """``device`` as a ``torch.device`` (default CPU) that torch can use here: ``"cuda"``
    without a CUDA device fails now, not deep inside the first step that uses it."""
    import torch  # here: importing convexnn must stay light

    try:
        resolved = torch.device("cpu") if device is None else torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValidationError(f"device: {error}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError(f"device {device!r}: torch sees no CUDA device here; use 'cpu'")
    return resolved


#: The ``stacklevel`` that makes a warning issued by the caller point at the first frame
#: outside convexnn (the user's line), however deep the library's call chain: the
#: back-ends' own, which knows their frames too.
user_stacklevel = caller_stacklevel


def warn_if_badly_scaled(X: np.ndarray, name: str = "X", *,
                         entries: tuple[np.ndarray, list[str]] | None = None) -> None:
    """Warn (:class:`FeatureScalingWarning`) when column scales differ by more than
    :data:`SCALE_RATIO_LIMIT` or the largest is above :data:`SCALE_LIMIT` or below
    :data:`SMALL_SCALE_LIMIT`; all-zero
    columns are ignored. ``entries`` (images) replaces the columns by the scales and
    names of the entries of the patches the filters see
    (:meth:`ConvGeometry.patch_scales`)."""
    scales, labels = (feature_scales(X), None) if entries is None else entries
    what = "column" if labels is None else "filter entry"

    def label(index: int) -> str:
        return f"column {index}" if labels is None else labels[index]

    used = np.flatnonzero(scales > 0)
    if len(used) == 0:
        return
    small, large = used[np.argmin(scales[used])], used[np.argmax(scales[used])]
    ratio = scales[large] / scales[small]
    if ratio > SCALE_RATIO_LIMIT:
        problem = (f"{what} scales (root mean square) range from {scales[small]:.3g} "
                   f"({label(small)}) to {scales[large]:.3g} ({label(large)}), a ratio of "
                   f"{ratio:.2g} > {SCALE_RATIO_LIMIT:g}")
    elif scales[large] > SCALE_LIMIT:
        problem = (f"{label(large)} has scale (root mean square) {scales[large]:.3g} > "
                   f"{SCALE_LIMIT:g}, so the activation's quadratic and constant parts are "
                   f"{scales[large] ** 2:.1g} apart")
    elif scales[large] < SMALL_SCALE_LIMIT:
        problem = (f"its largest {what} scale (root mean square) is {scales[large]:.3g} < "
                   f"{SMALL_SCALE_LIMIT:g} ({label(large)}), so the activation's quadratic "
                   f"part is {scales[large] ** 2:.1g} of its constant part")
    else:
        return
    if labels is not None:  # the filters share their weights over the image
        advice = ("Bring the pixels to one scale first (e.g. X / X.std(), per channel when "
                  "the channels differ; not a per-pixel StandardScaler).")
    else:
        advice = "Standardise the features first, e.g. make_pipeline(StandardScaler(), estimator)."
    warnings.warn(
        f"{name} is badly scaled: {problem}. The convex program is then so ill-conditioned "
        f"that solvers stop at their limits or fail. {advice}",
        FeatureScalingWarning,
        stacklevel=user_stacklevel(),
    )


def estimator_features(
    estimator: Any, X: Any, *, reset: bool, ndims: tuple[int, ...] = (2,),
    scale_check: bool = True,
) -> np.ndarray:
    """Validated features of a scikit-learn estimator's ``fit`` / ``predict``.

    Records (``reset=True``) or checks ``n_features_in_`` and
    ``feature_names_in_``; a fit warns about badly scaled columns
    (:func:`warn_if_badly_scaled`) unless ``scale_check`` is false (images: their
    patches are checked instead).
    """
    from sklearn.utils.validation import validate_data

    values = as_float_array(X, "X", ndims=ndims, min_samples=2 if reset else 1,
                            limit=FEATURE_LIMIT)
    flat = values.reshape(len(values), -1)
    try:
        validate_data(estimator, X if values.ndim == 2 else flat, reset=reset,
                      skip_check_array=True)
    except ValueError as error:  # a different number of features than in fit
        raise ValidationError(
            f"{error} Pass data with the same columns as the training data."
        ) from error
    except TypeError as error:  # column names of mixed types
        raise InputTypeError(f"X's column names: {error}") from error
    if reset and scale_check:
        warn_if_badly_scaled(values)
    return values


def check_fitted(estimator: Any, attribute: str) -> None:
    """Raise :class:`~convexnn.exceptions.NotFittedError` unless ``fit`` has run."""
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    from sklearn.utils.validation import check_is_fitted

    from convexnn.exceptions import NotFittedError

    try:
        check_is_fitted(estimator, attribute)
    except SklearnNotFittedError as error:
        if hasattr(estimator, "cv_results_") and estimator._fitted_params()["refit"] is False:
            # a CV estimator that chose beta_ but was told not to fit a model at it
            raise NotFittedError(
                f"this {type(estimator).__name__} was fitted with refit=False: it chose "
                f"beta_={estimator.beta_:.6g} but holds no model at it; fit with "
                "refit=True, or fit the plain estimator at beta_"
            ) from None
        raise NotFittedError(str(error)) from None
