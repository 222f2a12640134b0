"""The two-layer polynomial-activation network recovered from a solution.

``f(x)_k = sum_j alpha_jk sigma(u_j^T x)`` with unit-norm ``u_j``; in the
convolutional variant ``f(x)_k = sum_j sum_r alpha_jrk (1/P) sum_{p in r}
sigma(u_j^T x_rp)`` over the patches ``x_rp`` of pooling region ``r``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convexnn._torch_model import TorchPolyNet, check_floating_dtype
from convexnn._validation import (
    FEATURE_LIMIT,
    as_float_array,
    as_real_array,
    check_beta,
    check_path,
    check_targets,
    from_tensor,
)
from convexnn.activations import Activation, ActivationLike, get_activation
from convexnn.exceptions import (
    IncompatibleVersionError,
    MissingFileError,
    ValidationError,
)
from convexnn.losses import LossLike, get_loss
from convexnn.patches import ConvGeometry
from convexnn.solvers.base import Neurons

FORMAT_VERSION = 1
#: Pre-activations computed at once, at most (samples are taken in chunks): a
#: convolutional network's ``(n, R, P, m)`` would not fit in memory at MNIST size.
PREACTIVATION_CHUNK = 1 << 24


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
        if geometry is not None and not isinstance(geometry, ConvGeometry):
            raise ValidationError(
                f"geometry must be a ConvGeometry or None, got {type(geometry).__name__}"
            )
        U = from_tensor(U)
        U = as_float_array(U, "U", min_samples=0) if np.size(U) else np.zeros(np.shape(U) or (0, 0))
        alpha = as_real_array(alpha, "alpha", "array (output weights)")
        if U.ndim != 2:
            raise ValidationError(f"U must be 2-D (neurons x features), got shape {U.shape}")
        if alpha.ndim == 0 or alpha.shape[0] != U.shape[0]:
            raise ValidationError(
                f"alpha must have one row per neuron ({U.shape[0]}), got shape {alpha.shape}"
            )
        if not np.all(np.isfinite(alpha)):
            raise ValidationError("alpha contains NaN or infinity; output weights must be finite")
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
        # Scaled by each row's largest entry first: the norm of a row of 1e200s (or 1e-170s)
        # overflows (underflows) where its direction does not.
        largest = np.abs(U).max(axis=1, initial=0.0)
        if np.any(largest == 0):
            raise ValidationError(
                f"U has an all-zero row (row {int(np.flatnonzero(largest == 0)[0])}); every "
                "neuron needs a direction -- drop that neuron"
            )
        # (by a power of two: exact, so ordinary rows normalise bit for bit as unscaled)
        scaled = np.ldexp(U, -np.frexp(largest)[1][:, None])
        self.U = scaled / np.linalg.norm(scaled, axis=1)[:, None]
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

    @property
    def output_weights(self) -> np.ndarray:
        """Output weights as ``(m, R, C)`` (regions ``R = 1`` when fully connected)."""
        alpha = self.alpha if self.geometry is not None else self.alpha[:, None]
        return alpha[..., None] if self.single_output else alpha

    # -- evaluation ----------------------------------------------------------
    def _patches(self, X: Any) -> np.ndarray:
        if self.geometry is not None:
            images = as_float_array(X, "X", ndims=(2, 3, 4), min_samples=0,
                                    limit=FEATURE_LIMIT)
            return self.geometry.patches(images)
        features = as_float_array(X, "X", min_samples=0, limit=FEATURE_LIMIT)
        if features.shape[1] != self.U.shape[1]:
            raise ValidationError(
                f"X has {features.shape[1]} features but the network expects {self.U.shape[1]}"
            )
        return features[:, None, None, :]

    def pooled_activations(self, patches: np.ndarray) -> np.ndarray:
        """``(n, R, m)``: each neuron's activation averaged over the patches of each region.

        ``patches`` has shape ``(n, R, P, h)`` (a fully connected network's
        samples are ``X[:, None, None, :]``), as in :class:`~convexnn.PolySDP`.
        """
        if np.ndim(patches) != 4 or np.shape(patches)[3] != self.U.shape[1]:
            raise ValidationError(
                f"patches must have shape (n, R, P, {self.U.shape[1]}), as "
                f"X[:, None, None, :] for samples; got shape {np.shape(patches)} (predict and "
                "hidden take samples or images)"
            )
        n, regions, pool, h = patches.shape
        m = len(self.U)
        # Through the patches' second moments when that is cheaper (pooling over many
        # patches, more neurons than features): mean_p sigma(x_p.u) is
        # a u^T (mean_p x_p x_p^T) u + b (mean_p x_p).u + c.
        by_moments = pool > 1 and h * h * (pool + m) < pool * m * (h + 4)
        per_sample = regions * (h * (h + m) if by_moments else pool * m)
        step = max(1, PREACTIVATION_CHUNK // max(per_sample, 1))
        pooled = np.empty((n, regions, m))
        a, b, c = self.activation.coefficients
        for start in range(0, n, step):
            chunk = patches[start:start + step]
            if by_moments:
                second = np.swapaxes(chunk, 2, 3) @ chunk / pool  # (n, R, h, h)
                quadratic = ((second @ self.U.T) * self.U.T).sum(axis=2)
                pooled[start:start + step] = a * quadratic + b * (chunk.mean(axis=2) @ self.U.T) + c
            else:
                pooled[start:start + step] = self.activation(chunk @ self.U.T).mean(axis=2)
        return pooled

    def outputs(self, patches: np.ndarray) -> np.ndarray:
        """``(n, C)`` outputs of the network on ``(n, R, P, h)`` patches: the one forward pass."""
        return np.einsum("nrm,mrk->nk", self.pooled_activations(patches), self.output_weights)

    def hidden(self, X: Any) -> np.ndarray:
        """Pooled hidden activations, ``(n, m)`` (``(n, R, m)`` if convolutional)."""
        pooled = self.pooled_activations(self._patches(X))
        return pooled if self.geometry is not None else pooled[:, 0]

    def predict(self, X: Any) -> np.ndarray:
        """Network outputs: ``(n,)`` for a single output, else ``(n, C)``."""
        # (inside a solve an overflowing network is a value to compare, not an error: the
        # zero network replaces it there)
        with np.errstate(over="ignore", invalid="ignore"):  # refused below, in words
            outputs = self.outputs(self._patches(X))
        if not np.all(np.isfinite(outputs)):  # finite inputs below FEATURE_LIMIT, huge weights
            raise ValidationError(
                "the network's outputs overflow float64 (inf or NaN) on these inputs: rescale "
                "the features, or the network's weights"
            )
        return outputs[:, 0] if self.single_output else outputs

    def penalty(self) -> float:
        """``sum_j ||alpha_j||_1``."""
        return float(np.abs(self.alpha).sum())

    def objective(self, X: Any, y: Any, *, beta: float, loss: LossLike = "squared") -> float:
        """``loss(f(X), y) + beta * sum |alpha|`` (the convex problem's objective).

        ``beta`` is required: the objective (and a certificate) is for one ``beta``.

        ``y`` is loss-encoded (-1/+1, one-hot) as for :func:`make_problem`.
        """
        beta = check_beta(beta)
        loss_object = get_loss(loss)
        yhat = self.predict(X)
        targets = check_targets(y, len(yhat))
        if targets.shape[1] != self.n_outputs:
            expected = "(n,)" if self.single_output else f"(n, {self.n_outputs})"
            raise ValidationError(
                f"y has {targets.shape[1]} column(s) but the network has {self.n_outputs} "
                f"output(s); pass loss-encoded targets of shape {expected}"
            )
        loss_object.check_targets(targets)
        with np.errstate(over="ignore"):  # refused below, in words
            value = loss_object(yhat.reshape(len(yhat), -1), targets) + beta * self.penalty()
        if not np.isfinite(value):
            raise ValidationError("the objective overflows float64: the network's output "
                                  "weights or outputs are too large")
        return value

    @classmethod
    def zero(
        cls,
        n_features: int,
        output_shape: tuple[int, ...],
        activation: ActivationLike,
        geometry: ConvGeometry | None = None,
    ) -> TwoLayerPolyNet:
        """The network without neurons (it predicts 0): ``n_features`` per sample (per
        patch with a ``geometry``), ``alpha`` rows of shape ``output_shape``."""
        return cls(np.zeros((0, n_features)), np.zeros((0, *output_shape)), activation, geometry)

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
        m = len(neurons.alpha)
        blocks = np.asarray(neurons.blocks)
        if m and (blocks.min() < 0 or blocks.max() >= n_regions * n_outputs):
            raise ValidationError(
                f"neuron blocks must be in [0, {n_regions * n_outputs}) (region * n_outputs "
                f"+ output); got {blocks.min()} to {blocks.max()}")
        if single_output and n_outputs != 1:
            raise ValidationError(f"single_output=True needs n_outputs=1, got {n_outputs}")
        alpha = np.zeros((m, n_regions, n_outputs))
        regions, outputs = np.divmod(blocks, n_outputs)
        alpha[np.arange(m), regions, outputs] = neurons.alpha
        if single_output:
            alpha = alpha[..., 0]
        if geometry is None:
            alpha = alpha[:, 0]
        filters = neurons.U
        if m == 0:
            width = geometry.patch_size if geometry is not None else filters.shape[1]
            filters = np.zeros((0, width))
        return cls(filters, alpha, activation, geometry)

    # -- export --------------------------------------------------------------
    def to_torch(self, dtype: torch.dtype = torch.float64) -> TorchPolyNet:
        """An equivalent ``torch.nn.Module`` (``Linear``, or ``Conv2d`` and average pooling).

        The module class :mod:`convexnn.baselines` trains (on this network's
        unit-norm rows as they are; ``unit_norm=False``). Its inputs must have
        ``dtype`` (float64 by default): ``to_torch(torch.float32)`` for float32 data.
        """
        check_floating_dtype(dtype)
        return TorchPolyNet(
            torch.as_tensor(self.U, dtype=dtype),
            torch.as_tensor(self.output_weights, dtype=dtype),
            self.activation.coefficients,
            geometry=self.geometry,
            single_output=self.single_output,
        )

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
        """Write a portable ``.npz`` (arrays plus JSON metadata); returns the path.

        ``.npz`` is appended unless the name already ends in it; nothing is
        pickled, and :meth:`load` reproduces the predictions exactly.
        """
        path = npz_path(path)
        with open(path, "wb") as handle:
            np.savez(handle, U=self.U, alpha=self.alpha,
                     metadata=np.array(json.dumps(self.to_dict())))
        return path

    @classmethod
    def load(cls, path: str | Path) -> TwoLayerPolyNet:
        """Read a network written by :meth:`save`.

        Raises
        ------
        MissingFileError
            No such file.
        ValidationError
            The file is not a saved network (or is damaged).
        IncompatibleVersionError
            It was written in a newer file format than this version reads.
        """
        arrays, metadata = read_npz(path, ("U", "alpha"), "a saved TwoLayerPolyNet")
        return cls.from_saved(arrays["U"], arrays["alpha"], metadata, path)

    @classmethod
    def from_saved(
        cls, U: np.ndarray, alpha: np.ndarray, metadata: dict, source: Any
    ) -> TwoLayerPolyNet:
        """The network of saved arrays and :meth:`to_dict` metadata (``U`` kept bit for bit)."""
        if not isinstance(metadata, dict) or metadata.get("format") != "convexnn.TwoLayerPolyNet":
            hint = ""
            if isinstance(metadata, dict) and metadata.get("format") == "convexnn.estimator":
                hint = (
                    f"; it holds a fitted {metadata.get('class')}: "
                    f"use {metadata.get('class')}.load"
                )
            raise ValidationError(f"{source} does not hold a TwoLayerPolyNet{hint}")
        check_format_version(metadata, FORMAT_VERSION, source)
        try:
            geometry = metadata.get("geometry")
            activation = Activation(*metadata["activation"], name=metadata.get("activation_name"))
            net = cls(U, alpha, activation,
                      None if geometry is None else ConvGeometry.from_dict(geometry))
        except ValidationError as error:
            raise ValidationError(f"{source} holds an invalid TwoLayerPolyNet: {error}") from error
        except (KeyError, TypeError, ValueError) as error:
            raise ValidationError(
                f"{source} holds damaged TwoLayerPolyNet metadata ({type(error).__name__}: "
                f"{error})"
            ) from error
        stored = np.asarray(U, dtype=np.float64)
        if stored.shape == net.U.shape and np.allclose(
            np.linalg.norm(stored, axis=1), 1.0, rtol=0, atol=1e-12
        ):
            net.U = stored  # saved rows are unit already; renormalising could move a bit
        return net

    def __repr__(self) -> str:
        kind = "conv " if self.geometry is not None else ""
        return (
            f"TwoLayerPolyNet({kind}neurons={self.n_neurons}, features={self.n_features}, "
            f"outputs={self.n_outputs}, activation={self.activation})"
        )


def npz_path(path: Any) -> Path:
    """``path`` with ``.npz`` appended unless it already ends in it."""
    # "newdir/" names a folder even where none exists yet (Path drops the slash)
    named_folder = isinstance(path, str) and path.endswith(("/", os.sep))
    path = check_path(path)
    if named_folder or path.is_dir() or not path.name:  # not "folder.npz" beside it
        raise ValidationError(f"cannot save to {str(path)!r}: it is a folder; give a file name")
    path = path if path.suffix.lower() == ".npz" else path.with_name(path.name + ".npz")
    if path.is_dir():
        raise ValidationError(f"cannot save to {path}: it is a folder; give a file name")
    if not path.parent.is_dir():
        raise MissingFileError(
            f"cannot save to {path}: the folder {path.parent} does not exist; create it first"
        )
    return path


#: The arrays a saved network or estimator holds (any other entry is not read).
SAVED_ARRAYS = ("U", "alpha", "dual_point", "classes", "feature_names")


def read_npz(path: Any, required: tuple[str, ...], what: str) -> tuple[dict, dict]:
    """Arrays ``required`` (and the other :data:`SAVED_ARRAYS` present) and the JSON
    ``metadata`` of a saved file."""
    file = check_path(path)
    if not file.exists() and file.suffix != ".npz" and file.with_name(file.name + ".npz").exists():
        file = file.with_name(file.name + ".npz")  # what .save wrote for this name
    if not file.exists():
        raise MissingFileError(f"no such file: {file} (expected {what}, written by .save)")
    try:
        loaded = np.load(file, allow_pickle=False)
    except Exception as error:  # text, pickles, damaged files: numpy's own words mislead here
        raise ValidationError(f"{file} is not {what}: not a NumPy .npz archive") from error
    if not hasattr(loaded, "files"):
        raise ValidationError(f"{file} is not {what}: a single .npy array, not an .npz archive")
    try:
        with loaded as data:
            missing = [key for key in ("metadata", *required) if key not in data.files]
            if missing:
                raise ValueError(f"no {missing[0]!r} entry (entries: {data.files})")
            # Known entries only: another one could be a decompression bomb
            arrays = {key: data[key] for key in {*required, *SAVED_ARRAYS}
                      if key in data.files}
            metadata = json.loads(str(data["metadata"]))
    except (OSError, ValueError, EOFError) as error:  # JSONDecodeError, BadZipFile too
        raise ValidationError(f"{file} is not {what}: {error}") from error
    except Exception as error:  # zipfile.BadZipFile and other damage
        raise ValidationError(f"{file} is not {what}: {type(error).__name__}: {error}") from error
    if not isinstance(metadata, dict):
        raise ValidationError(f"{file} is not {what}: its metadata is not a JSON object")
    return arrays, metadata


def check_format_version(metadata: dict, supported: int, source: Any) -> int:
    """The file's ``format_version``; newer than ``supported`` is an IncompatibleVersionError."""
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValidationError(f"{source} has no valid format_version (got {version!r})")
    if version > supported:
        raise IncompatibleVersionError(
            f"{source} uses file format {version} (written by convexnn "
            f"{metadata.get('convexnn_version')}); this version reads format {supported}. "
            "Upgrade convexnn to load it."
        )
    return version
