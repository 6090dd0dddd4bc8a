"""Dataset loaders: everything ends as in-memory uint8 numpy arrays in a :class:`DatasetSplits`.

Names (the ``dataset`` option):
  * ``shapes``            embedded synthetic scenes with instance masks (:mod:`hsl_tf.data.shapes`);
  * ``cifar10``/``cifar100``  TFDS, from a prepared ``data_dir`` (``download=True`` to fetch);
  * ``folder:PATH``       ``PATH/{train,test}/<class>/*.{jpg,jpeg,png}`` via ``tfds.ImageFolder``,
                          decoded once, in parallel batches, to numpy.
Bad input raises :class:`hsl_tf.errors.ConfigError` (naming the option) or
:class:`hsl_tf.errors.UserError` (naming the file), one line each.

:func:`load_dataset` dispatches on the name; the ``folder:`` loader lives in
:mod:`hsl_tf.data.folder` and what both share (:class:`DatasetSplits`, ``size_pair``,
``channel_stats``, ``resize_uint8``, ``DECODE_BATCH``) in :mod:`hsl_tf.data.splits`, re-exported here.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from hsl_tf.data import folder
from hsl_tf.data import shapes as shapes_lib
from hsl_tf.data.splits import (DECODE_BATCH, DatasetSplits, ImageSize, channel_stats,  # noqa: F401
                                resize_uint8, size_pair)
from hsl_tf.errors import ConfigError

SHAPES_TRAIN_EXAMPLES = 10_000
SHAPES_TEST_EXAMPLES = 2_000

# Per-channel mean / std of the training images, in [0, 1] pixel units.
_TFDS_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_TFDS_NUM_CLASSES = {"cifar10": 10, "cifar100": 100}


def _unknown(name: str) -> ConfigError:
    return ConfigError("dataset", name, "unknown dataset; choose shapes, cifar10, cifar100 or folder:PATH")


# --------------------------------------------------------------------------------------------
# shapes


def _load_shapes(image_size, train_examples, test_examples, seed) -> DatasetSplits:
    size = size_pair(image_size) or (32, 32)
    if size[0] != size[1] or size[0] < shapes_lib.MIN_IMAGE_SIZE:
        raise ConfigError("image_size", image_size, f"shapes needs a square size >= {shapes_lib.MIN_IMAGE_SIZE}")
    n_train = SHAPES_TRAIN_EXAMPLES if train_examples is None else int(train_examples)
    n_test = SHAPES_TEST_EXAMPLES if test_examples is None else int(test_examples)
    train = shapes_lib.load_shapes("train", n_train, seed, size[0])
    test = shapes_lib.load_shapes("test", n_test, seed, size[0])
    mean, std = channel_stats(train["images"])
    return DatasetSplits(
        name="shapes", num_classes=shapes_lib.NUM_CLASSES, image_size=size, mean=mean, std=std,
        train_images=train["images"], train_labels=train["labels"],
        test_images=test["images"], test_labels=test["labels"],
        train_masks=train["masks"], test_masks=test["masks"],
        class_names=list(shapes_lib.CLASS_NAMES), augment=dict(shapes_lib.AUGMENT))


# --------------------------------------------------------------------------------------------
# TFDS (cifar10, cifar100)


def _tfds_default_data_dir(tfds) -> str:
    """The directory ``tfds.load`` reads when no ``data_dir`` is given: ``$TFDS_DATA_DIR`` or
    ``~/tensorflow_datasets``, as TFDS read it at import. Found without building the dataset
    (``tfds.builder`` may reach for the network) and as a ``str`` (TFDS paths are not)."""
    root = getattr(getattr(tfds.core, "constants", None), "DATA_DIR", None)
    root = root or os.environ.get("TFDS_DATA_DIR") or os.path.join("~", "tensorflow_datasets")
    return os.path.expanduser(os.fspath(root))


def _load_tfds(name, data_dir, download, image_size, train_examples,
               test_examples) -> DatasetSplits:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    def read(split, limit):
        spec = split if limit is None else f"{split}[:{int(limit)}]"
        try:  # download=False and try_gcs=False: TFDS reads the local data_dir only, no network
            ds, info = tfds.load(name, split=spec, data_dir=data_dir, download=bool(download), try_gcs=False,
                                 as_supervised=True, shuffle_files=False, with_info=True)
        except AssertionError as err:  # TFDS: "Dataset cifar10: could not find data in ..."
            if download:
                raise
            where = data_dir or f"the default TFDS data_dir {_tfds_default_data_dir(tfds)}"
            raise ConfigError(
                "dataset", name, f"no prepared TFDS data in {where}; pass `data_dir=DIR` with a prepared "
                f"TFDS {name}, `download=true` with network access, or use "
                "`dataset=folder:PATH` (ImageFolder layout)") from err
        except Exception as err:  # pylint: disable=broad-except  # network, disk, packages...
            if not download:
                raise
            lines = str(err).strip().splitlines()
            raise ConfigError("dataset", name, f"download failed ({type(err).__name__}: "
                              f"{lines[0] if lines else ''})") from err
        if limit is not None:
            ds = ds.take(int(limit))
        images, labels = [], []
        for x, y in tfds.as_numpy(ds.batch(DECODE_BATCH)):  # [b, H, W, 3], [b]
            images.append(x)
            labels.append(y)
        if not images:
            raise ConfigError("dataset", name, f"split {split} of the TFDS data is empty")
        names = list(info.features["label"].names)
        return (np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.int64),
                names)

    train_images, train_labels, names = read("train", train_examples)
    test_images, test_labels, _ = read("test", test_examples)
    size = size_pair(image_size) or tuple(int(s) for s in train_images.shape[1:3])
    train_images, test_images = resize_uint8(train_images, size), resize_uint8(test_images, size)
    mean, std = _TFDS_STATS[name]
    return DatasetSplits(
        name=name, num_classes=_TFDS_NUM_CLASSES[name], image_size=size, mean=mean, std=std,
        train_images=train_images, train_labels=train_labels,
        test_images=test_images, test_labels=test_labels,
        train_masks=None, test_masks=None, class_names=names)


def load_dataset(name: str, *, data_dir: Optional[str] = None, download: bool = False,
                 image_size: ImageSize = None, train_examples: Optional[int] = None,
                 test_examples: Optional[int] = None, seed: int = 0,
                 skip_corrupt: bool = False) -> DatasetSplits:
    """Loads a dataset by its name (the ``dataset`` option).

    Args:
      name: ``shapes``, ``cifar10``, ``cifar100`` or ``folder:PATH``.
      data_dir: TFDS data dir (cifar only); None = the TFDS default.
      download: allow TFDS to download and prepare (cifar only). Never downloads when False.
      image_size: None (keep), N or (H, W): resize images to this size.
      train_examples, test_examples: cap on split sizes (the first n); for ``shapes`` the
        number generated (default 10000 / 2000).
      seed: ``shapes`` generation seed.
      skip_corrupt: ``folder:`` only; skip undecodable images with a warning on stderr
        instead of raising.
    Returns:
      :class:`DatasetSplits`.
    """
    for field, value in (("train_examples", train_examples), ("test_examples", test_examples)):
        if value is not None and int(value) < 1:
            raise ConfigError(field, value, "must be >= 1")
    if name == "shapes":
        return _load_shapes(image_size, train_examples, test_examples, seed)
    if name in _TFDS_STATS:
        return _load_tfds(name, data_dir, download, image_size, train_examples, test_examples)
    if name.startswith("folder:"):
        return folder.load_folder(name, image_size, train_examples, test_examples, skip_corrupt)
    raise _unknown(name)
