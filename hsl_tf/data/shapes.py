"""The embedded ``shapes`` dataset: small synthetic scenes with instance masks (no download).

Each example is a ``S x S`` RGB scene (default 32 x 32) on a noisy background (a random
dark base colour per image plus per-pixel Gaussian noise, sigma 8, quantised to 256 levels)
holding 2, 3 or 4 non-overlapping objects (their bounding boxes keep a gap of at least 1 px;
noise is added to objects too). Every object has a kind (0 circle, 1 square, 2 triangle
pointing up, 3 cross, 4 diamond), a "radius" r in {3, 4, 5, 6} px (the object fits in the
(2r+1) x (2r+1) box around its centre) and a colour drawn from an 8-colour palette with a
small jitter, independent of the label.

Label rule (10 balanced classes):
    Let T be the topmost and B the bottommost object, by centre y ("top" = smallest row
    index). Then
        label = 2 * kind(T) + (1 if |x(B) - x(T)| <= 2 px else 0)
    i.e. the low bit says whether B is vertically aligned under T. So the label depends on the
    identity of one object and a spatial relation between two objects, never on colour, size
    or the other objects. The rule is never ambiguous: the centre y of T is >= 3 px above
    (of B >= 3 px below) every other object's centre y, and |x(B) - x(T)| is either <= 2 px
    ("aligned") or >= 6 px ("offset"). The object centre is the centre of its box; it equals
    the centre of mass of the object's mask in x exactly (all kinds are left/right symmetric)
    and in y to within 0.25 px, so the rule can be read off the masks as well.

    The label is invariant to horizontal flips, which every training objective uses as an
    augmentation: a flip maps x -> S - 1 - x and keeps y, so it preserves the y order of the
    objects (T and B stay the same objects, with the same kinds) and every |dx| (the alignment
    bit is unchanged). (The previous rule, leftmost/rightmost object, was not: a flip swaps
    them.) Vertical flips are not label-preserving and are not used.

Generation samples the labels first (``arange(n) % 10``, shuffled) and the number of objects
independently of them, then places the objects by vectorised rejection sampling with T in
slot 0 and B in slot 1: the centre rows of T and B are drawn so that their boxes are clear of
each other in y (for both bits, so the T-B distance carries no label information; half of the
scenes draw T's row first, half B's, which keeps the layout symmetric top/bottom), B's centre
column is drawn within 2 px of T's (aligned) or uniformly at >= 6 px from it (offset), and the
other objects get a centre row strictly inside (y(T) + 3, y(B) - 3) and any centre column,
redrawn until no boxes overlap. kind(T) is set from the label, the other objects get uniform
random kinds, and the used slots are then shuffled per scene, so T and B can sit in any slot.
Rendering stamps pre-drawn 13 x 13 templates with fancy indexing. Images must be at least
``MIN_IMAGE_SIZE`` = 28 px: below that, 4 objects rarely fit the layout and sampling stalls.

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
MIN_IMAGE_SIZE = 28
CLASS_NAMES = tuple(
    f"{kind}_{'aligned' if bit else 'offset'}" for kind in KIND_NAMES for bit in (0, 1))

_TEMPLATE = 2 * MAX_RADIUS + 1  # 13
_MIN_GAP = 1  # px between object boxes
_RULE_GAP = 3  # px: y gap of T (B) above (below) every other object
_ALIGN = 2  # px: aligned  <=> |x(B) - x(T)| <= _ALIGN
_OFFSET = 6  # px: offset  <=> |x(B) - x(T)| >= _OFFSET (never in between)
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


def _uniform(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Uniform integers in [lo, hi] (elementwise; rows with lo > hi give garbage, caller rejects)."""
    return lo + (rng.random(lo.shape) * (hi - lo + 1)).astype(np.int64)


