"""Objectives: mutual-information bounds over critic scores. Pure functions, no Keras state.

Score layout: for each critic, ``pos`` and ``neg`` are float [B, Q]: row b holds the scores of
the Q positive (joint) pairs and the Q negative (product-of-marginals) pairs anchored at image b
(see :mod:`hsl_tf.pairs`). Every estimator maps (pos, neg) to a per-image training loss [B] and
a per-image MI estimate in nats [B]; the batch value is the mean over images.

NWJ (Eq. 3): I ≥ E_pos[T] − e^{-1}·E_neg[e^T] = E_pos[T] − E_neg[e^{T−1}].
Beyond the paper (its Sec. 4 names other bounds as future work): ``infonce`` and ``js``, one
per critic (``--estimator_xz``, ``--estimator_xa``); see :func:`infonce` and :func:`js`.

Stability: e^{T−1} is continued linearly above T = ``EXP_CLIP`` (30):
  exp1(T) = e^{T−1}                       for T ≤ 30,
          = e^{29}·(1 + (T − 30))         for T > 30.
It is C¹ (value and slope match at 30), so the loss and its gradients stay finite for critic
outputs far beyond ±1e4 (the value up to T ≈ 1e25 in float32, the gradient for any finite T), and
below 30 nothing changes. Above 30 the gradient of a negative
score stays e^{29} instead of growing without bound, and the value is a slight over-estimate of
the bound (e^x ≥ its tangent); scores that large only occur in a diverging run.
"""

import math

import tensorflow as tf

EXP_CLIP = 30.0


def exp1(t):
    """e^{t−1}, continued linearly above EXP_CLIP (finite value and gradient for finite t)."""
    t = tf.convert_to_tensor(t)
    c = tf.constant(EXP_CLIP, t.dtype)
    safe = tf.exp(tf.minimum(t, c) - 1.0)
    return tf.where(t <= c, safe, math.exp(EXP_CLIP - 1.0) * (1.0 + (t - c)))


def nwj_estimate(pos, neg):
    """NWJ bound per image: mean_q pos − mean_q e^{neg−1}. [B, Q], [B, Q] → [B]."""
    return tf.reduce_mean(pos, axis=-1) - tf.reduce_mean(exp1(neg), axis=-1)


def nwj(pos, neg):
    """The paper's estimator: maximise the NWJ bound. Returns (loss [B], estimate [B])."""
    bound = nwj_estimate(pos, neg)
    return -bound, bound


def focal(pos, neg, gamma=2.0, alpha=0.5):
    """Focal/BCE loss of the I(X,Z) baseline (positives 1, negatives 0; γ=2, α=0.5).

    Returns (loss [B], NWJ estimate [B]): the NWJ value is still reported as the MI estimate.
    """

    def focal_terms(logits, target):
        labels = tf.fill(tf.shape(logits), tf.cast(target, logits.dtype))  # dtype of the scores
        ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        p = tf.sigmoid(logits)
        p_t = p if target == 1.0 else 1.0 - p
        a = alpha if target == 1.0 else 1.0 - alpha
        return a * (1.0 - p_t) ** gamma * ce

    loss = 0.5 * (tf.reduce_mean(focal_terms(pos, 1.0), -1) + tf.reduce_mean(focal_terms(neg, 0.0), -1))
    return loss, nwj_estimate(pos, neg)


def infonce(pos, neg):
    """InfoNCE (van den Oord et al. 2018; Poole et al. 2019): the categorical bound.

    Candidates. For image b and view pair q the candidates are the positive score pos[b, q]
    and the Q negative scores of row b, {neg[b, q'] : q' = 1..Q}: the Q negatives anchored at
    image b, each pairing a view of b with a view of another image. That makes N = Q + 1
    candidates, one of them positive:

        estimate[b] = mean_q [ log(Q + 1) + pos[b, q] − logsumexp({pos[b, q]} ∪ neg[b, :]) ]

    Loss = −estimate. Because logsumexp(candidates) ≥ pos[b, q], every term, and so the
    estimate, is ≤ log(Q + 1) = log N by construction, for any finite scores (also in floating
    point). The candidate set is the row's Q negatives, shared by the Q positives of the row.
    It costs O(B·Q): logsumexp(neg[b, :]) is computed once per row, and each term uses
    logaddexp(pos[b, q], that value).

    Exactness. The textbook bound (≤ I(X; Y)) scores one anchor against exchangeable candidates
    with one function. In our layout, negative q' is scored with anchor view i_{q'} of image b
    (see :mod:`hsl_tf.pairs`), not always the anchor view i_q of the positive. So the value is
    the standard InfoNCE bound when the critic depends on the anchor only through its image
    (as for view-invariant features), and in general it is the in-batch contrastive objective
    of CPC/SimCLR on the same scores. Either way it is capped at log(Q + 1): Q = V(V−1)/2, so
    log 2 for V = 2 views and log 497 ≈ 6.21 for the paper's V = 32.
    Adding a function of the anchor image b to all of row b's scores leaves the estimate
    unchanged. So T* = log p(y|x)/p(y) + c(x) is an optimal critic, with
    estimate → I as N → ∞ (bias ≈ (E_p[r] − 1)/N for the density ratio r).

    Returns (loss [B], estimate [B]).
    """
    q = tf.shape(pos)[-1]
    lse_neg = tf.reduce_logsumexp(neg, axis=-1, keepdims=True)  # [B, 1]
    lse = tf.reduce_logsumexp(tf.stack([pos, tf.broadcast_to(lse_neg, tf.shape(pos))], -1), -1)  # [B, Q]
    log_n = tf.math.log(tf.cast(q + 1, pos.dtype))
    estimate = log_n + tf.reduce_mean(pos - lse, axis=-1)  # [B], pos − lse ≤ 0
    return -estimate, estimate


