"""Data-parallel training over processes and machines with ``torch.distributed``.

When the data no longer fit one machine (or one GPU), every rank of a
``torch.distributed`` process group (gloo on CPUs, NCCL on GPUs) holds only
its own rows of ``X`` and ``y`` and the native solver's neurons engine runs
data-parallel: each sum over samples -- predictions' reductions, gradients,
Hessian-vector products, the dual oracle's ``h x h`` matrices, objective
and certificate -- is completed by an all-reduce of an ``m x h``, ``h x h``
or ``m x m`` array or a scalar, never of anything of the size of the data
(:mod:`convexnn.solvers._distributed`). Every rank ends with the same
network and the same certified lower bound.

Two entry points:

* the command line, launched by ``torchrun``::

      torchrun --nproc_per_node=2 -m convexnn.distributed --data train.csv \\
          --target y --beta 0.1 --activation 0.09,0.5,0.47 --out results/

  (``--shards 'part-{rank}.npy'``: each rank reads its own file; see
  ``python -m convexnn.distributed --help``);
* :func:`fit`, for programs that manage their own process group::

      torch.distributed.init_process_group("gloo")
      model = convexnn.distributed.fit(X_local, y_local, beta=0.1)
      model.result.relative_gap, model.network   # the same on every rank

The ``distributed`` solver option (``solver_options={"distributed": True}``
with :func:`convexnn.solve` or a regressor) does the same for users who
build problems themselves.

Failures never hang: shards that do not fit together (fewer rows than
ranks, different feature counts or dtypes) raise the same
:class:`~convexnn.exceptions.ShardError` on every rank before the solve; an
error on one rank during the solve raises a
:class:`~convexnn.exceptions.DistributedSolveError` naming that rank on
every rank; a rank that dies makes the others fail within the process
group's timeout (at once with gloo); Ctrl-C on any rank stops every rank at
the same step with the best certified point.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from convexnn.exceptions import ShardError, ValidationError, translate_solver_error
from convexnn.solvers.errors import SolverError as _SolverError

logger = logging.getLogger("convexnn")

#: Process-group timeout of :func:`init_process_group` (seconds): the longest a rank
#: waits for the others at one collective before every rank fails.
DEFAULT_TIMEOUT = 1800.0


@dataclass(frozen=True)
class DistributedFit:
    """The outcome of :func:`fit` on one rank (the same network and result on every rank).

    Attributes
    ----------
    estimator : ConvexPolyRegressor or ConvexPolyClassifier
        The fitted estimator (``save`` / ``predict`` / ``score`` work as usual).
    result : SolveResult
        Status, objective, certified lower bound and gap over all ranks' data;
        its ``dual_point`` holds this rank's rows.
    network : TwoLayerPolyNet
    rank, world_size : int
    n_samples : int
        Rows over all ranks.
    rows_per_rank : list of int
    peak_memory_per_rank : list of int
        Peak resident memory of each rank's process (bytes), at the end of the fit.
    """

    estimator: Any
    result: Any
    network: Any
    rank: int
    world_size: int
    n_samples: int
    rows_per_rank: list[int]
    peak_memory_per_rank: list[int]


def peak_memory() -> int:
    """Peak resident memory of this process, bytes.

    Linux's ``VmHWM``: this process image's own high-water mark, which
    :func:`reset_peak_memory` restarts (``ru_maxrss``, the fallback elsewhere,
    carries a parent's peak into a child started by ``subprocess``: 1.5 GB of
    the parent's data read as a worker's own).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource  # Unix only

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def reset_peak_memory() -> bool:
    """Restart :func:`peak_memory` from the current resident memory (e.g. once the data
    are loaded, to measure what a solve adds); False where the system cannot (Linux's
    ``/proc/self/clear_refs`` only)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def init_process_group(
    backend: str | None = None, timeout: float = DEFAULT_TIMEOUT, device: str = "cpu"
) -> bool:
    """Initialise the default process group from ``torchrun``'s environment.

    Without that environment (a plain ``python`` run) a one-process group on
    localhost is started, so the same program runs with or without
    ``torchrun``. Does nothing when a group is already initialised.

    Parameters
    ----------
    backend : {"gloo", "nccl"}, optional
        Default: ``nccl`` when ``device`` is CUDA, else ``gloo``.
    timeout : float
        Seconds a collective may wait for the other ranks before failing.
    device : str
        The solve's device; with CUDA each rank uses ``cuda:LOCAL_RANK``.

    Returns
    -------
    bool
        Whether this call created the group (then :func:`destroy_process_group`
        it when done).
    """
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    from convexnn._validation import check_device
    from convexnn.exceptions import ValidationError
    from convexnn.solvers._checks import is_real

    check_device(device)  # before NCCL asks for a CUDA device that is not there
    if not (is_real(timeout) and timeout > 0):
        raise ValidationError(f"timeout must be a positive, finite number of seconds; "
                              f"got {timeout!r}")
    if backend is None:
        backend = "nccl" if str(device).startswith("cuda") else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValidationError(f"backend must be 'gloo' or 'nccl'; got {backend!r}")
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise ValidationError("backend 'nccl' needs CUDA devices, and torch sees none "
                                  "here; use backend 'gloo' (the default on CPUs)")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    wait = datetime.timedelta(seconds=float(timeout))
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        dist.init_process_group(backend, timeout=wait)
    else:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0,
                                world_size=1, timeout=wait)
    return True


def destroy_process_group() -> None:
    """Destroy the default process group (when one is initialised)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def shard_rows(n_rows: int, rank: int, world_size: int) -> slice:
    """The contiguous block of rows rank ``rank`` of ``world_size`` holds (sizes differ by
    at most one)."""
    base, extra = divmod(int(n_rows), int(world_size))
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


