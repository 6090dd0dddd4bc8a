"""The embedded shapes dataset: determinism, disjoint splits, balance, masks, the label rule
recomputed from the masks alone, its invariance to the augmentations, and no background cue."""

import numpy as np
import pytest

from hsl_tf.data import shapes


@pytest.fixture(scope="module")
def scenes():
    return shapes.make_shapes(200, seed=7)


def test_shapes_arrays(scenes):
    n, s = 200, 32
    assert scenes["images"].shape == (n, s, s, 3) and scenes["images"].dtype == np.uint8
    assert scenes["labels"].shape == (n,) and scenes["labels"].dtype == np.int64
    assert scenes["masks"].shape == (n, 2, s, s) and scenes["masks"].dtype == np.uint8
    assert set(np.unique(scenes["masks"])) <= {0, 1}
    assert np.all(scenes["num_objects"] == 2)


def test_shapes_deterministic_and_seed_dependent(scenes):
    again = shapes.make_shapes(200, seed=7)
    for key in scenes:
        np.testing.assert_array_equal(scenes[key], again[key])
    assert not np.array_equal(scenes["images"], shapes.make_shapes(200, seed=8)["images"])


def test_shapes_train_test_disjoint():
    train = shapes.load_shapes("train", 300, seed=0)["images"].reshape(300, -1)
    test = shapes.load_shapes("test", 300, seed=0)["images"].reshape(300, -1)
    keys = {row.tobytes() for row in train}
    assert not any(row.tobytes() in keys for row in test) and len(keys) == 300


def test_shapes_balanced_pairs(scenes):
    counts = np.bincount(scenes["labels"], minlength=shapes.NUM_CLASSES)
    assert len(counts) == shapes.NUM_CLASSES == 10 and counts.max() - counts.min() <= 1
    # the 10 unordered pairs of the 4 shapes, by hand (not the module's own table)
    assert shapes.CLASS_NAMES == ("circle+circle", "circle+square", "circle+triangle", "circle+cross",
                                  "square+square", "square+triangle", "square+cross", "triangle+triangle",
                                  "triangle+cross", "cross+cross")
    names = ("circle", "square", "triangle", "cross")
    assert [f"{names[a]}+{names[b]}" for a, b in shapes.PAIRS] == list(shapes.CLASS_NAMES)


def test_objects_do_not_overlap_and_keep_a_gap(scenes):
    masks = scenes["masks"].astype(np.int64)
    assert masks.sum(axis=1).max() == 1 and np.all(masks.sum(axis=(2, 3)) > 0)
    # at least 2 px apart: the 3x3 dilation of one object never touches the other
    m = np.pad(masks, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dil = sum(np.roll(np.roll(m, dy, 2), dx, 3) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) > 0
    assert not np.any(dil[:, 0] & (m[:, 1] > 0))


def _kind_from_mask(mask):
    """Classify one object mask by its shape alone (area fill of its bounding box, symmetry)."""
    ys, xs = np.nonzero(mask)
    box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    fill = mask.sum() / box
    if fill > 0.97:
        return 1  # square
    if mask[ys.max()].sum() > 2 * mask[ys.min()].sum():
        return 2  # triangle: a wide base under a narrow apex
    return 3 if fill < 0.5 else 0  # cross (thin arms) or circle


def test_label_rule_recomputed_from_the_masks(scenes):
    """The label is the unordered pair of kinds, readable from the instance masks alone."""
    kinds = np.array([[_kind_from_mask(scenes["masks"][n, k]) for k in range(2)] for n in range(200)])
    np.testing.assert_array_equal(kinds, scenes["kinds"])
    np.testing.assert_array_equal(shapes.label_of(kinds), scenes["labels"])
    np.testing.assert_array_equal(shapes.label_of(kinds[:, ::-1]), scenes["labels"])  # order-free
    # same-kind pairs exist for every kind: the relation is part of the label
    same = kinds[:, 0] == kinds[:, 1]
    assert set(kinds[same, 0]) == set(range(shapes.NUM_KINDS)) and 0.3 < same.mean() < 0.5


def test_label_survives_flip_and_colour_changes(scenes):
    """Kinds read from the masks do not change under a horizontal flip; colour plays no part."""
    flipped = scenes["masks"][:, :, :, ::-1]
    kinds = np.array([[_kind_from_mask(flipped[n, k]) for k in range(2)] for n in range(200)])
    np.testing.assert_array_equal(shapes.label_of(kinds), scenes["labels"])


def test_background_is_the_same_in_every_image(scenes):
    """No background shortcut: every pixel outside the objects has one colour, in every image."""
    background = scenes["masks"].sum(axis=1) == 0  # [n, H, W]
    values = scenes["images"][background]  # [p, 3]
    assert len(np.unique(values, axis=0)) == 1


def test_objects_fill_a_fair_share_of_the_image(scenes):
    area = scenes["masks"].sum(axis=(2, 3))  # [n, 2]
    assert area.min() >= 30 and area.max() <= 15 * 15


def test_shapes_min_image_size():
    assert shapes.make_shapes(4, seed=0, image_size=shapes.MIN_IMAGE_SIZE)["images"].shape[1] == 28
    with pytest.raises(ValueError):
        shapes.make_shapes(4, seed=0, image_size=shapes.MIN_IMAGE_SIZE - 1)
