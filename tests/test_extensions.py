"""Extensions beyond the paper: the InfoNCE and JS estimators, and slot-attention entities.

Estimators are checked against known values on correlated Gaussians with their optimal critics,
and the InfoNCE cap log N against random and extreme scores. Slot attention is checked for its
shapes, the normalisation of its attention over slots, permutation equivariance in the initial
slots and its deterministic inference path; then one tiny training run with slots and the new
estimators goes through export, the probe and the interpretation stage.
"""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from hsl_tf import export, objectives, slots
from hsl_tf import model as model_lib
from hsl_tf.errors import UserError
from hsl_tf.interpret import InterpretConfig, run_interpret
from hsl_tf.figures import figure_size_px
from tests.helpers import ROOT, tiny_kwargs, train_keeping_model

NEW_ESTIMATORS = ("nwj", "infonce", "js")  # the --estimator_* choices (focal is internal to bce)

# ------------------------------------------------------------------- correlated Gaussians


def _log_ratio(x, y, rho):
    """log p(x,y) / (p(x) p(y)) for a standard bivariate normal with correlation rho."""
    r2 = 1.0 - rho * rho
    return -0.5 * math.log(r2) - (rho * rho * (x * x + y * y) - 2.0 * rho * x * y) / (2.0 * r2)


