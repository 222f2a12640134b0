"""The arguments of :func:`~convexnn.comparison.compare`, all checked before anything runs.

Backprop settings are checked as :func:`~convexnn.baselines.train_backprop`
checks them and solver options by the back-ends that will receive them, so
that a bad value raises :class:`~convexnn.exceptions.ValidationError`
(naming the argument) instead of turning into ``"failed"`` rows after the
other methods have run.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from convexnn import (
    solvers as solver_registry,  # imported under another name: `solvers` is an argument
)
from convexnn._solve import check_auto_options
from convexnn._validation import (
    check_beta,
    check_choice,
    check_device,
    check_positive,
    check_seeds,
)
from convexnn.activations import Activation, get_activation
from convexnn.baselines import OBJECTIVES, OPTIMIZERS, check_training_settings
from convexnn.baselines._settings import SETTING_DEFAULTS
from convexnn.exceptions import ValidationError, translate_solver_error
from convexnn.losses import Loss, get_loss
from convexnn.patches import ConvGeometry
from convexnn.solvers._checks import THREAD_COUNT
from convexnn.solvers.errors import SolverError

#: Seconds each convex solve may take unless ``solver_options`` says otherwise.
DEFAULT_SOLVER_TIME_LIMIT = 60.0
#: ``budget="match"``: every optimizer gets the wall time of the convex solve.
MATCH = "match"
#: The keys of ``conv``: the convolution and pooling of the convolutional variant.
CONV_KEYS = ("filter_size", "stride", "pool_size", "image_shape")

_BACKPROP_OPTIONS = ("lr", "batch_size", "schedule", "init", "init_scale", "time_limit", "dtype",
                     "device")
_SETTING_DEFAULTS: dict[str, Any] = {
    key: SETTING_DEFAULTS[key]
    for key in ("lr", "batch_size", "schedule", "init", "init_scale", "time_limit")
}


@dataclass(frozen=True)
class Plan:
    """The validated arguments of :func:`~convexnn.comparison.compare`.

    Names are lower-case and distinct, ``loss`` and ``activation`` are
    objects, ``epochs_used`` holds each optimizer's epochs after defaults,
    ``max_samples`` is ``"auto"``, None or an int, ``solver_options`` has
    the default time limit merged in and the None values dropped.
    ``budget`` is None, seconds or ``"match"``; ``conv`` the
    ``ConvGeometry`` arguments (``image_shape`` None until the data give it)
    or None for the fully connected network.
    """

    solvers: list[str]
    optimizers: list[str]
    seeds: list[int]
    loss: Loss
    beta: float
    activation: Activation
    objective: str
    width: int | None
    epochs: int | dict[str, int] | None
    epochs_used: dict[str, int]
    max_samples: int | str | None
    solver_options: dict[str, Any]
    backprop_options: dict[str, Any]
    threads: int | str | None
    tune_lr: bool = False
    budget: float | str | None = None
    conv: dict[str, Any] | None = None


def check_arguments(
    *, solvers: Any, optimizers: Any, seeds: Any, loss: Any, beta: Any, activation: Any,
    width: Any, epochs: Any, objective: Any, max_samples: Any, task: Any, standardize: Any,
    progress: Any, solver_options: Any, backprop_options: Any, threads: Any,
    tune_lr: Any = False, budget: Any = None, conv: Any = None,
) -> Plan:
    """Every argument of :func:`~convexnn.comparison.compare` checked before anything runs.

    Parameters
    ----------
    solvers, optimizers, seeds, loss, beta, activation, width, epochs, objective, \
