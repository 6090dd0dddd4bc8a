"""Vectorised, stateless K-view augmentation (SimCLR-style), a pure function of (images, seed).

:func:`augment_views` turns a uint8 batch ``[B, H, W, 3]`` into ``V`` augmented views per
image, ``float32 [B, V, H, W, 3]``, normalised with a per-channel mean/std. All ``N = B * V``
views are processed at once: no Python loop over images or views, no ``tf.map_fn``. Only
stateless random ops are used, with sub-seeds derived from ``seed`` by
``tf.random.experimental.stateless_split``, so eager calls and calls inside ``tf.data`` /
``tf.function`` give the same result for the same (images, seed).

Per view, in this fixed order:
  1. RandomResizedCrop (torchvision semantics): area fraction s ~ U(0.08, 1), log aspect
     ratio ~ U(log 3/4, log 4/3), crop width sqrt(s * r) and height sqrt(s / r) as fractions
     of the side, each clipped to <= 1, offset uniform inside the image; one
     ``tf.image.crop_and_resize`` (bilinear, output size = input size) with
     ``box_indices = repeat(range(B), V)``. Unlike torchvision there is no 10-try fallback to a
     centre crop: clipping to the image replaces it.
  2. Horizontal flip, p = 0.5, folded into the crop box (x1 > x2 samples the crop mirrored).
  3. Colour jitter, p = 0.8, ops in the fixed order brightness, contrast, saturation, hue
     (torchvision draws a random order per image), composed into ONE affine map per view and
     clipped to [0, 1] once at the end (torchvision clips after each op; for speed we do not):
       brightness  x * b                      b ~ U(0.2, 1.8)
       contrast    (x - mean(gray(x))) * c + mean(gray(x))     c ~ U(0.2, 1.8)
       saturation  (x - gray(x)) * s + gray(x)                  s ~ U(0.2, 1.8)
       hue         rotation of the YIQ chroma plane by 2π·d     d ~ U(-0.2, 0.2)
     (the YIQ rotation is the linear counterpart of torchvision's HSV hue shift: it turns hue
     by the same angle and keeps luma, without the HSV round trip).
     gray() uses the ITU-R 601 weights (0.2989, 0.587, 0.114) of both torchvision and
     ``tf.image.rgb_to_grayscale``.
  4. Grayscale, p = 0.2 (the gray value copied to the 3 channels), composed into the same
     per-view affine map as the colour jitter; one clip to [0, 1] follows both.
  5. Normalisation ``(x - mean) / std`` with x in [0, 1].

This module does not use tf.data, so it runs eagerly too.
"""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf

CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
FLIP_PROB = 0.5
JITTER_PROB = 0.8
JITTER_STRENGTH = 0.8  # brightness/contrast/saturation factors ~ U(1 - 0.8, 1 + 0.8)
HUE_DELTA = 0.2
GRAY_PROB = 0.2
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def _vec_shape(n):
    """Shape ``[n]`` for a Python int or a scalar tensor (static when possible)."""
    return [n] if isinstance(n, int) else tf.reshape(tf.cast(n, tf.int32), [1])


def _dim(x: tf.Tensor, axis: int):
    """Static size of ``x`` along ``axis`` if known, else the dynamic one."""
    return x.shape[axis] if x.shape[axis] is not None else tf.shape(x)[axis]


def _as_seed(seed) -> tf.Tensor:
    """int32 [2] seed tensor from a tensor or a pair of ints."""
    return tf.cast(tf.convert_to_tensor(seed), tf.int32)


def sample_crop_boxes(seed, n, scale_range=CROP_SCALE) -> tf.Tensor:
    """RandomResizedCrop boxes, float32 [n, 4] as normalised (y1, x1, y2, x2) in [0, 1].

    Args:
      seed: int32 [2].
      n: number of boxes (int or scalar tensor).
      scale_range: (lo, hi) of the crop's area fraction (a dataset may choose its own).
    """
    seeds = tf.random.experimental.stateless_split(_as_seed(seed), num=4)  # [4, 2]
    shape = _vec_shape(n)
    scale = tf.random.stateless_uniform(shape, seeds[0], *scale_range)  # [n]
    log_ratio = tf.random.stateless_uniform(
        shape, seeds[1], math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))  # [n]
    ratio = tf.exp(log_ratio)
    w = tf.minimum(tf.sqrt(scale * ratio), 1.0)  # [n] fraction of the width
    h = tf.minimum(tf.sqrt(scale / ratio), 1.0)  # [n] fraction of the height
    y1 = tf.random.stateless_uniform(shape, seeds[2]) * (1.0 - h)  # [n]
    x1 = tf.random.stateless_uniform(shape, seeds[3]) * (1.0 - w)  # [n]
    return tf.stack([y1, x1, y1 + h, x1 + w], axis=1)  # [n, 4]


