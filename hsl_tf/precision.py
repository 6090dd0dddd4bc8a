"""Mixed precision (``--precision``): the Keras dtype policy of the model, and float16's loss scaling.

- ``float32``: everything in float32 (the default, and every recorded run).
- ``mixed_bfloat16``: layers compute in bfloat16, variables stay float32. bfloat16 has float32's
  range, so no loss scaling.
- ``mixed_float16``: layers compute in float16, variables stay float32, and the loss is scaled
  dynamically (:class:`CountingLossScaleOptimizer`).

In every mode the critic scores, the bounds, the objectives and the Gumbel sampling are float32
(:mod:`hsl_tf.model` casts the scores; T_ω computes in float32): NWJ's e^{T−1} overflows float16
from T ≈ 12, and the loss is the sum of 2·B·Q such terms.

A float16 step whose gradients are not finite is *skipped*: the weights and the optimizer's
moments stay, the loss scale halves, and the step still counts (``iterations`` advances, so the
data order, the augmentations and the Gumbel noise stay functions of the step). The skipped steps
are counted (``skipped_steps``, logged as ``train/skipped_steps`` and written to results.json); the
non-finite guard of bin/train stops a run whose last ``MAX_SKIPPED_IN_A_ROW`` steps were all skipped
(by then the scale fell 2^20-fold and the run is not training).
"""

import contextlib

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
MAX_SKIPPED_IN_A_ROW = 20


@contextlib.contextmanager
def policy(precision):
    """Keras' global dtype policy set to ``precision`` inside the block (layers created there keep
    it), and restored after."""
    import keras

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def wrap_optimizer(optimizer, precision):
    """The optimizer to train with: ``optimizer`` itself, or for float16 its loss-scaled wrapper."""
    if precision != "mixed_float16":
        return optimizer
    return _counting_class()(optimizer)


def skipped_steps(optimizer):
    """The number of skipped steps so far (0 without loss scaling)."""
    counter = getattr(optimizer, "skipped_steps", None)
    return 0 if counter is None else int(counter.numpy())


def scale_loss(optimizer, loss):
    """The loss to differentiate: ``loss`` × the dynamic scale for float16, else ``loss`` itself."""
    counter = getattr(optimizer, "skipped_steps", None)
    return loss if counter is None else optimizer.scale_loss(loss)


_CLASS = []


def _counting_class():
    """:class:`CountingLossScaleOptimizer`, defined on first use (no Keras import at module load)."""
    if _CLASS:
        return _CLASS[0]
    import keras

    class CountingLossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
        """Keras' dynamic loss scaling (it unscales the gradients and skips a non-finite step),
        where a skipped step still advances ``iterations`` and is counted in ``skipped_steps``."""

        def build(self, var_list):
            self.skipped_steps = self.add_variable(shape=(), dtype="int64", initializer="zeros",
                                                   aggregation="none", name="skipped_steps")
            super().build(var_list)

        def _stateful_handle_non_finite_grads(self):
            super()._stateful_handle_non_finite_grads()
            self.iterations.assign_add(1)
            self.skipped_steps.assign_add(1)

    _CLASS.append(CountingLossScaleOptimizer)
    return CountingLossScaleOptimizer
