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


def make_optimizer(cfg, steps_per_epoch):
    """Adam (the paper) or SGD with momentum 0.9 (the supervised baseline), constant or step lr."""
    lr = cfg.learning_rate
    if cfg.lr_schedule == "step":
        lr = StepDecay(lr, [int(cfg.epochs * f) * steps_per_epoch for f in (0.5, 0.75)])
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9)
    return keras.optimizers.Adam(lr)