max_samples, task, standardize, progress, solver_options, backprop_options, threads, \
tune_lr, budget, conv
        As given to :func:`~convexnn.comparison.compare`.

    Returns
    -------
    Plan

    Raises
    ------
    ValidationError
        The first invalid argument, named in the message.
    """
    solver_names = _names(solvers, "solvers")
    optimizer_names = _names(optimizers, "optimizers")
    for name in optimizer_names:
        if name not in OPTIMIZERS:
            raise ValidationError(
                f"optimizers: unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}"
            )
    if not solver_names and not optimizer_names:
        raise ValidationError("solvers and optimizers are both empty; nothing to compare")
    for flag, value in (("progress", progress), ("standardize", standardize),
                        ("tune_lr", tune_lr)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValidationError(f"{flag} must be True or False, got {value!r}")
    if task not in ("auto", "classification", "regression"):
        raise ValidationError(
            f"task must be 'auto', 'classification' or 'regression', got {task!r}"
        )
    if threads not in ("auto", None):
        expected, accepts = THREAD_COUNT
        if not accepts(threads):
            raise ValidationError(f"threads must be 'auto', None or {expected}, got {threads!r}")
        threads = int(threads)
    loss_object = get_loss("squared" if loss is None else loss)
    activation_object = get_activation(activation)
    beta = check_beta(beta)
    objective = check_choice(objective, "objective", OBJECTIVES)
    width = check_positive(width, "width", integer=True, allow_none=True)
    epochs = _check_epochs(epochs, optimizer_names)
    extra = _backprop_options(backprop_options)
    budget = _check_budget(budget, epochs, extra)
    if budget == MATCH and not solver_names:
        raise ValidationError("budget='match' gives backprop the convex solve's time, but "
                              "solvers is empty: name a solver or give seconds")
    if isinstance(extra.get("lr"), str):
        raise ValidationError(
            f"backprop_options['lr'] must be a number; got {extra['lr']!r} (for a rate "
            "search, pass tune_lr=True: one search, whose rate every seed then uses)"
        )
    if tune_lr is True and extra.get("lr") is not None:
        raise ValidationError(
            "tune_lr and backprop_options['lr'] exclude each other: the search picks the rate"
        )
    epochs_used: dict[str, int] = {}
    for name in optimizer_names:  # the backprop settings, checked as train_backprop checks them
        own = optimizer_options(name, extra)
        try:
            settings = check_training_settings(
                width=width, activation=activation_object, loss=loss_object, beta=beta,
                objective=objective, optimizer=name,
                epochs=epochs.get(name) if isinstance(epochs, dict) else epochs,
                **{key: own.get(key, default) for key, default in _SETTING_DEFAULTS.items()},
            )
        except ValidationError as error:
            # "time_limit must be ..." beside compare's solver_options is ambiguous
            option = max((key for key in extra if str(error).startswith(key)), key=len,
                         default=None)
            if option is None:
                raise
            raise ValidationError(f"backprop_options['{option}']: {error}") from error
        epochs_used[name] = settings.epochs
    return Plan(
        solvers=solver_names, optimizers=optimizer_names, seeds=check_seeds(seeds),
        loss=loss_object, beta=beta, activation=activation_object, objective=objective,
        width=width, epochs=epochs, epochs_used=epochs_used,
        max_samples=_check_max_samples(max_samples),
        solver_options=_solver_options(solver_options, solver_names), backprop_options=extra,
        threads=threads, tune_lr=bool(tune_lr), budget=budget, conv=_check_conv(conv),
    )


def optimizer_options(optimizer: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``backprop_options`` as ``optimizer`` takes them: L-BFGS is a full-batch method (its
    line search), so a ``batch_size`` is for the first-order optimizers beside it."""
    own = dict(options)
    if optimizer == "lbfgs":
        own.pop("batch_size", None)
    return own


def _check_epochs(epochs: Any, optimizers: list[str]) -> int | dict[str, int] | None:
    """None, a positive int, or ``{optimizer: positive int}`` for some of ``optimizers``."""
    if not isinstance(epochs, Mapping):
        return check_positive(epochs, "epochs", integer=True, allow_none=True)
    per_optimizer = {}
    for name, value in epochs.items():
        key = name.strip().lower().replace("_", "-") if isinstance(name, str) else name
        if key not in optimizers:
            raise ValidationError(
                f"epochs: {name!r} is not one of the optimizers compared ({', '.join(optimizers)})"
            )
        per_optimizer[key] = check_positive(value, f"epochs[{name!r}]", integer=True)
    return per_optimizer


def _check_budget(budget: Any, epochs: Any, backprop_options: dict[str, Any]) -> float | str | None:
    """None, seconds or ``"match"``; it replaces ``epochs`` and a backprop time limit."""
    if budget is None:
        return None
    if isinstance(budget, str) and budget.strip().lower() == MATCH:
        value: float | str = MATCH
    else:
        if isinstance(budget, str):
            try:
                budget = float(budget)
            except ValueError:
                raise ValidationError(
                    f"budget must be a positive number of seconds, 'match' or None; "
                    f"got {budget!r}"
                ) from None
        value = check_positive(budget, "budget")
    for key, given in (("epochs", epochs), ("backprop_options['time_limit']",
                                             backprop_options.get("time_limit"))):
        if given is not None:
            raise ValidationError(
                f"budget and {key} exclude each other: a budget runs every optimizer for "
                "that wall time, whatever the epochs"
            )
    if backprop_options.get("schedule", "constant") != "constant":
        raise ValidationError(
            "budget needs backprop_options['schedule'] = 'constant' (schedules are defined "
            "over epochs, which a budget leaves open)"
        )
    return value