def _bernoulli(seed, n, p) -> tf.Tensor:
    """bool [n], True with probability p."""
    return tf.random.stateless_uniform(_vec_shape(n), seed) < p


def _gray(x: tf.Tensor) -> tf.Tensor:
    """[N, H, W, 3] -> [N, H, W, 1] luma."""
    return tf.reduce_sum(x * tf.constant(_GRAY_WEIGHTS, x.dtype), axis=-1, keepdims=True)


# YIQ: luma Y and the two chroma axes; a hue shift is a rotation of (I, Q) about the gray axis.
_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def jitter_matrices(seed, n, prob: float = JITTER_PROB, strength: float = JITTER_STRENGTH,
                    hue: float = HUE_DELTA):
    """Per-view colour jitter as an affine map y = M·x + o·1 (applied to views with prob ``prob``).

    brightness b, contrast c, saturation s ~ U(1 − strength, 1 + strength), hue d ~ U(−hue, hue):
      M = H(d) · S(s) · (c·b),   o = (1 − c)·b·mean(gray(x))   (the contrast pivot)
    with S(s) = s·I + (1 − s)·1·wᵀ (w the gray weights) and H(d) = T⁻¹·R(2πd)·T the rotation of
    YIQ chroma by 2πd. Returns M [n, 3, 3], the pivot scale k [n] (o = k·mean gray of x).
    """
    seeds = tf.random.experimental.stateless_split(_as_seed(seed), num=5)  # [5, 2]
    shape = _vec_shape(n)
    lo, hi = max(0.0, 1.0 - strength), 1.0 + strength
    b = tf.random.stateless_uniform(shape, seeds[0], lo, hi)  # [n]
    c = tf.random.stateless_uniform(shape, seeds[1], lo, hi)
    s = tf.random.stateless_uniform(shape, seeds[2], lo, hi)
    d = tf.random.stateless_uniform(shape, seeds[3], -hue, hue)
    apply = _bernoulli(seeds[4], n, prob)  # [n]
    w = tf.constant(_GRAY_WEIGHTS, tf.float32)
    eye = tf.eye(3)
    sat = s[:, None, None] * eye + (1.0 - s)[:, None, None] * tf.ones([3, 1]) * w[None, :]  # [n,3,3]
    t = tf.constant(_YIQ, tf.float32)
    theta = 2.0 * math.pi * d
    cos, sin, zero, one = tf.cos(theta), tf.sin(theta), tf.zeros_like(theta), tf.ones_like(theta)
    rot = tf.stack([tf.stack([one, zero, zero], -1), tf.stack([zero, cos, -sin], -1),
                    tf.stack([zero, sin, cos], -1)], 1)  # [n, 3, 3]
    hue_m = tf.linalg.inv(t)[None] @ rot @ t[None]  # [n, 3, 3]
    m = hue_m @ sat * (c * b)[:, None, None]
    k = (1.0 - c) * b
    m = tf.where(apply[:, None, None], m, eye)
    k = tf.where(apply, k, tf.zeros_like(k))
    return m, k


def gray_matrices(seed, n, prob: float = GRAY_PROB):
    """Per-view grayscale (prob ``prob``) as a matrix: 1·wᵀ or I. Returns [n, 3, 3]."""
    apply = _bernoulli(_as_seed(seed), n, prob)  # [n]
    gray = tf.ones([3, 1]) * tf.constant(_GRAY_WEIGHTS, tf.float32)[None, :]
    return tf.where(apply[:, None, None], gray, tf.eye(3))


