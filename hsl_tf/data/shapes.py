"""The embedded ``shapes`` dataset: two objects per scene, labelled by their pair of kinds.

Each example is an ``S x S`` RGB scene (default 32 x 32) with exactly two non-overlapping
objects on one flat background colour shared by every image. Every object has a kind
(0 circle, 1 square, 2 triangle pointing up, 3 cross), a "radius" r in {5, 6, 7} px (it fits
in the (2r+1) x (2r+1) box around its centre) and a colour from an 8-colour palette with a
small jitter; position, size and colour are independent of the label.

Label rule (10 balanced classes): the unordered pair of the two kinds,
    {circle, circle}, {circle, square}, ..., {cross, cross}   (4 same-kind + 6 mixed pairs)
so the label depends on both objects and on one relation between them, *same kind or not*:
{circle, circle} and {circle, square} share one object and differ only in whether the second
object is of the same kind as the first. It never depends on colour, size, position or the
background.

Why this design:
  * No shortcut. The background is the same flat colour in every image, so it cannot tell
    images apart; only the objects (shape, colour, layout) can. Colour jitter and grayscale
    remove colour as a cue for the critics, so the encoder must learn shape.
  * The augmentations keep the label. Kinds survive horizontal flips, colour jitter,
    grayscale and rescaling; the pair survives any crop that keeps both objects, which the
    dataset's own milder crop scale (``AUGMENT["crop_scale"]``, 0.6-1 instead of CIFAR's
    0.08-1) makes the common case: objects are at least 11 px wide in a 32 px image.
  * A linear probe can read it after global pooling: pooled features add up per object, so
    the pair is (close to) a function of the counts of each kind, and a multi-class linear
    classifier with biases separates the 10 count vectors (even the mixed pair, which is the
    midpoint of its two same-kind pairs).

Output of :func:`make_shapes` (n examples, S = image_size):
    images       uint8 [n, S, S, 3]
    labels       int64 [n]
    masks        uint8 [n, 2, S, S]   slot k = k-th object (0/1)
    num_objects  int64 [n]            always 2
    kinds        int64 [n, 2]         kind of each slot
    centers      int64 [n, 2, 2]      (y, x) box centre of each slot
"""

from __future__ import annotations

import itertools

import numpy as np

KIND_NAMES = ("circle", "square", "triangle", "cross")
NUM_KINDS = len(KIND_NAMES)
PAIRS = tuple(itertools.combinations_with_replacement(range(NUM_KINDS), 2))  # label → (k1 ≤ k2)
NUM_CLASSES = len(PAIRS)  # 10
CLASS_NAMES = tuple(f"{KIND_NAMES[a]}+{KIND_NAMES[b]}" for a, b in PAIRS)
MAX_OBJECTS = 2
MIN_RADIUS, MAX_RADIUS = 5, 7
MIN_IMAGE_SIZE = 28
# The dataset's own augmentation defaults (flags override them; see hsl_tf.data.augment).
AUGMENT = {"crop_scale": (0.6, 1.0)}

_TEMPLATE = 2 * MAX_RADIUS + 1  # 15
_MIN_GAP = 2  # px between the two object boxes
_BACKGROUND = np.array([60, 60, 60], np.int16)
_PALETTE = np.array(
    [[230, 40, 40], [40, 200, 60], [50, 90, 240], [240, 220, 40],
     [220, 50, 220], [40, 220, 230], [250, 140, 20], [240, 240, 240]], np.int16)  # [8, 3]
TRAIN_STREAM, TEST_STREAM = 0, 1


