"""Benchmark the native solver at MNIST size and on wide data (issue 11).

Rows (all squared loss, the 1/2-sum convention):

``digits-binary``
    Image-like digits (:func:`convexnn.datasets.make_digit_images`: 8x8
    digits upsampled to 28x28 with shifts, scaling, rotation and pixel
    noise; values in [0, 1], not standardised), 60000 x 784, even vs odd
    (targets -1/+1), activation ``relu-approx``, beta = 1. Target: certified
    relative gap <= 1e-4 in < 5 min, peak RSS < 4 GB.
``digits-10class``
    The same images, 10 one-vs-rest outputs (-1/+1). Target: runs,
    certified <= 1e-3 in < 15 min, < 6 GB.
``planted``
    The authors' heavy-tailed planted data (X = N(0,1)^4, 5 teacher
    neurons), 60000 x 784, activation (0.09, 0.5, 0.47), beta = 0.1.
    Target: certified <= 1e-3 in < 10 min, < 4 GB.
``wide-40x3000``
    The authors' planted generator at n = 40, d = 3000 (regression),
    beta = 0.1. Target: >= 10x faster than before at the same gap.
``wide-132x500x7``
    A synthetic stand-in of a gene-expression table: 132 samples, 500
    standardised features, 7 classes (scikit-learn's ``make_classification``),
    one-vs-rest targets, ``relu-approx``, beta = 0.1. Same target.

Wide rows are solved twice in the same run: ``before`` (``row_space=False``,
the engine as it was) and ``after`` (the row-space reduction); the ratio is
the speed-up. Each solve runs in a fresh subprocess so that its peak memory
(max RSS, interpreter and libraries included) is its own, from the moment its
problem is built (generating the data is recorded apart). The certified gap
over time comes from the solver's own log lines (``native neurons round
...``), one point per round, and is plotted for every large case.

Writes ``benchmarks/results/large.json``, ``large.md`` and
``large-<case>.png``.

``--ablation`` measures what each ingredient of the neurons engine buys, on
problems where an interior point certifies the optimum for reference
(image-like digits at n = 2000, beta = 1; the authors' planted data at
2000 x 100): the engine with everything, then with one ingredient switched
off at a time, and the engine as it was before issue 11 (``--baseline``, a
commit, run from a temporary export). Each variant's certified gap over time
goes to ``large-ablation.{json,md}``.

Usage::

    python benchmarks/bench_large.py                        # every row
    python benchmarks/bench_large.py --cases wide-40x3000 wide-132x500x7
    python benchmarks/bench_large.py --cases digits-binary --time-limit 60
    python benchmarks/bench_large.py --ablation --baseline 6e028a0

Timings are wall-clock on whatever machine runs this; compare ratios within
one run, not absolute seconds across machines.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from bench_solvers import (  # noqa: E402  (the sibling script, not a package)
    first_sentence,
    git_commit,
    peak_rss_gb,
    with_extension,
)

#: name -> (time limit in seconds, target certified gap, target peak RSS in GB or None)
CASES = {
    "digits-binary": (300.0, 1e-4, 4.0),
    "digits-10class": (900.0, 1e-3, 6.0),
    "planted": (600.0, 1e-3, 4.0),
    "wide-40x3000": (1200.0, 1e-6, None),
    "wide-132x500x7": (1200.0, 1e-6, None),
    "cnn-12000": (600.0, 1e-6, None),
}
LARGE = ("digits-binary", "digits-10class", "planted", "cnn-12000")

#: Rows per case family besides the native engine's ("after").
VARIANTS = {"wide": ["before", "after"], "cnn": ["after", "scs"], "digits": ["after", "scs"],
            "planted": ["after", "scs"]}

#: The CNN case: 28 x 28 images, 5 x 5 filters, the 24 x 24 outputs pooled in 2 x 2 regions.
CNN_IMAGES = 12000

#: A round's log line: objective, certified gap, width and elapsed seconds.
ROUND = re.compile(
    r"native neurons round (\d+): objective (\S+), certified gap (\S+),.* (\d+) neurons,"
    r".* (\S+)s$"
)


@dataclass
class Row:
    case: str
    variant: str  # "after" (native), "before" (wide rows without the reduction) or "scs"
    n: int
    d: int
    outputs: int
    status: str = ""
    engine: str | None = None
    time: float | None = None
    peak_memory_gb: float | None = None
    data_peak_memory_gb: float | None = None  # generating the data, before the solve's
    neurons: int | None = None
    objective: float | None = None
    lower_bound: float | None = None
    relative_gap: float | None = None
    target_gap: float | None = None
    time_limit: float | None = None
    target_met: bool | None = None
    note: str = ""
    speedup: float | None = None
    speedup_at_least: bool = False  # the reference stopped above the target gap
    trace: list = field(default_factory=list)
    measured: str = ""  # date and commit of the run that measured the row (rows are merged)


def make_case(name: str):
    """The problem of one case (deterministic: random_state 0)."""
    import numpy as np

    from convexnn import make_problem
    from convexnn.datasets import make_digit_images, make_planted

    if name.startswith("digits"):
        images = make_digit_images(60000, random_state=0)
        if name == "digits-binary":
            y = np.where(images.y % 2 == 0, 1.0, -1.0)
        else:
            y = np.where(np.eye(10)[images.y] == 1, 1.0, -1.0)
        return make_problem(images.X, y, activation="relu-approx", beta=1.0)
    if name == "cnn-12000":  # digits 0 vs 1, as the paper's Fashion-MNIST 0-vs-1 run
        from convexnn import ConvGeometry, make_conv_problem

        images = make_digit_images(6 * CNN_IMAGES, random_state=0)
        keep = np.flatnonzero(images.y <= 1)[:CNN_IMAGES]
        y = np.where(images.y[keep] == 0, 1.0, -1.0)
        geometry = ConvGeometry((28, 28), filter_size=5, pool_size=12)
        return make_conv_problem(images.X[keep].reshape(-1, 28, 28), y, geometry,
                                 activation="relu-approx", beta=1.0)
    if name == "planted":
        data = make_planted(60000, 784, activation=(0.09, 0.5, 0.47), random_state=0)
        return make_problem(data.X, data.y, activation=(0.09, 0.5, 0.47), beta=0.1)
    if name == "wide-40x3000":
        data = make_planted(40, 3000, activation=(0.09, 0.5, 0.47), random_state=0)
        return make_problem(data.X, data.y, activation=(0.09, 0.5, 0.47), beta=0.1)
    if name == "wide-132x500x7":
        from sklearn.datasets import make_classification

        X, labels = make_classification(
            n_samples=132, n_features=500, n_informative=60, n_redundant=40, n_classes=7,
            n_clusters_per_class=1, class_sep=1.5, random_state=0,
        )
        X = (X - X.mean(axis=0)) / X.std(axis=0)
        y = np.where(np.eye(7)[labels] == 1, 1.0, -1.0)
        return make_problem(X, y, activation="relu-approx", beta=0.1)
    raise KeyError(name)


class _Rounds(logging.Handler):
    """Collects ``(seconds, certified gap, width, objective)`` from the round log lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.points: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = ROUND.search(record.getMessage())
        if match:
            self.points.append({
                "round": int(match.group(1)), "objective": float(match.group(2)),
                "gap": float(match.group(3)), "width": int(match.group(4)),
                "seconds": float(match.group(5)),
            })


