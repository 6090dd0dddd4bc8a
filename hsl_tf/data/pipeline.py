"""tf.data input pipelines: a resumable, seeded multi-view train stream and a finite eval stream.

Train stream design (a pure function of ``seed`` and the global step t):
  * t maps to epoch ``e = t // steps_per_epoch`` and batch ``t % steps_per_epoch`` of it;
  * epoch e visits the examples in the order of a permutation drawn statelessly from
    ``fold_in((seed, 0), e)`` (the last ``n - steps_per_epoch * batch_size`` indices of that
    permutation are dropped for the epoch);
  * the views of step t are ``augment_views(images[idx_t], fold_in((seed, 1), t), ...)``.
Resuming at ``start_step=t`` starts the index stream at epoch ``t // steps_per_epoch`` and skips
``t % steps_per_epoch`` index batches (cheap int64 vectors) before any gather or
augmentation, so it yields exactly the batches of the uninterrupted stream from step t on.

The uint8 image array is converted to one tensor that a single ``map`` captures and gathers
from; images stay uint8 until augmentation.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from hsl_tf.data import augment
from hsl_tf.errors import ConfigError

_SHUFFLE_STREAM, _AUGMENT_STREAM = 0, 1
AUGMENT_ON = ("host", "device")  # where the views are made (--augment_on)
_MAX_EPOCH = np.iinfo(np.int64).max


def _stream_seed(seed: int, stream: int) -> tf.Tensor:
    """int64 [2] base seed of one random stream."""
    return tf.constant([int(seed), stream], tf.int64)


def epoch_permutation(n: int, seed: int, epoch) -> tf.Tensor:
    """The visiting order of epoch ``epoch``: int64 [n], a permutation of range(n)."""
    epoch = tf.cast(epoch, tf.int64)  # the fold-in depends on the dtype of its data
    s = tf.random.experimental.stateless_fold_in(_stream_seed(seed, _SHUFFLE_STREAM), epoch)
    return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=s)


def step_seed(seed: int, step) -> tf.Tensor:
    """Augmentation seed of global step ``step``: int32 [2]."""
    step = tf.cast(step, tf.int64)  # the fold-in depends on the dtype of its data
    s = tf.random.experimental.stateless_fold_in(_stream_seed(seed, _AUGMENT_STREAM), step)
    return tf.cast(s % (2**31 - 1), tf.int32)


def index_batches(n: int, *, batch_size: int, seed: int, start_step: int = 0,
                  steps_per_epoch: Optional[int] = None) -> tf.data.Dataset:
    """Infinite dataset of ``(step int64 [], indices int64 [batch_size])`` from ``start_step``."""
    if batch_size < 1 or batch_size > n:
        raise ConfigError("batch_size", batch_size, f"must be in [1, {n}] (training examples)")
    max_steps = n // batch_size
    spe = max_steps if steps_per_epoch is None else int(steps_per_epoch)
    if not 1 <= spe <= max_steps:
        raise ConfigError("steps_per_epoch", spe, f"must be in [1, {max_steps}] "
                          f"(= {n} examples // batch size {batch_size})")
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")

    def epoch_batches(epoch):  # epoch: int64 []
        perm = epoch_permutation(n, seed, epoch)[:spe * batch_size]  # [spe * bs]
        idx = tf.reshape(perm, [spe, batch_size])  # [spe, bs]
        steps = epoch * spe + tf.range(spe, dtype=tf.int64)  # [spe]
        return tf.data.Dataset.from_tensor_slices((steps, idx))

    start_epoch, offset = divmod(int(start_step), spe)
    ds = tf.data.Dataset.range(start_epoch, _MAX_EPOCH).flat_map(epoch_batches)
    return ds.skip(offset)


def train_dataset(images: np.ndarray, labels: np.ndarray, *, batch_size: int, num_views: int,
                  mean: Sequence[float], std: Sequence[float], seed: int, start_step: int = 0,
                  steps_per_epoch: Optional[int] = None,
                  deterministic: bool = True, policy: str = "ssl",
                  crop_scale: Sequence[float] = augment.CROP_SCALE, augment_on: str = "host") -> tf.data.Dataset:
    """Infinite stream of augmented multi-view batches (see the module docstring).

    Args:
      images: uint8 [n, H, W, 3].
      labels: int [n].
      batch_size: B (every batch is full).
      num_views: V.
      mean, std: per-channel statistics in [0, 1] pixel units.
      seed: int; the stream is a pure function of (data, seed, step).
      start_step: global step of the first batch.
      steps_per_epoch: defaults to n // B; at most n // B.
      deterministic: keep batch order under parallel augmentation (False may reorder).
      policy: the view augmentation, a key of :data:`augment.POLICIES` ("ssl": the
        self-supervised views; "crop_flip": the supervised baseline's pad-crop + flip).
      augment_on: "host" (here, in tf.data) or "device": the batch carries the uint8 images and
        the step instead of views, and the training step augments them (:func:`device_augmenter`).
    Returns:
      ``tf.data.Dataset`` of ``{"views": float32 [B, V, H, W, 3], "labels": int64 [B]}``; with
      ``augment_on="device"``, of ``{"images": uint8 [B, H, W, 3], "step": int64 [B] (the step,
      once per image, so that a strategy splits it with the images), "labels": int64 [B]}``.
    """
    if augment_on not in AUGMENT_ON:
        raise ConfigError("augment_on", augment_on, f"choose one of {', '.join(AUGMENT_ON)}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 [n, H, W, 3], got {images.dtype} {images.shape}")
    augment_fn = augment.POLICIES[policy]
    images_t = tf.convert_to_tensor(images)  # [n, H, W, 3] uint8, captured once below
    labels_t = tf.convert_to_tensor(np.asarray(labels, np.int64))  # [n]
    index = index_batches(len(images), batch_size=batch_size, seed=seed, start_step=start_step,
                          steps_per_epoch=steps_per_epoch)

    def make_batch(step, idx):
        batch = tf.gather(images_t, idx)  # [B, H, W, 3] uint8
        if augment_on == "device":
            return {"images": batch, "step": tf.fill([batch_size], step), "labels": tf.gather(labels_t, idx)}
        views = augment_fn(batch, step_seed(seed, step), num_views, mean, std, tuple(crop_scale))
        return {"views": views, "labels": tf.gather(labels_t, idx)}  # [B, V, H, W, 3], [B]

    ds = index.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE,
                   deterministic=deterministic)
    return ds.prefetch(tf.data.AUTOTUNE)


def device_augmenter(*, num_views: int, mean: Sequence[float], std: Sequence[float], seed: int,
                     policy: str = "ssl", crop_scale: Sequence[float] = augment.CROP_SCALE):
    """The augmentation of ``augment_on="device"``: ``fn(images uint8 [b, H, W, 3], step) → views
    float32 [b, V, H, W, 3]``, run inside the training step.

    Under a strategy each replica augments its own share of the global batch, with the random draw
    of the whole batch from the step's seed (:func:`augment._share`), so the views are the ones the
    host pipeline makes for that step, on any number of replicas.
    """
    policy_fn = augment.POLICIES[policy]

    def augment_fn(images, step):
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync if ctx is not None else 1
        share = {}
        if replicas > 1:
            b = images.shape[0]
            share = dict(global_images=b * replicas, first_image=ctx.replica_id_in_sync_group * b)
        return policy_fn(images, step_seed(seed, step), num_views, mean, std, tuple(crop_scale), **share)

    return augment_fn


def eval_dataset(images: np.ndarray, labels: np.ndarray, *, batch_size: int,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None) -> tf.data.Dataset:
    """Finite, ordered batches ``{"images": [B, H, W, 3], "labels": int64 [B]}``.

    Images are uint8, or float32 normalised with :func:`augment.normalize` when mean and std
    are given. The last batch may be smaller.
    """
    if (mean is None) != (std is None):
        raise ValueError("pass both mean and std, or neither")
    ds = tf.data.Dataset.from_tensor_slices(
        {"images": np.asarray(images), "labels": np.asarray(labels, np.int64)})
    ds = ds.batch(batch_size)
    if mean is not None:
        ds = ds.map(lambda b: {"images": augment.normalize(b["images"], mean, std),
                               "labels": b["labels"]},
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
