"""Positive and negative pairs of views, as static gather indices.

Views are laid out image-major: view v of image b sits at row n = b·V + v of the [B·V, ...]
tensors. For every image b and every view pair (i < j), Q = V(V−1)/2 of them:
  - the positive pair joins view i of image b with view j of image b;
  - the negative pair joins view i of image b with view j of image (b + shift_q) mod B,
    shift_q = 1 + q mod (B − 1), so it is always another image (the rolled negatives of
    Patacchiola & Storkey, 2020).
There are B·Q positives and B·Q negatives, V(V−1)·B pairs in all, as in the baseline.
The *anchor* (first) side of a pair supplies g(x) to T_β and h(x) to T_ω; the *other* side
supplies z to T_β and the sampled relations a to T_ω.
"""

import functools

import numpy as np

# Where a replica's pairs find their other views (--negatives; hsl_tf.batch.Batch): the global
# batch, gathered across replicas, or the replica's own share.
NEGATIVES = ("global", "replica")


@functools.lru_cache(maxsize=64)
def pair_indices(batch_size, num_views):
    """Static pair indices for B images and V views each.

    Returns:
      dict of int32 arrays of shape [B, Q] (row b = the pairs anchored at image b):
      ``anchor``, ``positive`` and ``negative`` (row indices into the [B·V, ...] views).
    Raises:
      ValueError: B < 2 (no negative exists) or V < 2 (no positive exists).
    """
    b, v = int(batch_size), int(num_views)
    if b < 2:
        raise ValueError(f"need at least 2 images per replica batch to form negatives, got {b}")
    if v < 2:
        raise ValueError(f"need at least 2 views per image to form positives, got {v}")
    vi, vj = np.triu_indices(v, k=1)  # [Q] view pairs i < j
    q = len(vi)
    shift = 1 + np.arange(q) % (b - 1)  # [Q] in 1..B-1
    img = np.arange(b)[:, None]  # [B, 1]
    anchor = img * v + vi[None, :]  # [B, Q]
    positive = img * v + vj[None, :]  # [B, Q]
    negative = ((img + shift[None, :]) % b) * v + vj[None, :]  # [B, Q]
    return {k: a.astype(np.int32) for k, a in
            dict(anchor=anchor, positive=positive, negative=negative).items()}