def run_one(case: str, variant: str, time_limit: float, threads: int) -> Row:
    """Solve one case in this process (called in a subprocess)."""
    import warnings

    import convexnn
    from convexnn.distributed import reset_peak_memory
    from convexnn.exceptions import ProblemTooLargeError, SolverError

    problem = make_case(case)
    shape = problem.shape
    limit, target, _ = CASES[case]
    row = Row(case, variant, shape.n_samples, shape.patch_size, shape.n_outputs,
              target_gap=target, time_limit=time_limit)
    # The solve's peak from here (its problem's data resident): generating the data
    # peaked at 1.1 of digits-binary's 2.19 GB, and the CNN's 72000 images at 1.68 GB
    row.data_peak_memory_gb = peak_rss_gb()
    reset_peak_memory()
    solver = "scs" if variant == "scs" else "native"
    options = {"time_limit": time_limit, "tol": min(target, 1e-6)}
    if variant == "before":
        options["row_space"] = False
    if solver == "native":
        options["threads"] = threads
    else:
        import torch

        torch.set_num_threads(threads)
    rounds = _Rounds()
    logger = logging.getLogger("convexnn")
    logger.addHandler(rounds)
    logger.setLevel(logging.INFO)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result, _, _ = convexnn.solve(problem, solver, options)
    except ProblemTooLargeError as error:
        row.status, row.note = "refused", first_sentence(str(error))
        return row
    except SolverError as error:
        row.status, row.note = "failed", str(error)[:200]
        return row
    row.time = time.perf_counter() - start
    row.status = result.status
    row.engine = result.stats.get("engine")
    row.neurons = result.n_neurons
    row.objective = result.objective
    row.lower_bound = result.lower_bound
    row.relative_gap = result.relative_gap
    row.trace = rounds.points
    return row


