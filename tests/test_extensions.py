"""Estimators beyond the paper: InfoNCE and JS (slot-attention entities: test_entities.py).

Estimators are checked against known values on correlated Gaussians with their optimal critics,
and the InfoNCE cap log N against random and extreme scores; every (objective, estimator) gives
finite losses and gradients in the model.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import model as model_lib
from hsl_tf import objectives
from hsl_tf.errors import UserError
from tests.helpers import tiny_model_config

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
    """T_β also takes the baseline's focal loss ("P&S + structure"); the structure term the MI bounds, the
    focal loss (the screen's "focal on both critics") and the per-edge cross-view MI (iic, tests/test_structure.py). (The flags take their choices from these
    registries: tests/test_config.py.)"""
    assert sorted(objectives.ESTIMATORS) == sorted(NEW_ESTIMATORS + ("focal",))
    assert sorted(objectives.XA_ESTIMATORS) == sorted(NEW_ESTIMATORS + ("focal", "iic"))
    assert objectives.critics_of("xza", "focal", "focal") == {"xz": "focal", "xa": "focal"}
    assert objectives.critics_of("xza", "infonce", "js") == {"xz": "infonce", "xa": "js"}
    assert objectives.critics_of("bce", "infonce") == {"xz": "focal"}
    with pytest.raises(UserError, match="infonce"):
        model_lib.ModelConfig(estimator_xa="mine")
    with pytest.raises(UserError, match="entities=capsules"):
        model_lib.ModelConfig(entities="capsules")


def _batch(b=3, v=3, size=16, seed=(4, 5)):
    return {"views": tf.random.stateless_normal([b, v, size, size, 3], seed), "labels": tf.zeros([b], tf.int32)}


@pytest.mark.parametrize("objective", ["xz", "xa", "xza"])
def test_every_estimator_gives_finite_loss_and_gradients(objective):
    """Each (objective, estimator) gives a finite per-image loss and finite gradients that reach
    the encoder; InfoNCE's bounds stay ≤ log(Q + 1) (V = 3 views: Q = 3, log 4)."""
    data = _batch()
    nwj_bounds = {}
    for estimator in NEW_ESTIMATORS:  # nwj first: the same weights, views and noise give js the same scores
        keras.utils.set_random_seed(0)
        m = model_lib.HSLModel(tiny_model_config(objective, estimator_xz=estimator, estimator_xa=estimator))
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
            if estimator == "nwj":
                nwj_bounds[critic] = bound
            if estimator == "js":  # js trains another loss but reports the NWJ value of the same scores
                assert bound == pytest.approx(nwj_bounds[critic], rel=1e-6, abs=1e-7), (objective, critic)
