"""Benchmark every solver back-end on the same planted problems, in one run.

The grid (design notes, section 8): the authors' planted data -- X = N(0,1)^4
elementwise, 5 teacher neurons, y = teacher + 0.1 N(0,1) -- with activation
(0.09, 0.5, 0.47), beta = 0.1 and the squared loss at n x d = 100x20,
1000x50, 2000x100, 10000x200 and 60000x784, plus one vector-output case and
one convolutional case. Every back-end that fits in memory solves the same
data in the same run; each solve runs in a fresh subprocess so its peak
memory (max RSS, including the Python interpreter and libraries) is its own.
Conic solvers whose memory estimate exceeds the available memory are
recorded as refused, as the library itself refuses them.

Writes ``benchmarks/results/solvers.json`` and ``solvers.md``: n, d, solver,
status, time, time ratio to SCS, peak memory, objective and certified
relative gap (from the library's exact dual oracle).

Usage::

    python benchmarks/bench_solvers.py                     # the full grid
    python benchmarks/bench_solvers.py --cases 100x20 1000x50 --solvers native scs
    python benchmarks/bench_solvers.py --device cuda       # native on the GPU too

Timings are wall-clock on whatever machine runs this; compare ratios within
one run, not absolute seconds across machines.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

#: name -> (kind, n, d, extra)
CASES = {
    "100x20": ("scalar", 100, 20, {}),
    "1000x50": ("scalar", 1000, 50, {}),
    "2000x100": ("scalar", 2000, 100, {}),
    "10000x200": ("scalar", 10000, 200, {}),
    "60000x784": ("scalar", 60000, 784, {}),
    "vector-500x30x3": ("vector", 500, 30, {"outputs": 3}),
    "conv-400x8x8": ("conv", 400, 64, {"image": 8, "filter": 3, "pool": 2}),
}
SOLVERS = ("native", "scs", "clarabel", "mosek", "cvxopt")

#: The issue's target for the MNIST-sized case is "under 5 minutes".
CASE_TIME_LIMIT = {"60000x784": 300.0}


@dataclass
class Row:
    case: str
    kind: str
    n: int
    d: int
    solver: str
    status: str
    time: float | None
    peak_memory_gb: float | None
    objective: float | None
    lower_bound: float | None
    relative_gap: float | None
    neurons: int | None
    engine: str | None
    note: str
    time_ratio_to_scs: float | None = None
    #: The decomposed network before polishing (convexnn._polish), and the polish time.
    unpolished_gap: float | None = None
    unpolished_neurons: int | None = None
    polish_time: float | None = None
    time_limit: float | None = None  # of this solve, seconds


def make_case(name: str):
    """The problem of one grid case (deterministic: random_state 0)."""
    import numpy as np

    from convexnn import ConvGeometry, make_conv_problem, make_problem
    from convexnn.datasets import make_planted

    kind, n, d, extra = CASES[name]
    activation = (0.09, 0.5, 0.47)
    if kind == "scalar":
        data = make_planted(n, d, activation=activation, random_state=0)
        return make_problem(data.X, data.y, activation=activation, beta=0.1)
    rs = np.random.RandomState(0)
    sigma = lambda t: activation[0] * t * t + activation[1] * t + activation[2]  # noqa: E731
    if kind == "vector":  # one heavy-tailed X, a planted teacher per output
        X = rs.normal(0, 1, (n, d)) ** 4
        columns = []
        for _ in range(extra["outputs"]):
            teacher_U, teacher_alpha = rs.normal(0, 1, (d, 5)), rs.normal(0, 1, 5)
            columns.append(sigma(X @ teacher_U) @ teacher_alpha + 0.1 * rs.normal(size=n))
        return make_problem(X, np.column_stack(columns), activation=activation, beta=0.1)
    side = extra["image"]  # conv: Gaussian images, a 3-filter teacher with 2x2 pooling
    images = rs.normal(0, 1, (n, 1, side, side))
    geometry = ConvGeometry((1, side, side), extra["filter"], 1, extra["pool"])
    filters = rs.normal(0, 1, (3, geometry.patch_size))
    filters /= np.linalg.norm(filters, axis=1, keepdims=True)
    patches = geometry.patches(images)
    y = 0.5 * sigma(patches @ filters.T).mean(axis=2).sum(axis=(1, 2)) + 0.1 * rs.normal(size=n)
    return make_conv_problem(images, y, geometry, activation=activation, beta=0.1)


def run_one(case: str, solver: str, device: str, time_limit: float) -> Row:
    """Solve one case with one back-end in this process (called in a subprocess)."""
    import warnings

    import convexnn
    from convexnn import solvers
    from convexnn.exceptions import ProblemTooLargeError, SolverError

    kind, n, d, _ = CASES[case]
    problem = make_case(case)
    name = solver if device == "cpu" else f"{solver}-{device}"
    row = Row(case, kind, n, d, name, "", None, None, None, None, None, None, None, "")
    state = solvers.info(solver)
    if not state.usable:
        row.status, row.note = "unusable", first_sentence(state.note)
        return row
    options: dict = {"time_limit": time_limit}
    if solver == "native":
        options["device"] = device
    else:  # loaded untimed: a back-end's set-up, not its solve (about 0.5 s)
        import cvxpy  # noqa: F401
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result, network, _ = convexnn.solve(problem, solver, options)
    except ProblemTooLargeError as error:
        row.status, row.note = "refused", first_sentence(str(error))
        return row
    except SolverError as error:
        row.status, row.note = "failed", str(error)[:200]
        row.time = time.perf_counter() - start
        return row
    row.time = time.perf_counter() - start
    row.status = result.status
    row.objective = result.objective
    row.lower_bound = result.lower_bound
    row.relative_gap = result.relative_gap
    row.neurons = result.n_neurons
    row.engine = result.stats.get("engine")
    polish = result.stats.get("polish")
    if polish is not None:
        row.unpolished_gap = polish["relative_gap_before"]
        row.unpolished_neurons = polish["width_before"]
        row.polish_time = polish["seconds"]
    return row


# Shared with the sibling benchmark scripts.
def with_extension(stem: Path, extension: str) -> Path:
    """``stem`` with ``extension`` appended (``with_suffix`` cut an output stem such as
    ``run-1.5GB`` at its dot)."""
    return stem.with_name(stem.name + extension)


def git_commit() -> str | None:
    """The commit the benchmark ran from (None outside a git checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def first_sentence(text: str) -> str:
    """A message's first sentence, for a table cell."""
    return text.split(". ")[0].rstrip(".")


def peak_rss_gb() -> float:
    """This process's peak resident memory so far (or since
    :func:`convexnn.distributed.reset_peak_memory`), in GB: its own, not a parent's
    (tables before 2026-12-01 used ``ru_maxrss``, which a subprocess inherits; before
    2026-11-30 14:40 in units of 1.024e9 bytes)."""
    from convexnn.distributed import peak_memory

    return peak_memory() / 1e9


def run_in_subprocess(case: str, solver: str, device: str, time_limit: float) -> Row:
    command = [sys.executable, __file__, "--one", case, solver, device, str(time_limit)]
    kind, n, d, _ = CASES[case]
    try:
        # Back-ends without a time limit of their own (CVXOPT) are stopped here.
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=time_limit + 300
        )
    except subprocess.TimeoutExpired:
        return Row(case, kind, n, d, solver, "killed", None, None, None, None, None, None, None,
                   f"still running {time_limit + 300:.0f}s after the start "
                   "(no time limit of its own)")
    for line in completed.stdout.splitlines():
        if line.startswith("ROW "):
            return Row(**json.loads(line[4:]))
    tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
    return Row(case, kind, n, d, solver, "crashed", None, None, None, None, None, None, None,
               f"exit {completed.returncode}: {tail[0][:200]}")


