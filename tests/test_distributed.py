"""Data-parallel solves over torch.distributed (gloo on localhost, processes started here).

Every test starts its ranks as subprocesses in their own session, waits with a
timeout and kills whatever is left, so no test can hang. The process group's
own timeout (PG_TIMEOUT) bounds every collective inside the ranks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).parent
WORKER = HERE / "_distributed_worker.py"
sys.path.insert(0, str(HERE))
import _distributed_worker as worker  # noqa: E402

#: No multi-process test may run longer than this (seconds).
HARD_LIMIT = 180


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    env.pop("PYTHONWARNINGS", None)
    return env


def _wait_all(processes: list[subprocess.Popen], limit: float) -> list[int]:
    """Exit codes of ``processes``; any still running after ``limit`` seconds are killed
    (with their process groups) and the test fails."""
    deadline = time.monotonic() + limit
    try:
        return [p.wait(timeout=max(deadline - time.monotonic(), 0.1)) for p in processes]
    except subprocess.TimeoutExpired:
        pytest.fail(f"ranks still running after {limit:.0f} s: a hang")
    finally:
        for p in processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def run_ranks(scenario: str, tmp_path: Path, world: int = 2, pg_timeout: float = 30.0,
              limit: float = HARD_LIMIT) -> list[dict]:
    """Start ``world`` ranks of the worker on ``scenario``; return their records by rank."""
    port = _free_port()
    processes = []
    for rank in range(world):
        env = _environment(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                           MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                           PG_TIMEOUT=str(pg_timeout))
        processes.append(subprocess.Popen(
            [sys.executable, str(WORKER), scenario, str(tmp_path)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        ))
    codes = _wait_all(processes, limit)
    records = []
    for rank, process in enumerate(processes):
        path = tmp_path / f"rank{rank}.json"
        output = process.stdout.read().decode(errors="replace")[-3000:]
        if not path.exists():
            records.append({"rank": rank, "exit_code": codes[rank], "output": output})
            continue
        record = json.loads(path.read_text())
        record.update(exit_code=codes[rank], output=output)
        records.append(record)
    return records


def single_process(kind: str):
    """The ordinary one-process fit of the same problem, at the same tolerance (the
    native solver's own choice of engine: interior point for the squared loss)."""
    import convexnn as cnn

    X, y = worker.data(kind)
    settings = worker.SETTINGS[kind]
    cls = cnn.ConvexPolyClassifier if settings["task"] == "classification" else (
        cnn.ConvexPolyRegressor)
    model = cls(beta=settings["beta"], loss=settings["loss"], activation=worker.ACTIVATION,
                solver="native", solver_options={"tol": worker.TOL})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    return model.result_


def test_two_ranks_reach_the_single_process_optimum(tmp_path):
    """Scalar and vector outputs and the logistic loss, solved by two ranks (one process
    group for all three) and by one process."""
    records = run_ranks("solve:" + ",".join(worker.PROBLEMS), tmp_path)
    for kind in worker.PROBLEMS:
        for record in records:
            assert kind in record and "error" not in record[kind], record
        first, second = (record[kind] for record in records)
        # Every rank ends with the same network and certificate, bit for bit.
        for key in ("objective", "lower_bound", "U", "alpha", "status"):
            assert first[key] == second[key], (kind, key)
        assert first["n_samples"] == len(worker.data(kind)[0])
        assert first["status"] == "optimal" and first["relative_gap"] <= worker.TOL, kind
        reference = single_process(kind)
        assert reference.relative_gap <= 1e-8, kind
        # Both certified close to the optimum, so they agree to within the larger gap.
        assert abs(first["objective"] - reference.objective) <= (
            1e-8 * abs(reference.objective)
        ), kind
        assert first["lower_bound"] <= reference.objective * (1 + 1e-12)
        assert reference.lower_bound <= first["objective"] * (1 + 1e-12)


def _assert_same_error(records, error_type: str, *fragments: str) -> None:
    for record in records:
        assert record.get("error_type") == error_type, record
        for fragment in fragments:
            assert fragment in record["error"], (fragment, record["error"])
    assert len({record["error"] for record in records}) == 1, [r["error"] for r in records]


def test_shards_that_do_not_fit_together_fail_on_every_rank(tmp_path):
    records = run_ranks("shards:rows,features,dtype", tmp_path)
    for record in records:
        assert {"rows", "features", "dtype"} <= set(record), record
    _assert_same_error([r["rows"] for r in records], "ShardError",
                       "cannot shard 1 rows over 2 ranks")
    _assert_same_error([r["features"] for r in records], "ShardError",
                       "different numbers of features", "rank 0: 5", "rank 1: 4")
    _assert_same_error([r["dtype"] for r in records], "ShardError", "different dtypes",
                       "rank 0: <f8", "rank 1: <f4")


def test_an_error_on_one_rank_fails_every_rank_promptly(tmp_path):
    start = time.monotonic()
    # A long group timeout: the failure must travel by the status all-reduce, not by it.
    records = run_ranks("raise", tmp_path, pg_timeout=600)
    assert time.monotonic() - start < 60
    _assert_same_error([r["raise"] for r in records], "DistributedSolveError",
                       "rank 1: RuntimeError: injected failure")


def test_an_estimator_whose_rows_fail_on_one_rank_fails_every_rank_promptly(tmp_path):
    """The estimators checked each rank's rows before the solve's guard: the others
    waited in their first collective for the group's timeout, then failed without a
    cause."""
    records = run_ranks("estimator", tmp_path, pg_timeout=600)
    _assert_same_error([r["estimator"] for r in records], "DistributedSolveError",
                       "rank 1: ValidationError: X contains 1 non-finite value(s)")
    assert records[0]["estimator"]["seconds"] < 10  # not rank 1's 15 s, nor the timeout


def test_the_same_error_on_every_rank_is_said_once(tmp_path):
    """It was repeated once per rank ('rank 0: <text>; rank 1: <same text>')."""
    records = run_ranks("shards:ipm", tmp_path)
    _assert_same_error([r["ipm"] for r in records], "DistributedSolveError",
                       "failed on all 2 ranks alike -- InvalidSolverOptionError")
    assert "rank 1:" not in records[0]["ipm"]["error"]


def test_a_classifier_is_refused_a_data_parallel_fit():
    """Each rank encoded its own labels ({0, 1} on one, {1, 2} on another): two problems
    mixed in one solve, and a 'fitted' model with different classes_ per rank."""
    import convexnn as cnn

    X, y = worker.data("logistic")
    with pytest.raises(cnn.ValidationError, match="task='classification'"):
        cnn.ConvexPolyClassifier(solver_options={"distributed": True}).fit(X, y > 0)


def test_options_a_data_parallel_fit_refuses_keep_their_own_words():
    """The guard came first: an invalid option or another solver got 'needs an
    initialised process group' instead of the solve's own error."""
    import convexnn as cnn

    X, y = worker.data("scalar")
    with pytest.raises(cnn.InvalidSolverOptionError, match="distributed"):
        cnn.ConvexPolyRegressor(solver_options={"distributed": "yes"}).fit(X, y)
    with pytest.raises(cnn.ValidationError, match="runs on solver='native'"):
        cnn.ConvexPolyRegressor(solver="clarabel",
                                solver_options={"distributed": True}).fit(X, y)


def test_ranks_given_different_settings_fail_alike_and_promptly(tmp_path):
    """Options were never compared: a huber loss on one rank gave both ranks a certified
    'optimal' answer of a mixed-loss problem; another beta, tol or task crashed a rank in
    gloo or left the others waiting out the group's timeout."""
    start = time.monotonic()
    records = run_ranks("shards:loss,beta,tol,task,ndim,rtol,same", tmp_path,
                        pg_timeout=120)
    assert time.monotonic() - start < 60
    for record in records:
        assert {"loss", "beta", "tol", "task", "ndim", "rtol", "same"} <= set(record), record
        assert record["same"].get("status") == "optimal", record["same"]
    _assert_same_error([r["loss"] for r in records], "ShardError", "different settings",
                       "loss: rank 0 SquaredLoss(), rank 1 HuberLoss(delta=1)")
    _assert_same_error([r["beta"] for r in records], "ShardError", "beta: rank 0 0.5, rank 1 0.6")
    _assert_same_error([r["tol"] for r in records], "ShardError", "tol: rank 0 1e-09, rank 1 0.001")
    _assert_same_error([r["task"] for r in records], "DistributedSolveError",
                       "rank 1: ValidationError: task must be")
    _assert_same_error([r["ndim"] for r in records], "DistributedSolveError",
                       "rank 1: ValidationError: X_local must be 2-D")
    _assert_same_error([r["rtol"] for r in records], "ShardError",
                       "decomposition_rtol: rank 0 1e-09, rank 1 1e-06")


def test_a_failure_at_another_ranks_clock_reading_fails_every_rank_promptly(tmp_path):
    """A failure's announcement (one number) met a clock reading (three): every rank
    waited out the process group's timeout, and the error named neither rank nor cause."""
    start = time.monotonic()
    records = run_ranks("clock", tmp_path, pg_timeout=120)
    assert time.monotonic() - start < 60
    _assert_same_error([r["clock"] for r in records], "DistributedSolveError",
                       "rank 1: MemoryError: injected before a clock reading")


@pytest.mark.slow
def test_a_rank_that_dies_fails_the_others_within_the_timeout(tmp_path):
    records = run_ranks("die", tmp_path, pg_timeout=20)
    assert records[1]["exit_code"] == 3 and "die" not in records[1]
    assert records[0]["die"]["error_type"] == "DistributedSolveError", records[0]
    assert "collective failed" in records[0]["die"]["error"]


@pytest.mark.slow
def test_an_interrupt_on_one_rank_returns_the_best_point_on_every_rank(tmp_path):
    records = [r.get("interrupt", r) for r in run_ranks("interrupt", tmp_path)]
    for record in records:
        assert record.get("status") == "interrupted", record
    assert records[0]["objective"] == records[1]["objective"]
    assert records[0]["lower_bound"] == records[1]["lower_bound"]
    assert records[0]["lower_bound"] <= records[0]["objective"]


def _torchrun(args: list[str], cwd: Path, env: dict[str, str], limit: float = HARD_LIMIT):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               f"--master_port={_free_port()}", "-m", "convexnn.distributed", *args]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    _wait_all([process], limit)
    return process.returncode, process.stdout.read().decode(), process.stderr.read().decode()


