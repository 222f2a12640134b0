"""Data-parallel solves: the collectives a solve needs over a ``torch.distributed`` group.

Every rank holds its own rows of the data (a *shard*); every quantity the
native solver needs is a sum over samples, so a data-parallel solve is the
single-process solve with each such sum completed by an all-reduce (an
``m x h``, ``h x h`` or ``m x m`` array, or a scalar: never anything of the
size of the data). Everything else -- the iterate, oracle eigen-decompositions,
decisions -- is computed redundantly on every rank from identical inputs,
so every rank takes the same decisions and ends with the same network.

:class:`Communicator` is the single-process case (identity reductions, the
local clock); :class:`DistributedCommunicator` wraps an initialised process
group (gloo on CPU, NCCL on GPUs). What may differ between ranks is agreed
explicitly:

* **time**: :meth:`~Communicator.now` is the largest elapsed time over the
  ranks, so deadlines, time limits and cost-based schedules decide alike;
* **memory**: width caps are the smallest over the ranks (:meth:`~Communicator.min`);
* **interrupts**: inside :meth:`~Communicator.interruptible`, Ctrl-C on any rank
  sets a flag that travels with the next clock reading, and every rank
  raises :class:`AgreedInterrupt` at the same step (the engine then returns
  its best certified point everywhere);
* **failures**: inside :meth:`~Communicator.guard`, an exception on one rank
  is announced to the others at their next collective (each collective is
  preceded by a one-number status all-reduce), and every rank raises the
  same :class:`~convexnn.solvers.errors.DistributedSolveError` naming the
  failing rank and its error. A rank that dies breaks the group's
  connections and the others' pending collective fails at once (gloo) or
  after the group's timeout (NCCL); either way every rank raises a
  :class:`~convexnn.solvers.errors.DistributedSolveError`, never hangs.

Ranks are assumed to run the same build of torch on the same kind of
device: redundant computations on identical inputs then give identical
results (the collectives return the same bits on every rank).
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from convexnn.solvers.errors import DistributedSolveError, ShardError

logger = logging.getLogger("convexnn")

_OK, _FAILED = 0.0, 1.0

#: Values after the status in every status all-reduce (:meth:`now`'s clock and flag).
HEADER_EXTRA = 2


class AgreedInterrupt(KeyboardInterrupt):
    """A ``KeyboardInterrupt`` raised on every rank at the same step of a solve."""


class Communicator:
    """The collectives of a single-process solve: identities and the local clock.

    The base of :class:`DistributedCommunicator`; code written against this
    interface runs unchanged in one process or many.
    """

    rank: int = 0
    world_size: int = 1
    distributed: bool = False

    def all_reduce(self, value: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """``value`` combined over the ranks by ``op`` (``"sum"``, ``"max"``, ``"min"``)."""
        return value

    def sum(self, value: float) -> float:
        """A float summed over the ranks."""
        return float(value)

    def max(self, value: float) -> float:
        """The largest of a float over the ranks."""
        return float(value)

    def min(self, value: float) -> float:
        """The smallest of a float over the ranks."""
        return float(value)

    def now(self) -> float:
        """A clock that reads the same on every rank (seconds; only differences matter)."""
        return time.monotonic()

    def deadline(self, local_deadline: float) -> float:
        """A ``time.monotonic()`` deadline of this process on the clock of :meth:`now`.

        Distributed: the earliest over the ranks.
        """
        return local_deadline

    def all_gather_object(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order."""
        return [value]

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Turn an exception on one rank into the same error on every rank (see module doc)."""
        yield

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Ctrl-C on any rank stops every rank at the same step (see module doc)."""
        yield

    def check_same(self, settings: Mapping[str, Any]) -> None:
        """Check that every rank was given the same ``settings`` (numbers as floats, then
        by ``repr``).

        Raises :class:`ShardError`, the same on every rank, naming each setting
        that differs and its value per rank: ranks solving different problems
        would return a wrong result or fail in a collective. (One process:
        nothing to compare.)
        """

    def check_shards(
        self, rows: int, features: Sequence[int], dtype: str, what: str = "rows"
    ) -> int:
        """Check that the ranks' shards form one data set; return the total rows.

        Every rank needs at least one row; ``features`` (the shape of one row,
        e.g. ``(n_features,)`` or ``(R, P, h, C)``) and ``dtype`` must be the
        same on every rank. Raises the same
        :class:`~convexnn.solvers.errors.ShardError` on every rank otherwise.
        """
        if rows < 1:
            raise ShardError(f"the data has no {what}")
        return int(rows)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, world_size={self.world_size})"


#: The single-process communicator.
LOCAL = Communicator()


@dataclass(frozen=True)
class _ShardInfo:
    rows: int
    features: tuple[int, ...]
    dtype: str