def _gaussian_rows(rho=0.5, rows=4000, q=127, seed=0):
    """Our score layout on Gaussians: row b has one anchor x_b, Q joint and Q product partners.

    Returns (x [B, 1], log-ratio of the positives [B, Q], of the negatives [B, Q], the MI).
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 1))
    y_pos = rho * x + math.sqrt(1.0 - rho * rho) * rng.standard_normal((rows, q))  # ~ p(y|x_b)
    y_neg = rng.standard_normal((rows, q))  # ~ p(y)
    return x, _log_ratio(x, y_pos, rho), _log_ratio(x, y_neg, rho), -0.5 * math.log(1.0 - rho * rho)


def _estimate(name, pos, neg):
    """(batch estimate, its standard error over the independent rows)."""
    _, est = objectives.ESTIMATORS[name](tf.constant(pos), tf.constant(neg))
    est = est.numpy()
    return est.mean(), est.std() / math.sqrt(len(est))


def test_each_estimator_recovers_its_known_value_with_the_optimal_critic():
    """ρ = 0.5 (I ≈ 0.144), N = Q + 1 = 128 candidates, 4000 independent rows.

    NWJ at T* = 1 + log r → I. InfoNCE at log r + c(x) → I (bias ≈ (ρ²/(1−ρ²))/N ≈ 0.003, under
    one SE here). JS reports NWJ; at its own optimum log r that is I − e^{-1}.
    """
    x, lp, ln, mi = _gaussian_rows()
    cases = {"nwj": (1.0 + lp, 1.0 + ln, mi),
             "infonce": (lp + 3.0 * x, ln + 3.0 * x, mi),  # + c(x): a function of the anchor only
             "js": (lp, ln, mi - math.exp(-1.0))}
    for name, (pos, neg, expected) in cases.items():
        value, se = _estimate(name, pos, neg)
        assert se < 0.005, (name, se)
        assert abs(value - expected) < 4.0 * se, (name, value, expected, se)
    # InfoNCE is invariant to c(x) exactly, and below log N
    with_c, _ = _estimate("infonce", lp + 3.0 * x, ln + 3.0 * x)
    without_c, _ = _estimate("infonce", lp, ln)
    assert with_c == pytest.approx(without_c, abs=1e-12)
    assert with_c < math.log(128)


def _np_infonce(pos, neg):
    """Reference: explicit candidate sets {pos[b,q]} ∪ neg[b,:] of size Q + 1, float64."""
    b, q = pos.shape
    cand = np.concatenate([pos[:, :, None], np.broadcast_to(neg[:, None, :], (b, q, q))], axis=-1)  # [B, Q, Q+1]
    m = cand.max(-1)
    lse = m + np.log(np.exp(cand - m[..., None]).sum(-1))
    return (math.log(q + 1) + pos - lse).mean(-1)


def test_infonce_and_js_match_numpy_references():
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(size=(4, 6)) * 3, rng.normal(size=(4, 6)) * 3
    loss, est = objectives.infonce(tf.constant(pos), tf.constant(neg))
    np.testing.assert_allclose(est.numpy(), _np_infonce(pos, neg), rtol=1e-12)
    np.testing.assert_allclose(loss.numpy(), -est.numpy(), rtol=0)
    loss, est = objectives.js(tf.constant(pos), tf.constant(neg))
    softplus = lambda t: np.log1p(np.exp(-np.abs(t))) + np.maximum(t, 0.0)  # noqa: E731
    np.testing.assert_allclose(loss.numpy(), softplus(neg).mean(-1) + softplus(-pos).mean(-1), rtol=1e-12)
    # JS reports exactly the NWJ estimate of the same scores
    np.testing.assert_array_equal(est.numpy(), objectives.nwj_estimate(tf.constant(pos), tf.constant(neg)).numpy())
    # one hand value: zero scores → 2·log 2 (the logistic loss of a coin flip, twice)
    zero = tf.zeros([1, 3], tf.float64)
    assert float(objectives.js(zero, zero)[0][0]) == pytest.approx(2.0 * math.log(2.0), rel=1e-12)
    # InfoNCE with all candidates equal: log(Q+1) + s − log((Q+1)·e^s) = 0
    assert float(objectives.infonce(zero + 5.0, zero + 5.0)[1][0]) == pytest.approx(0.0, abs=1e-12)


def test_js_loss_is_minimised_by_the_log_density_ratio():
    """T* = log r: the population gradient along a shift and along a scale is zero
    (E_q[σ(T*)] = E_p[σ(−T*)] = ∫pq/(p+q)), and other critics lose on the same samples."""
    x, lp, ln, _ = _gaussian_rows(seed=2)
    sig = lambda t: 1.0 / (1.0 + np.exp(-t))  # noqa: E731

    def rows_se(v):
        return v.std() / math.sqrt(len(v))

    # d/dc loss(T*+c) and d/ds loss(s·T*) at c = 0, s = 1, per row (rows are independent)
    d_shift = sig(ln).mean(-1) - sig(-lp).mean(-1)
    d_scale = (sig(ln) * ln).mean(-1) - (sig(-lp) * lp).mean(-1)
    c, s = tf.Variable(0.0, dtype=tf.float64), tf.Variable(1.0, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(objectives.js(s * tf.constant(lp) + c, s * tf.constant(ln) + c)[0])
    g_c, g_s = tape.gradient(loss, [c, s])
    assert float(g_c) == pytest.approx(d_shift.mean(), abs=1e-10)
    assert float(g_s) == pytest.approx(d_scale.mean(), abs=1e-10)
    assert abs(d_shift.mean()) < 4.0 * rows_se(d_shift)
    assert abs(d_scale.mean()) < 4.0 * rows_se(d_scale)
    best = objectives.js(tf.constant(lp), tf.constant(ln))[0].numpy()  # [B]
    for name, (pos, neg) in {"0.5*T*": (0.5 * lp, 0.5 * ln), "T*+1": (lp + 1.0, ln + 1.0),
                             "T*-1": (lp - 1.0, ln - 1.0), "2*T*": (2.0 * lp, 2.0 * ln)}.items():
        diff = objectives.js(tf.constant(pos), tf.constant(neg))[0].numpy() - best  # paired, per row
        assert diff.mean() > 4.0 * rows_se(diff), name


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_infonce_never_exceeds_log_n_and_stays_finite(dtype):
    rng = np.random.default_rng(3)
    for q in (1, 2, 7, 64):
        for scale in (1.0, 30.0, 1e4):
            pos = rng.normal(size=(5, q)) * scale
            neg = rng.normal(size=(5, q)) * scale
            pos[0], neg[0] = 1e4, -1e4  # the extreme that saturates the cap
            pos[1], neg[1] = -1e4, 1e4
            p, n = tf.constant(pos, dtype), tf.constant(neg, dtype)
            with tf.GradientTape() as tape:
                tape.watch([p, n])
                loss, est = objectives.infonce(p, n)
                total = tf.reduce_sum(loss)
            grads = tape.gradient(total, [p, n])
            cap = float(tf.math.log(tf.constant(q + 1, dtype)))
            assert np.all(est.numpy() <= cap), (q, scale, est.numpy(), cap)
            assert float(est[0]) == pytest.approx(cap, rel=1e-6)  # pos ≫ negatives: the bound is log N
            for t in [loss, est] + grads:
                assert np.all(np.isfinite(t.numpy())), (q, scale)


# ------------------------------------------------------------------- estimator registry and flags


def test_estimator_choices_per_critic():
    """T_β also takes the baseline's focal loss ("P&S + structure"); T_ω only the MI bounds. (The flags
    take their choices from these registries: tests/test_config.py.)"""
    assert sorted(objectives.ESTIMATORS) == sorted(NEW_ESTIMATORS + ("focal",))
    assert sorted(objectives.XA_ESTIMATORS) == sorted(NEW_ESTIMATORS)
    assert objectives.critics_of("xza", "infonce", "js") == {"xz": "infonce", "xa": "js"}
    assert objectives.critics_of("bce", "infonce") == {"xz": "focal"}
    with pytest.raises(UserError, match="infonce"):
        model_lib.ModelConfig(estimator_xa="mine")
    with pytest.raises(UserError, match="entities=capsules"):
        model_lib.ModelConfig(entities="capsules")


def _tiny_config(objective="xza", **kw):
    return model_lib.ModelConfig(objective=objective, num_entities=4, entity_dim=16, num_relations=2,
                                 mpnn_hidden=8, head_hidden=16, **kw)


def _batch(b=3, v=3, size=16, seed=(4, 5)):
    return {"views": tf.random.stateless_normal([b, v, size, size, 3], seed), "labels": tf.zeros([b], tf.int32)}


@pytest.mark.parametrize("objective", ["xz", "xa", "xza"])
def test_every_estimator_gives_finite_loss_and_gradients(objective):
    """Each (objective, estimator) gives a finite per-image loss and finite gradients that reach
    the encoder; InfoNCE's bounds stay ≤ log(Q + 1) (V = 3 views: Q = 3, log 4)."""
    data = _batch()
    for estimator in NEW_ESTIMATORS:
        keras.utils.set_random_seed(0)
        m = model_lib.HSLModel(_tiny_config(objective, estimator_xz=estimator, estimator_xa=estimator))
        m.build_all((16, 16))
        m.structure_critic.w.assign(0.3 * tf.random.stateless_normal(m.structure_critic.w.shape, [9, 9]))
        per_image, diags, grads, variables = m.compute_gradients(data)
        assert per_image.shape == (3,) and np.all(np.isfinite(per_image.numpy())), (objective, estimator)
        encoder_ids = {id(v) for v in m.encoder.trainable_variables}
        reached = [g for g, v in zip(grads, variables) if id(v) in encoder_ids and g is not None]
        assert reached and all(np.all(np.isfinite(g.numpy())) for g in reached), (objective, estimator)
        assert any(np.abs(g.numpy()).max() > 0 for g in reached), (objective, estimator)
        for critic in m.critic_estimators:
            bound = float(diags[f"bound_{critic}"])
            assert np.isfinite(bound)
            if estimator == "infonce":
                assert bound <= math.log(4.0) + 1e-6
            if estimator == "js":  # reported estimate is NWJ: mean pos − mean e^{neg−1} ≤ mean pos
                assert bound <= float(diags[f"pos_{critic}"]) + 1e-6