def _affine(x, m, k):
    """y = M·x + k·mean(gray(x))·1 per view. x [N,H,W,3], M [N,3,3], k [N] → [N,H,W,3]."""
    pivot = tf.reduce_mean(_gray(x), axis=[1, 2, 3])  # [N]
    y = tf.einsum("nhwj,nij->nhwi", x, m)
    return y + (k * pivot)[:, None, None, None]


def color_jitter(x: tf.Tensor, seed, prob: float = JITTER_PROB,
                 strength: float = JITTER_STRENGTH, hue: float = HUE_DELTA) -> tf.Tensor:
    """Per-view colour jitter with probability ``prob``; float32 [N, H, W, 3] in [0, 1] → same."""
    m, k = jitter_matrices(seed, _dim(x, 0), prob, strength, hue)
    return tf.clip_by_value(_affine(x, m, k), 0.0, 1.0)


def random_grayscale(x: tf.Tensor, seed, prob: float = GRAY_PROB) -> tf.Tensor:
    """Per-view grayscale with probability ``prob``; float32 [N, H, W, 3] -> same."""
    return tf.einsum("nhwj,nij->nhwi", x, gray_matrices(seed, _dim(x, 0), prob))


def normalize(images, mean: Sequence[float], std: Sequence[float]) -> tf.Tensor:
    """uint8 [..., 3] -> float32 [..., 3]: ``(images / 255 - mean) / std``."""
    return _standardize(_unit(images), mean, std)


def _divide(x, y):
    """x / y, rounded as IEEE division wherever it runs. Inside a ``tf.function`` Grappler rewrites a
    division by a constant into a multiplication by its reciprocal (1 ulp off); tf.data and eager
    divide. ``DivNoNan`` is not rewritten and equals the division for y ≠ 0, so the views made in
    the training step (``--augment_on=device``) are the host pipeline's, bit for bit."""
    return tf.math.divide_no_nan(x, tf.cast(y, x.dtype))


def _unit(images):
    """uint8 → float32 in [0, 1]."""
    return _divide(tf.cast(images, tf.float32), 255.0)


def _standardize(x: tf.Tensor, mean, std) -> tf.Tensor:
    mean = tf.constant(mean, tf.float32)  # [3]
    std = tf.constant(std, tf.float32)  # [3]
    return _divide(x - mean, std)


def _share(draw, n_local, global_images, first_image, num_views):
    """Rows of this share from ``draw(n)``, a draw of per-view values for n views.

    On one device (``global_images`` None) the draw is for the local views. A replica that augments
    its own share of a global batch of ``global_images`` images draws for all of them, from the same
    seed, and keeps the rows of its images ``first_image, ...``: its views are then the ones the
    whole batch would get on one device.
    """
    if global_images is None:
        return draw(n_local)
    start = first_image * num_views
    return tree_slice(draw(global_images * num_views), start, n_local)


def tree_slice(values, start, size):
    """``values[start:start + size]`` of a tensor or a tuple of tensors (a dynamic start)."""
    if isinstance(values, tuple):
        return tuple(tree_slice(v, start, size) for v in values)
    begin = tf.concat([tf.reshape(tf.cast(start, tf.int32), [1]), tf.zeros([values.shape.rank - 1], tf.int32)], 0)
    return tf.slice(values, begin, tf.concat([[size], tf.shape(values)[1:]], 0))


