"""Options where the paper is silent: MPNN norm/aggregation, z standardisation, the
T_ω offset, relation priors, focal T_β beside NWJ T_ω, the supervised recipe's augmentation,
optimizer and schedule. Each against a closed form or an invariant."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import critics, objectives, optim, relations
from hsl_tf import model as model_lib
from hsl_tf import train as train_lib
from hsl_tf.data import augment
from hsl_tf.errors import ConfigError, UserError

S, D, K = 4, 16, 3


@pytest.mark.parametrize("norm,aggregation", [(True, "sum"), (False, "mean"), (True, "mean")])
def test_mpnn_options_keep_permutation_equivariance(norm, aggregation):
    mpnn = relations.RelationMPNN(S, K, hidden=8, norm=norm, aggregation=aggregation)
    z = tf.random.stateless_normal([5, S, D], [2, 3])
    perm = np.array([2, 0, 3, 1])
    for training in (False, True):
        out = relations.edges_to_dense(mpnn(z, training=training), S).numpy()
        out_perm = relations.edges_to_dense(mpnn(tf.gather(z, perm, axis=1), training=training), S).numpy()
        np.testing.assert_allclose(out_perm, out[:, perm][:, :, perm], rtol=1e-4, atol=1e-5)
        assert np.all(np.isfinite(out)) and np.std(out[..., 0]) > 1e-4
    bns = [w for w in mpnn.weights if "moving_mean" in w.path]
    assert len(bns) == (4 if norm else 0)  # m_emb, m_e1, m_v1, m_e2


@pytest.mark.parametrize("aggregation, divisor", [("sum", 1.0), ("mean", float(S))])
def test_aggregation_is_the_sum_over_the_senders_edges_divided_as_named(aggregation, divisor):
    """Recompose m_η from its parts with an explicit loop over edges: agg_i = Σ_{j≠i} h¹_(i,j) / divisor."""
    mpnn = relations.RelationMPNN(S, K, hidden=8, aggregation=aggregation)
    z = tf.random.stateless_normal([2, S, D], [4, 5])
    out = mpnn(z).numpy()
    e1 = mpnn.m_e1(mpnn.m_emb(z)).numpy()  # [N, E, H]
    send, _ = relations.edge_index(S)
    agg = np.stack([e1[:, send == i].sum(axis=1) for i in range(S)], axis=1) / divisor  # [N, S, H]
    e2 = mpnn.m_e2(mpnn.m_v1(tf.constant(agg)), tf.constant(e1))
    np.testing.assert_allclose(mpnn.fc_out(e2).numpy(), out, rtol=1e-5, atol=1e-6)


def test_standardize_has_zero_mean_unit_variance_and_is_scale_free():
    z = tf.random.stateless_normal([3, S, D], [1, 1]) * 7.0 + 3.0
    out = relations.standardize(z).numpy()
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2)), 1.0, atol=1e-3)
    np.testing.assert_allclose(relations.standardize(z * 5.0 - 2.0).numpy(), out, atol=1e-4)


def test_structure_critic_offset_adds_a_learned_constant():
    plain = critics.StructureCritic(S, K)
    shifted = critics.StructureCritic(S, K, offset=True)
    a = tf.nn.softmax(tf.random.stateless_normal([3, S, S, K], [0, 2]), -1)
    anchor, other = tf.constant([0, 1, 2]), tf.constant([1, 2, 0])
    plain(a, a, anchor, other)
    shifted(a, a, anchor, other)
    shifted.w.assign(plain.w)
    shifted.offset.assign(1.25)
    np.testing.assert_allclose(shifted(a, a, anchor, other).numpy(), plain(a, a, anchor, other).numpy() + 1.25,
                               rtol=1e-6)
    assert len(plain.trainable_weights) == 1 and len(shifted.trainable_weights) == 2


def test_edge_kl_uniform_closed_forms():
    uniform = tf.fill([2, 6, K], 1.0 / K)
    np.testing.assert_allclose(objectives.edge_kl_uniform(uniform).numpy(), 0.0, atol=1e-6)
    one_hot = tf.one_hot(tf.zeros([2, 6], tf.int32), K)
    np.testing.assert_allclose(objectives.edge_kl_uniform(one_hot).numpy(), math.log(K), rtol=1e-5)
    p = np.array([0.7, 0.2, 0.1], np.float32)
    probs = tf.constant(np.broadcast_to(p, [1, 4, K]))
    np.testing.assert_allclose(objectives.edge_kl_uniform(probs).numpy(), [np.sum(p * np.log(p * K))], rtol=1e-5)


def test_usage_prior_sees_collapse_that_the_edge_prior_cannot_tell_apart():
    """Confident edges split half/half over types: usage KL 0 but edge KL log K; all on one type: both log K."""
    split = tf.one_hot(tf.constant([[0, 1, 0, 1]]), 2)  # [1, 4, 2]
    collapsed = tf.one_hot(tf.zeros([1, 4], tf.int32), 2)
    np.testing.assert_allclose(objectives.usage_kl_uniform(split).numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(objectives.usage_kl_uniform(collapsed).numpy(), math.log(2), rtol=1e-5)
    np.testing.assert_allclose(objectives.edge_kl_uniform(split).numpy(), [math.log(2)], rtol=1e-5)


def test_relation_prior_per_image_layout():
    probs = tf.concat([tf.fill([2, 6, 2], 0.5), tf.one_hot(tf.zeros([2, 6], tf.int32), 2)], 0)  # image 0 uniform
    kl = objectives.relation_prior("kl", probs, num_views=2).numpy()
    np.testing.assert_allclose(kl, [0.0, math.log(2)], atol=1e-5)
    usage = objectives.relation_prior("usage", probs, num_views=2).numpy()
    u = 0.75  # mean usage of type 0 over the 4 views: (0.5 + 0.5 + 1 + 1) / 4
    expected = u * math.log(u) + (1 - u) * math.log(1 - u) + math.log(2)  # KL(ū ‖ U(2)) ≈ 0.1308
    np.testing.assert_allclose(usage, [expected, expected], rtol=1e-5)  # the batch's value, for every image
    np.testing.assert_array_equal(objectives.relation_prior("none", probs, num_views=2).numpy(), [0.0, 0.0])
    with pytest.raises(ValueError):
        objectives.relation_prior("beta", probs, num_views=2)


def _config(**kw):
    return model_lib.ModelConfig(**dict(dict(num_entities=S, entity_dim=D, num_relations=2, mpnn_hidden=8,
                                             head_hidden=16), **kw))


def _batch(b=4, v=2, size=16):
    return {"views": tf.random.stateless_normal([b, v, size, size, 3], [0, 1]), "labels": tf.zeros([b], tf.int32)}


@pytest.mark.parametrize("kw", [
    dict(relation_prior="kl", prior_weight=0.5), dict(relation_prior="usage"), dict(critic_offset=True),
    dict(mpnn_norm=True, mpnn_aggregation="mean", standardize_z=True), dict(estimator_xz="focal"),
])
def test_options_through_the_model_are_finite_and_prior_enters_the_loss(kw):
    model = model_lib.HSLModel(_config(objective="xza", **kw))
    model.build_all((16, 16))
    per_image, diags = model._forward(_batch(), training=True, seed=tf.constant([1, 2]))
    assert per_image.shape == (4,) and np.all(np.isfinite(per_image.numpy()))
    if kw.get("relation_prior", "none") != "none":
        base = model_lib.HSLModel(_config(objective="xza"))
        base.build_all((16, 16))
        base.set_weights(model.get_weights())
        base_loss, _ = base._forward(_batch(), training=True, seed=tf.constant([1, 2]))
        # the prior is the only difference: loss = base + w · prior (mean over images)
        np.testing.assert_allclose(np.mean(per_image) - np.mean(base_loss),
                                   kw.get("prior_weight", 1.0) * float(diags["relation_prior"]), rtol=1e-4, atol=1e-6)
    if kw.get("estimator_xz") == "focal":  # P&S + structure: focal on T_β, T_ω keeps its estimator
        assert model.critic_estimators == {"xz": "focal", "xa": model.config.estimator_xa}


@pytest.mark.parametrize("kw, field", [
    (dict(mpnn_aggregation="max"), "mpnn_aggregation"), (dict(relation_prior="beta"), "relation_prior"),
    (dict(estimator_xa="mine"), "estimator_xa"), (dict(prior_weight=-1.0), "prior_weight"),
])
def test_bad_option_values_name_the_field(kw, field):
    """The config names the field; bin/ shows it as the flag (tests/test_errors.py)."""
    with pytest.raises(ConfigError, match=f"^{field}=") as err:
        _config(**kw)
    assert err.value.field == field


# ------------------------------------------------------------------ supervised recipe (P&S standard)
def test_crop_flip_views_are_shifted_copies_of_the_padded_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, [3, 8, 8, 3], dtype=np.uint8)
    views = augment.crop_flip_views(images, [3, 4], 5, mean=(0, 0, 0), std=(1, 1, 1)).numpy()  # [3, 5, 8, 8, 3]
    assert views.shape == (3, 5, 8, 8, 3)
    padded = np.pad(images.astype(np.float32) / 255.0, [[0, 0], [4, 4], [4, 4], [0, 0]])
    found_flip = found_shift = False
    for b in range(3):
        for v in range(5):
            matches = [(oy, ox, flip) for oy in range(9) for ox in range(9) for flip in (False, True)
                       if np.allclose(views[b, v], (lambda c: c[:, ::-1] if flip else c)(
                           padded[b, oy:oy + 8, ox:ox + 8]), atol=1e-6)]
            assert matches, (b, v)  # every view is an exact crop (maybe mirrored) of its own padded image
            found_flip |= any(m[2] for m in matches)
            found_shift |= any((m[0], m[1]) != (4, 4) for m in matches)
    assert found_flip and found_shift


def test_step_decay_divides_by_ten_at_half_and_three_quarters():
    sched = optim.StepDecay(0.1, [int(10 * 0.5) * 7, int(10 * 0.75) * 7])  # 10 epochs of 7 steps: 35, 49
    lrs = [float(sched(t)) for t in (0, 34, 35, 48, 49, 69)]
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)


def test_make_optimizer_sgd_momentum_and_schedule():
    cfg = train_lib.TrainConfig(workdir="/tmp/unused", optimizer="sgd", lr_schedule="step", learning_rate=0.1,
                                epochs=4)
    opt = optim.make_optimizer(cfg, steps_per_epoch=10)
    assert isinstance(opt, keras.optimizers.SGD) and opt.momentum == pytest.approx(0.9)
    for step, lr in ((0, 0.1), (20, 0.01), (30, 0.001)):  # the optimizer follows the schedule at its own step
        opt.iterations.assign(step)
        assert float(opt.learning_rate) == pytest.approx(lr, rel=1e-6)
    np.testing.assert_allclose([float(opt._learning_rate(t)) for t in (19, 20, 29, 30)], [0.1, 0.01, 0.01, 0.001],
                               rtol=1e-6)
    with pytest.raises(UserError, match="optimizer=rmsprop: unknown"):
        train_lib.TrainConfig(workdir="/tmp/unused", optimizer="rmsprop")


def test_crop_scale_bounds_the_crop_area():
    """With area fraction s ≥ 0.6 and ratio in [3/4, 4/3], clipping to the image keeps area ≥ 0.6."""
    for scale, lo in (((0.6, 1.0), 0.6), (augment.CROP_SCALE, 0.0)):
        boxes = augment.sample_crop_boxes([5, 6], 4000, scale).numpy()
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        assert area.min() >= lo - 1e-6 and area.max() <= 1.0 + 1e-6
    wide = augment.sample_crop_boxes([5, 6], 4000).numpy()
    assert ((wide[:, 2] - wide[:, 0]) * (wide[:, 3] - wide[:, 1])).min() < 0.2  # CIFAR's 0.08-1 is wider
    images = np.random.default_rng(0).integers(0, 256, [2, 8, 8, 3], dtype=np.uint8)
    a = augment.augment_views(images, [1, 2], 2, (0, 0, 0), (1, 1, 1), crop_scale=(0.6, 1.0)).numpy()
    b = augment.augment_views(images, [1, 2], 2, (0, 0, 0), (1, 1, 1)).numpy()
    assert not np.allclose(a, b)
