"""Image-like digits at MNIST size, built offline from scikit-learn's 8x8 digits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convexnn._validation import check_nonnegative, check_positive, local_random_state
from convexnn.exceptions import ValidationError

RandomStateLike = int | np.random.RandomState | None


@dataclass
class DigitImages:
    """Synthetic digit images and their labels.

    Attributes
    ----------
    X : ndarray of shape (n_samples, image_size ** 2), float64
        Flattened images, pixel values in ``[0, 1]`` (not standardised).
    y : ndarray of shape (n_samples,), int64
        Digit labels ``0..9``.
    image_shape : tuple of int
        ``(1, image_size, image_size)``.
    """

    X: np.ndarray
    y: np.ndarray
    image_shape: tuple[int, int, int]


def make_digit_images(
    n_samples: int = 60000,
    *,
    image_size: int = 28,
    digit_size: float = 20.0,
    max_shift: float = 3.0,
    scale_range: tuple[float, float] = (0.8, 1.15),
    max_rotation: float = 12.0,
    noise: float = 0.05,
    random_state: RandomStateLike = None,
) -> DigitImages:
    """MNIST-like images: scikit-learn's 8x8 digits upsampled, moved and noised.

    Each image is a randomly chosen one of scikit-learn's 1797 digits (8x8,
    16 grey levels), scaled to ``[0, 1]`` and resampled by bilinear
    interpolation onto an ``image_size`` square canvas as a digit of about
    ``digit_size`` pixels, rotated by up to ``max_rotation`` degrees, scaled
    by a factor drawn from ``scale_range`` and shifted by up to
    ``max_shift`` pixels in each direction; then Gaussian pixel noise of
    standard deviation ``noise`` is added and the values are clipped to
    ``[0, 1]`` (about half of the background is then exact zeros, the rest
    small positive values; 62% of all pixels are zero without noise, 33%
    at the default ``noise=0.05``).
    Neighbouring pixels are strongly correlated and the values are not
    standardised: the kind of data a user brings, and a much harder
    problem for the convex solvers than Gaussian features.

    Everything is generated offline (scikit-learn ships the 8x8 digits) from
    a local ``np.random.RandomState(random_state)``; NumPy's global
    generator is never used.

    Parameters
    ----------
    n_samples : int, default 60000
    image_size : int, default 28
        Side of the square images.
    digit_size : float, default 20.0
        Side, in pixels, of the box an unscaled digit fills.
    max_shift : float, default 3.0
        Largest shift of the digit's centre, in pixels, per direction.
    scale_range : (float, float), default (0.8, 1.15)
        Range of the random size factor.
    max_rotation : float, default 12.0
        Largest rotation, in degrees, either way.
    noise : float, default 0.05
        Standard deviation of the pixel noise.
    random_state : int, RandomState or None
        Seed of the local generator.

    Returns
    -------
    DigitImages
    """
    n_samples = check_positive(n_samples, "n_samples", integer=True)
    image_size = check_positive(image_size, "image_size", integer=True)
    digit_size = check_positive(digit_size, "digit_size")
    max_shift = check_nonnegative(max_shift, "max_shift", "the largest shift in pixels")
    max_rotation = check_nonnegative(max_rotation, "max_rotation", "the largest rotation")
    noise = check_nonnegative(noise, "noise", "the pixel noise standard deviation")
    try:
        low, high = (float(s) for s in scale_range)
    except (TypeError, ValueError):
        low = high = float("nan")  # refused below, with the value given
    if not 0 < low <= high < float("inf"):
        raise ValidationError(f"scale_range must be (low, high) with 0 < low <= high, both "
                              f"finite, got {scale_range!r}")
    rs = local_random_state(random_state)
    from sklearn.datasets import load_digits

    digits = load_digits()
    choice = rs.randint(len(digits.target), size=n_samples)
    angle = np.deg2rad(rs.uniform(-max_rotation, max_rotation, n_samples))
    scale = rs.uniform(low, high, n_samples) * digit_size / 8.0  # canvas pixels per source pixel
    shift = rs.uniform(-max_shift, max_shift, (n_samples, 2))
    # Source images padded with a zero border: bilinear sampling outside is zero.
    sources = np.pad(digits.images / 16.0, ((0, 0), (1, 1), (1, 1)))
    images = np.empty((n_samples, image_size * image_size))
    grid = np.arange(image_size) - (image_size - 1) / 2.0
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    for start in range(0, n_samples, 4096):  # bounded temporary memory
        part = slice(start, min(start + 4096, n_samples))
        cos, sin = np.cos(angle[part])[:, None], np.sin(angle[part])[:, None]
        r = rows[None] - shift[part, 0:1]
        c = cols[None] - shift[part, 1:2]
        # canvas -> source coordinates (inverse rotation and scaling); centre 3.5 (+1 padding)
        source_r = (cos * r + sin * c) / scale[part, None] + 4.5
        source_c = (-sin * r + cos * c) / scale[part, None] + 4.5
        images[part] = _bilinear(sources[choice[part]], source_r, source_c)
    # The noise is drawn after every geometry (the same stream as one draw of the
    # whole array) and added by chunk: a full-size draw doubled the peak memory.
    for start in range(0, n_samples, 4096) if noise > 0 else ():
        part = slice(start, min(start + 4096, n_samples))
        images[part] += rs.normal(0.0, noise, images[part].shape)
    np.clip(images, 0.0, 1.0, out=images)
    return DigitImages(images, digits.target[choice].astype(np.int64),
                       (1, image_size, image_size))


def _bilinear(sources: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``sources`` (k, H, W) at coordinates ``(r, c)`` (k, p); zero outside."""
    k, height, width = sources.shape
    r = np.clip(r, 0.0, height - 1.0)
    c = np.clip(c, 0.0, width - 1.0)
    r0 = np.minimum(np.floor(r).astype(np.int64), height - 2)
    c0 = np.minimum(np.floor(c).astype(np.int64), width - 2)
    fr, fc = r - r0, c - c0
    flat = sources.reshape(k, -1)
    index = r0 * width + c0

    def at(offset: int) -> np.ndarray:
        return np.take_along_axis(flat, index + offset, axis=1)

    top = at(0) * (1 - fc) + at(1) * fc
    bottom = at(width) * (1 - fc) + at(width + 1) * fc
    return top * (1 - fr) + bottom * fr
