"""Entities (hsl_tf.entities): the paper's reshape and slot attention (an extension).

Slot attention is checked for its shapes, the normalisation of its attention over slots,
permutation equivariance in the initial slots and its deterministic inference path; both entity
layers share one interface in the model; then one tiny training run with slots and the InfoNCE /
JS estimators goes through export, the probe and the interpretation stage.
"""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from hsl_tf import entities, export, slots
from hsl_tf import model as model_lib
from hsl_tf.figures import figure_size_px
from hsl_tf.interpret import InterpretConfig, run_interpret
from tests.helpers import tiny_kwargs, tiny_model_config


def _batch(b=3, v=3, size=16, seed=(4, 5)):
    return {"views": tf.random.stateless_normal([b, v, size, size, 3], seed), "labels": tf.zeros([b], tf.int32)}


def test_slot_entities_shapes_and_attention_normalised_over_slots():
    keras.utils.set_random_seed(0)
    layer = slots.SlotEntities(5, 6, seed=1)
    features = tf.random.stateless_normal([3, 4, 4, 64], [1, 2])  # [N, h, w, C]
    z, attn = layer.slots_and_attention(features)
    assert z.shape == (3, 5, 6) and attn.shape == (3, 5, 4, 4)
    g, z_call = layer(features)  # the entities interface: (g = vec(z), z)
    np.testing.assert_array_equal(z_call.numpy(), z.numpy())
    np.testing.assert_array_equal(g.numpy(), z.numpy().reshape(3, 30))
    np.testing.assert_array_equal(layer.attention(features).numpy(), attn.numpy())
    a = attn.numpy()
    assert a.min() >= 0.0
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)  # softmax over the slots
    # inference is deterministic, and the fixed initialisation keeps the slots apart
    _, z2 = layer(features)
    np.testing.assert_array_equal(z.numpy(), z2.numpy())
    spread = np.abs(z.numpy()[:, :, None] - z.numpy()[:, None, :]).max(-1)  # [N, S, S]
    assert spread[:, ~np.eye(5, dtype=bool)].min() > 1e-3
    # training noise: stateless (same seed, same z), shared by the batch (identical images → identical z)
    same = tf.tile(features[:1], [2, 1, 1, 1])
    _, za = layer(same, training=True, seed=tf.constant([7, 3]))
    _, zb = layer(same, training=True, seed=tf.constant([7, 3]))
    _, zc = layer(same, training=True, seed=tf.constant([7, 4]))
    np.testing.assert_array_equal(za.numpy(), zb.numpy())
    np.testing.assert_allclose(za.numpy()[0], za.numpy()[1], atol=1e-6)
    assert np.abs(za.numpy() - zc.numpy()).max() > 1e-4
    assert np.abs(za.numpy()[:1] - layer(same[:1])[1].numpy()).max() > 1e-4  # ≠ the fixed inference init


def test_slot_attention_is_permutation_equivariant_in_the_initial_slots():
    keras.utils.set_random_seed(0)
    sa = slots.SlotAttention(4, 8, seed=0)
    inputs = tf.random.stateless_normal([2, 9, 16], [3, 4])  # [N, L, C]
    sa(inputs)  # build
    init = tf.random.stateless_normal([2, 4, 8], [5, 6])
    perm = [2, 0, 3, 1]
    out, attn = sa.iterate(inputs, init)
    out_p, attn_p = sa.iterate(inputs, tf.gather(init, perm, axis=1))
    np.testing.assert_allclose(out_p.numpy(), tf.gather(out, perm, axis=1).numpy(), atol=1e-5)
    np.testing.assert_allclose(attn_p.numpy(), tf.gather(attn, perm, axis=1).numpy(), atol=1e-6)


def test_position_embedding_separates_locations():
    """On a spatially constant feature map, only the position embedding can make the attention
    depend on the location: with a zero position kernel every location gets the same attention."""
    keras.utils.set_random_seed(0)
    layer = slots.SlotEntities(4, 8, seed=0)
    flat = tf.tile(tf.random.stateless_normal([2, 1, 1, 64], [8, 9]), [1, 4, 4, 1])  # [N, 4, 4, C]
    attn = layer.attention(flat)
    assert np.ptp(attn.numpy().reshape(2, 4, -1), axis=-1).max() > 1e-4
    layer.position.kernel.assign(tf.zeros_like(layer.position.kernel))
    attn = layer.attention(flat)
    assert np.ptp(attn.numpy().reshape(2, 4, -1), axis=-1).max() < 1e-5
    grid = slots.position_grid(3, 4)
    assert grid.shape == (3, 4, 4)
    np.testing.assert_allclose(grid[..., 0] + grid[..., 2], 1.0)
    np.testing.assert_allclose(grid[0, :, 0], [0.0, 1 / 3, 2 / 3, 1.0], atol=1e-6)


