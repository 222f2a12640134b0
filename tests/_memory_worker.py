"""Peak live memory of the neurons engine's pieces, run by tests/test_memory_live.py.

Run in a fresh process with ``MALLOC_MMAP_THRESHOLD_`` low, so that glibc
returns every freed array to the system and the peak resident size follows
the live bytes (its default keeps freed mid-size arrays in the heap).
Prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
import torch

# This process's own high-water mark (VmHWM): ru_maxrss would include the RSS of the
# process that spawned it (Linux carries it across exec)
from convexnn.distributed import peak_memory


def resident() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def project(n: int, h: int, n_cuts: int) -> dict:
    from convexnn import make_problem
    from convexnn.solvers.native._dual import DualCuts
    from convexnn.solvers.native._model import NeuronModel

    rng = np.random.default_rng(0)
    problem = make_problem(rng.normal(size=(n, h)), rng.normal(size=n), beta=1e-3)
    model = NeuronModel(torch.as_tensor(problem.patches), torch.as_tensor(problem.targets),
                        problem.coefficients, problem.beta, problem.loss)
    v = torch.as_tensor(rng.normal(size=(n, 1)))
    cuts = DualCuts(h)
    directions = rng.normal(size=(n_cuts, h))
    cuts.add(directions / np.linalg.norm(directions, axis=1, keepdims=True),
             np.zeros(n_cuts, dtype=int))
    before = resident()
    moved = cuts.project(model, v, None)
    return {"growth": peak_memory() - before, "moved": bool((moved != v).any())}


def solve(n: int, h: int, rounds: int) -> dict:
    from convexnn import make_problem
    from convexnn.solvers import get
    from convexnn.solvers.base import ProblemShape
    from convexnn.solvers.native import _local
    from convexnn.solvers.native._neurons import solve_neurons

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, h))
    problem = make_problem(X, (X[:, 0] * X[:, 1]) ** 2 + X[:, 2], beta=1e-3)
    widths, direct = [], [0]
    gauss_newton = _local.gauss_newton

    def spy(model, state, **options):  # the direct steps' working set, outside the plan
        direct.append(_local.direct_bytes(model.n * model.n_outputs, state.V.numel()))
        return gauss_newton(model, state, **options)

    _local.gauss_newton = spy
    before = resident()
    solve_neurons(
        problem, tol=1e-12, max_iter=rounds, deadline=time.monotonic() + 600,
        device=torch.device("cpu"), dtype=torch.float64, max_neurons=None, warm_start=None,
        progress=None, on_round=lambda record: widths.append(record["width"]),
    )
    plan = get("native").neurons_plan(ProblemShape.of(problem), 0, "float64")
    return {"growth": peak_memory() - before, "planned": plan.bytes_for(max(widths)),
            "direct": max(direct), "width": max(widths)}


if __name__ == "__main__":
    torch.set_num_threads(1)
    task, *sizes = sys.argv[1:]
    print(json.dumps({"project": project, "solve": solve}[task](*map(int, sizes))))