def _templates() -> np.ndarray:
    """Binary templates, bool [NUM_KINDS, MAX_RADIUS + 1, 15, 15], centre at (7, 7)."""
    d = np.arange(_TEMPLATE) - MAX_RADIUS
    dy, dx = d[:, None], d[None, :]
    out = np.zeros((NUM_KINDS, MAX_RADIUS + 1, _TEMPLATE, _TEMPLATE), bool)
    for r in range(MIN_RADIUS, MAX_RADIUS + 1):
        ax, ay = np.abs(dx), np.abs(dy)
        t = r // 4  # half-width of the cross arms
        out[0, r] = dx * dx + dy * dy <= r * r + 0.8 * r  # circle
        out[1, r] = np.maximum(ax, ay) <= r - 1  # square
        out[2, r] = (dy >= -r) & (dy <= r // 2) & (ax <= (dy + r) / 1.5)  # triangle, apex up
        out[3, r] = ((ax <= t) & (ay <= r)) | ((ay <= t) & (ax <= r))  # cross
    return out


_TEMPLATES = _templates()


def label_of(kinds) -> np.ndarray:
    """The label of each scene from its two kinds: int [n, 2] → int64 [n] (order-free)."""
    kinds = np.sort(np.asarray(kinds), axis=1)
    index = {pair: i for i, pair in enumerate(PAIRS)}
    return np.array([index[(int(a), int(b))] for a, b in kinds], np.int64)


def _place(rng: np.random.Generator, n: int, size: int):
    """Radii and centres of two objects per scene, boxes ≥ _MIN_GAP px apart: int64 [n, 2] each.

    Two objects fit side by side only if size ≥ 2·(r₀ + r₁) + 2 + _MIN_GAP; radii that cannot
    (only in images below 32 px) are redrawn first, so the rejection loop always ends.
    """
    radius = rng.integers(MIN_RADIUS, MAX_RADIUS + 1, size=(n, 2))
    unfit = 2 * radius.sum(axis=1) + 2 + _MIN_GAP > size
    while unfit.any():
        radius[unfit] = rng.integers(MIN_RADIUS, MAX_RADIUS + 1, size=(int(unfit.sum()), 2))
        unfit = 2 * radius.sum(axis=1) + 2 + _MIN_GAP > size
    cy = np.zeros((n, 2), np.int64)
    cx = np.zeros((n, 2), np.int64)
    todo = np.arange(n)
    while todo.size:
        r = radius[todo]
        y = (r + rng.random(r.shape) * (size - 2 * r)).astype(np.int64)  # r ≤ y ≤ size − 1 − r
        x = (r + rng.random(r.shape) * (size - 2 * r)).astype(np.int64)
        sep = r[:, 0] + r[:, 1] + 1 + _MIN_GAP
        ok = (np.abs(y[:, 0] - y[:, 1]) >= sep) | (np.abs(x[:, 0] - x[:, 1]) >= sep)
        cy[todo[ok]], cx[todo[ok]] = y[ok], x[ok]
        todo = todo[~ok]
    return radius, cy, cx


def make_shapes(num_examples: int, seed, image_size: int = 32) -> dict:
    """Generates ``num_examples`` scenes, deterministically for ``seed`` (int or int sequence).

    Returns:
      dict of numpy arrays, see the module docstring for keys and shapes.
    """
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}, got {image_size}")
    rng = np.random.default_rng(seed)
    n, s = int(num_examples), int(image_size)
    labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int64)
    kinds = np.array(PAIRS, np.int64)[labels] if n else np.zeros((0, 2), np.int64)  # [n, 2]
    swap = rng.random(n) < 0.5  # which slot gets which kind
    kinds = np.where(swap[:, None], kinds[:, ::-1], kinds)
    radius, cy, cx = _place(rng, n, s)
    colours = _PALETTE[rng.integers(0, len(_PALETTE), size=(n, 2))] + rng.integers(-20, 21, size=(n, 2, 3))
    colours = np.clip(colours, 0, 255)
    images = np.broadcast_to(_BACKGROUND, (n, s, s, 3)).copy()
    masks = np.zeros((n, MAX_OBJECTS, s, s), np.uint8)
    offs = np.arange(_TEMPLATE) - MAX_RADIUS
    for k in range(MAX_OBJECTS):
        tmpl = _TEMPLATES[kinds[:, k], radius[:, k]]  # [n, 15, 15]
        ys = cy[:, k, None] + offs[None, :]  # [n, 15]
        xs = cx[:, k, None] + offs[None, :]
        inside = (ys[:, :, None] >= 0) & (ys[:, :, None] < s) & (xs[:, None, :] >= 0) & (xs[:, None, :] < s)
        hit = tmpl & inside  # [n, 15, 15]
        idx, iy, ix = np.nonzero(hit)
        py, px = ys[idx, iy], xs[idx, ix]
        images[idx, py, px] = colours[idx, k]
        masks[idx, k, py, px] = 1
    return {"images": images.astype(np.uint8), "labels": labels, "masks": masks,
            "num_objects": np.full(n, 2, np.int64), "kinds": kinds, "centers": np.stack([cy, cx], axis=-1)}


def load_shapes(split: str, num_examples: int, seed: int = 0, image_size: int = 32) -> dict:
    """The ``train`` or ``test`` split: independent streams of the same generator."""
    streams = {"train": TRAIN_STREAM, "test": TEST_STREAM}
    if split not in streams:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return make_shapes(num_examples, [int(seed), streams[split]], image_size)