# ------------------------------------------------------------------- slot attention


def test_slot_entities_shapes_and_attention_normalised_over_slots():
    keras.utils.set_random_seed(0)
    layer = slots.SlotEntities(5, 6, seed=1)
    features = tf.random.stateless_normal([3, 4, 4, 64], [1, 2])  # [N, h, w, C]
    z, attn = layer(features)
    assert z.shape == (3, 5, 6) and attn.shape == (3, 5, 4, 4)
    a = attn.numpy()
    assert a.min() >= 0.0
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)  # softmax over the slots
    # inference is deterministic, and the fixed initialisation keeps the slots apart
    z2, _ = layer(features)
    np.testing.assert_array_equal(z.numpy(), z2.numpy())
    spread = np.abs(z.numpy()[:, :, None] - z.numpy()[:, None, :]).max(-1)  # [N, S, S]
    assert spread[:, ~np.eye(5, dtype=bool)].min() > 1e-3
    # training noise: stateless (same seed, same z), shared by the batch (identical images → identical z)
    same = tf.tile(features[:1], [2, 1, 1, 1])
    za, _ = layer(same, training=True, seed=tf.constant([7, 3]))
    zb, _ = layer(same, training=True, seed=tf.constant([7, 3]))
    zc, _ = layer(same, training=True, seed=tf.constant([7, 4]))
    np.testing.assert_array_equal(za.numpy(), zb.numpy())
    np.testing.assert_allclose(za.numpy()[0], za.numpy()[1], atol=1e-6)
    assert np.abs(za.numpy() - zc.numpy()).max() > 1e-4
    assert np.abs(za.numpy()[:1] - layer(same[:1])[0].numpy()).max() > 1e-4  # ≠ the fixed inference init


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
    _, attn = layer(flat)
    assert np.ptp(attn.numpy().reshape(2, 4, -1), axis=-1).max() > 1e-4
    layer.position.kernel.assign(tf.zeros_like(layer.position.kernel))
    _, attn = layer(flat)
    assert np.ptp(attn.numpy().reshape(2, 4, -1), axis=-1).max() < 1e-5
    grid = slots.position_grid(3, 4)
    assert grid.shape == (3, 4, 4)
    np.testing.assert_allclose(grid[..., 0] + grid[..., 2], 1.0)
    np.testing.assert_allclose(grid[0, :, 0], [0.0, 1 / 3, 2 / 3, 1.0], atol=1e-6)


