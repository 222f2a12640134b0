"""``torchrun --nproc_per_node=N -m convexnn.distributed --data FILE ...``: a data-parallel fit.

Every rank loads its rows -- its contiguous block of ``--data`` (every rank
reads the file), or its own file with ``--shards 'part-{rank}.npy'`` -- and
the ranks solve together (:func:`convexnn.distributed.fit`). Rank 0 prints the
objective, the certified lower bound and the gap, and with ``--out DIR``
writes ``DIR/model.npz`` (the fitted estimator: ``convexnn predict`` reads it)
and ``DIR/result.json``. Without ``torchrun`` the command runs in one process.

Errors are one line on stderr from every rank, exit code 2 (``--debug``: the
traceback); no rank waits for a failed one longer than ``--timeout``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

PROG = "python -m convexnn.distributed"


def build_parser() -> argparse.ArgumentParser:
    from convexnn.cli import _activation

    parser = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,  # "--bet 0.1" ran as --beta on one node: a typo must fail
        description="Fit a convex network data-parallel over the ranks of a torch.distributed "
        "group (launch with torchrun --nproc_per_node=N -m convexnn.distributed ...).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="FILE",
                        help="one data file (CSV/TSV/text, .npy/.npz, svmlight, MNIST IDX); "
                        "every rank reads it and keeps its block of rows")
    source.add_argument("--shards", metavar="PATTERN",
                        help="one file per rank, e.g. 'part-{rank}.npy' ({rank} and "
                        "{world_size} are filled in)")
    parser.add_argument("--target", metavar="COL",
                        help="target column: index or header name (default: the last column)")
    parser.add_argument("--beta", type=float, default=0.1, help="l1 penalty (default: 0.1)")
    parser.add_argument("--activation", type=_activation, default="relu-approx",
                        help="relu-approx, quadratic or a,b,c (default: relu-approx)")
    parser.add_argument("--loss", default="squared",
                        help="a smooth loss: squared, logistic, huber, cross-entropy, ... "
                        "(default: squared)")
    parser.add_argument("--task", default="auto",
                        choices=("auto", "classification", "regression"),
                        help="default: auto, from every rank's targets")
    parser.add_argument("--out", metavar="DIR",
                        help="write model.npz and result.json here (rank 0)")
    solver = parser.add_argument_group("solver options")
    solver.add_argument("--tol", type=float, default=None,
                        help="certified relative gap to reach (default: 1e-6)")
    solver.add_argument("--max-iter", type=int, default=None, help="rounds (default: 200)")
    solver.add_argument("--time-limit", type=float, default=None, help="seconds (default: none)")
    solver.add_argument("--max-neurons", type=int, default=None, help="cap on the width")
    solver.add_argument("--threads", type=int, default=None, help="torch threads per rank")
    solver.add_argument("--device", default="cpu", help="cpu or cuda (cuda:LOCAL_RANK per rank)")
    solver.add_argument("--dtype", default=None, choices=("float64", "float32"))
    group = parser.add_argument_group("process group")
    group.add_argument("--backend", default=None, choices=("gloo", "nccl"),
                       help="default: nccl with --device cuda, else gloo")
    group.add_argument("--timeout", type=float, default=None,
                       help="seconds a rank waits for the others at one step before all fail "
                       "(default: 1800)")
    parser.add_argument("--verbose", action="store_true", help="log the solver's rounds (rank 0)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("tol", "max_iter", "time_limit", "max_neurons", "threads", "dtype"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    if args.device != "cpu":
        options["device"] = args.device
    return options


def load_shard(args: argparse.Namespace, rank: int, world_size: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """This rank's ``(X, y)``: its block of ``--data``, or its ``--shards`` file."""
    from convexnn._commands import _column
    from convexnn.datasets import load_file
    from convexnn.distributed import shard_rows

    if args.shards is not None:
        try:
            path = args.shards.format(rank=rank, world_size=world_size)
        except (KeyError, IndexError, ValueError) as error:
            from convexnn.exceptions import ValidationError

            raise ValidationError(
                f"--shards {args.shards!r}: use {{rank}} (and {{world_size}}) as placeholders "
                f"({error})"
            ) from None
        return load_file(path, target=_column(args.target))
    X, y = load_file(args.data, target=_column(args.target))
    rows = shard_rows(len(X), rank, world_size)
    return X[rows], y[rows]


def run(args: argparse.Namespace) -> int:
    """Load, fit and report (one rank's part)."""
    import torch.distributed as dist

    from convexnn import distributed

    timeout = distributed.DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    created = distributed.init_process_group(args.backend, timeout, args.device)
    try:
        rank, world_size = dist.get_rank(), dist.get_world_size()
        if args.verbose and rank == 0:
            logging.basicConfig(level=logging.INFO, format="%(message)s")
            logging.getLogger("convexnn").setLevel(logging.INFO)
        from convexnn.solvers._distributed import DistributedCommunicator

        comm = DistributedCommunicator()
        with comm.guard():  # a rank that cannot load its data fails every rank
            X, y = load_shard(args, rank, world_size)
        start = time.perf_counter()
        model = distributed.fit(X, y, beta=args.beta, activation=args.activation,
                                loss=args.loss, task=args.task, solver_options=_options(args))
        seconds = time.perf_counter() - start
        if rank == 0:
            _report(args, model, seconds)
    finally:
        if created:
            distributed.destroy_process_group()
    return 0


def _report(args: argparse.Namespace, model: Any, seconds: float) -> None:
    from convexnn._commands import print_result
    from convexnn._persistence import json_ready

    result = model.result
    print(f"ranks             {model.world_size} ({model.n_samples} rows: "
          f"{', '.join(map(str, model.rows_per_rank))})")
    print(f"model             {type(model.estimator).__name__}, beta {args.beta:g}")
    print_result(result, seconds, model.network.n_neurons)
    print("peak memory       " + ", ".join(
        f"rank {r} {p / 2**20:.0f} MiB" for r, p in enumerate(model.peak_memory_per_rank)))
    if args.out is None:
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = model.estimator.save(out / "model.npz")
    record = {
        field: getattr(result, field)
        for field in ("status", "objective", "lower_bound", "duality_gap", "relative_gap",
                      "iterations", "solve_time", "solver", "n_neurons", "message", "tol")
    }
    record.update(
        world_size=model.world_size, n_samples=model.n_samples,
        rows_per_rank=model.rows_per_rank, peak_memory_per_rank=model.peak_memory_per_rank,
        seconds=seconds, beta=args.beta, loss=args.loss,
        activation=list(model.network.activation.coefficients),
    )
    (out / "result.json").write_text(json.dumps(json_ready(record), indent=2) + "\n",
                                     encoding="utf-8")
    print(f"wrote {path} and {out / 'result.json'}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line per rank; --debug for the traceback
        if args.debug:
            raise
        rank = _rank()
        where = f" (rank {rank})" if rank is not None else ""
        # One write per line: two ranks' lines ran together when the text and its newline
        # were written apart
        sys.stderr.write(f"{PROG}{where}: error: {error}\n")
        sys.stderr.flush()
        return 2


def _rank() -> int | None:
    import os

    value = os.environ.get("RANK")
    return int(value) if value is not None and value.isdigit() else None


if __name__ == "__main__":
    sys.exit(main())