def augment_views(images, seed, num_views: int, mean: Sequence[float],
                  std: Sequence[float], crop_scale=CROP_SCALE, global_images=None, first_image=0) -> tf.Tensor:
    """K augmented views of every image.

    Args:
      images: uint8 [B, H, W, 3].
      seed: int32 [2] (tensor or pair of ints).
      num_views: V >= 1.
      mean, std: per-channel statistics in [0, 1] pixel units.
      crop_scale: (lo, hi) area fraction of RandomResizedCrop (CIFAR: 0.08-1).
      global_images, first_image: ``images`` are images ``first_image ...`` of a global batch of
        ``global_images`` (augmentation on the device, one share per replica; see :func:`_share`).
    Returns:
      float32 [B, V, H, W, 3]; view v of image b is ``out[b, v]``.
    """
    images = tf.convert_to_tensor(images)
    b, h, w = _dim(images, 0), _dim(images, 1), _dim(images, 2)
    n = b * num_views
    seeds = tf.random.experimental.stateless_split(_as_seed(seed), num=4)  # [4, 2]

    def draw(count):  # the random parameters of ``count`` views: boxes [count, 4], M [count, 3, 3], k [count]
        boxes = sample_crop_boxes(seeds[0], count, crop_scale)  # (y1, x1, y2, x2)
        flip = _bernoulli(seeds[1], count, FLIP_PROB)[:, None]  # [count, 1]
        # a box with x1 > x2 makes crop_and_resize sample the crop mirrored: the flip is free
        boxes = tf.where(flip, tf.gather(boxes, [0, 3, 2, 1], axis=1), boxes)
        m, k = jitter_matrices(seeds[2], count)
        # colour jitter then grayscale as one affine map per view: G·(M·x + k·p·1) = (G·M)·x + k·p·1,
        # since a gray map keeps the gray vector 1; a single clip to [0, 1] comes after both
        return boxes, gray_matrices(seeds[3], count) @ m, k

    boxes, m, k = _share(draw, n, global_images, first_image, num_views)  # [N, 4], [N, 3, 3], [N]
    box_indices = tf.repeat(tf.range(b), num_views)  # [N]: view i comes from image i // V
    x = tf.image.crop_and_resize(_unit(images), boxes, box_indices, [h, w],
                                 method="bilinear")  # [N, H, W, 3] in [0, 1]
    x = tf.clip_by_value(_affine(x, m, k), 0.0, 1.0)
    x = _standardize(x, mean, std)  # [N, H, W, 3]
    return tf.reshape(x, [b, num_views, h, w, 3])  # [B, V, H, W, 3]


def crop_flip_views(images, seed, num_views: int, mean: Sequence[float], std: Sequence[float],
                    crop_scale=None, global_images=None, first_image=0, padding: int = 4) -> tf.Tensor:
    """The supervised baseline's augmentation (P&S ``standard``): RandomCrop(H, padding=4) + flip.

    Each view zero-pads the image by ``padding`` pixels on every side, takes an H×W crop at an
    integer offset ~ U{0..2·padding} in each direction, and flips it horizontally with p = 0.5.
    Crops are exact pixel copies (one ``crop_and_resize`` on pixel-aligned boxes).

    Args/returns as :func:`augment_views` (``crop_scale`` does not apply): uint8 [B, H, W, 3] →
    float32 [B, V, H, W, 3].
    """
    images = tf.convert_to_tensor(images)
    b, h, w = _dim(images, 0), _dim(images, 1), _dim(images, 2)
    n = b * num_views
    seeds = tf.random.experimental.stateless_split(_as_seed(seed), num=2)  # [2, 2]
    offsets, flip = _share(lambda count: (
        tf.random.stateless_uniform([count, 2], seeds[0], 0, 2 * padding + 1, dtype=tf.int32),  # [count, 2]
        _bernoulli(seeds[1], count, FLIP_PROB)[:, None]), n, global_images, first_image, num_views)  # [N, 1]
    hp, wp = tf.cast(h + 2 * padding - 1, tf.float32), tf.cast(w + 2 * padding - 1, tf.float32)
    oy, ox = tf.cast(offsets[:, 0], tf.float32), tf.cast(offsets[:, 1], tf.float32)
    boxes = tf.stack([_divide(oy, hp), _divide(ox, wp), _divide(oy + tf.cast(h - 1, tf.float32), hp),
                      _divide(ox + tf.cast(w - 1, tf.float32), wp)], axis=1)  # [N, 4], pixel-aligned
    boxes = tf.where(flip, tf.gather(boxes, [0, 3, 2, 1], axis=1), boxes)
    padded = tf.pad(_unit(images), [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    x = tf.image.crop_and_resize(padded, boxes, tf.repeat(tf.range(b), num_views), [h, w],
                                 method="nearest")  # [N, H, W, 3]
    return tf.reshape(_standardize(x, mean, std), [b, num_views, h, w, 3])


# --augment: the view policy of the training stream.
POLICIES = {"ssl": augment_views, "crop_flip": crop_flip_views}
