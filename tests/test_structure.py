"""The structure branch: its information measures (closed forms), the options that keep it alive
(MPNN normalisation, τ annealing, the info prior, the IIC estimator, the cosine critic over all
in-batch negatives, the structure weight λ and the encoder's share of its gradient), each against a
closed form, an invariant or a numpy oracle."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import alive as callbacks, critics, objectives, pairs, relations, structure
from hsl_tf import model as model_lib
from hsl_tf.errors import ConfigError

S, D = 4, 16
LOG2 = math.log(2.0)


def _pairs(b, v):
    idx = pairs.pair_indices(b, v)
    return idx["anchor"].reshape(-1), idx["positive"].reshape(-1)


def _measures(probs, b, v):
    return {k: float(x) for k, x in structure.measures(tf.constant(probs, tf.float32), *_pairs(b, v)).items()}


# ------------------------------------------------------------------ measures: closed forms
def test_a_constant_graph_carries_nothing_whatever_its_usage():
    """Every image the same graph, both types used on half the edges: pooled usage is log 2, yet the
    edge entropy, the relation info and the cross-view MI are all 0."""
    b, v, e = 6, 3, 12
    graph = np.zeros([e, 2], np.float32)
    graph[: e // 2, 0] = graph[e // 2:, 1] = 1.0
    probs = np.broadcast_to(graph, [b * v, e, 2])
    usage = probs.mean(axis=(0, 1))
    assert float(structure.entropy(tf.constant(usage))) == pytest.approx(LOG2, abs=1e-6)
    m = _measures(probs, b, v)
    assert m["edge_entropy"] == pytest.approx(0.0, abs=1e-6)
    assert m["relation_info"] == pytest.approx(0.0, abs=1e-6)
    assert m["cross_view_mi"] == pytest.approx(0.0, abs=1e-6)
    assert callbacks.branch_dead(m["edge_entropy"], m["cross_view_mi"])


def test_uniform_relations_have_full_entropy_and_no_information():
    b, v, e, k = 5, 2, 7, 3
    m = _measures(np.full([b * v, e, k], 1.0 / k), b, v)
    assert m["edge_entropy"] == pytest.approx(math.log(k), abs=1e-5)
    assert m["prediction_entropy"] == pytest.approx(math.log(k), abs=1e-5)
    assert m["relation_info"] == pytest.approx(0.0, abs=1e-5)
    assert m["cross_view_mi"] == pytest.approx(0.0, abs=1e-5)
    assert callbacks.branch_dead(m["edge_entropy"], m["cross_view_mi"])


def test_views_that_agree_on_balanced_one_hot_relations_carry_log_k():
    """Each image picks a type per edge (balanced over the batch), every view of it the same one:
    edge entropy log K, single predictions certain, cross-view MI log K (the maximum)."""
    b, v, e, k = 6, 4, 5, 3
    types = (np.arange(b)[:, None] + np.arange(e)[None, :]) % k  # [B, E], each type on 2 images per edge
    probs = np.repeat(np.eye(k, dtype=np.float32)[types], v, axis=0)  # [B·V, E, K] image-major
    m = _measures(probs, b, v)
    assert m["edge_entropy"] == pytest.approx(math.log(k), abs=1e-5)
    assert m["prediction_entropy"] == pytest.approx(0.0, abs=1e-5)
    assert m["cross_view_mi"] == pytest.approx(math.log(k), abs=1e-5)
    assert not callbacks.branch_dead(m["edge_entropy"], m["cross_view_mi"])


def test_cross_view_mi_matches_a_numpy_oracle():
    rng = np.random.default_rng(0)
    b, v, e, k = 7, 3, 4, 3
    probs = rng.dirichlet(np.ones(k) * 0.7, size=(b * v, e)).astype(np.float32)
    first, second = _pairs(b, v)
    joint = structure.cross_view_joint(tf.constant(probs), first, second).numpy()
    got = structure.cross_view_mi(tf.constant(probs), first, second).numpy()
    for edge in range(e):
        p = np.einsum("pk,pl->kl", probs[first, edge].astype(np.float64), probs[second, edge].astype(np.float64))
        p = 0.5 * (p + p.T) / len(first)
        np.testing.assert_allclose(joint[edge], p, rtol=1e-5, atol=1e-7)
        assert joint[edge].sum() == pytest.approx(1.0, abs=1e-5)
        outer = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
        assert got[edge] == pytest.approx(float(np.sum(p * np.log(p / outer))), abs=1e-5)
        assert 0.0 <= got[edge] <= math.log(k) + 1e-6


def test_info_penalty_bounds():
    b, v, e, k = 4, 2, 3, 2
    constant = np.zeros([b * v, e, k], np.float32)
    constant[..., 0] = 1.0
    balanced = np.repeat(np.eye(k, dtype=np.float32)[(np.arange(b)[:, None] + np.zeros(e, int)) % k], v, axis=0)
    assert float(structure.info_penalty(tf.constant(constant))) == pytest.approx(math.log(k), abs=1e-5)
    assert float(structure.info_penalty(tf.constant(balanced))) == pytest.approx(0.0, abs=1e-5)
    rng = np.random.default_rng(1)
    soft = rng.dirichlet(np.ones(k), size=(b * v, e)).astype(np.float32)
    assert 0.0 < float(structure.info_penalty(tf.constant(soft))) < math.log(k)


def test_annealed_temperature_closed_form():
    t = [float(structure.annealed_temperature(s, 0.5, 2.0, 100)) for s in (0, 50, 100, 1000)]
    np.testing.assert_allclose(t, [2.0, 1.0, 0.5, 0.5], rtol=1e-6)  # 2·(1/4)^(1/2) = 1 halfway
    assert float(structure.annealed_temperature(10, 0.7)) == pytest.approx(0.7)  # start 0: constant


# ------------------------------------------------------------------ MPNN normalisation
@pytest.mark.parametrize("seed", range(4))
def test_normalised_mpnn_starts_near_uniform_on_every_edge(seed):
    """Non-negative, uncentred z (as the average of ReLU features): with the MPNN's batch norm every
    edge's batch-mean relation starts within 0.1 of 1/K; without it one type dominates every edge."""
    keras.utils.set_random_seed(seed)
    z = tf.abs(tf.random.stateless_normal([128, 8, 8], [seed, 7])) + 0.5
    mean_p = {}
    for norm in (True, False):
        mpnn = relations.RelationMPNN(8, 2, hidden=32, norm=norm)
        mean_p[norm] = tf.nn.softmax(mpnn(z, training=True), -1).numpy().mean(axis=0)[:, 0]  # [E]
    assert np.abs(mean_p[True] - 0.5).max() < 0.1, mean_p[True]
    assert model_lib.ModelConfig().mpnn_norm  # the default
    # without it every edge is skewed the same way, by an amount the seed decides
    skew = mean_p[False] - 0.5
    assert np.all(np.sign(skew) == np.sign(skew[0])), skew
    assert np.abs(skew).min() > SKEW_WITHOUT_NORM[seed], skew