def test_model_entities_slots_and_reshape():
    """g = reshape(z) with slots, g = the pooled backbone with reshape; gradients reach the slots."""
    keras.utils.set_random_seed(0)
    x = tf.random.stateless_normal([2, 16, 16, 3], [1, 1])
    m = model_lib.HSLModel(_tiny_config(entities="slots"))
    m.build_all((16, 16))
    g, z = m.entity_fn(m, x)
    assert z.shape == (2, 4, 16) and g.shape == (2, 64)
    np.testing.assert_array_equal(g.numpy(), tf.reshape(z, [2, 64]).numpy())
    np.testing.assert_array_equal(m(x).numpy(), z.numpy())
    assert slots.attention_maps(m, x).shape == (2, 4, 2, 2)  # Conv-4 on 16×16: a 2×2 grid
    _, _, grads, variables = m.compute_gradients(_batch())
    got = {v.path for g_, v in zip(grads, variables) if g_ is not None and np.abs(g_.numpy()).max() > 0}
    for part in ("slots_mu", "slots_log_sigma", "to_q", "to_k", "to_v", "gru", "position", "conv0"):
        assert any(part in p for p in got), part
    ref = model_lib.HSLModel(_tiny_config())
    ref.build_all((16, 16))
    assert ref.slot_attention is None
    g, z = ref.entity_fn(ref, x)
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
    results, model = train_keeping_model(cfg)
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
    np.testing.assert_allclose(attn, slots.attention_maps(model, model.normalize(images)).numpy(), atol=1e-5)


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