def run_in_subprocess(case: str, variant: str, time_limit: float, threads: int) -> Row:
    command = [sys.executable, __file__, "--one", case, variant, str(time_limit), str(threads)]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=time_limit + 900
        )
    except subprocess.TimeoutExpired:
        return Row(case, variant, 0, 0, 0, status="killed",
                   note=f"no answer {time_limit + 900:.0f}s after the start")
    for line in completed.stdout.splitlines():
        if line.startswith("ROW "):
            return Row(**json.loads(line[4:]))
    tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
    return Row(case, variant, 0, 0, 0, status="crashed",
               note=f"exit {completed.returncode}: {tail[0][:200]}")


def judge(rows: list[Row]) -> None:
    """Target met or not: gap, time and memory (large rows); certified to the target gap
    and the speed-up over ``before`` (wide rows, >= 10x) or over SCS (the CNN row,
    faster) in the same run. The references (``before``, ``scs``) have no target; a
    speed-up over one that never reached the target gap is a lower bound
    (``speedup_at_least``); without a timed reference the row is not judged."""
    by_key = {(row.case, row.variant): row for row in rows}
    for row in rows:
        limit, target, memory = CASES[row.case]
        if row.variant != "after":
            continue
        met = row.relative_gap is not None and row.relative_gap <= target
        if row.case in LARGE:
            met = met and (row.time or 0) <= limit and (
                memory is None or (row.peak_memory_gb or 0) <= memory)
        before = by_key.get((row.case, "before"))
        # (SCS is the CNN row's reference; on the dense rows it only shows what a conic
        # solver makes of them: refused for memory)
        reference = before or (by_key.get((row.case, "scs")) if row.case.startswith("cnn")
                               else None)
        if reference is not None:
            if not (reference.time and row.time):
                row.target_met = False if not met else None  # nothing to compare with
                continue
            row.speedup = reference.time / row.time
            row.speedup_at_least = not (reference.relative_gap is not None
                                        and reference.relative_gap <= target)
            met = met and row.speedup >= (10 if before is not None else 1)
        row.target_met = met


