"""`--clip_norm`: global-norm clipping of the step's gradient (hsl_tf.optim.clip_by_global_norm).

Checked against closed forms: the clipped gradient of [3, 4] at 1 is [0.6, 0.8]; with plain SGD a
clipped step is the unclipped step times clip / ‖g‖; below the threshold the step is bitwise the
unclipped one. On 2 replicas the norm is that of the global batch's gradient, so a clipped
mirrored step equals the clipped one-device step (a per-replica norm would not).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf import optim
from tests.test_distribution import B_GLOBAL, SIZE, V, _make

NWJ = dict(estimator_xz="nwj", estimator_xa="nwj")


def test_closed_form():
    grads = [tf.constant([3.0]), None, tf.constant([[4.0]])]
    clipped, norm = optim.clip_by_global_norm(grads, 1.0)
    assert float(norm) == pytest.approx(5.0)
    assert clipped[1] is None
    np.testing.assert_allclose(clipped[0].numpy(), [0.6], rtol=1e-6)
    np.testing.assert_allclose(clipped[2].numpy(), [[0.8]], rtol=1e-6)
    # float16's loss scale: gradients of the scaled loss, compared unscaled
    clipped, norm = optim.clip_by_global_norm([8 * g for g in grads if g is not None], 1.0, loss_scale=8.0)
    assert float(norm) == pytest.approx(5.0)
    np.testing.assert_allclose(clipped[0].numpy(), [8 * 0.6], rtol=1e-6)
    # below the threshold: the same tensors' values, bitwise
    same, norm = optim.clip_by_global_norm(grads, 5.5)
    assert same[0].numpy().tobytes() == grads[0].numpy().tobytes()
    assert same[2].numpy().tobytes() == grads[2].numpy().tobytes()
    # gradients whose squares overflow float32: the norm is still right, and so is the clip
    big = [tf.constant([3e20]), tf.constant([[4e20]])]
    clipped, norm = optim.clip_by_global_norm(big, 1.0)
    assert float(norm) == pytest.approx(5e20, rel=1e-6)
    np.testing.assert_allclose(clipped[0].numpy(), [0.6], rtol=1e-5)
    same, norm = optim.clip_by_global_norm(big, 1e30)
    assert same[0].numpy().tobytes() == big[0].numpy().tobytes()
    # non-finite gradients are left as they are (the optimizer, or float16's loss scaling, decides)
    kept, norm = optim.clip_by_global_norm([tf.constant([np.inf, 1.0])], 1.0)
    assert not np.isfinite(float(norm)) and kept[0].numpy()[1] == 1.0
    # a zero gradient stays zero (no division by zero)
    zero, norm = optim.clip_by_global_norm([tf.zeros([2])], 1.0)
    assert float(norm) == 0.0 and np.all(zero[0].numpy() == 0.0)


def _data():
    data = {"views": tf.random.stateless_normal([B_GLOBAL, V, SIZE, SIZE, 3], [0, 1]),
            "labels": tf.constant([0, 1, 2, 0], tf.int32)}
    return tf.data.Dataset.from_tensor_slices(data).batch(B_GLOBAL, drop_remainder=True)


def _step(strategy, initial, clip_norm):
    """One SGD step of xza with NWJ from ``initial``: (weights after, logs)."""
    model = _make(strategy, "xza", initial, negatives="global", **NWJ)
    model.clip_norm = clip_norm
    history = model.fit(_data(), epochs=1, steps_per_epoch=1, verbose=0)
    return model.get_weights(), history.history


@pytest.fixture(scope="module")
def start(mirrored):
    one_device = tf.distribute.OneDeviceStrategy("/cpu:0")
    keras.utils.set_random_seed(0)
    model = _make(one_device, "xza", None, negatives="global", **NWJ)
    model.structure_critic.w.assign(0.3 * tf.random.stateless_normal(model.structure_critic.w.shape, [2, 2]))
    return mirrored, one_device, model.get_weights()


def test_clipped_step_is_the_scaled_step(start):
    """Plain SGD: the clipped update is the unclipped one times clip / ‖g‖, for every weight;
    BN's moving statistics, which no gradient moves, are the same."""
    _, one_device, initial = start
    free, _ = _step(one_device, initial, 0.0)
    _, logs = _step(one_device, initial, 1e9)
    norm = logs["batch/grad_norm"][0]
    assert norm > 0.1
    clip = norm / 4
    clipped, logs = _step(one_device, initial, clip)
    assert logs["batch/grad_norm"][0] == pytest.approx(norm, rel=1e-6)  # the norm before clipping
    model = _make(one_device, "xza", initial, negatives="global", **NWJ)
    trainable = {id(v) for v in model.trainable_variables}
    compared = 0
    for var, w0, w_free, w_clip in zip(model.weights, initial, free, clipped):
        if id(var) in trainable:
            np.testing.assert_allclose(w_clip - w0, (w_free - w0) * clip / norm, rtol=1e-3, atol=1e-6,
                                       err_msg=var.path)
            compared += np.abs(w_free - w0).max() > 1e-3
        else:
            np.testing.assert_array_equal(w_clip, w_free, err_msg=var.path)
    assert compared >= 4  # the step moves the encoder, MPNN and both critics


def test_below_threshold_is_bitwise_unclipped(start):
    _, one_device, initial = start
    free, _ = _step(one_device, initial, 0.0)
    high, logs = _step(one_device, initial, 1e9)
    assert "batch/grad_norm" in logs
    for a, b in zip(free, high):
        assert a.tobytes() == b.tobytes()


def test_mirrored_clipped_step_equals_one_device(start):
    """The norm is the global gradient's: 2 replicas clip exactly as one device does."""
    mirrored, one_device, initial = start
    _, logs = _step(one_device, initial, 1e9)
    clip = logs["batch/grad_norm"][0] / 4
    single, h_one = _step(one_device, initial, clip)
    replicated, h_rep = _step(mirrored, initial, clip)
    assert h_rep["batch/grad_norm"][0] == pytest.approx(h_one["batch/grad_norm"][0], rel=1e-5)
    for w_rep, w_one in zip(replicated, single):
        np.testing.assert_allclose(w_rep, w_one, rtol=0, atol=1e-5)
    free, _ = _step(one_device, initial, 0.0)
    assert max(np.abs(a - b).max() for a, b in zip(free, single)) > 1e-2  # clipping bites
