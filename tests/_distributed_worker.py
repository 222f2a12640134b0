"""One rank of the data-parallel tests (tests/test_distributed.py starts several).

``python _distributed_worker.py SCENARIO OUT_DIR`` with ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` set; writes ``OUT_DIR/rank<r>.json``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
import warnings

import numpy as np

PROBLEMS = ("scalar", "vector", "logistic")


def data(kind: str, n: int = 160, d: int = 5, seed: int = 0):
    """The test problems: planted scalar / two-output regression, logistic labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    teacher = rng.normal(size=(3, d))
    y = ((X @ teacher.T) ** 2) @ rng.normal(size=3) + 0.1 * rng.normal(size=n)
    if kind == "vector":
        y = np.column_stack([y, X[:, 0] - 0.5 * y])
    elif kind == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    return X, y


SETTINGS = {
    "scalar": dict(beta=0.5, loss="squared", task="regression"),
    "vector": dict(beta=0.5, loss="squared", task="regression"),
    "logistic": dict(beta=0.2, loss="logistic", task="classification"),
}
ACTIVATION = (0.09, 0.5, 0.47)
TOL = 1e-9


def main() -> None:
    scenario, out = sys.argv[1], sys.argv[2]
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    import torch

    torch.set_num_threads(1)
    from convexnn import distributed

    distributed.init_process_group("gloo", timeout=float(os.environ.get("PG_TIMEOUT", "30")))
    record: dict = {"rank": rank}
    # "solve:scalar,vector" or "shards:rows,features,dtype": one record per part, in one
    # process group (a clean failure leaves the group usable for the next part).
    head, _, parts = scenario.partition(":")
    for part in parts.split(",") if head in ("solve", "shards") else [scenario]:
        name = f"{head}:{part}" if head == "solve" else part
        started = time.monotonic()
        try:
            record[part] = run(name, rank, world)
        except BaseException as error:  # noqa: B036 - every failure is what the test checks
            record[part] = dict(error_type=type(error).__name__, error=str(error),
                                traceback=traceback.format_exc(),
                                seconds=time.monotonic() - started)
    with open(os.path.join(out, f"rank{rank}.json"), "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    distributed.destroy_process_group()


def run(scenario: str, rank: int, world: int) -> dict:
    from convexnn import distributed

    kind = scenario.split(":")[1] if ":" in scenario else "scalar"
    X, y = data(kind)
    rows = distributed.shard_rows(len(X), rank, world)
    X, y = X[rows], y[rows]
    if scenario == "rows":  # one row in all: rank 1 has none
        X, y = (X[:1], y[:1]) if rank == 0 else (X[:0], y[:0])
    elif scenario == "features" and rank == 1:
        X = X[:, :-1]
    elif scenario == "dtype" and rank == 1:
        X = X.astype(np.float32)
    elif scenario in ("raise", "die", "interrupt"):
        _inject(scenario, rank)
    elif scenario == "clock":
        _fail_at_a_clock_reading(rank)
    elif scenario == "estimator":  # a regressor given the option; rank 1's rows hold a NaN
        import convexnn as cnn

        if rank == 1:
            X = X.copy()
            X[0, 0] = np.nan
        try:
            cnn.ConvexPolyRegressor(beta=0.1, solver_options={"distributed": True}).fit(X, y)
        finally:
            if rank == 1:
                time.sleep(15)  # it stays in the group, as a notebook or a retry loop would
    settings = dict(SETTINGS[kind], solver_options={"tol": TOL})
    if scenario == "ipm":  # refused alike on every rank
        settings["solver_options"]["engine"] = "ipm"
    if rank == 1:  # one node's command line differs from the others'
        settings.update(RANK_ONE_DIFFERS.get(scenario, {}))
        if scenario == "ndim":
            X = X[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = distributed.fit(X, y, activation=ACTIVATION, **settings)
    result = fit.result
    return dict(
        status=result.status, objective=result.objective, lower_bound=result.lower_bound,
        relative_gap=result.relative_gap, n_neurons=result.n_neurons,
        U=fit.network.U.tolist(), alpha=np.asarray(fit.network.alpha).tolist(),
        n_samples=fit.n_samples,
    )


#: Settings rank 1 is given in the "shards:" scenarios of that name.
RANK_ONE_DIFFERS = {
    "loss": {"loss": "huber"},
    "beta": {"beta": 0.6},
    "tol": {"solver_options": {"tol": 1e-3}},
    "task": {"task": "bogus"},
    "rtol": {"decomposition_rtol": 1e-6},
    # The same value in another type is the same setting.
    "same": {"solver_options": {"tol": np.float64(TOL)}, "beta": np.float64(0.5)},
}


def _fail_at_a_clock_reading(rank: int) -> None:
    """Rank 1 fails just before its third agreed clock reading, while the others read it."""
    if rank != 1:
        return
    from convexnn.solvers._distributed import DistributedCommunicator

    original = DistributedCommunicator.now
    calls = {"count": 0}

    def now(self):
        calls["count"] += 1
        if calls["count"] == 3:
            raise MemoryError("injected before a clock reading")
        return original(self)

    DistributedCommunicator.now = now


def _inject(scenario: str, rank: int) -> None:
    """Make rank 1 fail, die or be interrupted when it adds neurons the second time."""
    if rank != 1:
        return
    from convexnn.solvers.native import _neurons

    original = _neurons.add_neurons
    calls = {"count": 0}

    def add_neurons(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 2:
            if scenario == "raise":
                raise RuntimeError("injected failure")
            if scenario == "die":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    _neurons.add_neurons = add_neurons


if __name__ == "__main__":
    main()