def plot(rows: list[Row], stem: Path) -> list[str]:
    """A certified-gap-vs-time PNG per large case; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for row in rows:
        if row.case not in LARGE or not row.trace:
            continue
        figure, axis = plt.subplots(figsize=(6, 4))
        seconds = [point["seconds"] for point in row.trace]
        gaps = [max(point["gap"], 1e-16) for point in row.trace]
        axis.semilogy(seconds, gaps, marker=".", label="certified relative gap")
        axis.axhline(CASES[row.case][1], color="grey", linestyle="--", label="target")
        axis.axvline(CASES[row.case][0], color="grey", linestyle=":", label="time target")
        axis.set_xlabel("seconds")
        axis.set_ylabel("certified relative gap")
        axis.set_title(f"{row.case}: n={row.n}, d={row.d}, outputs={row.outputs}")
        axis.legend()
        name = f"{stem.name}-{row.case}.png"
        figure.tight_layout()
        figure.savefig(stem.parent / name, dpi=100)
        plt.close(figure)
        written.append(name)
    return written


def _provenance(meta: dict) -> str:
    return f"{meta['date']}, {(meta.get('commit') or '?')[:10]}"


def markdown(rows: list[Row], meta: dict) -> str:
    def fmt(value, spec):
        return "" if value is None else format(value, spec)

    lines = [
        f"Last run {meta['date']} on {meta['machine']} ({meta['cpus']} CPU cores, shared; "
        f"{meta['threads']} torch thread(s) per solve), commit {(meta.get('commit') or '?')[:10]}; "
        "the last column says when and at which commit each row was measured.",
        "Peak memory is the solving process's max RSS from the moment its problem is built "
        "(Python, libraries and the problem's data included; generating the data is not "
        "counted since 2026-12-01, the JSON's data_peak_memory_gb).",
        "Objective and certified gap are the returned network's (convexnn.solve, polished).",
        "",
        "| case | n | d | outputs | variant | engine | status | time (s) | limit (s) "
        "| peak RSS (GB) | width | objective | certified rel. gap | target gap | speed-up "
        "| target met | note | measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = "" if row.target_met is None else ("yes" if row.target_met else "**no**")
        target = row.target_gap if row.variant == "after" else None  # references have none
        lines.append(
            f"| {row.case} | {row.n} | {row.d} | {row.outputs} | {row.variant} | "
            f"{row.engine or ''} | {row.status} | {fmt(row.time, '.1f')} | "
            f"{fmt(row.time_limit, '.0f')} | {fmt(row.peak_memory_gb, '.2f')} | "
            f"{fmt(row.neurons, 'd')} | {fmt(row.objective, '.9g')} | "
            f"{fmt(row.relative_gap, '.1e')} | {fmt(target, '.0e')} | "
            f"{'>= ' if row.speedup_at_least else ''}{fmt(row.speedup, '.1f')} | {met} | "
            f"{row.note} | {row.measured} |"
        )
    lines.append("")
    for row in rows:
        if row.trace:
            points = ", ".join(
                f"{point['seconds']:.0f}s: {point['gap']:.1e} ({point['width']})"
                for point in _thin(row.trace, 12)
            )
            lines.append(f"* {row.case} certified gap over time (width): {points}")
    return "\n".join(lines) + "\n"


def _thin(points: list[dict], count: int) -> list[dict]:
    if len(points) <= count:
        return points
    step = (len(points) - 1) / (count - 1)
    return [points[round(i * step)] for i in range(count)]


#: Ablation problems: name -> (builder, time limit in seconds).
ABLATION_CASES = {
    "digits-2000": 300.0,
    "planted-2000x100": 180.0,
}

#: Ablation variants: name -> internal settings of the neurons engine (None: the baseline).
ABLATION_VARIANTS = {
    "all ingredients": {},
    "one direction per round": {"directions_per_block": 1},
    "no weight refit": {"refit": False},
    "no compression": {"compress": False},
    "no refit, no compression": {"refit": False, "compress": False},
    "float32 passes": {"low_precision": True},
    "last bound (not best)": {"keep_best_bound": False},
    "no steps within the span": {"refine_in_span": False},
    "engine before issue 11": None,
}


def ablation_problem(name: str):
    import numpy as np

    from convexnn import make_problem
    from convexnn.datasets._images import make_digit_images  # also in a baseline's export
    from convexnn.datasets._planted import make_planted

    if name == "digits-2000":
        images = make_digit_images(2000, random_state=0)
        y = np.where(images.y % 2 == 0, 1.0, -1.0)
        return make_problem(images.X, y, activation="relu-approx", beta=1.0)
    data = make_planted(2000, 100, activation=(0.09, 0.5, 0.47), random_state=0)
    return make_problem(data.X, data.y, activation=(0.09, 0.5, 0.47), beta=0.1)


def run_ablation_one(case: str, variant: str, time_limit: float) -> dict:
    """One ablation run in this process: the certified gap over time."""
    import torch

    problem = ablation_problem(case)
    record = {"case": case, "variant": variant, "trace": []}
    settings = ABLATION_VARIANTS[variant]
    start = time.perf_counter()
    if settings is None:  # the engine of the baseline commit, through its own solve()
        import warnings

        import convexnn

        rounds = _Rounds()
        logger = logging.getLogger("convexnn")
        logger.addHandler(rounds)
        logger.setLevel(logging.INFO)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result, _, output = convexnn.solve(
                problem, "native",
                {"engine": "neurons", "time_limit": time_limit, "threads": 1, "tol": 1e-6},
                polish=False,
            )
        record["trace"] = rounds.points
        record.update(objective=output.objective, gap=output.stats.get("relative_gap"),
                      width=len(output.neurons.alpha), status=output.status.value)
    else:
        from convexnn.solvers.native._neurons import NeuronSettings, solve_neurons

        torch.set_num_threads(1)
        output = solve_neurons(
            problem, tol=1e-6, max_iter=100000, deadline=time.monotonic() + time_limit,
            device=torch.device("cpu"), dtype=torch.float64, max_neurons=None,
            warm_start=None, progress=None, settings=NeuronSettings(**settings),
            on_round=lambda point: record["trace"].append(
                {key: point[key] for key in ("round", "seconds", "gap", "width", "objective")}
            ),
        )
        record.update(objective=output.objective, gap=output.stats["relative_gap"],
                      width=output.stats["neurons"], status=output.status.value)
    record["seconds"] = time.perf_counter() - start
    return record


def run_ablation(baseline: str | None, output: Path) -> None:
    """Every ablation variant on every ablation case, each in a subprocess."""
    import shutil
    import tempfile

    export = None
    records = []
    try:
        if baseline is not None:
            export = Path(tempfile.mkdtemp(prefix="convexnn-baseline-"))
            archive = subprocess.run(["git", "archive", baseline], cwd=HERE, check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(export)], input=archive, check=True)
            # The package installs solvers/ as convexnn.solvers; mirror that in the export,
            # and give it this tree's data generator.
            (export / "convexnn" / "solvers").symlink_to(export / "solvers")
            shutil.copy(HERE.parent / "convexnn" / "datasets" / "_images.py",
                        export / "convexnn" / "datasets" / "_images.py")
        for case, limit in ABLATION_CASES.items():
            for variant, settings in ABLATION_VARIANTS.items():
                if settings is None and export is None:
                    continue
                environment = None
                if settings is None:
                    environment = {**__import__("os").environ, "PYTHONPATH": str(export)}
                command = [sys.executable, __file__, "--ablation-one", case, variant, str(limit)]
                completed = subprocess.run(command, capture_output=True, text=True,
                                           env=environment, timeout=limit + 600)
                line = [x for x in completed.stdout.splitlines() if x.startswith("ABLATION ")]
                record = (json.loads(line[0][9:]) if line else
                          {"case": case, "variant": variant, "trace": [],
                           "status": f"crashed: {completed.stderr.strip()[-200:]}"})
                records.append(record)
                print(f"{case:>18s} {variant:>28s} {record.get('status')} "
                      f"gap={record.get('gap')} width={record.get('width')}", flush=True)
    finally:
        if export is not None:
            shutil.rmtree(export, ignore_errors=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": git_commit(),
            "baseline": baseline, "threads": 1}
    with_extension(output, ".json").write_text(
        json.dumps({"meta": meta, "records": records}, indent=2))
    with_extension(output, ".md").write_text(ablation_markdown(records, meta))
    print(ablation_markdown(records, meta))


def _first_time_below(trace: list[dict], level: float) -> float | None:
    return next((point["seconds"] for point in trace if point["gap"] <= level), None)


def ablation_markdown(records: list[dict], meta: dict) -> str:
    levels = (1e-1, 1e-2, 1e-4, 1e-6)
    lines = [
        f"Ablation run {meta['date']}, commit {(meta.get('commit') or '?')[:10]}, baseline "
        f"{meta.get('baseline') or '-'}; 1 torch thread, shared 2-core machine. Seconds until "
        "the certified relative gap first reaches each level (blank: not within the limit).",
        "",
        "| case | variant | status | final gap | width | "
        + " | ".join(f"t(gap<={level:.0e})" for level in levels) + " |",
        "|---|---|---|---|---|" + "---|" * len(levels),
    ]
    for record in records:
        times = [_first_time_below(record.get("trace", []), level) for level in levels]
        gap = record.get("gap")
        lines.append(
            f"| {record['case']} | {record['variant']} | {record.get('status', '')} | "
            f"{'' if gap is None else format(gap, '.1e')} | {record.get('width', '')} | "
            + " | ".join("" if t is None else f"{t:.0f}" for t in times) + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--time-limit", type=float, default=None,
                        help="override every case's time limit (seconds)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per solve (default 1: on shared cores more threads "
                             "make eigen-decompositions much slower)")
    parser.add_argument("--output", default=str(RESULTS / "large"),
                        help="path stem of the .json/.md/.png files")
    parser.add_argument("--variants", nargs="+", choices=["after", "before", "scs"],
                        help="run only these of each case's rows (default: all)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows (case and variant) this run does not measure, "
                             "from the output's JSON")
    parser.add_argument("--ablation", action="store_true",
                        help="measure what each ingredient of the neurons engine buys")
    parser.add_argument("--baseline", default=None,
                        help="with --ablation: a commit whose engine is run for comparison")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--ablation-one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ablation_one:
        case, variant, limit = args.ablation_one
        print("ABLATION " + json.dumps(run_ablation_one(case, variant, float(limit))), flush=True)
        return 0
    if args.ablation:
        run_ablation(args.baseline, Path(args.output).with_name("large-ablation"))
        return 0
    if args.one:
        case, variant, limit, threads = args.one
        row = run_one(case, variant, float(limit), int(threads))
        # (a refused or failed solve's peak would be only the process's own baseline)
        row.peak_memory_gb = peak_rss_gb() if row.time is not None else None
        print("ROW " + json.dumps(asdict(row)), flush=True)
        return 0
    rows: list[Row] = []
    for case in args.cases:
        limit = args.time_limit or CASES[case][0]
        variants = VARIANTS.get(case.split("-")[0], ["after"])
        for variant in (v for v in variants if args.variants is None or v in args.variants):
            row = run_in_subprocess(case, variant, limit, args.threads)
            rows.append(row)
            print(f"{case:>16s} {variant:>6s} {row.status:>18s} "
                  f"time={'' if row.time is None else f'{row.time:.1f}s':>8s} "
                  f"mem={'' if row.peak_memory_gb is None else f'{row.peak_memory_gb:.2f}GB'} "
                  f"width={row.neurons} obj={row.objective} gap={row.relative_gap} {row.note}",
                  flush=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": platform.processor() or platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "threads": args.threads,
        "python": platform.python_version(),
        "commit": git_commit(),
    }
    for row in rows:
        row.measured = _provenance(meta)
    stem = Path(args.output)
    if args.merge and with_extension(stem, ".json").exists():
        earlier = json.loads(with_extension(stem, ".json").read_text())
        new = {(row.case, row.variant) for row in rows}
        kept = [Row(**row) for row in earlier["rows"] if (row["case"], row["variant"]) not in new]
        for row in kept:
            row.measured = row.measured or _provenance(earlier["meta"])
        rows = kept + rows
        rows.sort(key=lambda row: (list(CASES).index(row.case),
                                   ["before", "after", "scs"].index(row.variant)))
    judge(rows)
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta["plots"] = plot(rows, stem)
    with_extension(stem, ".json").write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    table = markdown(rows, meta)
    with_extension(stem, ".md").write_text(table)
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
