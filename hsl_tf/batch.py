"""The batch a replica's objective is computed over (:class:`Batch`), for :class:`hsl_tf.model.HSLModel`."""

import tensorflow as tf

from hsl_tf import pairs


class Batch:
    """The batch a replica's objective is computed over.

    On one device, or with ``negatives="replica"``, it is the replica's own B images (the pairs of
    :func:`hsl_tf.pairs.pair_indices`). With ``negatives="global"`` under R > 1 replicas, every
    per-view tensor is all-gathered (with its gradient) into the global batch of R·B images in
    replica order; the replica keeps the pairs anchored at its own images, rows r·B … r·B + B − 1 of
    ``pair_indices(R·B, V)``. Each replica then computes those rows of the one-device objective, and
    ``compute_average_loss`` (÷ R·B) with the optimizer's sum over replicas gives the one-device
    step (tests/test_distribution.py).
    """

    def __init__(self, images, views, negatives="global"):
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync if ctx is not None else 1
        self.ctx = ctx if replicas > 1 and negatives == "global" else None
        self.local, self.views = images, views
        self.images = images * replicas if self.ctx is not None else images  # B of the pairs' view rows
        self.first = self.ctx.replica_id_in_sync_group * images if self.ctx is not None else 0

    def gather(self, x):
        """A per-view tensor [B·V, ...] of this replica → the global batch's [R·B·V, ...]."""
        if self.ctx is None:
            return x
        shape = [x.shape[0] * self.ctx.num_replicas_in_sync] + x.shape[1:].as_list()
        return tf.reshape(self.ctx.all_gather(x, axis=0), shape)  # all_gather loses the static shape

    def all_pairs(self):
        """The pair indices of the whole batch (global under global negatives), each [B_all, Q]."""
        return pairs.pair_indices(self.images, self.views)

    def pairs(self):
        """The pairs anchored at this replica's images, each [B, Q], as rows of the gathered views."""
        every = self.all_pairs()
        if self.ctx is None:
            return every
        rows = tf.range(self.local) + self.first
        return {k: tf.gather(tf.constant(v), rows) for k, v in every.items()}

    def own(self, per_image):
        """A per-image tensor of the whole batch [B_all, ...] → this replica's rows [B, ...]."""
        if self.ctx is None:
            return per_image
        return tf.gather(per_image, tf.range(self.local) + self.first)
