"""The memory guard reads every limit on this process, not only the system's free memory."""

from __future__ import annotations

import subprocess
import sys

import pytest

from convexnn.solvers import _memory

GB = 10**9


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def room(tmp_path, membership="cgroup", root="fs"):
    return _memory._cgroup_room(str(tmp_path / membership), str(tmp_path / root))


def test_cgroup_v2_limit_less_usage(tmp_path):
    write(tmp_path / "cgroup", "0::/user.slice/app\n")
    write(tmp_path / "fs/user.slice/app/memory.max", "3000000000\n")
    write(tmp_path / "fs/user.slice/app/memory.current", "1000000000\n")
    assert room(tmp_path) == 2 * GB
    write(tmp_path / "fs/user.slice/app/memory.max", "max\n")
    assert room(tmp_path) is None


def test_cgroup_v1_limit_and_a_containers_private_mount(tmp_path):
    write(tmp_path / "cgroup", "5:devices:/\n4:cpu,memory:/docker/abc\n")
    write(tmp_path / "fs/memory/docker/abc/memory.limit_in_bytes", "2000000000\n")
    write(tmp_path / "fs/memory/docker/abc/memory.usage_in_bytes", "500000000\n")
    assert room(tmp_path) == 1.5 * GB
    # v1's "no limit" is about 2^63
    write(tmp_path / "fs/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n")
    assert room(tmp_path) is None
    # Inside a container the group's folder is not mounted: its own files are the root's.
    write(tmp_path / "mount/memory/memory.limit_in_bytes", "4000000000\n")
    write(tmp_path / "mount/memory/memory.usage_in_bytes", "1000000000\n")
    assert room(tmp_path, root="mount") == 3 * GB
    assert room(tmp_path, membership="missing") is None


def test_cgroup_page_cache_a_parents_limit_and_unreadable_files(tmp_path):
    """Inactive page cache is reclaimable, not used (after reading a data file the room
    was near 0); a limit set on a parent group counts; a malformed file (an empty
    memory.max) is no limit, not a ValueError out of every guarded solve."""
    write(tmp_path / "cgroup", "0::/parent/leaf\n")
    write(tmp_path / "fs/parent/leaf/memory.max", "max\n")
    write(tmp_path / "fs/parent/leaf/memory.current", "1000000000\n")
    write(tmp_path / "fs/parent/memory.max", "4000000000\n")
    write(tmp_path / "fs/parent/memory.current", "3500000000\n")
    write(tmp_path / "fs/parent/memory.stat", "anon 1000000000\ninactive_file 2000000000\n")
    assert room(tmp_path) == 2.5 * GB  # 4 - 3.5 + 2 (cache)
    write(tmp_path / "fs/parent/leaf/memory.max", "1500000000\n")
    assert room(tmp_path) == 0.5 * GB  # the leaf's is tighter
    write(tmp_path / "fs/parent/leaf/memory.max", "")
    write(tmp_path / "fs/parent/memory.max", "")
    assert room(tmp_path) is None


def test_the_least_room_is_what_is_available(monkeypatch):
    monkeypatch.setattr(_memory, "_system_available", lambda: 24 * GB)
    monkeypatch.setattr(_memory, "_cgroup_room", lambda: 3 * GB)
    monkeypatch.setattr(_memory, "_address_space_room", lambda: None)
    assert _memory.available_memory() == 3 * GB
    monkeypatch.setattr(_memory, "_address_space_room", lambda: -5)  # already beyond it
    assert _memory.available_memory() == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc")
def test_an_address_space_limit_refuses_a_solve_cleanly():
    """Under RLIMIT_AS = 2.5 GiB SCS segfaulted on a 1500 x 40 problem (Clarabel aborted the
    interpreter): the guard saw only MemAvailable."""
    script = """
import resource, sys
import numpy as np
import convexnn as cnn
X = np.random.default_rng(0).normal(size=(1500, 40))
resource.setrlimit(resource.RLIMIT_AS, (int(2.5 * 2**30), resource.RLIM_INFINITY))
try:
    cnn.ConvexPolyRegressor(solver="scs").fit(X, X[:, 0] ** 2)
except cnn.ProblemTooLargeError as error:
    print("refused:", error)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused:" in done.stdout and "available" in done.stdout