def _check_conv(conv: Any) -> dict[str, Any] | None:
    """The convolution's ``ConvGeometry`` arguments, checked as far as they go without data."""
    if conv is None:
        return None
    if not isinstance(conv, Mapping):
        raise ValidationError(
            f"conv must be a dict with keys among {', '.join(CONV_KEYS)}, or None; got {conv!r}"
        )
    unknown = sorted(set(conv) - set(CONV_KEYS))
    if unknown:
        raise ValidationError(
            f"conv: unknown key(s) {', '.join(map(str, unknown))}; accepted: "
            f"{', '.join(CONV_KEYS)}"
        )
    spec = {"filter_size": 3, "stride": 1, "pool_size": None, "image_shape": None, **conv}
    if spec["image_shape"] is not None:  # everything is checkable now
        conv_geometry(spec, None)
    return spec


def conv_geometry(spec: Mapping[str, Any], image_shape: Any) -> ConvGeometry:
    """The geometry of ``conv``, its image shape taken from the data when it gives none.

    Raises
    ------
    ValidationError
        No image shape anywhere, or arguments ``ConvGeometry`` refuses (named).
    """
    shape = spec["image_shape"] if spec["image_shape"] is not None else image_shape
    if shape is None:
        raise ValidationError(
            "conv needs the images' shape: pass conv={'image_shape': (channels, height, width), "
            "...} for data without one"
        )
    return ConvGeometry(shape, spec["filter_size"], spec["stride"], spec["pool_size"])


def _names(value: Any, name: str) -> list[str]:
    """A list of distinct lower-case names from a sequence or a comma-separated string."""
    items = [part for part in value.split(",") if part.strip()] if isinstance(value, str) else value
    try:
        items = list(items)
    except TypeError:
        raise ValidationError(f"{name} must be a list of names, got {value!r}") from None
    names: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValidationError(f"{name} must be a list of non-empty names, got {value!r}")
        key = item.strip().lower()
        key = key.replace("_", "-") if name == "optimizers" else key
        if key not in names:
            names.append(key)
    return names


def _solver_options(options: Any, solver_names: list[str]) -> dict[str, Any]:
    """The options of every convex solve: the default time limit merged in, None values dropped."""
    if options is not None and not isinstance(options, Mapping):
        raise ValidationError(f"solver_options must be a dict or None, got {options!r}")
    merged = {"time_limit": DEFAULT_SOLVER_TIME_LIMIT, **(options or {})}
    merged = {key: value for key, value in merged.items() if value is not None}
    registered = solver_registry.names()
    try:  # options are checked up front: by the back-end named, or as auto would
        for name in solver_names:
            if name in registered:
                solver_registry.get(name).check_options(merged)
            elif name == "auto":
                check_auto_options(merged)
            else:  # a typo is a bad argument, not a failed row after every other method ran
                solver_registry.get(name)
    except SolverError as error:
        raise translate_solver_error(error) from error
    return merged


def _check_max_samples(value: Any) -> int | str | None:
    """``"auto"``, None (also ``"all"``) or a positive int."""
    if isinstance(value, str) and value.strip().lower() in ("auto", "all"):
        return "auto" if value.strip().lower() == "auto" else None
    if value is None:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)) or value < 1:
        raise ValidationError(
            f"max_samples must be a positive int, 'auto' or None (all samples), got {value!r}"
        )
    return int(value)


def _backprop_options(options: Any) -> dict[str, Any]:
    """The extra keyword arguments of train_backprop that compare accepts."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValidationError(f"backprop_options must be a dict or None, got {options!r}")
    unknown = sorted(set(options) - set(_BACKPROP_OPTIONS))
    if unknown:
        raise ValidationError(
            f"backprop_options: unknown option(s) {', '.join(map(str, unknown))}; accepted: "
            f"{', '.join(_BACKPROP_OPTIONS)} (width, epochs, objective, loss, beta and "
            "activation are arguments of compare)"
        )
    if "dtype" in options and options["dtype"] not in (torch.float32, torch.float64):
        raise ValidationError(
            f"backprop_options['dtype'] must be torch.float32 or torch.float64, "
            f"got {options['dtype']!r}"
        )
    if options.get("device") is not None:
        try:
            check_device(options["device"])
        except ValidationError as error:
            raise ValidationError(f"backprop_options['device']: {error}") from error
    return dict(options)