def js(pos, neg):
    """Jensen-Shannon (softplus) objective, as Deep InfoMax trains (Hjelm et al. 2019).

    loss[b] = mean_q softplus(neg[b, q]) + mean_q softplus(−pos[b, q]), the logistic loss of
    telling joint pairs (label 1) from product pairs (label 0). Its minimiser is the
    log density ratio T = log p/q. At that critic the loss is 2·log 2 − 2·JSD(p‖q).
    The reported MI estimate is the NWJ value (:func:`nwj_estimate`) of the same scores.
    Because NWJ is tight at T = 1 + log p/q, a JS-optimal critic reports I − e^{-1}. Compare
    estimators by downstream accuracy, not by this number.

    Returns (loss [B], NWJ estimate [B]).
    """
    loss = tf.reduce_mean(tf.nn.softplus(neg), axis=-1) + tf.reduce_mean(tf.nn.softplus(-pos), axis=-1)
    return loss, nwj_estimate(pos, neg)


def infonce_all(sim, anchor, positive, num_views):
    """InfoNCE against every view of the other images in the batch (SimCLR's candidate set).

    Args:
      sim: [N, N] scores of every (anchor view, other view), N = B·V views image-major.
      anchor, positive: int [B, Q] the positive pairs anchored at each image (:mod:`hsl_tf.pairs`).
      num_views: V.
    For the pair (a, p) the candidates are p and the (B − 1)·V views of the other images:

        estimate[b] = log(1 + (B−1)·V) + mean_q [ sim[a, p] − logsumexp({sim[a, p]} ∪ sim[a, other images]) ]

    Returns (loss [B], estimate [B]); the estimate is ≤ log(1 + (B−1)·V).
    """
    n = tf.shape(sim)[0]
    image = tf.range(n) // num_views  # [N]
    other = tf.not_equal(image[:, None], image[None, :])  # [N, N]
    lse_other = tf.reduce_logsumexp(tf.where(other, sim, tf.constant(-1e30, sim.dtype)), axis=-1)  # [N]
    pos = tf.gather_nd(sim, tf.stack([anchor, positive], axis=-1))  # [B, Q]
    lse = tf.reduce_logsumexp(tf.stack([pos, tf.gather(lse_other, anchor)], -1), -1)  # [B, Q]
    log_n = tf.math.log(1.0 + tf.cast(n - num_views, sim.dtype))
    estimate = log_n + tf.reduce_mean(pos - lse, axis=-1)
    return -estimate, estimate


# One registry: estimator name → fn(pos [B,Q], neg [B,Q]) → (loss [B], estimate [B]).
# Every one is a --estimator_xz choice; ``focal`` on T_β beside NWJ on T_ω is "P&S + structure"
# (the baseline's loss for I(X,Z), the paper's NWJ for I(X,A)). T_ω takes the same four (``focal``:
# the baseline's loss on the structure scores too, one loss scale for both critics), and ``iic``
# (the structure term only): the exact cross-view MI of the relations per edge
# (:func:`hsl_tf.structure.cross_view_mi`), computed by the model from the relations, not from scores.
ESTIMATORS = {"nwj": nwj, "infonce": infonce, "js": js, "focal": focal}
XA_ESTIMATORS = ("nwj", "infonce", "js", "focal", "iic")

# Objective → the critics it trains ("xz": T_β, "xa": T_ω) and the default estimator of each.
OBJECTIVES = {
    "xz": {"xz": "nwj"},
    "xa": {"xa": "nwj"},
    "xza": {"xz": "nwj", "xa": "nwj"},
    "bce": {"xz": "focal"},
}