class DistributedCommunicator(Communicator):
    """The collectives of a data-parallel solve over an initialised process group.

    Parameters
    ----------
    group : ProcessGroup, optional
        The ``torch.distributed`` group whose ranks share the solve (default:
        the world group). ``torch.distributed.init_process_group`` must have
        been called (``torchrun`` provides its environment).

    Raises
    ------
    DistributedSolveError
        ``torch.distributed`` is unavailable or not initialised.
    """

    distributed = True

    def __init__(self, group: Any = None) -> None:
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise DistributedSolveError(
                "a distributed solve needs an initialised torch.distributed process group: "
                "launch with torchrun (python -m convexnn.distributed ...) or call "
                "torch.distributed.init_process_group first"
            )
        self._dist = dist
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.backend = str(dist.get_backend(group))
        if self.backend == "nccl":
            self.device = torch.device("cuda", torch.cuda.current_device())
        else:
            self.device = torch.device("cpu")
        self._start = time.monotonic()
        self._interrupted = False
        self._broken = False

    # -- plumbing ----------------------------------------------------------------
    def _collective(self, what: str, call):
        """Run one collective; a broken group becomes a DistributedSolveError."""
        if self._broken:
            raise DistributedSolveError(
                f"rank {self.rank}: the process group failed earlier; no further collectives"
            )
        try:
            return call()
        except RuntimeError as error:  # DistBackendError and gloo/NCCL errors
            self._broken = True
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise DistributedSolveError(
                f"rank {self.rank} of {self.world_size}: the {what} collective failed -- another "
                f"rank stopped (crashed, killed or out of memory) or did not answer within the "
                f"process group's timeout ({first})"
            ) from error

    def _header(self, status: float, extra: Sequence[float] = ()) -> torch.Tensor:
        """One small MAX all-reduce: the status of every rank, plus ``extra`` values.

        Always ``1 + HEADER_EXTRA`` numbers, padded with zeros: a failure announced
        by one rank must meet whatever header the others send (a clock reading,
        a plain check), or the collective waits out the group's timeout.
        """
        padded = [*extra, *([0.0] * (HEADER_EXTRA - len(extra)))]
        values = torch.tensor([status, *padded], dtype=torch.float64, device=self.device)

        def call():
            self._dist.all_reduce(values, op=self._dist.ReduceOp.MAX, group=self.group)
            return values.cpu()

        return self._collective("status", call)

    def _check(self, extra: Sequence[float] = ()) -> torch.Tensor:
        """The status all-reduce that precedes every collective; raises on a peer's failure."""
        reduced = self._header(_OK, extra)
        if float(reduced[0]) != _OK:
            self._raise_failure(None)
        return reduced

    def _raise_failure(self, own: str | None) -> None:
        """Gather every rank's failure message (``None``: this rank is fine) and raise."""
        messages: list[Any] = [None] * self.world_size
        self._collective(
            "error report",
            lambda: self._dist.all_gather_object(messages, own, group=self.group),
        )
        failed = [(rank, text) for rank, text in enumerate(messages) if text is not None]
        if len(failed) == self.world_size and len({text for _, text in failed}) == 1:
            # The same error everywhere (e.g. an option every rank refuses): said once
            raise DistributedSolveError(
                f"the distributed solve failed on all {self.world_size} ranks alike -- "
                f"{failed[0][1]}"
            )
        detail = "; ".join(f"rank {rank}: {text}" for rank, text in failed)
        raise DistributedSolveError(
            f"the distributed solve failed on {len(failed)} of {self.world_size} ranks -- "
            f"{detail}"
        )

    # -- reductions ----------------------------------------------------------------
    def all_reduce(self, value: torch.Tensor, op: str = "sum") -> torch.Tensor:
        self._check()
        ops = {"sum": self._dist.ReduceOp.SUM, "max": self._dist.ReduceOp.MAX,
               "min": self._dist.ReduceOp.MIN}
        tensor = torch.as_tensor(value)
        work = tensor.to(self.device).contiguous().clone()

        def call():
            self._dist.all_reduce(work, op=ops[op], group=self.group)
            return work

        return self._collective(f"all-reduce ({op})", call).to(tensor.device)

    def _scalar(self, value: float, op: str) -> float:
        return float(self.all_reduce(torch.tensor([float(value)], dtype=torch.float64), op)[0])

    def sum(self, value: float) -> float:
        return self._scalar(value, "sum")

    def max(self, value: float) -> float:
        return self._scalar(value, "max")

    def min(self, value: float) -> float:
        return self._scalar(value, "min")

    # -- time and interrupts ----------------------------------------------------------
    def now(self) -> float:
        """The largest elapsed time over the ranks; raises :class:`AgreedInterrupt` on
        every rank when some rank was interrupted (inside :meth:`interruptible`)."""
        reduced = self._check(
            [time.monotonic() - self._start, 1.0 if self._interrupted else 0.0]
        )
        if float(reduced[2]) > 0:
            self._interrupted = False
            raise AgreedInterrupt("interrupted on some rank; every rank stops at this step")
        return float(reduced[1])

    def deadline(self, local_deadline: float) -> float:
        remaining = local_deadline - time.monotonic()
        remaining = self.min(remaining if not math.isnan(remaining) else math.inf)
        return self.now() + remaining

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_interrupt(signum, frame):
            if self._interrupted:  # a second Ctrl-C before the ranks agreed: stop now
                raise KeyboardInterrupt
            self._interrupted = True
            logger.warning(
                "rank %d: interrupted; every rank stops at its next step (Ctrl-C again to "
                "abort)", self.rank,
            )

        previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            self._interrupted = False

    # -- objects and failures ----------------------------------------------------------
    def all_gather_object(self, value: Any) -> list[Any]:
        self._check()
        gathered: list[Any] = [None] * self.world_size
        self._collective(
            "all-gather", lambda: self._dist.all_gather_object(gathered, value, group=self.group)
        )
        return gathered

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except (DistributedSolveError, AgreedInterrupt):
            raise  # already the same on every rank
        except BaseException as error:
            if self._broken:
                raise
            message = f"{type(error).__name__}: {error}".strip()
            logger.error("rank %d failed (%s); telling the other ranks", self.rank, message)
            try:
                self._header(_FAILED)
                self._raise_failure(message)
            except DistributedSolveError as failure:
                raise failure from error
        else:
            self._check()  # the last step: meets a failure of a slower rank

    def check_same(self, settings: Mapping[str, Any]) -> None:
        # (what is compared, what the message shows) per setting
        gathered = self.all_gather_object(
            {name: (repr(_canonical(value)), repr(value)) for name, value in settings.items()}
        )
        names = sorted({name for ranks_settings in gathered for name in ranks_settings})
        differ = [name for name in names
                  if len({ranks_settings.get(name, ("unset",))[0]
                          for ranks_settings in gathered}) > 1]
        if differ:
            detail = "; ".join(
                f"{name}: " + ", ".join(
                    f"rank {rank} {ranks_settings.get(name, (None, 'unset'))[1]}"
                    for rank, ranks_settings in enumerate(gathered))
                for name in differ
            )
            raise ShardError(
                f"the ranks were given different settings ({detail}); every rank must solve "
                "the same problem with the same options"
            )

    def check_shards(
        self, rows: int, features: Sequence[int], dtype: str, what: str = "rows"
    ) -> int:
        infos = [
            _ShardInfo(*item)
            for item in self.all_gather_object((int(rows), tuple(int(f) for f in features),
                                                str(dtype)))
        ]
        total = sum(info.rows for info in infos)
        ranks = self.world_size
        if total < ranks:
            raise ShardError(
                f"cannot shard {total} {what} over {ranks} ranks: every rank needs at least one "
                f"(rows per rank: {[info.rows for info in infos]}); use fewer processes"
            )
        empty = [rank for rank, info in enumerate(infos) if info.rows < 1]
        if empty:
            raise ShardError(
                f"rank(s) {', '.join(map(str, empty))} hold no {what} (rows per rank: "
                f"{[info.rows for info in infos]}); give every rank part of the data"
            )
        if len({info.features for info in infos}) > 1:
            shapes = ", ".join(
                f"rank {rank}: {_shape_text(info.features)}" for rank, info in enumerate(infos)
            )
            raise ShardError(
                f"the shards have different numbers of features ({shapes}); every rank must "
                "hold the same columns"
            )
        if len({info.dtype for info in infos}) > 1:
            kinds = ", ".join(f"rank {rank}: {info.dtype}" for rank, info in enumerate(infos))
            raise ShardError(
                f"the shards have different dtypes ({kinds}); convert them to one dtype"
            )
        return total


