"""The fused single-replica BatchNorm equals Keras' BatchNormalization: outputs, gradients, statistics."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf.batchnorm import BatchNorm


@pytest.mark.parametrize("shape", [(16, 8, 8, 5), (40, 7), (6, 10, 3)])
def test_matches_keras_batch_normalization(shape):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(1.0, 3.0, shape).astype(np.float32))
    ours = BatchNorm()
    ref = keras.layers.BatchNormalization(synchronized=True, momentum=0.9, epsilon=1e-5)
    ours.build(x.shape)
    ref.build(x.shape)
    for a, b in ((ours.gamma, ref.gamma), (ours.beta, ref.beta)):
        a.assign(rng.normal(size=a.shape).astype(np.float32))
        b.assign(a)
    weights = tf.constant(rng.normal(size=shape).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_ours, y_ref = ours(x, training=True), ref(x, training=True)
        l_ours, l_ref = tf.reduce_sum(y_ours * weights), tf.reduce_sum(y_ref * weights)
    np.testing.assert_allclose(y_ours, y_ref, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(l_ours, x), tape.gradient(l_ref, x), atol=1e-4)
    for a, b in ((ours.gamma, ref.gamma), (ours.beta, ref.beta)):
        np.testing.assert_allclose(tape.gradient(l_ours, a), tape.gradient(l_ref, b), rtol=1e-4, atol=1e-4)
    # moving statistics after one update, then inference with them
    np.testing.assert_allclose(ours.moving_mean, ref.moving_mean, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance, ref.moving_variance, rtol=1e-5)
    np.testing.assert_allclose(ours(x, training=False), ref(x, training=False), atol=1e-5)
    assert not np.allclose(ours.moving_variance, 1.0)  # the update really happened

# Under two replicas BatchNorm defers to Keras' synchronised BN: tests/test_distribution.py checks that a
# 2-replica MirroredStrategy step (synchronised path) equals a one-device step (fused path) within 1e-5.