def _small_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    X, y = worker.data("scalar", n=120)
    header = ",".join([f"x{i}" for i in range(X.shape[1])] + ["y"])
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=header, comments="")
    return X, y


def _check_cli_run(code, out, err, results: Path, X, y) -> None:
    import convexnn as cnn

    assert code == 0, out + err
    assert "certified gap" in out and "lower bound" in out and "ranks             2" in out
    record = json.loads((results / "result.json").read_text())
    assert record["world_size"] == 2 and record["rows_per_rank"] == [60, 60]
    assert record["relative_gap"] <= 1e-7
    model = cnn.ConvexPolyRegressor.load(results / "model.npz")
    reference = cnn.ConvexPolyRegressor(beta=0.5, activation=worker.ACTIVATION,
                                        solver="native",
                                        solver_options={"engine": "neurons", "tol": 1e-9})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(X, y)
    assert abs(record["objective"] - reference.result_.objective) <= (
        1e-7 * reference.result_.objective
    )
    assert model.predict(X).shape == (len(X),)
    # the engine that ran, recorded (a refit of the loaded model could pick the other one)
    assert model.get_params()["solver_options"]["engine"] == "neurons"
    assert model.result_.dual_point is None  # each rank holds its own rows' part (README)


CLI_ARGS = ["--data", "small.csv", "--target", "y", "--beta", "0.5",
            "--activation", "0.09,0.5,0.47", "--tol", "1e-8", "--out", "results",
            "--timeout", "60"]


