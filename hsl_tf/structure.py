"""What the relations carry: information measures per edge, and the terms that train on them.

Pooled usage (the share of each relation type over the batch *and* the edges) cannot tell live
relations from useless ones: a graph that is the same for every image, or relations that are
uniform noise, can both use every type equally. The measures here are per edge. For relation
probabilities p ∈ [N, E, K] (N views, E edges, K types) and the positive pairs (views of the same
image) of the batch:

  edge entropy        mean_e H(mean_n p[n, e])          0 for a graph that is the same for every image
  prediction entropy  mean_{n,e} H(p[n, e])             log K for uniform predictions
  relation info       edge entropy − prediction entropy  I(image; relation) per edge (RIM's term)
  cross-view MI       mean_e I(P_e)                       P_e the K×K joint of the two views' relations
                                                          of an image, symmetrised (IIC's formula)

A constant graph gives 0 for the edge entropy, the relation info and the cross-view MI; uniform
predictions give 0 for the last two. The cross-view MI is the one that needs the augmentations to
agree: it is a lower bound of I(X; A_e) per edge (data processing: the two views' relations are
independent given the image).

Pure functions, no Keras state. Entropies and MI in nats.
"""

import math

import tensorflow as tf

EPS = 1e-12


def entropy(p, axis=-1):
    """Shannon entropy along ``axis`` (0·log 0 = 0)."""
    return -tf.reduce_sum(p * tf.math.log(p + EPS), axis=axis)


def edge_entropy(probs):
    """Per edge, the entropy of the batch-mean relation: [N, E, K] → [E]."""
    return entropy(tf.reduce_mean(probs, axis=0))


def prediction_entropy(probs):
    """Per edge, the mean entropy of one view's relation: [N, E, K] → [E]."""
    return tf.reduce_mean(entropy(probs), axis=0)


def cross_view_joint(probs, first, second):
    """Per edge, the symmetrised K×K joint of two views' relations over the pairs (first[i], second[i]).

    Args:
      probs: [N, E, K] relation probabilities of every view.
      first, second: int [P] row indices of the two views of each pair (the same image).
    Returns:
      [E, K, K], each slice a joint distribution (non-negative, sums to 1, symmetric).
    """
    p1, p2 = tf.gather(probs, first), tf.gather(probs, second)  # [P, E, K]
    joint = tf.einsum("pek,pel->ekl", p1, p2) / tf.cast(tf.shape(p1)[0], probs.dtype)  # [E, K, K]
    return 0.5 * (joint + tf.transpose(joint, [0, 2, 1]))


def joint_mi(joint):
    """The mutual information of K×K joints: [..., K, K] → [...] (IIC's formula, nats)."""
    joint = tf.maximum(joint, EPS)
    rows = tf.reduce_sum(joint, axis=-1, keepdims=True)  # [..., K, 1]
    cols = tf.reduce_sum(joint, axis=-2, keepdims=True)  # [..., 1, K]
    return tf.reduce_sum(joint * (tf.math.log(joint) - tf.math.log(rows) - tf.math.log(cols)), axis=[-2, -1])


def cross_view_mi(probs, first, second):
    """Per edge, the MI between two views' relations of the same image: [N, E, K] → [E]."""
    return joint_mi(cross_view_joint(probs, first, second))


def measures(probs, first, second):
    """The batch's relation measures (scalars): ``edge_entropy``, ``prediction_entropy``,
    ``relation_info`` and ``cross_view_mi`` (each the mean over edges), for probabilities
    [N, E, K] and the positive pairs (first[i], second[i])."""
    h_edge, h_pred = tf.reduce_mean(edge_entropy(probs)), tf.reduce_mean(prediction_entropy(probs))
    return {"edge_entropy": h_edge, "prediction_entropy": h_pred, "relation_info": h_edge - h_pred,
            "cross_view_mi": tf.reduce_mean(cross_view_mi(probs, first, second))}


def info_penalty(probs):
    """The ``info`` relation prior: mean_e (log K − [H(mean_n p_e) − mean_n H(p_e)]) ∈ [0, log K].

    Zero exactly when every edge's batch-mean relation is uniform and every single prediction is
    one-hot: each edge then splits the batch's images evenly between the types (RIM/IMSAT's
    objective, per edge). A constant graph and uniform predictions both pay the full log K.
    [N, E, K] → [].
    """
    k = tf.cast(tf.shape(probs)[-1], probs.dtype)
    return tf.math.log(k) - tf.reduce_mean(edge_entropy(probs) - prediction_entropy(probs))


def annealed_temperature(step, final, start=0.0, steps=1):
    """τ at ``step``: ``final`` when ``start`` is 0, else start·(final/start)^(step/steps), held at
    ``final`` from ``steps`` on (exponential annealing, as wav2vec 2.0's Gumbel quantiser)."""
    if not start:
        return tf.constant(final, tf.float32)
    frac = tf.minimum(tf.cast(step, tf.float32) / float(steps), 1.0)
    return start * tf.exp(frac * math.log(final / start))