def fit(
    X_local: Any,
    y_local: Any,
    *,
    beta: float = 0.1,
    activation: Any = "relu-approx",
    loss: str = "squared",
    task: str = "regression",
    solver_options: Mapping[str, Any] | None = None,
    group: Any = None,
    decomposition_rtol: float = 1e-9,
) -> DistributedFit:
    """Fit a convex network on data sharded by rows over a process group.

    Call it on every rank of an initialised ``torch.distributed`` group with
    that rank's rows; every rank returns the same network and result.

    Parameters
    ----------
    X_local : array-like of shape (n_local, d)
        This rank's rows of the features (every rank: the same ``d`` and dtype).
    y_local : array-like of shape (n_local,) or (n_local, C)
        This rank's targets (class labels for ``task="classification"``).
    beta, activation, loss
        As for :class:`~convexnn.ConvexPolyRegressor`.
    task : {"regression", "classification", "auto"}, default="regression"
        Regression, as a call of :class:`~convexnn.ConvexPolyRegressor` would
        be (``python -m convexnn.distributed`` reads files, so it defaults to
        ``auto``). Classification encodes the labels of *all* ranks (the
        classes are gathered first); ``auto`` decides from every rank's labels.
    solver_options : mapping, optional
        Native solver options (``tol``, ``time_limit``, ``max_iter``,
        ``max_neurons``, ``threads``, ``device``, ``dtype``, ``verbose``).
    group : ProcessGroup, optional
        Default: the world group.
    decomposition_rtol : float

    Raises
    ------
    ShardError
        The shards do not fit together (the same error on every rank).
    DistributedSolveError
        Some rank failed during the fit (the same error on every rank).
    """
    from convexnn.solvers._distributed import communicator_for

    comm = communicator_for(True if group is None else group)
    try:
        return _fit(comm, X_local, y_local, beta, activation, loss, task,
                    dict(solver_options or {}), decomposition_rtol)
    except _SolverError as error:  # the solver layer's errors, as convexnn's
        translated = translate_solver_error(error)
        if translated is error:
            raise
        raise translated from error


