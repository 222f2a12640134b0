"""Patch extraction for the convolutional variant with average pooling.

A convolution with filter size ``(fh, fw)`` and stride ``(sh, sw)`` sees
patches of ``channels * fh * fw`` values (flattened in PyTorch's
``(channel, row, column)`` order, so filters reshape to ``Conv2d`` weights).
Average pooling in non-overlapping windows of ``(ph, pw)`` output positions
(PyTorch's ``AvgPool2d`` with ``ceil_mode=False``: positions that do not fill
a window are dropped) groups the patches into regions; ``pool_size=None`` is
global average pooling, one region with every patch.

A network with a degree-2 activation sees a region's patches only through
their mean and second moment: ``mean_p sigma(u.x_p) = a u^T (mean_p x_p x_p^T) u
+ b u.(mean_p x_p) + c``. :meth:`ConvGeometry.training_patches` therefore
replaces a region of more than ``patch_size + 1`` patches by ``patch_size + 1``
patches with the same mean and second moment: the training problem is the
same, exactly, and every pass over it is cheaper (144 patches per region
become 26 for 5x5 filters pooled over 12x12 positions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from convexnn._validation import writable
from convexnn.exceptions import ValidationError
from convexnn.solvers._checks import is_int

IntPair = int | tuple[int, int]

#: Patch values per chunk of images in :meth:`ConvGeometry.training_patches` (128 MB of
#: float64; the chunk's copies and its QR take a few times that at the peak).
TRAINING_PATCH_CHUNK = 1 << 24


def _pair(value: IntPair, name: str) -> tuple[int, int]:
    if isinstance(value, np.ndarray) and value.ndim == 0:  # np.array(2): a scalar
        value = value.item()
    if is_int(value):
        pair: tuple = (value, value)
    elif isinstance(value, (tuple, list, np.ndarray)):
        pair = tuple(value)
    else:
        pair = ()
    if len(pair) != 2 or not all(is_int(v) for v in pair) or min(pair) < 1:
        raise ValidationError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes of a convolution followed by average pooling.

    Parameters
    ----------
    image_shape : (channels, height, width) or (height, width)
    filter_size : int or (int, int)
    stride : int or (int, int), default 1
    pool_size : int or (int, int) or None, default None
        Pooling window in output positions; ``None`` pools globally.
    """

    image_shape: tuple[int, int, int]
    filter_size: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pool_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        raw = self.image_shape
        values = tuple(raw) if isinstance(raw, (tuple, list, np.ndarray)) else ()
        if len(values) not in (2, 3) or not all(is_int(v) and v >= 1 for v in values):
            raise ValidationError(
                "image_shape must be (height, width) or (channels, height, width) of "
                f"positive ints, got {raw!r}"
            )
        shape = tuple(int(v) for v in values)
        if len(shape) == 2:
            shape = (1, *shape)
        object.__setattr__(self, "image_shape", shape)
        object.__setattr__(self, "filter_size", _pair(self.filter_size, "filter_size"))
        object.__setattr__(self, "stride", _pair(self.stride, "stride"))
        if self.pool_size is not None:
            object.__setattr__(self, "pool_size", _pair(self.pool_size, "pool_size"))
        _, height, width = shape
        fh, fw = self.filter_size
        if fh > height or fw > width:
            raise ValidationError(
                f"filter_size {self.filter_size} is larger than the images ({height}x{width})"
            )
        oh, ow = self.output_grid
        if self.pool_size is not None and (self.pool_size[0] > oh or self.pool_size[1] > ow):
            raise ValidationError(
                f"pool_size {self.pool_size} is larger than the convolution's output "
                f"grid ({oh}x{ow}); use a smaller pool or pool_size=None (global)"
            )

    @property
    def output_grid(self) -> tuple[int, int]:
        """Rows and columns of the convolution's output."""
        _, height, width = self.image_shape
        return (
            (height - self.filter_size[0]) // self.stride[0] + 1,
            (width - self.filter_size[1]) // self.stride[1] + 1,
        )

    @property
    def pooled_grid(self) -> tuple[int, int]:
        """Rows and columns of pooling regions."""
        oh, ow = self.output_grid
        if self.pool_size is None:
            return (1, 1)
        return (oh // self.pool_size[0], ow // self.pool_size[1])

    @property
    def n_regions(self) -> int:
        rows, cols = self.pooled_grid
        return rows * cols

    @property
    def pool_area(self) -> int:
        """Patches per pooling region."""
        if self.pool_size is None:
            oh, ow = self.output_grid
            return oh * ow
        return self.pool_size[0] * self.pool_size[1]

    @property
    def patch_size(self) -> int:
        return self.image_shape[0] * self.filter_size[0] * self.filter_size[1]

    @property
    def n_pixels(self) -> int:
        return math.prod(self.image_shape)  # a Python int: np.prod wraps around in int64

    def as_images(self, X: np.ndarray, name: str = "X") -> np.ndarray:
        """``X`` as ``(n, channels, height, width)``; accepts flat rows too."""
        X = np.asarray(X)
        channels, height, width = self.image_shape
        if X.ndim == 2 and X.shape[1] == self.n_pixels:
            return X.reshape(len(X), channels, height, width)
        if X.ndim == 3 and channels == 1 and X.shape[1:] == (height, width):
            return X[:, None]
        if X.ndim == 4 and X.shape[1:] == self.image_shape:
            return X
        raise ValidationError(
            f"{name} must hold images of shape {self.image_shape} (as (n, C, H, W), "
            f"(n, H, W) for one channel, or flat (n, {self.n_pixels})); got shape {X.shape}"
        )

    def patches(self, X: np.ndarray) -> np.ndarray:
        """Patches grouped by pooling region, shape ``(n, regions, pool_area, patch_size)``."""
        images = self.as_images(X)
        n = len(images)
        fh, fw = self.filter_size
        sh, sw = self.stride
        windows = sliding_window_view(images, (fh, fw), axis=(2, 3))[:, :, ::sh, ::sw]
        oh, ow = self.output_grid
        windows = windows[:, :, :oh, :ow]  # (n, ch, oh, ow, fh, fw)
        grid = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n, oh, ow, self.patch_size)
        if self.pool_size is None:
            return np.ascontiguousarray(grid.reshape(n, 1, oh * ow, self.patch_size))
        ph, pw = self.pool_size
        rows, cols = self.pooled_grid
        grid = grid[:, : rows * ph, : cols * pw]
        pooled = grid.reshape(n, rows, ph, cols, pw, self.patch_size).transpose(0, 1, 3, 2, 4, 5)
        return np.ascontiguousarray(pooled.reshape(n, rows * cols, ph * pw, self.patch_size))

    def patch_scales(self, X: np.ndarray) -> np.ndarray:
        """Root mean square of every patch entry over the images and their patches, shape
        ``(patch_size,)``: the scales the filters see (a rarely lit border pixel is one
        of many positions of an entry)."""
        images = self.as_images(X).astype(np.float64, copy=False)
        mean_square = np.einsum("nchw,nchw->chw", images, images) / max(len(images), 1)
        return np.sqrt(self.patches(mean_square[None]).mean(axis=(0, 1, 2)))

    def training_patches(self, X: np.ndarray) -> np.ndarray:
        """Patches of the convex training problem: :meth:`patches`, with every region of
        more than ``patch_size + 1`` patches replaced by ``patch_size + 1`` synthetic
        patches of the same mean and second moment (why that is exact: the module
        docstring), in float64. Use :meth:`patches` for the images' own patches.

        Shape ``(n, regions, min(pool_area, patch_size + 1), patch_size)``. Built in
        chunks of images, so the full patch array is never held at once. The
        replacement patches are ``mean + sqrt((h + 1) / P) B R`` with ``R`` the
        triangular factor of the region's centred ``P x h`` patches
        (``R^T R = sum_p (x_p - mean)(x_p - mean)^T``) and ``B`` the ``(h + 1) x h``
        orthonormal basis of the vectors whose entries sum to zero (so the new
        patches' mean is ``mean`` and their scatter ``R^T B^T B R = R^T R``).
        """
        images = self.as_images(X)
        h, pool = self.patch_size, self.pool_area
        if pool <= h + 1:
            return np.asarray(self.patches(images), dtype=np.float64)
        n = len(images)
        compressed = np.empty((n, self.n_regions, h + 1, h))
        step = max(1, TRAINING_PATCH_CHUNK // (self.n_regions * pool * h))
        basis = torch.from_numpy(_zero_sum_basis(h))
        for start in range(0, n, step):
            chunk = torch.from_numpy(writable(np.asarray(
                self.patches(images[start:start + step]), dtype=np.float64)))
            mean = chunk.mean(dim=2, keepdim=True)
            factor = torch.linalg.qr(chunk - mean, mode="r").R  # (chunk, R, h, h)
            compressed[start:start + step] = (mean + math.sqrt((h + 1) / pool) * basis @ factor
                                              ).numpy()
        return compressed

    def to_dict(self) -> dict:
        return {
            "image_shape": list(self.image_shape),
            "filter_size": list(self.filter_size),
            "stride": list(self.stride),
            "pool_size": None if self.pool_size is None else list(self.pool_size),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ConvGeometry:
        """The geometry :meth:`to_dict` wrote."""
        missing = [key for key in ("image_shape", "filter_size", "stride")
                   if not isinstance(data, dict) or key not in data]
        if missing:
            raise ValidationError(
                f"a ConvGeometry dict needs image_shape, filter_size and stride (as to_dict "
                f"writes them); missing: {', '.join(missing)}"
            )
        pool = data.get("pool_size")
        return cls(
            image_shape=tuple(data["image_shape"]),
            filter_size=tuple(data["filter_size"]),
            stride=tuple(data["stride"]),
            pool_size=None if pool is None else tuple(pool),
        )


@cache
def _zero_sum_basis(h: int) -> np.ndarray:
    """An ``(h + 1) x h`` matrix with orthonormal columns orthogonal to the ones vector."""
    centring = np.eye(h + 1) - 1.0 / (h + 1)
    basis, _ = np.linalg.qr(centring[:, :h])
    return basis
