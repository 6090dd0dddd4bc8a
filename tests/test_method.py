"""The method's parts: pair indices, the relation MPNN and Gumbel relations, both critics, which
variables each objective trains, and a short fit per training mode (encoders: test_encoders.py)."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import config, critics, pairs, relations
from hsl_tf import model as model_lib

S, D, K = 4, 16, 3  # tiny entity layout: S·D = 64


def _config(objective, **kw):
    kw = dict(dict(num_entities=S, entity_dim=D, num_relations=2, mpnn_hidden=8, head_hidden=16,
                   num_classes=3), **kw)
    return model_lib.ModelConfig(objective=objective, **kw)


def _batch(b=4, v=2, size=16, seed=0):
    views = tf.random.stateless_normal([b, v, size, size, 3], [seed, 1])
    labels = tf.constant(np.arange(b) % 3, tf.int32)
    return {"views": views, "labels": labels}


# ------------------------------------------------------------------------------ pairs


@pytest.mark.parametrize("b,v", [(2, 2), (4, 3), (5, 4), (3, 6)])
def test_pair_indices_structure(b, v):
    idx = pairs.pair_indices(b, v)
    q = v * (v - 1) // 2
    for key in ("anchor", "positive", "negative"):
        assert idx[key].shape == (b, q) and idx[key].dtype == np.int32
    anchor, positive, negative = (idx[k].reshape(-1) for k in ("anchor", "positive", "negative"))
    assert len(anchor) == len(positive) == len(negative) == b * v * (v - 1) // 2
    # positives: two different views of the same image
    assert np.all(anchor // v == positive // v)
    assert np.all(anchor % v != positive % v)
    # every unordered view pair of every image appears exactly once as a positive
    got = sorted(zip(anchor.tolist(), positive.tolist()))
    want = sorted((i * v + a, i * v + c) for i in range(b) for a, c in itertools.combinations(range(v), 2))
    assert got == want
    # negatives never pair two views of the same image
    assert np.all(anchor // v != negative // v)
    # row b of every index array is anchored at image b; all indices address existing rows
    np.testing.assert_array_equal(idx["anchor"] // v, np.repeat(np.arange(b)[:, None], q, axis=1))
    for key in ("anchor", "positive", "negative"):
        assert idx[key].min() >= 0 and idx[key].max() < b * v


@pytest.mark.parametrize("b,v", [(1, 3), (4, 1), (1, 1)])
def test_pair_indices_rejects_degenerate_batches(b, v):
    with pytest.raises(ValueError):
        pairs.pair_indices(b, v)


# ------------------------------------------------------------------------------ MPNN / relations


def test_edge_index_and_dense_layout():
    for s in (2, 3, 5):
        send, recv = relations.edge_index(s)
        assert len(send) == len(recv) == s * (s - 1)
        assert np.all(send != recv)
        assert len(set(zip(send.tolist(), recv.tolist()))) == s * (s - 1)
    # edges_to_dense puts edge e = (send[e], recv[e]) at [send, recv] and zeros on the diagonal
    s = 4
    send, recv = relations.edge_index(s)
    values = np.random.default_rng(0).normal(size=(2, s * (s - 1), K)).astype(np.float32)
    dense = relations.edges_to_dense(tf.constant(values), s).numpy()
    assert dense.shape == (2, s, s, K)
    np.testing.assert_array_equal(dense[:, send, recv], values)
    np.testing.assert_array_equal(dense[:, np.arange(s), np.arange(s)], 0.0)


def test_mpnn_is_permutation_equivariant():
    """Permuting the entities permutes the dense edge logits/probs: out(zP)[i,j] = out(z)[π(i),π(j)]."""
    mpnn = relations.RelationMPNN(S, K, hidden=8)
    z = tf.random.stateless_normal([3, S, D], [2, 3])
    perm = np.array([2, 0, 3, 1])
    z_perm = tf.gather(z, perm, axis=1)  # (zP)_i = z_π(i)
    for transform in (lambda e: e, relations.relation_probs):
        out = relations.edges_to_dense(transform(mpnn(z)), S).numpy()
        out_perm = relations.edges_to_dense(transform(mpnn(z_perm)), S).numpy()
        np.testing.assert_allclose(out_perm, out[:, perm][:, :, perm], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(out[:, np.arange(S), np.arange(S)], 0.0)
    # not trivially equivariant: different edges do get different logits
    logits = mpnn(z).numpy()
    assert np.std(logits[:, :, 0]) > 1e-4


def test_gumbel_relations_simplex_hard_and_seeds():
    logits = tf.random.stateless_normal([3, S * (S - 1), K], [4, 5])
    weights = tf.random.stateless_normal([3, S * (S - 1), K], [6, 7])  # random readout for gradients
    seed = tf.constant([1, 2], tf.int32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        soft = relations.sample_relations(logits, 0.5, seed)
        hard = relations.sample_relations(logits, 0.5, seed, hard=True)
        f_soft = tf.reduce_sum(soft * weights)
        f_hard = tf.reduce_sum(hard * weights)
    s = soft.numpy()
    assert s.shape == (3, S * (S - 1), K)
    assert np.all(s >= 0.0)
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-5)
    h = hard.numpy()
    np.testing.assert_array_equal(np.sort(h, -1)[..., :-1], 0.0)  # one-hot: K−1 zeros, one 1
    np.testing.assert_allclose(h.max(-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(h.argmax(-1), s.argmax(-1))  # the one-hot of the soft sample
    # straight-through: the hard sample's gradient is the soft sample's (and it is non-zero)
    g_soft, g_hard = tape.gradient(f_soft, logits), tape.gradient(f_hard, logits)
    assert np.abs(g_hard.numpy()).max() > 1e-3
    np.testing.assert_allclose(g_hard.numpy(), g_soft.numpy(), rtol=1e-6, atol=1e-7)
    # stateless: the same seed gives the same sample, another seed another sample
    np.testing.assert_array_equal(relations.sample_relations(logits, 0.5, seed).numpy(), s)
    other = relations.sample_relations(logits, 0.5, tf.constant([1, 3], tf.int32)).numpy()
    assert np.abs(other - s).max() > 1e-2
    # dense diagonals of sampled relations are exactly zero
    dense = relations.edges_to_dense(soft, S).numpy()
    np.testing.assert_array_equal(dense[:, np.arange(S), np.arange(S)], 0.0)


# ------------------------------------------------------------------------------ critics


def _leaky(x):
    return np.where(x >= 0, x, 0.01 * x)


@pytest.mark.parametrize("training", [False, True])
def test_relation_head_matches_naive_concatenation(training):
    n, f, hdim = 6, 10, 5
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(n, f)).astype(np.float32)
    anchor = np.array([0, 1, 2, 3, 4, 5, 0, 2], np.int32)
    other = np.array([1, 0, 3, 2, 5, 4, 3, 5], np.int32)
    head = critics.RelationHead(hdim)
    head(tf.constant(feats), tf.constant(anchor), tf.constant(other))  # build
    # non-trivial BN parameters and moving statistics
    bn = head.bn
    gamma, beta = rng.uniform(0.5, 2.0, hdim), rng.normal(size=hdim)
    mmean, mvar = rng.normal(size=hdim), rng.uniform(0.5, 2.0, hdim)
    for var, val in ((bn.gamma, gamma), (bn.beta, beta), (bn.moving_mean, mmean), (bn.moving_variance, mvar)):
        var.assign(val.astype(np.float32))
    head.w_anchor.bias.assign(rng.normal(size=hdim).astype(np.float32))
    scores = head(tf.constant(feats), tf.constant(anchor), tf.constant(other), training=training).numpy()

    kernel = head.first_layer_kernel().numpy()  # [2F, H]
    assert kernel.shape == (2 * f, hdim)
    pre = np.concatenate([feats[anchor], feats[other]], axis=1) @ kernel + head.w_anchor.bias.numpy()
    if training:
        mean, var = pre.mean(0), pre.var(0)  # batch statistics (biased variance)
    else:
        mean, var = mmean, mvar
    normed = (pre - mean) / np.sqrt(var + 1e-5) * gamma + beta
    assert (normed < 0).any() and (normed > 0).any()  # both LeakyReLU branches are exercised
    expect = _leaky(normed) @ head.out.kernel.numpy()[:, 0] + head.out.bias.numpy()[0]
    assert scores.shape == (len(anchor),)
    np.testing.assert_allclose(scores, expect, rtol=1e-4, atol=1e-5)


def test_structure_critic_matches_naive_bilinear_sum():
    n = 5
    rng = np.random.default_rng(2)
    critic = critics.StructureCritic(S, K)
    h = rng.normal(size=(n, S, S, K)).astype(np.float32)
    a = rng.normal(size=(n, S, S, K)).astype(np.float32)
    anchor = np.array([0, 1, 2, 3, 4, 0], np.int32)
    other = np.array([1, 2, 3, 4, 0, 0], np.int32)
    critic(tf.constant(h), tf.constant(a), tf.constant(anchor), tf.constant(other))  # build
    assert tuple(critic.w.shape) == (S * S, S * S, K)
    w = rng.normal(size=(S * S, S * S, K)).astype(np.float32)
    critic.w.assign(w)
    scores = critic(tf.constant(h), tf.constant(a), tf.constant(anchor), tf.constant(other)).numpy()
    expect = np.zeros(len(anchor))
    for p, (i, j) in enumerate(zip(anchor, other)):
        for k in range(K):
            vec_h = h[i, :, :, k].reshape(-1).astype(np.float64)  # vec(h_k), row-major
            vec_a = a[j, :, :, k].reshape(-1).astype(np.float64)
            expect[p] += vec_h @ w[:, :, k].astype(np.float64) @ vec_a
    np.testing.assert_allclose(scores, expect, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------ gradients


def _grads_by_part(model, data):
    _, _, grads, variables = model.compute_gradients(data)
    parts = {"encoder": model.encoder, "mpnn": model.mpnn, "head": model.relation_head,
             "W": model.structure_critic}
    ids = {name: {id(v) for v in layer.trainable_variables} for name, layer in parts.items()}
    out = {name: [] for name in parts}
    for g, v in zip(grads, variables):
        for name in parts:
            if id(v) in ids[name]:
                out[name].append(None if g is None else g.numpy())
    return out


def _shared_models(objectives, data_size=16):
    """Models for ``objectives`` with identical weights (W enlarged so that xa matters)."""
    keras.utils.set_random_seed(0)
    models = []
    for objective in objectives:
        m = model_lib.HSLModel(_config(objective))
        m.build_all((data_size, data_size))
        m.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
        models.append(m)
    src = models[0]
    src.structure_critic.w.assign(0.3 * tf.random.stateless_normal(src.structure_critic.w.shape, [9, 9]))
    for m in models[1:]:
        m.set_weights(src.get_weights())
    return models


def _nonzero(g):
    return g is not None and np.abs(g).max() > 0


def test_each_objective_trains_exactly_its_parts():
    data = _batch()
    names = ("xza", "xz", "xa", "bce")
    grads = dict(zip(names, (_grads_by_part(m, data) for m in _shared_models(names))))
    for objective, parts in grads.items():
        assert parts["encoder"] and all(_nonzero(g) for g in parts["encoder"]), objective
        uses_head = objective in ("xz", "bce", "xza")
        uses_structure = objective in ("xa", "xza")
        if uses_head:  # (the head's first bias may be ~0: a bias before BN has no effect)
            assert all(g is not None for g in parts["head"]) and any(_nonzero(g) for g in parts["head"])
        else:
            assert all(g is None for g in parts["head"]), objective
        for part in ("mpnn", "W"):
            if uses_structure:
                assert all(g is not None for g in parts[part]), (objective, part)
                assert any(_nonzero(g) for g in parts[part]), (objective, part)
            else:
                assert all(g is None for g in parts[part]), (objective, part)
    # xza = xz + xa term by term (same weights, same BN batch statistics, same Gumbel seed), so its
    # encoder gradient is the sum of the two single-critic gradients, and the xa term contributes.
    for g_xza, g_xz, g_xa in zip(grads["xza"]["encoder"], grads["xz"]["encoder"], grads["xa"]["encoder"]):
        scale = np.abs(g_xza).max()
        np.testing.assert_allclose(g_xza, g_xz + g_xa, rtol=1e-3, atol=1e-4 * scale)
    diff = max(np.abs(a - b).max() / np.abs(a).max()
               for a, b in zip(grads["xza"]["encoder"], grads["xz"]["encoder"]))
    assert diff > 1e-2
    for g_xza, g_xz in zip(grads["xza"]["head"], grads["xz"]["head"]):  # only xz reaches the head
        np.testing.assert_allclose(g_xza, g_xz, rtol=1e-4, atol=1e-6)
    for part in ("mpnn", "W"):  # only xa reaches the MPNN and W
        for g_xza, g_xa in zip(grads["xza"][part], grads["xa"][part]):
            np.testing.assert_allclose(g_xza, g_xa, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------ fit smoke


def _eval_loss(model, data):
    """Deterministic training-mode loss (batch-stat BN, fixed Gumbel seed) on ``data``."""
    per_image, _ = model._forward(data, training=True, seed=tf.constant([7, 7], tf.int32))
    return float(tf.reduce_mean(per_image))


@pytest.mark.parametrize("objective", config.objectives_and_supervised())
def test_fit_lowers_the_loss_and_moves_the_weights(objective):
    data = _batch(b=4, v=2, seed=3)
    keras.utils.set_random_seed(1)
    model = model_lib.HSLModel(_config(objective, seed=1))
    model.build_all((16, 16))
    # eager: skips ~5-15 s of tracing per model; graph-mode fit is covered by test_distribution.py
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False, run_eagerly=True)
    before_loss = _eval_loss(model, data)
    before = {id(v): v.numpy().copy() for v in model.trainable_variables}
    ds = tf.data.Dataset.from_tensors(data).repeat()
    history = model.fit(ds, epochs=1, steps_per_epoch=6, verbose=0)
    assert int(model.optimizer.iterations) == 6
    assert np.isfinite(history.history["loss"][0])
    after_loss = _eval_loss(model, data)
    assert after_loss < before_loss - 1e-3, (objective, before_loss, after_loss)
    # the variables the objective reaches moved; the others (e.g. W for xz) did not
    _, _, grads, variables = model.compute_gradients(data)
    for g, v in zip(grads, variables):
        moved = not np.array_equal(v.numpy(), before[id(v)])
        assert moved == (g is not None), (objective, v.path)