# measured for these seeds without the norm: p̄ in 0.18–0.22, 0.35–0.46, 0.04–0.06, 0.37–0.41 over the edges
SKEW_WITHOUT_NORM = {0: 0.25, 1: 0.03, 2: 0.4, 3: 0.08}


# ------------------------------------------------------------------ InfoNCE over all in-batch negatives
def test_infonce_all_matches_numpy_and_is_capped():
    rng = np.random.default_rng(3)
    b, v = 4, 3
    n = b * v
    sim = rng.normal(size=(n, n)) * 3
    idx = pairs.pair_indices(b, v)
    loss, est = objectives.infonce_all(tf.constant(sim), idx["anchor"], idx["positive"], v)
    expect = np.zeros(b)
    for i in range(b):
        terms = []
        for a, p in zip(idx["anchor"][i], idx["positive"][i]):
            others = [sim[a, m] for m in range(n) if m // v != a // v]
            terms.append(sim[a, p] - np.log(np.exp(sim[a, p]) + np.sum(np.exp(others))))
        expect[i] = np.log(1 + (b - 1) * v) + np.mean(terms)
    np.testing.assert_allclose(est.numpy(), expect, rtol=1e-6)
    np.testing.assert_allclose(loss.numpy(), -expect)
    assert np.all(est.numpy() <= np.log(1 + (b - 1) * v) + 1e-9)
    # a constant added to a row of scores changes nothing
    shifted = sim + rng.normal(size=(n, 1)) * 10
    _, est2 = objectives.infonce_all(tf.constant(shifted), idx["anchor"], idx["positive"], v)
    np.testing.assert_allclose(est2.numpy(), expect, rtol=1e-6, atol=1e-9)


def test_cosine_critic_matches_naive_and_ignores_what_all_views_share():
    rng = np.random.default_rng(4)
    n, k, tau = 6, 2, 0.2
    critic = critics.StructureCritic(S, k)
    h = rng.normal(size=(n, S, S, k)).astype(np.float32)
    a = rng.normal(size=(n, S, S, k)).astype(np.float32)
    critic(tf.constant(h), tf.constant(a), tf.constant([0]), tf.constant([1]))  # build
    w = critic.w.numpy().astype(np.float64)
    sim = critic.cosine(tf.constant(h), tf.constant(a), tau).numpy()
    u = h.reshape(n, -1, k).reshape(n, -1).astype(np.float64)
    wa = np.einsum("pqk,nqk->npk", w, a.reshape(n, -1, k).astype(np.float64)).reshape(n, -1)

    def unit(x):
        x = x - x.mean(0)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    np.testing.assert_allclose(sim, unit(u) @ unit(wa).T / tau, rtol=1e-4, atol=1e-4)
    shared = rng.normal(size=(1, S, S, k)).astype(np.float32)  # the same graph added to every view
    sim2 = critic.cosine(tf.constant(h + shared), tf.constant(a + shared), tau).numpy()
    np.testing.assert_allclose(sim2, sim, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ through the model
def _config(**kw):
    return model_lib.ModelConfig(**dict(dict(num_entities=S, entity_dim=D, num_relations=2, mpnn_hidden=8,
                                             head_hidden=16), **kw))


def _batch(b=4, v=3, size=16):
    return {"views": tf.random.stateless_normal([b, v, size, size, 3], [0, 1]), "labels": tf.zeros([b], tf.int32)}


def _models(configs):
    """Models with identical weights (W enlarged so that the structure term matters)."""
    keras.utils.set_random_seed(0)
    models = []
    for cfg in configs:
        m = model_lib.HSLModel(cfg)
        m.build_all((16, 16))
        m.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
        models.append(m)
    models[0].structure_critic.w.assign(0.3 * tf.random.stateless_normal(models[0].structure_critic.w.shape, [9, 9]))
    for m in models[1:]:
        m.set_weights(models[0].get_weights())
    return models


def _encoder_grads(model, data):
    _, _, grads, variables = model.compute_gradients(data)
    ids = {id(v) for v in model.encoder.trainable_variables}
    return [g.numpy() for g, v in zip(grads, variables) if id(v) in ids]


def test_structure_grad_scales_the_encoders_gradient_exactly():
    """z reaches m_η as α·z + (1 − α)·stop_gradient(z): same forward, α times the encoder's gradient."""
    data = _batch()
    full, half, none = _models([_config(objective="xa", structure_grad=a) for a in (1.0, 0.5, 0.0)])
    g1, g_half, g0 = (_encoder_grads(m, data) for m in (full, half, none))
    assert max(np.abs(g).max() for g in g1) > 0
    for a, b, c in zip(g1, g_half, g0):
        np.testing.assert_allclose(b, 0.5 * a, rtol=1e-4, atol=1e-6 * np.abs(a).max())
        assert np.abs(c).max() == 0.0


def test_structure_weight_enters_the_loss_linearly():
    data = _batch()
    seed = tf.constant([1, 2])
    losses = {}
    for lam, m in zip((0.0, 1.0, 0.25), _models([_config(objective="xza", structure_weight=w) for w in (0, 1, .25)])):
        per_image, diags = m._forward(data, training=True, seed=seed)
        losses[lam] = float(tf.reduce_mean(per_image))
    xa_loss = losses[1.0] - losses[0.0]
    assert abs(xa_loss) > 1e-4
    assert losses[0.25] == pytest.approx(losses[0.0] + 0.25 * xa_loss, rel=1e-4, abs=1e-6)


def test_iic_estimator_is_the_cross_view_mi_and_leaves_w_untrained():
    m, = _models([_config(objective="xa", estimator_xa="iic")])
    data = _batch()
    per_image, diags = m._forward(data, training=True, seed=tf.constant([1, 2]))
    assert float(diags["bound_xa"]) == pytest.approx(float(diags["cross_view_mi"]), rel=1e-5)
    np.testing.assert_allclose(per_image.numpy(), -float(diags["bound_xa"]), rtol=1e-5)
    _, _, grads, variables = m.compute_gradients(data)
    by_id = {id(v): g for g, v in zip(grads, variables)}
    assert by_id[id(m.structure_critic.w)] is None
    assert any(by_id[id(v)] is not None and np.abs(by_id[id(v)]).max() > 0 for v in m.mpnn.trainable_variables)


@pytest.mark.parametrize("kw", [dict(structure_critic="cosine"), dict(relation_prior="info"),
                                dict(temperature_start=2.0, temperature_anneal_steps=10)])
def test_alive_options_through_the_model_are_finite(kw):
    m, = _models([_config(objective="xza", **kw)])
    per_image, diags = m._forward(_batch(), training=True, seed=tf.constant([1, 2]))
    assert np.all(np.isfinite(per_image.numpy()))
    for key in model_lib.RELATION_MEASURES:
        assert np.isfinite(float(diags[key]))
    if "temperature_start" in kw:
        assert float(diags["temperature"]) == pytest.approx(2.0)  # step 0 of the annealing
    if kw.get("structure_critic") == "cosine":
        assert float(diags["bound_xa"]) <= math.log(1 + 3 * 3) + 1e-6  # B = 4 images of V = 3 views


@pytest.mark.parametrize("kw, field", [
    (dict(structure_critic="cosine", estimator_xa="nwj"), "estimator_xa"), (dict(structure_grad=1.5), "structure_grad"),
    (dict(structure_weight=-0.1), "structure_weight"), (dict(temperature_start=-1.0), "temperature_start"),
    (dict(structure_critic="dot"), "structure_critic"), (dict(relation_prior="rim"), "relation_prior"),
])
def test_bad_structure_values_name_the_field(kw, field):
    with pytest.raises(ConfigError, match=f"^{field}=") as err:
        _config(**kw)
    assert err.value.field == field
