"""hsl_tf.interpret.binding: binding, diversity and chance against hand-made instance masks."""

import numpy as np
import pytest

from hsl_tf.interpret import binding


def _objects():
    """Two images, 3 object slots (the third empty), 8×8."""
    m = np.zeros((2, 3, 8, 8), np.uint8)
    m[0, 0, :2, :2] = 1  # 4 px
    m[0, 1, 4:, 4:] = 1  # 16 px
    m[1, 0, 1:4, 1:4] = 1  # 9 px
    return m


def test_binding_one_on_a_single_object():
    objects = _objects()
    sal = np.zeros((2, 2, 8, 8))
    sal[0, 0] = objects[0, 1] * 0.7  # any amount, all on object 1
    sal[0, 1, :2, :2] = 1.0
    sal[1, :] = objects[1, 0]
    assert binding.binding(sal, objects) == pytest.approx(1.0)


def test_binding_uniform_is_chance():
    objects = _objects()
    sal = np.full((2, 5, 8, 8), 0.3)
    chance = binding.chance(objects)
    assert chance == pytest.approx((16 / 64 + 9 / 64) / 2)
    assert binding.binding(sal, objects) == pytest.approx(chance)
    # the masks side: σ(φ) uniform → saliency uniform
    scores = binding.scores(np.full((2, 5, 8, 8), 0.9), objects)
    assert scores["binding"] == scores["binding_kept"] == pytest.approx(chance) == scores["chance"]


def test_binding_split_between_objects_and_zero_saliency():
    objects = _objects()
    sal = np.zeros((2, 2, 8, 8))
    sal[0, 0] = objects[0, 0] + objects[0, 1]  # 4 px + 16 px → best share 16/20
    per_row = binding.binding_per_row(sal, objects)
    np.testing.assert_allclose(per_row, [[0.8, 0.0], [0.0, 0.0]])  # zero saliency → 0, no NaN


def test_diversity():
    same = np.tile(np.random.default_rng(0).random((1, 1, 8, 8)), (2, 4, 1, 1))
    assert binding.diversity(same) == pytest.approx(0.0, abs=1e-12)
    assert binding.diversity(same * np.arange(1, 5)[None, :, None, None]) == pytest.approx(0.0, abs=1e-12)
    disjoint = np.zeros((1, 3, 8, 8))
    disjoint[0, 0, :2], disjoint[0, 1, 3:5], disjoint[0, 2, 6:] = 1, 1, 1
    assert binding.diversity(disjoint) == pytest.approx(1.0)
    assert binding.diversity(np.zeros((1, 3, 8, 8))) == 0.0  # all zero: identical, no NaN
    half = np.zeros((1, 2, 8, 8))
    half[0, 0, :4], half[0, 1, 2:6] = 1, 1  # overlap 16 of 32 px each → cos 0.5
    assert binding.diversity(half) == pytest.approx(0.5)
