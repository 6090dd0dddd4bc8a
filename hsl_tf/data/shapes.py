"""The embedded ``shapes`` dataset: small synthetic scenes with instance masks (no download).

Each example is a ``S x S`` RGB scene (default 32 x 32) on a noisy background (a random
dark base colour per image plus per-pixel Gaussian noise, sigma 8, quantised to 256 levels)
holding 2, 3 or 4 non-overlapping objects (their bounding boxes keep a gap of at least 1 px;
noise is added to objects too). Every object has a kind (0 circle, 1 square, 2 triangle
pointing up, 3 cross, 4 diamond), a "radius" r in {3, 4, 5, 6} px (the object fits in the
(2r+1) x (2r+1) box around its centre) and a colour drawn from an 8-colour palette with a
small jitter, independent of the label.

Label rule (10 balanced classes):
    Let L be the leftmost and R the rightmost object, by centre x. Then
        label = 2 * kind(L) + (1 if R's centre is above L's centre else 0)
    ("above" = smaller row index). So the label depends on the identity of one object and a
    spatial relation between two objects, never on colour, size or the other objects.
    The object centre is the centre of its box; it equals the centre of mass of the object's
    mask in x exactly (all kinds are left/right symmetric) and in y to within 0.5 px. The rule
    is never ambiguous: the centre x of L (of R) is >= 3 px left (right) of every other
    object's centre x, and |y(R) - y(L)| >= 3 px.

Generation samples the labels first (``arange(n) % 10``, shuffled), places the objects by
vectorised rejection sampling, flips the whole scene vertically when the relation bit is wrong
(a flip keeps every other constraint), then sets kind(L) from the label; the other objects get
uniform random kinds. Rendering stamps pre-drawn 13 x 13 templates with fancy indexing.

Output of :func:`make_shapes` (n examples, S = image_size):
    images       uint8 [n, S, S, 3]
    labels       int64 [n]
    masks        uint8 [n, 4, S, S]   slot k = k-th object (0/1); all-zero for unused slots
    num_objects  int64 [n]            in {2, 3, 4}; slots < num_objects are the used ones
    kinds        int64 [n, 4]         kind of each slot, -1 for unused slots
    centers      int64 [n, 4, 2]      (y, x) box centre of each slot, -1 for unused slots
"""

from __future__ import annotations

import numpy as np

KIND_NAMES = ("circle", "square", "triangle", "cross", "diamond")
NUM_KINDS = len(KIND_NAMES)
NUM_CLASSES = 2 * NUM_KINDS
MAX_OBJECTS = 4
MIN_RADIUS, MAX_RADIUS = 3, 6
CLASS_NAMES = tuple(
    f"{kind}_{'R_above' if bit else 'R_below'}" for kind in KIND_NAMES for bit in (0, 1))

_TEMPLATE = 2 * MAX_RADIUS + 1  # 13
_MIN_GAP = 1  # px between object boxes
_RULE_GAP = 3  # px: x gap of L/R to every other object, |dy| between L and R
_NOISE_STD = 8.0
_PALETTE = np.array(
    [[230, 40, 40], [40, 200, 60], [50, 90, 240], [240, 220, 40],
     [220, 50, 220], [40, 220, 230], [250, 140, 20], [240, 240, 240]], np.int16)  # [8, 3]
TRAIN_STREAM, TEST_STREAM = 0, 1


