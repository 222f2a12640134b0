"""Shared by the paper's experiments (``paper_*.py``, ``cnn_pooling_digits.py``).

Each script runs :func:`convexnn.compare` per case, saves its tables and
figures in a folder of ``examples/results/`` and writes a ``summary.md``
of every case with :func:`method_summary`.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import torch

from convexnn.comparison import Comparison

RESULTS = Path(__file__).parent / "results"
#: Where quick (``--small``) runs go by default: not committed.
OUTPUT = Path(__file__).parent / "output"


class _ExperimentParser(argparse.ArgumentParser):
    """``--out`` defaults to the committed results, or for a ``--small`` run to a folder of
    ``examples/output/`` (a quick run must not overwrite them); ``out_given`` says
    whether it was given."""

    def __init__(self, description: str, results: Path) -> None:
        super().__init__(description=description)
        self.results = results

    def parse_args(self, *args, **kwargs):  # type: ignore[override]
        parsed = super().parse_args(*args, **kwargs)
        parsed.out_given = parsed.out is not None
        if parsed.out is None:
            parsed.out = OUTPUT / self.results.name if parsed.small else self.results
        return parsed


def parser(doc: str, out: Path) -> argparse.ArgumentParser:
    """A parser with the options every experiment has: ``--out``, ``--seeds``, ``--small``."""
    arguments = _ExperimentParser(doc.splitlines()[0], out)
    arguments.add_argument("--out", type=Path, default=None,
                           help=f"output folder (default {out}; with --small, "
                           f"{OUTPUT / out.name})")
    arguments.add_argument("--seeds", type=int, default=None,
                           help="backprop initialisations per optimizer")
    arguments.add_argument("--small", action="store_true", help="a tiny, quick run (for tests)")
    return arguments


def setup() -> None:
    """Warnings on the console, one torch thread (small matrices: threads only add overhead)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)


def _cell(value: float, spec: str) -> str:
    return "" if value is None or not math.isfinite(value) else format(value, spec)


def _seconds(median: float, reached: int, runs: int) -> str:
    if runs == 0:
        return ""
    text = "never" if median == math.inf else _cell(median, ".3g")
    return f"{text} ({reached}/{runs})"


#: The columns of :func:`method_summary`.
SUMMARY_HEADER = (
    "| case | method | lr | best objective | rel. gap to the bound (best) | t(1%) | t(0.1%) "
    "| time (s) | test metric (mean ± std) |\n|" + "---|" * 9
)


def summary_rows(name: str, comparison: Comparison) -> list[str]:
    """One markdown row per method of ``comparison``: objective, distance to the optimum, times,
    test metric over seeds (the columns of :data:`SUMMARY_HEADER`)."""
    bound = comparison.lower_bound
    rows = []
    for _, row in comparison.summary().iterrows():
        runs = row["runs"] - row["failed"] - row["diverged"]  # those its median is over
        excess = ((row["best_objective"] - bound) / abs(row["best_objective"])
                  if math.isfinite(bound) else math.nan)
        spread = _cell(row["mean_test_metric"], ".4f")
        if math.isfinite(row["std_test_metric"]):
            spread += f" ± {row['std_test_metric']:.4f}"
        label = row["method"] if row["kind"] == "backprop" else f"convex {row['method']}"
        rows.append(
            f"| {name} | {label} | {_cell(row['lr'], '.3g')} | "
            f"{_cell(row['best_objective'], '.6g')} | {_cell(excess, '.1e')} | "
            f"{_seconds(row['median_time_to_1pct'], row['reached_1pct'], runs)} | "
            f"{_seconds(row['median_time_to_0.1pct'], row['reached_0.1pct'], runs)} | "
            f"{_cell(row['mean_time'], '.3g')} | {spread} |"
        )
    return rows


def method_summary(cases: dict[str, Comparison]) -> str:
    """:func:`summary_rows` of every case under :data:`SUMMARY_HEADER`, as one markdown table."""
    lines = [SUMMARY_HEADER]
    for name, comparison in cases.items():
        lines += summary_rows(name, comparison)
    return "\n".join(lines) + "\n"


def save_case(comparison: Comparison, folder: Path, name: str) -> None:
    """The comparison's files in ``folder``, plus ``summary_rows.md`` for :func:`write_summary`."""
    comparison.save(folder)
    (folder / "summary_rows.md").write_text("\n".join(summary_rows(name, comparison)) + "\n",
                                            encoding="utf-8")


#: The heading of the accuracy cases' ``summary.md`` (``paper_accuracy.py`` and
#: ``cnn_pooling_digits.py``).
ACCURACY_INTRO = (
    "# Test accuracy and time on full data: the convex network vs tuned backprop\n\n"
    "Every training sample (native solver), squared loss on -1/+1 targets, beta 0.1, "
    "activation relu-approx. Backprop: the default width 2 C (d + 1) (CNN: 2 C R (h + 1)), "
    "learning rates searched per optimizer, the same wall-time budget for every run "
    "(each case's comparison.md gives it). time (s): the convex fit (solve, decomposition, "
    "polish, certificate), or the backprop budget.\n"
)


def write_summary(folder: Path, intro: str) -> str:
    """Write ``folder/summary.md``: ``intro``, then the rows every case under it saved.

    The rows are those :func:`save_case` wrote.

    Returns the text written.
    """
    rows = [path.read_text(encoding="utf-8").rstrip("\n")
            for path in sorted(folder.glob("*/summary_rows.md"))]
    text = "\n".join([intro, SUMMARY_HEADER, *rows]) + "\n"
    (folder / "summary.md").write_text(text, encoding="utf-8")
    return text
