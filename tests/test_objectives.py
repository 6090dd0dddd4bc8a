"""Objectives: the NWJ bound (optimal critic, sub-optimal critics, stability), the focal loss,
and the additivity I(X,Z,A) = I(X,Z) + I(X,A), both on raw scores and through the model."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import model as model_lib
from tests.helpers import tiny_model_config
from hsl_tf import objectives

# ------------------------------------------------------------------- correlated Gaussians


def _gaussian_log_ratio(x, y, rho):
    """log p(x,y) / (p(x) p(y)) for a standard bivariate normal with correlation rho."""
    r2 = 1.0 - rho * rho
    return -0.5 * math.log(r2) - (rho * rho * (x * x + y * y) - 2.0 * rho * x * y) / (2.0 * r2)


def _gaussian_samples(rho, n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = rho * x + math.sqrt(1.0 - rho * rho) * rng.standard_normal(n)
    y_shuffled = y[rng.permutation(n)]  # (x, y_shuffled) ~ p(x) p(y)
    return rng, x, y, y_shuffled


def _nwj(pos, neg):
    """The estimator under test, on one 'image' row holding all the samples (float64)."""
    return float(objectives.nwj_estimate(tf.constant(pos[None]), tf.constant(neg[None]))[0])


def _standard_error(pos, neg):
    """SE of mean(pos) − mean(e^{neg−1}) from the sample variances (independent terms)."""
    return math.sqrt(np.var(pos) / len(pos) + np.var(np.exp(neg - 1.0)) / len(neg))


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_nwj_optimal_critic_recovers_gaussian_mi(rho):
    """T* = 1 + log p/(p p) gives NWJ = I = −½ log(1−ρ²) within 4 standard errors."""
    _, x, y, y_shuffled = _gaussian_samples(rho)
    pos = 1.0 + _gaussian_log_ratio(x, y, rho)
    neg = 1.0 + _gaussian_log_ratio(x, y_shuffled, rho)
    true_mi = -0.5 * math.log(1.0 - rho * rho)
    estimate = _nwj(pos, neg)
    se = _standard_error(pos, neg)
    assert se < 0.02  # the sample is large enough for the check to be meaningful
    assert abs(estimate - true_mi) < 4.0 * se, (estimate, true_mi, se)
    # the estimator is exactly mean(pos) − mean(e^{neg−1}) below the clip point
    assert estimate == pytest.approx(pos.mean() - np.exp(neg - 1.0).mean(), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_nwj_suboptimal_critics_give_lower_values(rho):
    """Any other critic is worse than T*: on the same samples and in closed form.

    Population values (E_p[T*] = 1 + I, E_q[e^{T*−1}] = 1):
      T* + c        → I − (e^c − 1 − c)            < I for c ≠ 0
      T* + ε, ε~N(0, σ²) indep. → I + 1 − e^{σ²/2} < I
    On a fixed sample, each alternative's estimate is compared with T*'s on the *same* pairs;
    the difference must be negative by more than 4 standard errors of the paired difference.
    """
    rng, x, y, y_shuffled = _gaussian_samples(rho, seed=1)
    t_pos = 1.0 + _gaussian_log_ratio(x, y, rho)
    t_neg = 1.0 + _gaussian_log_ratio(x, y_shuffled, rho)
    true_mi = -0.5 * math.log(1.0 - rho * rho)
    best = _nwj(t_pos, t_neg)
    sigma = 0.5
    noise_pos = sigma * rng.standard_normal(len(x))
    noise_neg = sigma * rng.standard_normal(len(x))
    alternatives = {
        "T*+0.5": (t_pos + 0.5, t_neg + 0.5, true_mi - (math.exp(0.5) - 1.5)),
        "T*-0.5": (t_pos - 0.5, t_neg - 0.5, true_mi - (math.exp(-0.5) - 0.5)),
        "T*+1": (t_pos + 1.0, t_neg + 1.0, true_mi - (math.exp(1.0) - 2.0)),
        "0.5*T*": (0.5 * t_pos, 0.5 * t_neg, None),
        "T*+noise": (t_pos + noise_pos, t_neg + noise_neg, true_mi + 1.0 - math.exp(sigma ** 2 / 2)),
    }
    for name, (pos, neg, population) in alternatives.items():
        value = _nwj(pos, neg)
        # paired difference per sample pair: (pos − t_pos) − (e^{neg−1} − e^{t_neg−1})
        diff = (pos - t_pos) - (np.exp(neg - 1.0) - np.exp(t_neg - 1.0))
        se_diff = diff.std() / math.sqrt(len(diff))
        assert value - best == pytest.approx(diff.mean(), abs=1e-9), name
        assert value - best < -4.0 * se_diff, (name, value, best, se_diff)
        if population is not None:
            assert population < true_mi
            assert abs(value - population) < 4.0 * _standard_error(pos, neg), (name, value, population)


# ------------------------------------------------------------------- stability of exp1 / NWJ


@pytest.mark.parametrize("dtype,big", [(tf.float32, 1e4), (tf.float32, 1e20), (tf.float64, 1e4),
                                       (tf.float64, 1e30)])
def test_nwj_value_and_gradients_finite_for_extreme_scores(dtype, big):
    """Loss and gradients are finite for huge positive/negative scores on both sides.

    (float32 stops at 1e20: the linear continuation e^29·(1 + T − 30) itself exceeds the float32
    range above T ≈ 8.7e25; float64 is checked at 1e30.)
    """
    values = [[big, -big, 0.0], [-big, big, 3.0]]
    pos = tf.constant(values, dtype)
    neg = tf.constant(values[::-1], dtype)
    for estimator in objectives.ESTIMATORS.values():
        with tf.GradientTape() as tape:
            tape.watch([pos, neg])
            loss, estimate = estimator(pos, neg)
            total = tf.reduce_sum(loss)
        g_pos, g_neg = tape.gradient(total, [pos, neg])
        for t in (loss, estimate, g_pos, g_neg):
            assert np.all(np.isfinite(t.numpy())), (estimator.__name__, t)
    # NWJ gradients in closed form: d(−bound)/d pos = −1/Q, d(−bound)/d neg = exp1'(neg)/Q
    with tf.GradientTape() as tape:
        tape.watch([pos, neg])
        total = tf.reduce_sum(objectives.nwj(pos, neg)[0])
    g_pos, g_neg = tape.gradient(total, [pos, neg])
    np.testing.assert_allclose(g_pos.numpy(), -1.0 / 3.0, rtol=1e-6)
    n = neg.numpy()
    slope = np.where(n <= objectives.EXP_CLIP, np.exp(np.minimum(n, objectives.EXP_CLIP) - 1.0),
                     math.exp(objectives.EXP_CLIP - 1.0))
    np.testing.assert_allclose(g_neg.numpy(), slope / 3.0, rtol=1e-5)


def test_nwj_gradients_finite_in_float32_beyond_the_value_range():
    """float32, T = ±1e30: e^29·(1 + T − 30) overflows to +inf (documented limit of the linear
    continuation), but the gradients stay finite (slope e^29), so one diverged score cannot
    poison the update with NaN/inf."""
    pos = tf.constant([[1e30, -1e30, 0.0]], tf.float32)
    neg = tf.constant([[-1e30, 1e30, 0.0]], tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([pos, neg])
        loss = tf.reduce_sum(objectives.nwj(pos, neg)[0])
    g_pos, g_neg = tape.gradient(loss, [pos, neg])
    np.testing.assert_allclose(g_pos.numpy(), -1.0 / 3.0, rtol=1e-6)
    np.testing.assert_allclose(g_neg.numpy(), [[0.0, math.exp(29.0) / 3.0, math.exp(-1.0) / 3.0]], rtol=1e-5)


def test_exp1_below_clip_is_exact_and_c1_at_clip():
    c = objectives.EXP_CLIP
    t = np.linspace(-60.0, c, 181)
    np.testing.assert_allclose(objectives.exp1(tf.constant(t)).numpy(), np.exp(t - 1.0), rtol=1e-12)
    t32 = tf.constant(np.linspace(-20.0, c, 51), tf.float32)
    np.testing.assert_allclose(objectives.exp1(t32).numpy(), np.exp(t32.numpy().astype(np.float64) - 1.0),
                               rtol=1e-5)
    # above the clip: the tangent line at c
    e = math.exp(c - 1.0)
    above = np.array([c + 1e-3, c + 1.0, c + 100.0, 1e4])
    np.testing.assert_allclose(objectives.exp1(tf.constant(above)).numpy(), e * (1.0 + above - c), rtol=1e-12)
    # value continuity from both sides, and one-sided slopes (finite differences) equal e^{c−1}
    h = 1e-6
    at = float(objectives.exp1(tf.constant(c, tf.float64)))
    left = float(objectives.exp1(tf.constant(c - h, tf.float64)))
    right = float(objectives.exp1(tf.constant(c + h, tf.float64)))
    assert at == pytest.approx(e, rel=1e-12)
    assert (at - left) / h == pytest.approx(e, rel=1e-5)
    assert (right - at) / h == pytest.approx(e, rel=1e-5)
    # autodiff slopes just below, at and just above the clip point
    points = tf.constant([c - 1e-9, c, c + 1e-9], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(points)
        y = objectives.exp1(points)
    np.testing.assert_allclose(tape.gradient(y, points).numpy(), e, rtol=1e-8)


# ------------------------------------------------------------------- focal loss


def _numpy_focal(pos, neg, gamma=2.0, alpha=0.5):
    sig = lambda t: 1.0 / (1.0 + np.exp(-t))  # noqa: E731
    p_pos, p_neg = sig(pos), sig(neg)
    fl_pos = -alpha * (1.0 - p_pos) ** gamma * np.log(p_pos)  # target 1
    fl_neg = -(1.0 - alpha) * p_neg ** gamma * np.log(1.0 - p_neg)  # target 0
    return 0.5 * (fl_pos.mean(-1) + fl_neg.mean(-1))


def test_focal_matches_numpy():
    pos = np.array([[2.0, -1.0, 0.0], [0.5, 3.0, -2.5]])
    neg = np.array([[-3.0, 1.5, 0.2], [0.0, -0.7, 4.0]])
    loss, estimate = objectives.focal(tf.constant(pos), tf.constant(neg))
    np.testing.assert_allclose(loss.numpy(), _numpy_focal(pos, neg), rtol=1e-10)
    # hand value of one term: logit 0 → p = ½: α·(½)²·log 2 for either target
    single, _ = objectives.focal(tf.constant([[0.0]], tf.float64), tf.constant([[0.0]], tf.float64))
    assert float(single[0]) == pytest.approx(0.5 * (0.5 * 0.25 * math.log(2) * 2), rel=1e-12)
    # the reported estimate is still the NWJ bound
    np.testing.assert_allclose(estimate.numpy(), pos.mean(-1) - np.exp(neg - 1.0).mean(-1), rtol=1e-12)


def test_focal_on_both_critics_matches_numpy():
    """Focal on T_β and on T_ω (a candidate of the 32-view screen): the per-image loss is the closed form of each
    critic's scores, the structure term weighted by λ; the reported bounds stay the NWJ values."""
    rng = np.random.default_rng(11)
    xz = tuple(rng.normal(size=(4, 3)) * 3 for _ in range(2))
    xa = tuple(rng.normal(size=(4, 3)) * 3 for _ in range(2))
    lam = 0.37
    loss, diags = objectives.compute_objective({"xz": tuple(map(tf.constant, xz)), "xa": tuple(map(tf.constant, xa))},
                                               objectives.critics_of("xza", "focal", "focal"), {"xa": lam})
    np.testing.assert_allclose(loss.numpy(), _numpy_focal(*xz) + lam * _numpy_focal(*xa), rtol=1e-10)
    nwj_xa = xa[0].mean(-1) - np.exp(xa[1] - 1.0).mean(-1)
    assert float(diags["bound_xa"]) == pytest.approx(nwj_xa.mean(), rel=1e-10)


