"""What every dataset loader shares: the :class:`DatasetSplits` record and the array helpers.

The loaders (:mod:`hsl_tf.data.datasets` for shapes and TFDS, :mod:`hsl_tf.data.folder` for
``folder:PATH``) import from here; this module imports no loader, so the data package has no
import cycle. :mod:`hsl_tf.data.datasets` re-exports every name.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from hsl_tf.errors import ConfigError

ImageSize = Optional[Union[int, Sequence[int]]]

DECODE_BATCH = 1000  # images per decode / resize batch


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
    """Train and test arrays plus metadata of one dataset.

    Attributes:
      name: the ``dataset`` option's value.
      num_classes: C.
      image_size: (H, W).
      mean, std: per-channel statistics of the train images, in [0, 1] pixel units.
      train_images, test_images: uint8 [n, H, W, 3].
      train_labels, test_labels: int64 [n], in [0, C).
      train_masks, test_masks: uint8 [n, 4, H, W] instance masks, or None.
      class_names: C names, index = label.
      augment: the dataset's own augmentation defaults (e.g. ``{"crop_scale": (0.6, 1.0)}``);
        empty: the CIFAR defaults of :mod:`hsl_tf.data.augment`.
    """

    name: str
    num_classes: int
    image_size: Tuple[int, int]
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    train_masks: Optional[np.ndarray]
    test_masks: Optional[np.ndarray]
    class_names: list
    augment: dict = dataclasses.field(default_factory=dict)


def size_pair(image_size: ImageSize) -> Optional[Tuple[int, int]]:
    """None | int | (h, w) -> None | (h, w), validated."""
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)):
        size = (int(image_size), int(image_size))
    else:
        size = tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 1:
        raise ConfigError("image_size", image_size, "expected a positive size or H,W")
    return size


def channel_stats(images: np.ndarray) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Exact per-channel mean and std of uint8 [n, H, W, 3] images, in [0, 1] units.

    Uses 256-bin histograms per channel (float64 sums), so no float copy of the data is made.
    """
    if images.size == 0:
        raise ValueError("channel_stats of an empty array")
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(3):
        hist = np.bincount(images[..., c].reshape(-1), minlength=256).astype(np.float64)
        total = hist.sum()
        mean = (hist * values).sum() / total
        var = (hist * (values - mean) ** 2).sum() / total
        means.append(float(mean))
        stds.append(float(np.sqrt(var)))
    return tuple(means), tuple(stds)


def resize_uint8(images: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """uint8 [n, h, w, 3] -> uint8 [n, H, W, 3]: bilinear + antialias, rounded (no-op if equal)."""
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    out = []
    for start in range(0, len(images), DECODE_BATCH):
        x = tf.image.resize(images[start:start + DECODE_BATCH], size, antialias=True)
        out.append(tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8).numpy())
    if not out:
        return np.zeros((0, *size, 3), np.uint8)
    return np.concatenate(out)
