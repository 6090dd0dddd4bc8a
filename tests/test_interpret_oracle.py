"""Which polarity of the Eq. 4 masks is the saliency? Decided by oracle encoders with known answers.

* The *object* encoder: row i is the mean colour of a fixed region R_i (object i) and depends on
  no other pixel. Row i's information about x lives exactly on object i.
* The *constant* encoder ignores its input: no row knows anything about x.

Eq. 4 is run on both, and the binding score is computed for both readings of a mask σ(φ):
the removed pixels 1 − σ (hsl_tf.interpret.binding.saliency) and the kept pixels σ (the paper's plots).
"""

import numpy as np
import pytest
import tensorflow as tf
import keras

from hsl_tf.interpret import binding
from hsl_tf.interpret.masks import optimize_masks, total_variation, upsample

H = W = 16
REGIONS = ((slice(1, 8), slice(1, 8)), (slice(8, 15), slice(8, 15)))  # R_1, R_2: 7×7 objects


class OracleEncoder(keras.layers.Layer):
    """Pixels [N, H, W, 3] in [0, 255] → z [N, S=2, D=3]: row i = mean normalised colour over R_i."""

    def __init__(self, constant=False, **kw):
        super().__init__(**kw)
        self.constant = constant
        m = np.zeros([len(REGIONS), H, W], np.float32)
        for i, (ys, xs) in enumerate(REGIONS):
            m[i, ys, xs] = 1.0 / ((ys.stop - ys.start) * (xs.stop - xs.start))
        self.weights_map = tf.constant(m)  # [S, H, W], each sums to 1

    def call(self, pixels):
        x = pixels / 255.0 - 0.5  # [N, H, W, 3]
        z = tf.einsum("nhwc,shw->nsc", x, self.weights_map)  # [N, S, 3]
        return tf.zeros_like(z) + 0.3 if self.constant else z


class Handle:
    """The part of hsl_tf.export.EncoderHandle that optimize_masks uses."""

    def __init__(self, layer):
        self.embed_pixels = layer
        self.num_entities = len(REGIONS)
        self.config = {"mean": [0.5, 0.5, 0.5]}


def scenes(n=8, seed=0):
    """Gray background (the fill colour), each object a random colour; instance masks [N, 2, H, W]."""
    rng = np.random.default_rng(seed)
    images = np.full([n, H, W, 3], 128, np.uint8)
    objects = np.zeros([n, len(REGIONS), H, W], np.uint8)
    for k, (ys, xs) in enumerate(REGIONS):
        images[:, ys, xs] = rng.integers(0, 256, [n, 1, 1, 3], dtype=np.uint8)
        objects[:, k, ys, xs] = 1
    return images, objects


def run(encoder, **kw):
    images, objects = scenes()
    kw.setdefault("learning_rate", 0.1 if kw.get("optimizer", "adam") == "adam" else None)
    out = optimize_masks(Handle(encoder), images, steps=kw.pop("steps", 300),
                         mask_init=kw.pop("mask_init", 5.0), seed=0, **kw)
    masks = out["masks"]  # [N, S, H, W]
    removed = binding.binding_per_row(binding.saliency(masks), objects)  # [N, S]
    kept = binding.binding_per_row(masks.astype(np.float64), objects)
    return out, removed, kept, binding.chance(objects), objects


def test_object_oracle_binds_with_the_removed_pixels():
    out, removed, kept, chance, objects = run(OracleEncoder())
    # each row's removed pixels lie on its own object ...
    sal = binding.saliency(out["masks"])
    on_own = np.stack([np.einsum("nhw,nhw->n", sal[:, i], objects[:, i]) for i in range(2)], 1)
    assert np.all(on_own / sal.sum(axis=(2, 3)) > 0.9)
    assert removed.mean() > 0.9
    # ... while the kept pixels spread over the background and the other object: no better than chance+
    assert kept.mean() < 0.5 and removed.mean() > kept.mean() + 0.4
    # and the objective reached its floor: the best point on the segment from the fill colour
    # (code 0) to z_n, min_t mean_{m≠n} ||z_m − t·z_n||², since masking scales a region's mean colour
    images, _ = scenes()
    z = OracleEncoder()(tf.constant(images, tf.float32)).numpy()  # [N, S, 3]
    t = np.linspace(0, 1, 1001)[:, None, None]  # [T, 1, 1]
    floors = []
    for n in range(len(z)):
        for i in range(2):
            others = np.delete(z[:, i], n, axis=0)[None]  # [1, N−1, 3]
            floors.append(np.min(np.mean(np.sum((others - t * z[n, i]) ** 2, -1), -1)))
    floor = float(np.mean(floors))
    assert out["curve"][-1][1] == pytest.approx(floor, rel=0.05)
    assert out["curve"][-1][1] < 0.6 * out["curve"][0][1]


def test_constant_encoder_scores_chance_in_both_polarities():
    out, removed, kept, chance, _ = run(OracleEncoder(constant=True), steps=50)
    assert removed.mean() == pytest.approx(chance, abs=0.03)
    assert kept.mean() == pytest.approx(chance, abs=0.03)
    assert out["curve"][-1][1] == pytest.approx(0.0, abs=1e-9)  # nothing to remove


@pytest.mark.parametrize("kw", [dict(resolution=8), dict(tv_weight=0.005), dict(area_weight=0.01)])
def test_mask_options_keep_the_oracle_answer(kw):
    """Coarse φ and the TV penalty blur the mask edge onto the background (lower binding than the
    per-pixel mask), but the removed pixels still bind far above chance and above the kept ones."""
    out, removed, kept, chance, _ = run(OracleEncoder(), **kw)
    assert out["masks"].shape == (8, 2, H, W)
    assert removed.mean() > chance + 0.3 and removed.mean() > kept.mean() + 0.2


def test_plain_gradient_steps_keep_the_oracle_answer():
    images, objects = scenes()
    # bin/interpret's defaults: φ₀ = 3, the default sgd step. The untouched background keeps the
    # initial saliency 1 − σ(3) ≈ 0.047 per pixel, which caps this binding near 0.83.
    out = optimize_masks(Handle(OracleEncoder()), images, steps=300, mask_init=3.0, optimizer="sgd")
    assert binding.binding(binding.saliency(out["masks"]), objects) > 0.75
    assert out["curve"][-1][1] < 0.55 * out["curve"][0][1]  # at the floor (≈ 0.26 of 0.49)


def test_upsample_and_total_variation_closed_forms():
    phi = tf.constant(np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4))
    assert upsample(phi, (4, 4)) is phi
    up = upsample(phi, (8, 8)).numpy()
    assert up.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(up.mean(axis=(2, 3)), phi.numpy().mean(axis=(2, 3)), rtol=1e-5)  # linear ramps
    flat = tf.ones([1, 1, 5, 5])
    np.testing.assert_allclose(total_variation(flat).numpy(), 0.0)
    step = np.zeros([1, 1, 4, 4], np.float32)
    step[..., 2:] = 1.0  # one vertical edge: |dx| = 1 on 4 of the 12 horizontal neighbour pairs
    np.testing.assert_allclose(total_variation(tf.constant(step)).numpy(), [[4 / 12]], rtol=1e-6)
