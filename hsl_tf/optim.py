"""The optimizers of bin/train: Adam (the paper) or SGD with momentum (P&S's supervised baseline),
with a constant or a step learning rate."""

import tensorflow as tf
import keras

OPTIMIZERS = ("adam", "sgd")  # sgd: momentum 0.9, as the supervised baseline of P&S
LR_SCHEDULES = ("constant", "step")  # step: ×0.1 at 50 % and again at 75 % of the epochs (P&S)


class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``lr · 0.1^(number of boundaries ≤ step)``: P&S's schedule, which divides the learning
    rate by 10 when epoch int(0.5·E) and epoch int(0.75·E) begin (boundaries in steps)."""

    def __init__(self, learning_rate, boundaries):
        self.learning_rate, self.boundaries = float(learning_rate), [int(b) for b in boundaries]

    def __call__(self, step):
        drops = tf.add_n([tf.cast(tf.cast(step, tf.int64) >= b, tf.float32) for b in self.boundaries])
        return self.learning_rate * tf.pow(0.1, drops)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "boundaries": self.boundaries}


def clip_by_global_norm(grads, clip_norm, loss_scale=1.0):
    """Scales the step's gradients so that the global batch's gradient has norm ≤ ``clip_norm``.

    ``grads``: a list of tensors or None (variables the objective does not reach). Under a
    multi-replica strategy each replica holds its share of the global gradient (the losses are
    divided by the global batch, so the optimizer's sum over replicas is the gradient); the norm
    is that of the sum, so the same scale is applied on every replica and the method does not
    change with the number of replicas. ``loss_scale``: float16's dynamic loss scale, by which
    ``grads`` are multiplied (the norm compared with ``clip_norm`` is the unscaled one).
    Returns (the clipped list, the unclipped global norm: float32 scalar). Below the threshold
    the scale is exactly 1.0, so the gradients are bitwise unchanged; the norm is computed
    without overflow for any finite gradients.
    """
    present = [g for g in grads if g is not None]
    total = present
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
        total = ctx.all_reduce(tf.distribute.ReduceOp.SUM, present)
    flat = [tf.cast(g, tf.float32) for g in total]
    # ‖g‖ = m·‖g/m‖ with m the largest |g|: no float32 overflow of the squares (NWJ's e^{T−1} can
    # give gradients above 1e19); m = 0 → 0
    largest = tf.reduce_max(tf.stack([tf.reduce_max(tf.abs(g)) for g in flat]))
    safe = tf.where(largest > 0, largest, 1.0)
    norm = safe * tf.linalg.global_norm([g / safe for g in flat]) / tf.cast(loss_scale, tf.float32)
    # norm 0 → c/0 = inf → 1.0; non-finite gradients (norm inf or NaN) are left to the optimizer
    scale = tf.where(tf.math.is_finite(norm), tf.minimum(1.0, clip_norm / norm), 1.0)
    return [None if g is None else g * tf.cast(scale, g.dtype) for g in grads], norm


def make_optimizer(cfg, steps_per_epoch):
    """Adam (the paper) or SGD with momentum 0.9 (the supervised baseline), constant or step lr."""
    lr = cfg.learning_rate
    if cfg.lr_schedule == "step":
        lr = StepDecay(lr, [int(cfg.epochs * f) * steps_per_epoch for f in (0.5, 0.75)])
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9)
    return keras.optimizers.Adam(lr)
