"""The two-layer polynomial-activation network recovered from a solution.

``f(x)_k = sum_j alpha_jk sigma(u_j^T x)`` with unit-norm ``u_j``; in the
convolutional variant ``f(x)_k = sum_j sum_r alpha_jrk (1/P) sum_{p in r}
sigma(u_j^T x_rp)`` over the patches ``x_rp`` of pooling region ``r``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convexnn._validation import as_float_array, check_beta, check_targets
from convexnn.activations import Activation, ActivationLike, get_activation
from convexnn.exceptions import IncompatibleVersionError, ValidationError
from convexnn.losses import LossLike, get_loss
from convexnn.patches import ConvGeometry
from solvers.base import Neurons

FORMAT_VERSION = 1


class TwoLayerPolyNet:
    """A two-layer network with a degree-two polynomial activation.

    Parameters
    ----------
    U : ndarray of shape (m, h)
        First-layer weights (filters in the convolutional variant); rows are
        normalised to unit norm if they are not already.
    alpha : ndarray
        Output weights: ``(m,)`` for one output, ``(m, C)`` for ``C`` outputs;
        with ``geometry`` set, ``(m, R)`` or ``(m, R, C)`` over ``R`` pooling
        regions.
    activation : str or (a, b, c) or Activation
    geometry : ConvGeometry, optional
        Makes the network convolutional.

    Attributes
    ----------
    U, alpha, activation, geometry
        As given.
    """

    def __init__(
        self,
        U: np.ndarray,
        alpha: np.ndarray,
        activation: ActivationLike,
        geometry: ConvGeometry | None = None,
    ) -> None:
        U = as_float_array(U, "U", min_samples=0) if np.size(U) else np.zeros(np.shape(U) or (0, 0))
        alpha = np.asarray(alpha, dtype=np.float64)
        if U.ndim != 2:
            raise ValidationError(f"U must be 2-D (neurons x features), got shape {U.shape}")
        if alpha.ndim == 0 or alpha.shape[0] != U.shape[0]:
            raise ValidationError(
                f"alpha must have one row per neuron ({U.shape[0]}), got shape {alpha.shape}"
            )
        if not np.all(np.isfinite(alpha)):
            raise ValidationError("alpha contains NaN or infinity")
        regions = geometry.n_regions if geometry is not None else 1
        if geometry is not None:
            if U.shape[1] != geometry.patch_size:
                raise ValidationError(
                    f"U has {U.shape[1]} columns but the geometry's patches have "
                    f"{geometry.patch_size} values"
                )
            if alpha.ndim not in (2, 3) or alpha.shape[1] != regions:
                raise ValidationError(
                    f"a convolutional network's alpha must be (m, {regions}) or "
                    f"(m, {regions}, C); got shape {alpha.shape}"
                )
        elif alpha.ndim not in (1, 2):
            raise ValidationError(f"alpha must be (m,) or (m, C), got shape {alpha.shape}")
        norms = np.linalg.norm(U, axis=1)
        if np.any(norms == 0):
            raise ValidationError("U has an all-zero row; every neuron needs a direction")
        self.U = U / norms[:, None]
        self.alpha = alpha
        self.activation = get_activation(activation)
        self.geometry = geometry

    # -- shape ---------------------------------------------------------------
    @property
    def n_neurons(self) -> int:
        return self.U.shape[0]

    @property
    def n_features(self) -> int:
        """Input features (pixels for a convolutional network)."""
        return self.geometry.n_pixels if self.geometry is not None else self.U.shape[1]

    @property
    def single_output(self) -> bool:
        return self.alpha.ndim == (2 if self.geometry is not None else 1)

    @property
    def n_outputs(self) -> int:
        return 1 if self.single_output else self.alpha.shape[-1]

    def _alpha_full(self) -> np.ndarray:
        """Output weights as ``(m, R, C)``."""
        alpha = self.alpha if self.geometry is not None else self.alpha[:, None]
        return alpha[..., None] if self.single_output else alpha

    # -- evaluation ----------------------------------------------------------
    def _patches(self, X: Any) -> np.ndarray:
        if self.geometry is not None:
            images = as_float_array(X, "X", ndims=(2, 3, 4), min_samples=0)
            return self.geometry.patches(images)
        features = as_float_array(X, "X", min_samples=0)
        if features.shape[1] != self.U.shape[1]:
            raise ValidationError(
                f"X has {features.shape[1]} features but the network expects {self.U.shape[1]}"
            )
        return features[:, None, None, :]

    def hidden(self, X: Any) -> np.ndarray:
        """Pooled hidden activations, ``(n, m)`` (``(n, R, m)`` if convolutional)."""
        pooled = self.activation(self._patches(X) @ self.U.T).mean(axis=2)
        return pooled if self.geometry is not None else pooled[:, 0]

    def predict(self, X: Any) -> np.ndarray:
        """Network outputs: ``(n,)`` for a single output, else ``(n, C)``."""
        pooled = self.activation(self._patches(X) @ self.U.T).mean(axis=2)  # (n, R, m)
        outputs = np.einsum("nrm,mrk->nk", pooled, self._alpha_full())
        return outputs[:, 0] if self.single_output else outputs

    def penalty(self) -> float:
        """``sum_j ||alpha_j||_1``."""
        return float(np.abs(self.alpha).sum())

    def objective(self, X: Any, y: Any, loss: LossLike = "squared", beta: float = 0.1) -> float:
        """``loss(f(X), y) + beta * sum |alpha|`` (the convex problem's objective).

        ``y`` is loss-encoded (-1/+1, one-hot) as for :func:`make_problem`.
        """
        yhat = self.predict(X)
        targets = check_targets(y, len(yhat))
        loss_object = get_loss(loss)
        return loss_object(yhat.reshape(len(yhat), -1), targets) + check_beta(beta) * self.penalty()

    @classmethod
    def from_neurons(
        cls,
        neurons: Neurons,
        *,
        n_regions: int,
        n_outputs: int,
        single_output: bool,
        activation: ActivationLike,
        geometry: ConvGeometry | None = None,
    ) -> TwoLayerPolyNet:
        """Assemble a network from neurons that each feed one (region, output) block."""
        m = len(neurons.weights)
        alpha = np.zeros((m, n_regions, n_outputs))
        regions, outputs = np.divmod(neurons.blocks, n_outputs)
        alpha[np.arange(m), regions, outputs] = neurons.weights
        if single_output:
            alpha = alpha[..., 0]
        if geometry is None:
            alpha = alpha[:, 0]
        filters = neurons.filters
        if m == 0:
            width = geometry.patch_size if geometry is not None else filters.shape[1]
            filters = np.zeros((0, width))
        return cls(filters, alpha, activation, geometry)

    # -- export --------------------------------------------------------------
    def to_torch(self, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
        """An equivalent ``torch.nn.Module`` (``Linear`` or ``Conv2d`` + ``AvgPool2d``)."""
        return _TorchPolyNet(self, dtype)

    def to_dict(self) -> dict[str, Any]:
        from convexnn import __version__

        return {
            "format": "convexnn.TwoLayerPolyNet",
            "format_version": FORMAT_VERSION,
            "convexnn_version": __version__,
            "activation": list(self.activation.coefficients),
            "activation_name": self.activation.name,
            "geometry": None if self.geometry is None else self.geometry.to_dict(),
        }

    def save(self, path: str | Path) -> Path:
        """Write a portable ``.npz`` (arrays plus JSON metadata); returns the path."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        np.savez(path, U=self.U, alpha=self.alpha, metadata=np.array(json.dumps(self.to_dict())))
        return path

    @classmethod
    def load(cls, path: str | Path) -> TwoLayerPolyNet:
        """Read a network written by :meth:`save`."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                metadata = json.loads(str(data["metadata"]))
                U, alpha = data["U"], data["alpha"]
        except (OSError, KeyError, ValueError) as error:
            raise ValidationError(f"{path} is not a saved TwoLayerPolyNet: {error}") from error
        return cls.from_saved(U, alpha, metadata, path)

    @classmethod
    def from_saved(cls, U: np.ndarray, alpha: np.ndarray, metadata: dict, source: Any) -> TwoLayerPolyNet:
        if metadata.get("format") != "convexnn.TwoLayerPolyNet":
            raise ValidationError(f"{source} does not hold a TwoLayerPolyNet")
        if metadata.get("format_version") != FORMAT_VERSION:
            raise IncompatibleVersionError(
                f"{source} uses file format {metadata.get('format_version')} "
                f"(written by convexnn {metadata.get('convexnn_version')}); this version "
                f"reads format {FORMAT_VERSION}"
            )
        geometry = metadata.get("geometry")
        activation = Activation(*metadata["activation"], name=metadata.get("activation_name"))
        return cls(U, alpha, activation, None if geometry is None else ConvGeometry.from_dict(geometry))

    def __repr__(self) -> str:
        kind = "conv " if self.geometry is not None else ""
        return (
            f"TwoLayerPolyNet({kind}neurons={self.n_neurons}, features={self.n_features}, "
            f"outputs={self.n_outputs}, activation={self.activation})"
        )


class _TorchPolyNet(torch.nn.Module):
    """The torch twin of a :class:`TwoLayerPolyNet` (same outputs, trainable)."""

    def __init__(self, net: TwoLayerPolyNet, dtype: torch.dtype) -> None:
        super().__init__()
        self.coefficients = net.activation.coefficients
        self.geometry = net.geometry
        self.single_output = net.single_output
        weight = torch.as_tensor(net.U, dtype=dtype)
        self.alpha = torch.nn.Parameter(torch.as_tensor(net._alpha_full(), dtype=dtype))
        if net.geometry is None:
            self.first = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=dtype)
            self.first.weight.data.copy_(weight)
        else:
            g = net.geometry
            self.first = torch.nn.Conv2d(
                g.image_shape[0], weight.shape[0], g.filter_size, stride=g.stride, bias=False, dtype=dtype
            )
            self.first.weight.data.copy_(weight.reshape(-1, *self.first.weight.shape[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, c = self.coefficients
        if self.geometry is None:
            t = self.first(x)
            hidden = (a * t * t + b * t + c)[:, None, :]  # (n, 1, m)
        else:
            g = self.geometry
            x = x.reshape(len(x), *g.image_shape)
            t = self.first(x)
            act = a * t * t + b * t + c  # (n, m, oh, ow)
            if g.pool_size is None:
                pooled = act.mean(dim=(2, 3))[:, :, None]
            else:
                pooled = torch.nn.functional.avg_pool2d(act, g.pool_size, stride=g.pool_size)
                pooled = pooled.flatten(2)  # (n, m, R)
            hidden = pooled.transpose(1, 2)  # (n, R, m)
        out = torch.einsum("nrm,mrk->nk", hidden, self.alpha)
        return out[:, 0] if self.single_output else out
