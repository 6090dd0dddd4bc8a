"""The relations, read: does one edge type relate the rows bound to the same object? (numpy)

Notation (docs/interpretation.md, "The relations, read"), for image n with objects k = 1..K_obj
(instance masks M_{n,k} [H, W]), rows i = 1..S of z with saliency s_{n,i} = 1 − σ(φ_{n,i})
(:mod:`hsl_tf.interpret.binding`) and edge probabilities r_{n,i,j} ∈ Δ^K over K edge types (the
export's ``relations`` signature, [N, S, S, K], zero diagonal):

  bound object   o_{n,i} = argmax_k Σ s_{n,i}·M_{n,k}   (the binding score's best object);
                 −1 (no object) when Σ s_{n,i} = 0: the row drops out
  edge type      e_{n,i,j} = argmax_k r_{n,i,j,k}, for ordered pairs i ≠ j
  shares         p_same(k) = share of the pairs with o_{n,i} = o_{n,j} whose edge type is k,
                 p_diff(k) = the same over the pairs with o_{n,i} ≠ o_{n,j}; pooled over images
  association    A = ½ Σ_k |p_same(k) − p_diff(k)| ∈ [0, 1]   (total-variation distance)
                 NaN when either kind of pair is absent
  null           A_0 = mean of A over ``permutations`` shuffles of the rows' objects within each
                 image (numpy default_rng(seed); each image keeps its count of rows per object)
  excess         E = A − A_0

A = 1: one edge type relates exactly the rows of the same object, the others exactly the rows of
different objects; A = 0: the edge type says nothing about it.
"""

import numpy as np

PERMUTATIONS = 200


def bound_objects(sal, instance_masks):
    """o_{n,i}: int64 [N, S], the object each row's saliency falls on most (−1: no saliency).

    Args:
      sal: saliency [N, S, H, W], non-negative.
      instance_masks: [N, K_obj, H, W], 0/1.
    """
    sal = np.asarray(sal, np.float64)
    objects = np.asarray(instance_masks, np.float64)
    on_object = np.einsum("nshw,nkhw->nsk", sal, objects)  # [N, S, K_obj]
    best = on_object.argmax(axis=2) if objects.shape[1] else np.zeros(sal.shape[:2], np.int64)
    return np.where(sal.sum(axis=(2, 3)) > 0, best, -1).astype(np.int64)


def edge_types(relations):
    """e_{n,i,j} = argmax_k r_{n,i,j,k}: int64 [N, S, S] of relations [N, S, S, K]."""
    return np.asarray(relations).argmax(axis=-1).astype(np.int64)


def association(edges, objects, num_types):
    """A of edge types [N, S, S] (int) and bound objects [N, S] (int, −1: none); NaN if undefined.

    Returns (A, p_same [K], p_diff [K], number of same pairs, number of different pairs).
    """
    edges, objects = np.asarray(edges), np.asarray(objects)
    n, s = objects.shape
    off = ~np.eye(s, dtype=bool)[None]  # [1, S, S]: i ≠ j
    valid = (objects[:, :, None] >= 0) & (objects[:, None, :] >= 0) & off  # [N, S, S]
    same = (objects[:, :, None] == objects[:, None, :]) & valid  # [N, S, S]
    diff = valid & ~same
    p_same = np.bincount(edges[same], minlength=num_types)[:num_types].astype(np.float64)
    p_diff = np.bincount(edges[diff], minlength=num_types)[:num_types].astype(np.float64)
    n_same, n_diff = int(same.sum()), int(diff.sum())
    if not n_same or not n_diff:
        return float("nan"), p_same, p_diff, n_same, n_diff
    p_same, p_diff = p_same / n_same, p_diff / n_diff
    return float(0.5 * np.abs(p_same - p_diff).sum()), p_same, p_diff, n_same, n_diff


def permutation_null(edges, objects, num_types, permutations=PERMUTATIONS, seed=0):
    """A_0: the mean A over shuffles of each image's row → object assignment (float; NaN if undefined)."""
    rng = np.random.default_rng(seed)
    objects = np.asarray(objects)
    values = []
    for _ in range(permutations):
        shuffled = np.stack([rng.permutation(row) for row in objects])  # [N, S]
        values.append(association(edges, shuffled, num_types)[0])
    values = np.asarray(values, np.float64)
    return float(values.mean()) if np.isfinite(values).all() else float("nan")


def relation_scores(relations, sal, instance_masks, permutations=PERMUTATIONS, seed=0):
    """The record of one encoder's relations against its masks' objects (all plain floats/ints).

    Args:
      relations: [N, S, S, K] edge probabilities (the ``relations`` signature).
      sal: saliency [N, S, H, W] (1 − σ(φ)).
      instance_masks: [N, K_obj, H, W], 0/1.
    Returns:
      dict: association, association_null, association_excess, p_same [K], p_diff [K],
      pairs_same, pairs_diff.
    """
    relations = np.asarray(relations)
    k = relations.shape[-1]
    edges, objects = edge_types(relations), bound_objects(sal, instance_masks)
    a, p_same, p_diff, n_same, n_diff = association(edges, objects, k)
    a0 = permutation_null(edges, objects, k, permutations, seed)
    return dict(association=a, association_null=a0, association_excess=a - a0,
                p_same=[float(v) for v in p_same], p_diff=[float(v) for v in p_diff],
                pairs_same=n_same, pairs_diff=n_diff)
