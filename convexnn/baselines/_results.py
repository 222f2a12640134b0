"""What a backprop run returns: its recorded history and the run itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from convexnn._torch_model import TorchPolyNet, check_floating_dtype
from convexnn._validation import FEATURE_LIMIT, as_float_array, writable
from convexnn.activations import Activation
from convexnn.exceptions import ValidationError
from convexnn.losses import Loss
from convexnn.network import TwoLayerPolyNet
from convexnn.patches import ConvGeometry

if TYPE_CHECKING:
    from convexnn.baselines._tuning import RateSearch

__all__ = ["BackpropRun", "HistoryRecord", "TrainingHistory"]


class HistoryRecord(NamedTuple):
    """One record of a run; the fields of :class:`TrainingHistory`, as scalars."""

    epoch: int
    wall_time: float
    objective: float
    convex_objective: float
    train_metric: float
    test_metric: float


@dataclass(frozen=True)
class TrainingHistory:
    """What a run recorded, one entry per record (epoch 0 first).

    Attributes
    ----------
    epoch : ndarray of int
        Epochs completed at each record.
    wall_time : ndarray
        Training seconds so far (record evaluations not counted).
    objective : ndarray
        The training objective (convex or weight decay), summed over samples.
    convex_objective : ndarray
        ``loss(f_U(X), y) + beta * sum |alpha|`` with ``U = W / ||W||`` rows.
    train_metric, test_metric : ndarray
        ``metric`` on the training / test data; NaN when there is no metric
        (or no test data).
    """

    epoch: np.ndarray
    wall_time: np.ndarray
    objective: np.ndarray
    convex_objective: np.ndarray
    train_metric: np.ndarray
    test_metric: np.ndarray

    @classmethod
    def from_records(cls, records: Sequence[HistoryRecord]) -> TrainingHistory:
        """The history of ``records`` (at least one), in their order."""
        columns = {
            name: np.asarray(values) for name, values in zip(HistoryRecord._fields, zip(*records))
        }
        return cls(**columns | {"epoch": columns["epoch"].astype(int)})

    def __len__(self) -> int:
        return len(self.epoch)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists, for JSON."""
        return {
            name: np.asarray(getattr(self, name)).tolist() for name in self.__dataclass_fields__
        }


@dataclass
class BackpropRun:
    """One backprop training run.

    Attributes
    ----------
    optimizer : str
    seed : int
    objective_kind : {"convex", "weight-decay"}
        Which objective was trained (``final_objective`` is its value).
    history : TrainingHistory
    final_objective : float
        Training objective of the returned weights.
    final_convex_objective : float
        Convex objective of the returned weights (``network.objective`` on the
        training data as given, in float64 whatever the training dtype, for
        convex runs).
    final_train_metric, final_test_metric : float
        NaN when not computed.
    train_time : float
        Training seconds (record evaluations not counted).
    diverged : bool
        The run hit a non-finite or exploding objective and stopped; the
        returned weights are those of its record of lowest training objective.
    stop_reason : {"epochs", "time_limit", "diverged"}
    epochs_run : int
        Epochs completed by the returned weights.
    lr : float
        Initial learning rate used.
    W : ndarray of shape (m, d)
        Raw first-layer weights (unnormalised); flattened filters of ``h``
        values when convolutional.
    alpha : ndarray of shape (m,) or (m, C)
        ``(m, R)`` or ``(m, R, C)`` over ``R`` pooling regions when
        convolutional.
    activation : Activation
    loss : Loss
    beta : float
    network : TwoLayerPolyNet or None
        For ``objective_kind="convex"``: the trained network (``U = W / ||W||``,
        ``alpha``), whose ``objective(X, y, loss, beta)`` equals
        ``final_convex_objective``. None for weight-decay runs, whose
        function is not a unit-norm network (see :meth:`predict`).
    geometry : ConvGeometry or None
        The convolution and pooling of a convolutional network.
    lr_search : RateSearch or None
        The learning-rate search that picked ``lr`` (``lr="tune"``).
    """

    optimizer: str
    seed: int
    objective_kind: str
    history: TrainingHistory = field(repr=False)  # per-epoch arrays
    final_objective: float
    final_convex_objective: float
    final_train_metric: float
    final_test_metric: float
    train_time: float
    diverged: bool
    stop_reason: str
    epochs_run: int
    lr: float
    W: np.ndarray = field(repr=False)
    alpha: np.ndarray = field(repr=False)
    activation: Activation = field(repr=False)
    loss: Loss = field(repr=False)
    beta: float = field(repr=False)
    network: TwoLayerPolyNet | None = field(default=None, repr=False)
    geometry: ConvGeometry | None = field(default=None, repr=False)
    lr_search: RateSearch | None = field(default=None, repr=False)

    @property
    def width(self) -> int:
        """Number of neurons."""
        return int(self.W.shape[0])

    def to_torch(self, dtype: torch.dtype = torch.float64) -> TorchPolyNet:
        """The trained network as the module it was trained as (unit-norm for convex runs)."""
        check_floating_dtype(dtype)
        alpha = self.alpha if self.geometry is not None else self.alpha[:, None]
        single_output = alpha.ndim == 2
        return TorchPolyNet(
            torch.as_tensor(self.W, dtype=dtype),
            torch.as_tensor(alpha[..., None] if single_output else alpha, dtype=dtype),
            self.activation.coefficients, geometry=self.geometry,
            single_output=single_output, unit_norm=self.objective_kind == "convex",
        )

    def predict(self, X: Any) -> np.ndarray:
        """Outputs of the trained network: ``(n,)`` for one output, else ``(n, C)``.

        ``X`` holds features, or images (any shape ``geometry`` accepts)
        when convolutional.
        """
        if self.geometry is None:
            features = as_float_array(X, "X", min_samples=0, limit=FEATURE_LIMIT)
            if features.shape[1] != self.W.shape[1]:
                raise ValidationError(
                    f"X has {features.shape[1]} features but the network expects "
                    f"{self.W.shape[1]}"
                )
        else:
            features = self.geometry.as_images(
                as_float_array(X, "X", ndims=(2, 3, 4), min_samples=0, limit=FEATURE_LIMIT)
            )
        with torch.no_grad():
            return self.to_torch()(as_tensor(features, torch.float64)).numpy()

    def summary(self) -> dict[str, Any]:
        """The scalar results, as one flat record."""
        return {
            "optimizer": self.optimizer,
            "seed": self.seed,
            "objective_kind": self.objective_kind,
            "width": self.width,
            "lr": self.lr,
            "lr_tuned": self.lr_search is not None and self.lr_search.tuned,
            "epochs": self.epochs_run,
            "final_objective": self.final_objective,
            "final_convex_objective": self.final_convex_objective,
            "train_metric": self.final_train_metric,
            "test_metric": self.final_test_metric,
            "train_time": self.train_time,
            "diverged": self.diverged,
            "stop_reason": self.stop_reason,
        }


def as_tensor(array: np.ndarray, dtype: torch.dtype, device: torch.device | None = None
              ) -> torch.Tensor:
    """``array`` as a tensor (a read-only one copied first: see :func:`writable`)."""
    return torch.as_tensor(writable(array), dtype=dtype, device=device)