def add_ratios(rows: list[Row]) -> None:
    scs = {
        row.case: row.time
        for row in rows
        if row.solver == "scs" and row.status in ("optimal", "optimal_inaccurate")
    }
    for row in rows:
        if row.time is not None and scs.get(row.case):
            row.time_ratio_to_scs = row.time / scs[row.case]


def markdown(rows: list[Row], meta: dict) -> str:
    def fmt(value, spec):
        return "" if value is None else format(value, spec)

    lines = [
        f"Run {meta['date']} on {meta['machine']} ({meta['cpus']} CPU cores, "
        f"{meta['threads']} torch threads), "
        f"commit {(meta.get('commit') or 'unknown')[:10]}.",
        "Peak memory is the solving process's max RSS (Python and libraries included).",
        "Objective, certified gap, status and neurons are the returned network's, after",
        "polishing; 'unpolished' is the plain Neural Decomposition of the back-end's",
        "solution; the time includes the polish.",
        "",
        "| case | n | d | solver | status | time (s) | limit (s) | time / SCS | peak memory (GB) "
        "| objective | certified rel. gap | neurons | unpolished gap | unpolished neurons "
        "| polish (s) | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        solver = row.solver + (f" ({row.engine})" if row.engine else "")
        lines.append(
            f"| {row.case} | {row.n} | {row.d} | {solver} | {row.status} | "
            f"{fmt(row.time, '.2f')} | {fmt(row.time_limit, '.0f')} | "
            f"{fmt(row.time_ratio_to_scs, '.3g')} | {fmt(row.peak_memory_gb, '.2f')} | "
            f"{fmt(row.objective, '.9g')} | {fmt(row.relative_gap, '.1e')} | "
            f"{fmt(row.neurons, 'd')} | {fmt(row.unpolished_gap, '.1e')} | "
            f"{fmt(row.unpolished_neurons, 'd')} | {fmt(row.polish_time, '.2f')} | {row.note} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=list(SOLVERS))
    parser.add_argument(
        "--device", action="append", default=None, help="native device(s): cpu, cuda"
    )
    parser.add_argument("--time-limit", type=float, default=1200.0, help="per solve, seconds")
    parser.add_argument(
        "--output", default=str(RESULTS / "solvers"), help="path stem of the .json/.md"
    )
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        case, solver, device, limit = args.one
        row = run_one(case, solver, device, float(limit))
        if row.status not in ("unusable", "refused"):  # a solve that never ran has none
            row.peak_memory_gb = peak_rss_gb()
        print("ROW " + json.dumps(asdict(row)), flush=True)
        return 0
    import torch

    devices = args.device or ["cpu"]
    rows: list[Row] = []
    for case in args.cases:
        for solver in args.solvers:
            for device in devices if solver == "native" else ["cpu"]:
                limit = min(args.time_limit, CASE_TIME_LIMIT.get(case, args.time_limit))
                row = run_in_subprocess(case, solver, device, limit)
                row.time_limit = limit
                rows.append(row)
                print(
                    f"{case:>16s} {row.solver:>12s} {row.status:>18s} "
                    f"time={'' if row.time is None else f'{row.time:.2f}s':>9s} "
                    f"mem="
                    f"{'' if row.peak_memory_gb is None else f'{row.peak_memory_gb:.2f}GB':>7s} "
                    f"obj={'' if row.objective is None else f'{row.objective:.9g}':>14s} "
                    f"gap={'' if row.relative_gap is None else f'{row.relative_gap:.1e}':>8s} "
                    f"{row.note}",
                    flush=True,
                )
    add_ratios(rows)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": platform.processor() or platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "commit": git_commit(),
    }
    stem = Path(args.output)
    stem.parent.mkdir(parents=True, exist_ok=True)
    with_extension(stem, ".json").write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    table = markdown(rows, meta)
    with_extension(stem, ".md").write_text(table)
    print("\n" + table)
    print(f"wrote {with_extension(stem, '.json')} and {with_extension(stem, '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