def test_model_entities_slots_and_reshape():
    """g = reshape(z) with slots, g = the pooled backbone with reshape; gradients reach the slots."""
    keras.utils.set_random_seed(0)
    x = tf.random.stateless_normal([2, 16, 16, 3], [1, 1])
    m = model_lib.HSLModel(tiny_model_config(entities="slots"))
    m.build_all((16, 16))
    assert isinstance(m.entities, slots.SlotEntities) and m.entities.has_attention
    g, z = m.embed(x)
    assert z.shape == (2, 4, 16) and g.shape == (2, 64)
    np.testing.assert_array_equal(g.numpy(), tf.reshape(z, [2, 64]).numpy())
    np.testing.assert_array_equal(m(x).numpy(), z.numpy())
    assert m.attention_maps(x).shape == (2, 4, 2, 2)  # Conv-4 on 16×16: a 2×2 grid
    _, _, grads, variables = m.compute_gradients(_batch())
    got = {v.path for g_, v in zip(grads, variables) if g_ is not None and np.abs(g_.numpy()).max() > 0}
    for part in ("slots_mu", "slots_log_sigma", "to_q", "to_k", "to_v", "gru", "position", "conv0"):
        assert any(part in p for p in got), part
    ref = model_lib.HSLModel(tiny_model_config())
    ref.build_all((16, 16))
    assert isinstance(ref.entities, entities.ReshapeEntities) and not ref.entities.has_attention
    parts = (ref.encoder, ref.mpnn, ref.relation_head, ref.structure_critic)
    # the paper's reshape has no parameters: the model's are exactly those of its other parts
    assert sorted(v.path for v in ref.trainable_weights) == sorted(v.path for p in parts for v in p.trainable_weights)
    g, z = ref.embed(x)
    np.testing.assert_array_equal(g.numpy(), ref.encoder(x).numpy())
    np.testing.assert_array_equal(z.numpy(), tf.reshape(g, [2, 4, 16]).numpy())


# ------------------------------------------------------------------- one training run with slots


@pytest.fixture(scope="module")
def slots_run(tmp_path_factory):
    """Tiny xza run with entities=slots, InfoNCE on T_β and JS on T_ω: 2 steps and the export."""
    from hsl_tf import train as train_lib

    workdir = str(tmp_path_factory.mktemp("slots_run"))
    cfg = train_lib.TrainConfig(**tiny_kwargs(workdir, entities="slots", estimator_xz="infonce",
                                              estimator_xa="js", max_steps=2, surrogate_every=0))
    run = train_lib.train(cfg)
    results, model = run.results, run.model
    return dict(workdir=workdir, results=results, model=model)


def test_slots_run_trains_and_exports(slots_run):
    res, model = slots_run["results"], slots_run["model"]
    assert res["step"] == 2 and np.isfinite(res["loss"])
    assert res["bound_xz"] <= math.log(2.0) + 1e-6  # V = 2 views: Q = 1, InfoNCE ≤ log 2
    with open(os.path.join(slots_run["workdir"], "flags.json")) as f:
        assert json.load(f)["entities"] == "slots"
    handle = export.load_encoder(res["export"])
    assert handle.config["entities"] == "slots" and handle.config["estimator_xz"] == "infonce"
    images = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    z = handle.embed(tf.constant(images)).numpy()
    assert z.shape == (3, 8, 8)
    np.testing.assert_allclose(z, model(model.normalize(images)).numpy(), atol=1e-5)
    loaded = handle.trackable
    rel = loaded.relations(tf.constant(images))["relations"].numpy()
    assert rel.shape == (3, 8, 8, 2)
    np.testing.assert_allclose(rel.sum(-1)[:, ~np.eye(8, dtype=bool)], 1.0, atol=1e-5)
    pixels = tf.constant(images.astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        out = tf.reduce_sum(handle.embed_pixels(pixels) ** 2)
    grad = tape.gradient(out, pixels).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    attn = handle.slot_attention(tf.constant(images)).numpy()
    assert attn.shape == (3, 8, 4, 4)  # Conv-4 on 32×32: a 4×4 grid
    np.testing.assert_allclose(attn.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(attn, model.attention_maps(model.normalize(images)).numpy(), atol=1e-5)


def test_probe_with_a_slots_encoder(slots_run, tmp_path):
    from hsl_tf.config import ProbeConfig
    from hsl_tf.probe import run_probe

    res, _ = run_probe(ProbeConfig(encoder=slots_run["results"]["export"], workdir=str(tmp_path), train_examples=64,
                                   test_examples=32, epochs=1, batch_size=32, verbose=0))
    assert res["entities"] == "slots" and res["estimator_xz"] == "infonce" and res["estimator_xa"] == "js"
    assert 0.0 <= res["test_accuracy"] <= 1.0
    assert os.path.isfile(os.path.join(res["export"], "saved_model.pb"))


def test_interpret_saves_attention_maps(slots_run, tmp_path):
    work = tmp_path / "interp"
    run_interpret(InterpretConfig(encoder=slots_run["results"]["export"], workdir=str(work), num_images=3, steps=2,
                                  dataset="shapes", train_examples=16, test_examples=16, verbose=0))
    saved = np.load(work / "masks.npz")
    assert saved["masks"].shape == saved["masks_random"].shape == (3, 8, 32, 32)
    assert saved["attention"].shape == (3, 8, 4, 4)
    np.testing.assert_allclose(saved["attention"].sum(axis=1), 1.0, atol=1e-5)
    handle = export.load_encoder(slots_run["results"]["export"])
    np.testing.assert_allclose(saved["attention"], handle.slot_attention(tf.constant(saved["images"])).numpy(),
                               atol=1e-6)
    for name in ("masks.png", "attention.png"):
        with Image.open(work / name) as img:
            assert img.size == figure_size_px(3, 8), name
