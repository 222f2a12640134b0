"""The ``convexnn`` command line.

``convexnn solvers``   table of back-ends and their state
``convexnn demo``      fit an embedded data set and report the certified optimum

Errors are reported as one line on stderr with exit code 2 (``--debug``
shows the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger("convexnn")


def _solvers_command(args: argparse.Namespace) -> int:
    import solvers

    rows = [("solver", "installed", "licensed", "usable", "note")]
    for state in solvers.available():
        licensed = "n/a" if state.licensed is None else ("yes" if state.licensed else "NO")
        rows.append(
            (
                state.name,
                "yes" if state.installed else "no",
                licensed,
                "yes" if state.usable else "no",
                state.note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return 0


def _demo_command(args: argparse.Namespace) -> int:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from convexnn import ConvexPolyClassifier

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    print(
        f"breast cancer: {len(X_train)} training / {len(X_test)} test samples, "
        f"{X.shape[1]} features; activation relu-approx, beta={args.beta}, squared loss"
    )
    start = time.perf_counter()
    model = ConvexPolyClassifier(beta=args.beta, solver=args.solver).fit(X_train, y_train)
    elapsed = time.perf_counter() - start
    result = model.result_
    print(f"solver            {result.solver} ({result.status}), {elapsed:.2f} s")
    print(f"objective         {result.objective:.8g}")
    print(f"lower bound       {result.lower_bound:.8g}")
    print(f"certified gap     {result.duality_gap:.3g} (relative {result.relative_gap:.2e})")
    print(f"neurons           {model.network_.n_neurons}")
    baseline = LogisticRegression(max_iter=1000).fit(X_train, y_train)
    print(
        f"test accuracy     convex network {model.score(X_test, y_test):.4f}, "
        f"logistic regression {baseline.score(X_test, y_test):.4f}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convexnn",
        description="Globally optimal two-layer polynomial-activation networks.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("solvers", help="list solver back-ends and their state").set_defaults(
        handler=_solvers_command
    )
    demo = commands.add_parser("demo", help="fit an embedded data set and report the optimum")
    demo.add_argument("--solver", default="auto", help="back-end name or 'auto'")
    demo.add_argument("--beta", type=float, default=1e-3, help="l1 penalty strength")
    demo.set_defaults(handler=_demo_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convexnn`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    np.set_printoptions(precision=4, suppress=True)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("convexnn: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one readable line unless --debug
        if args.debug:
            raise
        print(f"convexnn: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
