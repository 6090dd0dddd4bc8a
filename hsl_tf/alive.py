"""When the structure branch counts as dead, from its per-edge measures (:mod:`hsl_tf.structure`).

Fixed before the selection runs that use them: a graph that is (almost) the same for every image
(edge entropy), or relations that two views of an image do not share (cross-view MI). No
TensorFlow: the training callback, the report and the sweep's records read the same rule.
"""

DEAD_EDGE_ENTROPY = 0.05  # nats, mean over edges of H(batch-mean relation); log 2 = 0.693 at most for K = 2
DEAD_CROSS_VIEW_MI = 0.001  # nats, mean over edges of the MI of two views' relations


def branch_dead(edge_entropy, cross_view_mi):
    """Whether relation measures say the structure branch carries nothing about the image."""
    return edge_entropy < DEAD_EDGE_ENTROPY or cross_view_mi < DEAD_CROSS_VIEW_MI