def _templates() -> np.ndarray:
    """Binary templates, bool [NUM_KINDS, MAX_RADIUS + 1, 13, 13], centre at (6, 6)."""
    d = np.arange(_TEMPLATE) - MAX_RADIUS
    dy, dx = d[:, None], d[None, :]  # [13, 1], [1, 13]
    out = np.zeros((NUM_KINDS, MAX_RADIUS + 1, _TEMPLATE, _TEMPLATE), bool)
    for r in range(MIN_RADIUS, MAX_RADIUS + 1):
        ax, ay = np.abs(dx), np.abs(dy)
        t = (r - 1) // 4  # half-width of the cross arms (1 px arms for r <= 4, 3 px above)
        out[0, r] = dx * dx + dy * dy <= r * r + 0.8 * r  # circle
        out[1, r] = np.maximum(ax, ay) <= r - 1  # square
        # Triangle, apex up: rows -r .. r//2, so its centroid sits (nearly) on the centre.
        out[2, r] = (dy >= -r) & (dy <= r // 2) & (ax <= (dy + r) / 1.5)
        out[3, r] = ((ax <= t) & (ay <= r)) | ((ay <= t) & (ax <= r))  # cross
        out[4, r] = ax + ay <= r  # diamond
    return out


_TEMPLATES = _templates()


def _noise_table() -> np.ndarray:
    """int8 [256]: rounded N(0, sigma^2) quantiles at (i + 0.5) / 256 (index by a random byte)."""
    from statistics import NormalDist  # stdlib; no scipy needed
    q = [NormalDist(0.0, _NOISE_STD).inv_cdf((i + 0.5) / 256) for i in range(256)]
    return np.rint(np.array(q)).astype(np.int8)


_NOISE_TABLE = _noise_table()


def _place(rng: np.random.Generator, k: np.ndarray, size: int):
    """Samples radii and centres that satisfy all layout constraints.

    Args:
      k: int [m] number of objects per scene.
    Returns:
      radius, cy, cx: int64 [m, 4] (unused slots: radius 0, centre -100 - 100 * slot).
    """
    m = len(k)
    used = np.arange(MAX_OBJECTS)[None, :] < k[:, None]  # [m, 4]
    radius = np.zeros((m, MAX_OBJECTS), np.int64)
    cy = np.zeros((m, MAX_OBJECTS), np.int64)
    cx = np.zeros((m, MAX_OBJECTS), np.int64)
    todo = np.arange(m)
    while todo.size:
        t = todo.size
        r = rng.integers(MIN_RADIUS, MAX_RADIUS + 1, size=(t, MAX_OBJECTS))
        y = np.zeros((t, MAX_OBJECTS), np.int64)
        x = np.zeros((t, MAX_OBJECTS), np.int64)
        ok = np.ones(t, bool)
        for j in range(MAX_OBJECTS):
            need = np.flatnonzero(used[todo, j])  # rows (into todo) that use slot j
            for _ in range(20):
                if need.size == 0:
                    break
                span = size - 2 * r[need, j]  # [q] number of valid centre positions
                y[need, j] = r[need, j] + (rng.random(need.size) * span).astype(np.int64)
                x[need, j] = r[need, j] + (rng.random(need.size) * span).astype(np.int64)
                sep = r[need, :j] + r[need, j:j + 1] + 1 + _MIN_GAP  # [q, j]
                far = ((np.abs(y[need, :j] - y[need, j:j + 1]) >= sep)
                       | (np.abs(x[need, :j] - x[need, j:j + 1]) >= sep))
                need = need[~far.all(axis=1)]
            ok[need] = False
        # Rule constraints on the leftmost (L) and rightmost (R) objects.
        u = used[todo]  # [t, 4]
        big = 10 * size
        xl = np.where(u, x, big)
        xr = np.where(u, x, -big)
        li, ri = xl.argmin(1), xr.argmax(1)  # [t]
        rows = np.arange(t)
        others_l = u & (np.arange(MAX_OBJECTS)[None] != li[:, None])
        others_r = u & (np.arange(MAX_OBJECTS)[None] != ri[:, None])
        ok &= np.where(others_l, x - x[rows, li][:, None] >= _RULE_GAP, True).all(1)
        ok &= np.where(others_r, x[rows, ri][:, None] - x >= _RULE_GAP, True).all(1)
        ok &= np.abs(y[rows, ri] - y[rows, li]) >= _RULE_GAP
        done = todo[ok]
        radius[done], cy[done], cx[done] = r[ok], y[ok], x[ok]
        todo = todo[~ok]
    off = -100 - 100 * np.arange(MAX_OBJECTS)[None, :]
    return (np.where(used, radius, 0), np.where(used, cy, off), np.where(used, cx, off))


def make_shapes(num_examples: int, seed, image_size: int = 32) -> dict:
    """Generates ``num_examples`` scenes, deterministically from ``seed``.

    Args:
      num_examples: n >= 0.
      seed: anything ``np.random.default_rng`` accepts (an int, or a sequence such as
        ``[seed, stream]``).
      image_size: S >= 16 (side of the square image, in px).
    Returns:
      dict of numpy arrays, see the module docstring for keys and shapes.
    """
    if image_size < 16:
        raise ValueError(f"shapes needs image_size >= 16, got {image_size}")
    n, size = int(num_examples), int(image_size)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n, dtype=np.int64) % NUM_CLASSES)  # [n]
    k = rng.integers(2, MAX_OBJECTS + 1, size=n)  # [n]
    used = np.arange(MAX_OBJECTS)[None, :] < k[:, None]  # [n, 4]
    radius, cy, cx = _place(rng, k, size)  # [n, 4] each
    rows = np.arange(n)
    li = np.where(used, cx, 10 * size).argmin(1)  # [n] leftmost slot
    ri = np.where(used, cx, -10 * size).argmax(1)  # [n] rightmost slot
    above = cy[rows, ri] < cy[rows, li]  # [n]
    flip = above != (labels % 2 == 1)
    cy = np.where(flip[:, None] & used, size - 1 - cy, cy)  # vertical flip of the scene
    kinds = rng.integers(0, NUM_KINDS, size=(n, MAX_OBJECTS))
    kinds[rows, li] = labels // 2
    kinds = np.where(used, kinds, -1)

    # Colour table per scene: entry 0 = background base colour, entry j + 1 = object j.
    table = np.empty((n, MAX_OBJECTS + 1, 3), np.int16)  # [n, 5, 3]
    table[:, 0] = rng.integers(0, 90, size=(n, 3))
    colour_id = rng.integers(0, len(_PALETTE), size=(n, MAX_OBJECTS))
    table[:, 1:] = _PALETTE[colour_id] + rng.integers(-15, 16, size=(n, MAX_OBJECTS, 3))
    # Object id map (objects never overlap): 0 = background, j + 1 = object in slot j.
    pad = MAX_RADIUS
    ids = np.zeros((n, size + 2 * pad, size + 2 * pad), np.uint8)  # [n, S + 12, S + 12]
    ar = np.arange(_TEMPLATE)
    for j in range(MAX_OBJECTS):
        sel = np.flatnonzero(used[:, j])  # [q]
        patch = _TEMPLATES[kinds[sel, j], radius[sel, j]]  # [q, 13, 13] bool
        ys = cy[sel, j][:, None, None] + ar[None, :, None]  # [q, 13, 1] (top-left = centre)
        xs = cx[sel, j][:, None, None] + ar[None, None, :]  # [q, 1, 13]
        region = ids[sel[:, None, None], ys, xs]  # [q, 13, 13]
        ids[sel[:, None, None], ys, xs] = np.where(patch, j + 1, region)
    ids = ids[:, pad:pad + size, pad:pad + size]  # [n, S, S]
    masks = (ids[:, None] == np.arange(1, MAX_OBJECTS + 1, dtype=np.uint8)[None, :, None, None])
    flat_ids = (ids + (rows * (MAX_OBJECTS + 1))[:, None, None]).reshape(-1)  # [n * S * S]
    image = np.take(table.reshape(-1, 3), flat_ids, axis=0)  # [n * S * S, 3] int16
    image = image.reshape(n, size, size, 3)  # [n, S, S, 3]
    # Per-pixel Gaussian noise, sigma 8, via a 256-level inverse-CDF table (fast).
    image += _NOISE_TABLE[rng.integers(0, 256, size=image.shape, dtype=np.uint8)]
    image = np.clip(image, 0, 255, out=image).astype(np.uint8)  # [n, S, S, 3]
    centers = np.stack([cy, cx], axis=-1)  # [n, 4, 2]
    return {
        "images": image,
        "labels": labels,
        "masks": masks.view(np.uint8),
        "num_objects": k.astype(np.int64),
        "kinds": kinds.astype(np.int64),
        "centers": np.where(used[..., None], centers, -1).astype(np.int64),
    }


def load_shapes(split: str, num_examples: int, seed: int = 0, image_size: int = 32) -> dict:
    """One split of ``shapes``: train uses rng stream (seed, 0), test (seed, 1).

    The two streams are independent and every pixel carries Gaussian noise, so a test image
    equal to a train image does not occur in practice (checked in tests/test_data.py).
    """
    streams = {"train": TRAIN_STREAM, "test": TEST_STREAM}
    if split not in streams:
        raise ValueError(f"unknown shapes split {split!r}; use 'train' or 'test'")
    return make_shapes(num_examples, [int(seed), streams[split]], image_size)