def _fit(comm, X_local, y_local, beta, activation, loss, task, options, decomposition_rtol):
    # Every check inside the guard: an error on one rank only (a typo in one node's command)
    # reaches every rank at once instead of leaving them to wait out the group's timeout.
    with comm.guard():
        if task not in ("regression", "classification", "auto"):
            raise ValidationError(
                f"task must be 'regression', 'classification' or 'auto', got {task!r}"
            )
        if "distributed" in options:
            raise ValidationError("fit sets the distributed option itself; pass group= instead")
        X = np.asarray(X_local)
        y = np.asarray(y_local)
        if X.ndim != 2:
            raise ValidationError(f"X_local must be 2-D (rows, features), got shape {X.shape}")
        total = comm.check_shards(len(X), X.shape[1:], X.dtype.str, what="rows")
        comm.check_same({"task": task})
        if len(y) != len(X):
            raise ValidationError(
                f"rank {comm.rank}: y_local has {len(y)} rows but X_local has {len(X)}"
            )
        columns = comm.all_gather_object(tuple(y.shape[1:]))
        if len(set(columns)) > 1:
            raise ShardError(
                "the shards' targets have different shapes per row ("
                + ", ".join(f"rank {r}: {c or 'scalar'}" for r, c in enumerate(columns))
                + ")"
            )
        kind = _agreed_task(comm, y, task)
        # Before the estimator records them: a refit of the saved model runs this engine.
        options.setdefault("engine", "neurons")
        estimator = _estimator(kind, activation, beta, loss, options, decomposition_rtol)
        params = estimator._check_params()
        from convexnn._validation import FEATURE_LIMIT, as_float_array

        features = as_float_array(X, "X", ndims=(2,), min_samples=1, limit=FEATURE_LIMIT)
        estimator.n_features_in_ = features.shape[1]
        if kind == "classification":
            targets = _encoded_classes(comm, estimator, y, params["loss"])
        else:
            targets = estimator._targets(y, len(features), params["loss"], reset=True)
        from convexnn._solve import solve
        from convexnn.formulations import problem_for

        problem = problem_for(features, targets, activation=params["activation"],
                              beta=params["beta"], loss=params["loss"], geometry=None)
        options["distributed"] = comm
        result, network, _ = solve(problem, "native", options,
                                   decomposition_rtol=decomposition_rtol)
        estimator.result_ = dataclasses.replace(result, dual_point=None)
        estimator.network_ = network
        estimator.geometry_ = None
        rows = [int(r) for r in comm.all_gather_object(len(X))]
        peaks = [int(p) for p in comm.all_gather_object(peak_memory())]
    return DistributedFit(
        estimator=estimator, result=result, network=network, rank=comm.rank,
        world_size=comm.world_size, n_samples=total, rows_per_rank=rows,
        peak_memory_per_rank=peaks,
    )


def _agreed_task(comm: Any, y: np.ndarray, task: str) -> str:
    """``task``, or for ``auto`` what every rank's targets together look like."""
    if task != "auto":
        return task
    from convexnn.comparison._data import MAX_AUTO_CLASSES, resolve_task

    if y.ndim == 2:
        return "regression"
    try:
        values = np.unique(y)[: MAX_AUTO_CLASSES + 1]
    except TypeError:  # incomparable object labels
        values = np.asarray(sorted({str(value) for value in y}))[: MAX_AUTO_CLASSES + 1]
    gathered = comm.all_gather_object(values)
    return resolve_task(np.concatenate(gathered), "auto")


def _estimator(kind: str, activation, beta, loss, options, rtol) -> Any:
    from convexnn.estimators import ConvexPolyClassifier, ConvexPolyRegressor

    cls = ConvexPolyClassifier if kind == "classification" else ConvexPolyRegressor
    stored = {key: value for key, value in options.items() if key != "distributed"}
    return cls(activation=activation, beta=beta, loss=loss, solver="native",
               solver_options=stored or None, decomposition_rtol=rtol)


def _encoded_classes(comm: Any, estimator: Any, y: np.ndarray, loss: Any) -> np.ndarray:
    """Targets of this rank's labels, encoded with the classes of every rank."""
    from convexnn._targets import encode_labels

    local = np.unique(y)
    classes = np.unique(np.concatenate(comm.all_gather_object(local)))
    if len(classes) < 2:
        raise ValidationError(
            f"y has a single class over all ranks ({classes[0]!r}); a classifier needs two"
        )
    estimator.classes_ = classes
    return encode_labels(y, len(y), loss, classes=classes)[1]


__all__ = [
    "DEFAULT_TIMEOUT",
    "DistributedFit",
    "destroy_process_group",
    "fit",
    "init_process_group",
    "peak_memory",
    "reset_peak_memory",
    "shard_rows",
]