def _place(rng: np.random.Generator, k: np.ndarray, aligned: np.ndarray, size: int):
    """Samples radii and centres that satisfy all layout and rule constraints.

    Slot 0 is the topmost object T, slot 1 the bottommost object B (the caller shuffles slots).

    Args:
      k: int [m] number of objects per scene.
      aligned: bool [m] whether B must be vertically aligned under T.
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
        al = aligned[todo]  # [t]
        r = rng.integers(MIN_RADIUS, MAX_RADIUS + 1, size=(t, MAX_OBJECTS))
        y = np.zeros((t, MAX_OBJECTS), np.int64)
        x = np.zeros((t, MAX_OBJECTS), np.int64)
        # T (slot 0) above B (slot 1) with their boxes clear of each other in y (needed when
        # aligned; required for both bits so the T-B distance does not depend on the label),
        # which also leaves the >= 2 * 3 px needed for other objects between them. Half of the
        # scenes draw T first, half B first (mirror images), so neither position is biased.
        g = np.maximum(2 * _RULE_GAP, r[:, 0] + r[:, 1] + 1 + _MIN_GAP)  # [t]
        lo0, hi1 = r[:, 0], size - 1 - r[:, 1]
        t_first = rng.random(t) < 0.5
        y0 = _uniform(rng, lo0, np.minimum(size - 1 - r[:, 0], hi1 - g))
        y1 = _uniform(rng, np.maximum(lo0 + g, r[:, 1]), hi1)
        y[:, 0] = np.where(t_first, y0, _uniform(rng, lo0, np.minimum(size - 1 - r[:, 0], y1 - g)))
        y[:, 1] = np.where(t_first, _uniform(rng, np.maximum(y0 + g, r[:, 1]), hi1), y1)
        gap = y[:, 1] - y[:, 0]  # [t]
        ok = gap >= g  # False only if the image is too small for these radii
        x[:, 0] = _uniform(rng, r[:, 0], size - 1 - r[:, 0])
        # B: aligned (|dx| <= _ALIGN) or offset (|dx| >= _OFFSET); retried, then the row fails.
        need = np.flatnonzero(ok)
        for _ in range(20):
            if need.size == 0:
                break
            x0, r1 = x[need, 0], r[need, 1]
            delta = rng.integers(-_ALIGN, _ALIGN + 1, size=need.size)
            x1 = np.where(al[need], x0 + delta, _uniform(rng, r1, size - 1 - r1))
            x[need, 1] = x1
            dx = np.abs(x1 - x0)
            sep = r[need, 0] + r1 + 1 + _MIN_GAP
            good = ((x1 >= r1) & (x1 <= size - 1 - r1)
                    & (al[need] | (dx >= _OFFSET))
                    & ((gap[need] >= sep) | (dx >= sep)))
            need = need[~good]
        ok[need] = False
        # Other objects: y strictly inside (y(T) + 3, y(B) - 3), x anywhere; no overlaps.
        for j in range(2, MAX_OBJECTS):
            lo = np.maximum(r[:, j], y[:, 0] + _RULE_GAP)
            hi = np.minimum(size - 1 - r[:, j], y[:, 1] - _RULE_GAP)
            need = np.flatnonzero(ok & used[todo, j])
            ok[need[lo[need] > hi[need]]] = False
            need = need[lo[need] <= hi[need]]
            for _ in range(20):
                if need.size == 0:
                    break
                y[need, j] = _uniform(rng, lo[need], hi[need])
                x[need, j] = _uniform(rng, r[need, j], size - 1 - r[need, j])
                sep = r[need, :j] + r[need, j:j + 1] + 1 + _MIN_GAP  # [q, j]
                far = ((np.abs(y[need, :j] - y[need, j:j + 1]) >= sep)
                       | (np.abs(x[need, :j] - x[need, j:j + 1]) >= sep))
                need = need[~far.all(axis=1)]
            ok[need] = False
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
      image_size: S >= MIN_IMAGE_SIZE = 28 (side of the square image, in px; below that,
        four objects of radius up to 6 rarely fit the rule's layout and sampling stalls).
    Returns:
      dict of numpy arrays, see the module docstring for keys and shapes.
    """
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"shapes needs image_size >= {MIN_IMAGE_SIZE}, got {image_size}")
    n, size = int(num_examples), int(image_size)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n, dtype=np.int64) % NUM_CLASSES)  # [n]
    k = rng.integers(2, MAX_OBJECTS + 1, size=n)  # [n]
    used = np.arange(MAX_OBJECTS)[None, :] < k[:, None]  # [n, 4]
    aligned = labels % 2 == 1  # [n]
    radius, cy, cx = _place(rng, k, aligned, size)  # [n, 4] each; slot 0 = T, slot 1 = B
    rows = np.arange(n)
    kinds = rng.integers(0, NUM_KINDS, size=(n, MAX_OBJECTS))
    kinds[:, 0] = labels // 2
    # Shuffle the used slots of each scene (unused slots keep sorting last).
    perm = np.argsort(rng.random((n, MAX_OBJECTS)) + ~used, axis=1)  # [n, 4]
    radius, cy, cx, kinds = (np.take_along_axis(a, perm, axis=1) for a in (radius, cy, cx, kinds))
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
