"""The embedded shapes dataset: determinism, disjoint splits, balance, masks, the label rule."""

import time

import numpy as np
import pytest

from hsl_tf.data import shapes

# ------------------------------------------------------------------------------------ shapes


@pytest.fixture(scope="module")
def scenes():
    return shapes.make_shapes(200, seed=7)


def test_shapes_arrays(scenes):
    n, s = 200, 32
    assert scenes["images"].shape == (n, s, s, 3) and scenes["images"].dtype == np.uint8
    assert scenes["labels"].shape == (n,) and scenes["labels"].dtype == np.int64
    assert scenes["masks"].shape == (n, 4, s, s) and scenes["masks"].dtype == np.uint8
    assert scenes["num_objects"].dtype == np.int64
    assert set(np.unique(scenes["masks"])) <= {0, 1}


def test_shapes_deterministic_and_seed_dependent(scenes):
    again = shapes.make_shapes(200, seed=7)
    for key in scenes:
        np.testing.assert_array_equal(scenes[key], again[key])
    other = shapes.make_shapes(200, seed=8)
    assert not np.array_equal(scenes["images"], other["images"])


def test_shapes_train_test_disjoint():
    train = shapes.load_shapes("train", 300, seed=0)["images"].reshape(300, -1)
    test = shapes.load_shapes("test", 300, seed=0)["images"].reshape(300, -1)
    train_keys = {row.tobytes() for row in train}
    assert not any(row.tobytes() in train_keys for row in test)
    assert len(train_keys) == 300  # no duplicates inside a split either


def test_shapes_balanced(scenes):
    counts = np.bincount(scenes["labels"], minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 200
    assert len(counts) == shapes.NUM_CLASSES


def test_shapes_objects_and_masks(scenes):
    masks, k = scenes["masks"].astype(np.int64), scenes["num_objects"]
    assert k.min() >= 2 and k.max() <= 4
    assert set(k.tolist()) == {2, 3, 4}
    # Non-overlapping: at most one slot per pixel.
    assert masks.sum(axis=1).max() == 1
    area = masks.sum(axis=(2, 3))  # [n, 4]
    used = np.arange(4)[None] < k[:, None]
    np.testing.assert_array_equal(area > 0, used)
    # At least a 1 px gap: the 3x3 dilation of each object touches no other object.
    m = np.pad(masks, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dil = sum(np.roll(np.roll(m, dy, 2), dx, 3) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) > 0
    others = m.sum(axis=1, keepdims=True) - m
    assert not np.any(dil & (others > 0))
    kinds = scenes["kinds"]
    assert len(np.unique(kinds[used])) >= 5
    np.testing.assert_array_equal(kinds[~used], -1)


def _label_from_masks(masks, num_objects, kinds):
    """Recomputes the shapes label from instance masks [n, 4, H, W] (centres of mass).

    T / B = topmost / bottommost object by centre-of-mass y; label = 2 kind(T) + aligned,
    aligned = |x(B) - x(T)| <= 2. Also checks the generation margins (the mask centre of mass
    is within 0.25 px of the box centre in y and exact in x): T (B) >= 2.5 px above (below)
    every other object, |dx| <= 2 or >= 6.
    """
    masks = masks.astype(np.float64)
    s = masks.shape[-1]
    area = masks.sum(axis=(2, 3))  # [n, 4]
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = (masks * np.arange(s)[:, None]).sum(axis=(2, 3)) / area  # [n, 4] centre of mass
        cx = (masks * np.arange(s)[None, :]).sum(axis=(2, 3)) / area
    labels = []
    for i, k in enumerate(num_objects):
        x, y = cx[i, :k], cy[i, :k]
        top, bottom = int(np.argmin(y)), int(np.argmax(y))
        assert (np.delete(y, top) - y[top]).min() >= 2.5, i  # unambiguous T
        assert (y[bottom] - np.delete(y, bottom)).min() >= 2.5, i  # unambiguous B
        dx = abs(x[bottom] - x[top])
        assert dx <= 2 + 1e-9 or dx >= 6 - 1e-9, (i, dx)
        labels.append(2 * kinds[i, top] + int(dx <= 2 + 1e-9))
    return np.array(labels)


def test_shapes_label_rule_from_masks(scenes):
    got = _label_from_masks(scenes["masks"], scenes["num_objects"], scenes["kinds"])
    np.testing.assert_array_equal(got, scenes["labels"])
    assert shapes.CLASS_NAMES[0] == "circle_offset" and shapes.CLASS_NAMES[1] == "circle_aligned"
    assert len(set(shapes.CLASS_NAMES)) == shapes.NUM_CLASSES
    # Both alignment bits occur with every kind of T (balanced, see test_shapes_balanced).
    assert set(scenes["labels"].tolist()) == set(range(shapes.NUM_CLASSES))


def test_shapes_label_invariant_to_horizontal_flip(scenes):
    flipped = scenes["masks"][..., ::-1]  # [n, 4, H, W], x -> W - 1 - x
    got = _label_from_masks(flipped, scenes["num_objects"], scenes["kinds"])
    np.testing.assert_array_equal(got, scenes["labels"])
    img = scenes["images"]
    assert not np.array_equal(img[:, :, ::-1], img)  # the flipped scenes are other images
    # A vertical flip, by contrast, changes the label (T and B swap): not label-preserving.
    vflip = _label_from_masks(scenes["masks"][..., ::-1, :], scenes["num_objects"],
                              scenes["kinds"])
    assert (vflip != scenes["labels"]).mean() > 0.5


def test_shapes_min_image_size():
    small = shapes.make_shapes(60, seed=4, image_size=shapes.MIN_IMAGE_SIZE)
    got = _label_from_masks(small["masks"], small["num_objects"], small["kinds"])
    np.testing.assert_array_equal(got, small["labels"])
    with pytest.raises(ValueError, match="image_size"):
        shapes.make_shapes(4, seed=0, image_size=shapes.MIN_IMAGE_SIZE - 1)


def test_shapes_speed_smoke():
    start = time.perf_counter()
    shapes.make_shapes(2000, seed=1)
    # Generous bound (target is >= 5000 images/s); guards against an accidental slow path.
    assert time.perf_counter() - start < 4.0