def test_torchrun_entry_point_on_a_small_csv(tmp_path):
    X, y = _small_csv(tmp_path / "small.csv")
    code, out, err = _torchrun(CLI_ARGS, tmp_path, _environment())
    _check_cli_run(code, out, err, tmp_path / "results", X, y)


@pytest.mark.slow
def test_torchrun_reports_a_missing_shard_on_every_rank(tmp_path):
    X, y = worker.data("scalar", n=40)
    np.save(tmp_path / "part-0.npy", np.column_stack([X, y]))
    code, out, err = _torchrun(["--shards", "part-{rank}.npy", "--timeout", "30"], tmp_path,
                               _environment())
    assert code != 0
    assert "(rank 0): error:" in err and "(rank 1): error:" in err, err
    assert "part-1.npy" in err


@pytest.mark.slow
def test_torchrun_from_a_clean_install(tmp_path):
    """The wheel installed on its own (no source tree on the path) runs under torchrun."""
    root = HERE.parent
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(root)], check=True, timeout=300)
    (wheel,) = wheels.glob("convexnn-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    work = tmp_path / "work"
    work.mkdir()
    X, y = _small_csv(work / "small.csv")
    env = _environment(PYTHONPATH=str(target))
    where = subprocess.run([sys.executable, "-c", "import convexnn; print(convexnn.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(target)), where.stdout
    code, out, err = _torchrun(CLI_ARGS, work, env)
    _check_cli_run(code, out, err, work / "results", X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_cuda_device_is_one_clear_line(tmp_path, capsys):
    """It used to fail inside the process group's setup (torch._C has no _cuda_setDevice)."""
    from convexnn.distributed.__main__ import main

    _small_csv(tmp_path / "small.csv")
    assert main(["--data", str(tmp_path / "small.csv"), "--target", "y",
                 "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch sees no CUDA device here; use 'cpu'" in err


@pytest.mark.parametrize("option, said", [
    (["--timeout", "0"], "timeout must be a positive, finite number of seconds"),
    (["--timeout", "nan"], "timeout must be a positive, finite number of seconds"),
    pytest.param(["--backend", "nccl"], "backend 'nccl' needs CUDA devices",
                 marks=pytest.mark.skipif(torch.cuda.is_available(),
                                          reason="this machine has a CUDA device")),
])
def test_process_group_settings_are_checked_before_the_group_starts(tmp_path, capsys,
                                                                     option, said):
    """A timeout of 0 printed a C++ stack trace, NaN a conversion error, and NCCL on a
    machine without CUDA failed in torch's CUDA setup."""
    from convexnn.distributed.__main__ import main

    _small_csv(tmp_path / "small.csv")
    assert main(["--data", str(tmp_path / "small.csv"), "--target", "y", *option]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err, err


def test_a_status_warning_comes_from_the_first_rank_only(recwarn):
    """Every rank finishes the same result; one warning per solve, not one per rank."""
    import convexnn
    from convexnn.solvers._distributed import Communicator

    class SecondRank(Communicator):
        rank = 1

    X, y = worker.data("scalar", n=40)
    problem = convexnn.make_problem(X, y, beta=0.1)
    for communicator, warned in ((SecondRank(), False), (Communicator(), True)):
        recwarn.clear()
        result, _, _ = convexnn.solve(problem, "native",
                                      {"distributed": communicator, "max_iter": 1})
        assert result.status == "iteration_limit"
        assert any(issubclass(w.category, convexnn.SolverStatusWarning) for w in recwarn) == warned


def test_a_distributed_solve_offers_no_conic_back_end_instead():
    import convexnn
    from convexnn.solvers._distributed import Communicator

    X, y = worker.data("scalar", n=40)
    problem = convexnn.make_problem(X, np.sign(y - np.median(y)) + (y == np.median(y)),
                                    loss="hinge")
    with pytest.raises(convexnn.UnsupportedProblemError) as caught:
        convexnn.solve(problem, "native", {"distributed": Communicator()})
    assert "runs on native only" in str(caught.value)
    assert "Usable instead" not in str(caught.value)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux /proc only")
def test_peak_memory_restarts_and_is_this_process_own():
    """The benchmarks' peaks included generating the data (1.1 of 2.19 GB) and, through
    ru_maxrss, a parent's peak in a child started by subprocess."""
    from convexnn import distributed

    held = np.ones(40_000_000)  # 320 MB resident
    high = distributed.peak_memory()
    # A child started at this parent's peak (ru_maxrss read 147 MB more there than VmHWM)
    child = subprocess.run(
        [sys.executable, "-c", "from convexnn.distributed import peak_memory; "
         "print(peak_memory())"], capture_output=True, text=True, check=True)
    assert int(child.stdout) < high - 250e6  # not the parent's peak
    del held
    assert distributed.reset_peak_memory()
    assert distributed.peak_memory() < high - 250e6