# ------------------------------------------------------------------- additivity xza = xz + xa


def test_compute_objective_adds_both_critics():
    rng = np.random.default_rng(3)
    xz = tuple(tf.constant(rng.normal(size=(4, 3))) for _ in range(2))
    xa = tuple(tf.constant(rng.normal(size=(4, 3))) for _ in range(2))
    est = {"xz": "nwj", "xa": "nwj"}
    loss, diags = objectives.compute_objective({"xz": xz, "xa": xa}, est)
    loss_xz, d_xz = objectives.compute_objective({"xz": xz}, {"xz": "nwj"})
    loss_xa, d_xa = objectives.compute_objective({"xa": xa}, {"xa": "nwj"})
    np.testing.assert_allclose(loss.numpy(), (loss_xz + loss_xa).numpy(), rtol=1e-12)
    assert float(diags["mi"]) == pytest.approx(float(d_xz["bound_xz"]) + float(d_xa["bound_xa"]), rel=1e-12)
    assert float(diags["bound_xz"]) == pytest.approx(float(d_xz["mi"]), rel=1e-12)
    # and the bounds are the per-image NWJ values averaged over images
    expect_xz = np.mean(xz[0].numpy().mean(-1) - np.exp(xz[1].numpy() - 1.0).mean(-1))
    assert float(diags["bound_xz"]) == pytest.approx(expect_xz, rel=1e-12)
    assert float(diags["pos_xa"]) == pytest.approx(xa[0].numpy().mean(), rel=1e-12)
    assert float(diags["neg_xa"]) == pytest.approx(xa[1].numpy().mean(), rel=1e-12)
    # objective registry: xza trains both critics with NWJ; bce keeps focal whatever the flags
    assert objectives.critics_of("xza") == {"xz": "nwj", "xa": "nwj"}
    assert objectives.critics_of("bce", estimator_xz="nwj") == {"xz": "focal"}
    with pytest.raises(ValueError):
        objectives.critics_of("nope")