def _canonical(value: Any) -> Any:
    """``value`` with every number a float, every sequence a tuple and an object its
    type and attributes, so that equal settings compare equal (``1e-4`` and
    ``np.float64(1e-4)``, ``2`` and ``2.0``, two ``HuberLoss(delta=1)``)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(item) for item in value)
    if hasattr(value, "__dict__") and not isinstance(value, type):  # a loss: its parameters
        return (type(value).__name__,
                tuple(sorted((name, _canonical(item)) for name, item in vars(value).items())))
    return value


def _shape_text(features: tuple[int, ...]) -> str:
    return str(features[0]) if len(features) == 1 else "x".join(map(str, features))


def communicator_for(value: Any) -> Communicator:
    """The communicator of a ``distributed`` option.

    ``None`` / ``False``: single process. ``True``: the default (world)
    process group. A ``ProcessGroup``: that group. A :class:`Communicator`:
    itself.
    """
    if value is None or value is False:
        return LOCAL
    if isinstance(value, Communicator):
        return value
    if value is True:
        return DistributedCommunicator()
    return DistributedCommunicator(value)


def is_distributed_option(value: Any) -> bool:
    """Whether ``value`` is a valid ``distributed`` option (see :func:`communicator_for`)."""
    if value is None or isinstance(value, (bool, Communicator)):
        return True
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return False
    return dist.is_available() and isinstance(value, dist.ProcessGroup)


__all__ = [
    "LOCAL",
    "AgreedInterrupt",
    "Communicator",
    "DistributedCommunicator",
    "communicator_for",
    "is_distributed_option",
]