def critics_of(objective, estimator_xz="nwj", estimator_xa="nwj"):
    """{critic: estimator} for a self-supervised objective (``bce`` keeps its focal loss)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}")
    chosen = {"xz": estimator_xz, "xa": estimator_xa}
    return {c: (e if e == "focal" else chosen[c]) for c, e in OBJECTIVES[objective].items()}


# ------------------------------------------------------------------ relation priors (beyond the paper)
# NRI trains its relation encoder with KL(q(a|x) ‖ uniform prior); the paper's I(X,A) has no
# such term, and without it the relation usage can collapse onto one type (all edges alike).
RELATION_PRIORS = ("none", "kl", "usage", "info")


def edge_kl_uniform(probs):
    """NRI's prior term: mean over edges of KL(q_e ‖ U(K)) = Σ_k q log q + log K. [N, E, K] → [N]."""
    k = tf.cast(tf.shape(probs)[-1], probs.dtype)
    neg_entropy = tf.reduce_sum(probs * tf.math.log(probs + 1e-12), axis=-1)  # [N, E]
    return tf.reduce_mean(neg_entropy, axis=-1) + tf.math.log(k)


def usage_kl_uniform(probs):
    """KL(ū ‖ U(K)) of the batch's mean relation usage ū = mean_{n,e} q: [N, E, K] → []."""
    usage = tf.reduce_mean(probs, axis=[0, 1])  # [K]
    k = tf.cast(tf.shape(usage)[-1], probs.dtype)
    return tf.reduce_sum(usage * tf.math.log(usage + 1e-12)) + tf.math.log(k)


def relation_prior(name, probs, num_views):
    """Per-image prior penalty [B] for relation probabilities [B·V, E, K] (views image-major).

    ``kl``: NRI's per-edge KL to the uniform prior, averaged over the image's views; ``usage``:
    the KL of the batch's mean usage to uniform, the same value for every image (it stops the
    collapse onto one type without asking each edge to be uncertain); ``info``: per edge, log K
    minus the information between image and relation (:func:`hsl_tf.structure.info_penalty`), the
    same value for every image; ``none``: zeros.
    """
    n = tf.shape(probs)[0]
    if name == "none":
        return tf.zeros([n // num_views], probs.dtype)
    if name == "kl":
        return tf.reduce_mean(tf.reshape(edge_kl_uniform(probs), [-1, num_views]), axis=1)
    if name == "usage":
        return tf.fill([n // num_views], usage_kl_uniform(probs))
    if name == "info":
        from hsl_tf import structure

        return tf.fill([n // num_views], structure.info_penalty(probs))
    raise ValueError(f"unknown relation prior {name!r}; choose one of {', '.join(RELATION_PRIORS)}")


def critic_term(estimator, pos, neg):
    """One critic's (loss [B], estimate [B], mean positive score, mean negative score)."""
    loss, estimate = ESTIMATORS[estimator](pos, neg)
    return loss, estimate, tf.reduce_mean(pos), tf.reduce_mean(neg)


def combine(terms, weights=None):
    """I(X,Z,A) = I(X,Z) + I(X,A) (Z ⟂ A | X, appendix A), each critic's loss weighted.

    Args:
      terms: {critic: (loss [B], estimate [B], mean pos score, mean neg score)} (:func:`critic_term`).
      weights: {critic: weight of its loss} (default 1; λ on "xa" is ``structure_weight``).
    Returns:
      (loss [B] per image, diagnostics dict of scalars): ``bound_<c>`` (nats), ``pos_<c>`` and
      ``neg_<c>`` per critic, and ``mi`` (the unweighted sum of the bounds).
    """
    loss, diags, mi = 0.0, {}, 0.0
    for critic, (critic_loss, estimate, pos, neg) in terms.items():
        loss = loss + (weights or {}).get(critic, 1.0) * critic_loss
        bound = tf.reduce_mean(estimate)
        diags[f"bound_{critic}"] = bound
        diags[f"pos_{critic}"] = pos
        diags[f"neg_{critic}"] = neg
        mi = mi + bound
    diags["mi"] = mi
    return loss, diags


def compute_objective(scores, estimators, weights=None):
    """:func:`combine` of the critics' bounds on scores.

    Args:
      scores: {"xz": (pos, neg), "xa": (pos, neg)} for the active critics, each [B, Q].
      estimators: {critic: estimator name} for the same critics.
      weights: {critic: weight} (default 1 each).
    Returns:
      (loss [B] per image, diagnostics dict of scalars), as :func:`combine`.
    """
    return combine({c: critic_term(estimators[c], *scores[c]) for c in scores}, weights)