def test_model_xza_loss_is_sum_of_xz_and_xa_with_shared_weights():
    keras.utils.set_random_seed(0)
    size = (16, 16)
    models = {}
    for objective in ("xza", "xz", "xa"):
        m = model_lib.HSLModel(tiny_model_config(objective))
        m.build_all(size)
        models[objective] = m
    source = models["xza"]
    # larger W than the init (std 0.01) so that the xa term is not negligible
    source.structure_critic.w.assign(tf.random.stateless_normal(source.structure_critic.w.shape, [1, 2]))
    weights = source.get_weights()
    for objective in ("xz", "xa"):
        target = models[objective]
        assert [w.shape for w in target.get_weights()] == [w.shape for w in weights]
        target.set_weights(weights)
    views = tf.random.stateless_normal([3, 3, 16, 16, 3], [4, 5])
    data = {"views": views, "labels": tf.zeros([3], tf.int32)}
    loss_xza, d_xza = source._forward(data, training=False)
    loss_xz, d_xz = models["xz"]._forward(data, training=False)
    loss_xa, d_xa = models["xa"]._forward(data, training=False)
    assert loss_xza.shape == (3,)
    np.testing.assert_allclose(loss_xza.numpy(), (loss_xz + loss_xa).numpy(), rtol=1e-5, atol=1e-6)
    assert float(d_xza["mi"]) == pytest.approx(float(d_xz["bound_xz"]) + float(d_xa["bound_xa"]),
                                               rel=1e-5, abs=1e-6)
    # both terms matter (otherwise the identity would be vacuous): xa moves the xza loss, and
    # its scores are not the W ≈ 0 constant (NWJ loss e^{-1} for all-zero scores)
    assert np.abs(loss_xza.numpy() - loss_xz.numpy()).max() > 1e-2
    assert np.abs(loss_xa.numpy() - math.exp(-1.0)).max() > 1e-2
