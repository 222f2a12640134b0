"""Saving fitted estimators to portable files (``.npz`` arrays + JSON metadata).

One file per estimator, written by ``estimator.save(path)`` and read by
``EstimatorClass.load(path)``. Nothing is pickled (``np.load`` runs with
``allow_pickle=False``), so a file can be read without trusting it and from
any language that reads ``.npz``:

==================  ============================================================
entry               content
==================  ============================================================
``metadata``        a JSON string: ``format`` (``"convexnn.estimator"``),
                    ``format_version``, ``convexnn_version``, ``class``,
                    ``params`` (``get_params()``), ``n_features_in_``,
                    ``network`` (:meth:`TwoLayerPolyNet.to_dict`),
                    ``geometry`` (conv variants), ``result`` (the
                    :class:`~convexnn.SolveResult`, back-end statistics
                    reduced to JSON values), ``classes_dtype``
``U``, ``alpha``    the network's weights, float64, stored bit for bit
``classes``         ``classes_`` (classifiers)
``feature_names``   ``feature_names_in_`` (when ``X`` had string column names)
==================  ============================================================

``format_version`` is checked on load: a file from a newer format raises
:class:`~convexnn.exceptions.IncompatibleVersionError`; older formats this
version knows are read. ``convexnn_version`` is recorded for the record.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin

from convexnn._solve import SolveResult
from convexnn._version import __version__
from convexnn.activations import Activation, get_activation
from convexnn.exceptions import IncompatibleVersionError, ValidationError
from convexnn.losses import LOSSES, Loss
from convexnn.network import TwoLayerPolyNet, check_format_version, npz_path, read_npz
from convexnn.patches import ConvGeometry

FORMAT = "convexnn.estimator"
#: The file format this version writes (and the newest it reads).
FORMAT_VERSION = 1

_WHAT = "a saved convexnn estimator"


# -- parameters as JSON ------------------------------------------------------------
def encode_value(value: Any, name: str) -> Any:
    """A parameter value as JSON, with markers for tuples, activations and losses."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else {"__float__": repr(number)}
    if isinstance(value, Activation):
        return {"__activation__": list(value.coefficients), "name": value.name}
    if isinstance(value, Loss):
        if LOSSES.get(value.name) is not type(value):
            raise ValidationError(
                f"cannot save parameter {name}: {type(value).__name__} is not a built-in "
                "loss; pass the loss by name, or pickle the estimator instead"
            )
        return {"__loss__": value.name, "params": encode_value(dict(vars(value)), name)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(v, name) for v in value]}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"__array__": encode_value(value.tolist(), name)}
    if isinstance(value, list):
        return [encode_value(v, name) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {"__mapping__": {k: encode_value(v, f"{name}[{k!r}]") for k, v in value.items()}}
    raise ValidationError(
        f"cannot save parameter {name}={value!r}: a {type(value).__name__} has no portable "
        "form; use numbers, strings, tuples or dicts of them (or pickle the estimator)"
    )


def decode_value(value: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__activation__" in value:
        return Activation(*value["__activation__"], name=value.get("name"))
    if "__loss__" in value:
        return LOSSES[value["__loss__"]](**decode_value(value.get("params", {})))
    if "__tuple__" in value:
        return tuple(decode_value(v) for v in value["__tuple__"])
    if "__array__" in value:
        return np.asarray(decode_value(value["__array__"]))
    if "__mapping__" in value:
        return {k: decode_value(v) for k, v in value["__mapping__"].items()}
    raise ValueError(f"unknown encoded value {value!r}")


def json_ready(value: Any) -> Any:
    """``value`` as JSON: NaN/inf become None, numpy values plain Python, others strings."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(float(value)) else None
    return str(value)


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


# -- save / load ---------------------------------------------------------------------
def save_estimator(estimator: Any, path: Any, data_format: Mapping[str, Any] | None = None
                   ) -> Path:
    """Write a fitted convex estimator (see the module doc); returns the path.

    ``data_format`` records how the training file was read, for reading the
    files the model later predicts on the same way (the command line's
    ``{"svmlight_zero_based": bool}``; :func:`saved_data_format` reads it).
    """
    path = npz_path(path)
    network: TwoLayerPolyNet = estimator.network_
    fitted = dict(estimator._fitted_params(), beta=estimator._objective_param("beta"),
                  loss=estimator._objective_param("loss"))
    params = {name: encode_value(value, name) for name, value in fitted.items()}
    result = estimator.result_
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "convexnn_version": __version__,
        "class": type(estimator).__name__,
        "params": params,
        "n_features_in_": int(estimator.n_features_in_),
        "network": network.to_dict(),
        "geometry": None if estimator.geometry_ is None else estimator.geometry_.to_dict(),
        "data_format": json_ready(dict(data_format or {})),
        "result": json_ready(
            {
                f.name: getattr(result, f.name)
                for f in dataclasses.fields(result)
                if f.name != "dual_point"  # an array: stored below, not as JSON
            }
        ),
    }
    arrays: dict[str, np.ndarray] = {"U": network.U, "alpha": network.alpha}
    if result.dual_point is not None:
        arrays["dual_point"] = result.dual_point
    if hasattr(estimator, "classes_"):
        classes = np.asarray(estimator.classes_)
        metadata["classes_dtype"] = classes.dtype.str if classes.dtype.kind != "O" else "object"
        if classes.dtype.kind == "O":
            if not all(isinstance(c, str) for c in classes):
                raise ValidationError(
                    "cannot save classes_ of mixed object types; use string or numeric labels"
                )
            classes = classes.astype(str)
        if classes.dtype.kind == "U" and any(
                str(text) != str(label) for text, label in zip(classes, estimator.classes_)):
            # NumPy's text arrays drop trailing NULs: the file would load other labels
            raise ValidationError(
                "cannot save classes_ with trailing NUL characters ('\\x00'): a saved "
                "label must read back as itself; strip them before fitting"
            )
        if classes.dtype.kind not in "biufU":
            raise ValidationError(f"cannot save classes_ of dtype {classes.dtype}")
        arrays["classes"] = classes
    if hasattr(estimator, "feature_names_in_"):
        arrays["feature_names"] = np.asarray(estimator.feature_names_in_).astype(str)
    with open(path, "wb") as handle:
        np.savez(handle, metadata=np.array(json.dumps(metadata, allow_nan=False)), **arrays)
    return path


def load_estimator(cls: type, path: Any) -> Any:
    """Read an estimator of class ``cls`` written by :func:`save_estimator`."""
    arrays, metadata = read_npz(path, ("U", "alpha"), _WHAT)
    if metadata.get("format") != FORMAT:
        hint = (
            "; it holds a network: use TwoLayerPolyNet.load"
            if metadata.get("format") == "convexnn.TwoLayerPolyNet"
            else ""
        )
        raise ValidationError(f"{path} is not {_WHAT}{hint}")
    check_format_version(metadata, FORMAT_VERSION, path)
    saved_class = metadata.get("class")
    if saved_class != cls.__name__:
        raise ValidationError(
            f"{path} holds a {saved_class}, not a {cls.__name__}; load it with "
            f"{saved_class}.load"
        )
    try:
        params = {name: decode_value(value) for name, value in metadata["params"].items()}
        for name in ("image_shape", "filter_size", "stride", "pool_size"):
            if isinstance(params.get(name), list):  # JSON has no tuples
                params[name] = tuple(params[name])
        estimator = cls(**params)
        if hasattr(estimator, "_check_params"):
            estimator._check_params()  # a hand-edited file gets the usual messages
        network = TwoLayerPolyNet.from_saved(arrays["U"], arrays["alpha"], metadata["network"],
                                             path)
        if network.activation.coefficients != get_activation(
                params["activation"]).coefficients:
            raise KeyError("the network's activation is not its parameters' activation")
        geometry = metadata.get("geometry")
        estimator.network_ = network
        estimator._remember_objective(params["beta"], params["loss"])
        # The saved parameters describe the network, whatever set_params does since.
        estimator._params_at_fit_ = estimator.get_params(deep=False)
        estimator.geometry_ = None if geometry is None else ConvGeometry.from_dict(geometry)
        n_features = metadata.get("n_features_in_")
        if not isinstance(n_features, int) or isinstance(n_features, bool) or n_features < 1:
            raise KeyError(f"n_features_in_ (got {n_features!r})")
        estimator.n_features_in_ = n_features
        if "feature_names" in arrays:
            if arrays["feature_names"].dtype.kind != "U":
                raise KeyError("feature_names (not text)")
            estimator.feature_names_in_ = arrays["feature_names"].astype(object)
        saved = metadata["result"]
        if not isinstance(saved.get("status"), str):
            raise KeyError("result status")
        fields = {f.name: saved.get(f.name) for f in dataclasses.fields(SolveResult)}
        for name in ("objective", "lower_bound", "duality_gap", "relative_gap", "solve_time",
                     "solver_objective"):
            fields[name] = _float(fields[name])
        fields["stats"] = fields["stats"] or {}
        fields["dual_point"] = arrays.get("dual_point")
        fields["message"] = fields["message"] or ""
        estimator.result_ = SolveResult(**fields)
        if "classes" in arrays:
            classes = arrays["classes"]
            if metadata.get("classes_dtype") == "object":
                classes = classes.astype(object)
            estimator.classes_ = classes
        elif issubclass(cls, ClassifierMixin):
            raise KeyError("classes")
    except IncompatibleVersionError:
        raise  # (a newer network format: its message says to upgrade, nothing is damaged)
    except ValidationError as error:
        raise ValidationError(f"{path} holds an invalid {cls.__name__}: {error}") from error
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as error:
        raise ValidationError(
            f"{path} is damaged: {type(error).__name__}: {error} (re-save the estimator)"
        ) from error
    if network.n_features != estimator.n_features_in_:
        raise ValidationError(
            f"{path} is damaged: the network has {network.n_features} inputs but "
            f"n_features_in_ is {estimator.n_features_in_}"
        )
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and len(names) != estimator.n_features_in_:
        raise ValidationError(
            f"{path} is damaged: {len(names)} feature names for {estimator.n_features_in_} "
            "features"
        )
    if hasattr(estimator, "classes_"):
        # One output scores two classes; otherwise one output per class.
        outputs = network.n_outputs
        expected = 2 if outputs == 1 else outputs
        if len(estimator.classes_) != expected:
            raise ValidationError(
                f"{path} is damaged: {len(estimator.classes_)} classes for a network with "
                f"{outputs} output(s) (expected {expected} classes)"
            )
        classes = estimator.classes_
        # Output k scores classes_[k] only if classes_ is what fit stores: np.unique's.
        if classes.ndim != 1 or (classes.dtype.kind == "f" and not np.isfinite(classes).all()) \
                or not np.array_equal(np.unique(classes), classes):
            raise ValidationError(
                f"{path} is damaged: classes {classes.tolist()} are not sorted, distinct "
                "and finite"
            )
    dual = estimator.result_.dual_point
    if dual is not None and np.ndim(dual) not in (1, 2):
        raise ValidationError(f"{path} is damaged: a dual point of shape {np.shape(dual)}")
    return estimator


#: The classes whose saved files :func:`load_saved_estimator` reads.
ESTIMATOR_CLASSES = (
    "ConvexPolyRegressor",
    "ConvexPolyClassifier",
    "ConvexPolyConvRegressor",
    "ConvexPolyConvClassifier",
)


def saved_data_format(path: Any) -> dict[str, Any]:
    """The ``data_format`` a saved estimator was written with (``{}`` when none)."""
    _, metadata = read_npz(path, ("U", "alpha"), _WHAT)
    recorded = metadata.get("data_format") or {}
    return dict(recorded) if isinstance(recorded, Mapping) else {}


def load_saved_estimator(path: Any) -> Any:
    """Read a saved estimator of whichever class the file records (see :data:`ESTIMATOR_CLASSES`).

    Raises
    ------
    MissingFileError, ValidationError, IncompatibleVersionError
        As for ``load``; also a file that holds no estimator.
    """
    from convexnn import estimators

    _, metadata = read_npz(path, ("U", "alpha"), _WHAT)
    name = metadata.get("class")
    if metadata.get("format") != FORMAT or name not in ESTIMATOR_CLASSES:
        raise ValidationError(
            f"{path} is not {_WHAT} (write one with a fitted estimator's save, or "
            "'convexnn fit --out')"
        )
    return load_estimator(getattr(estimators, name), path)
