"""--augment_on=device: the training step makes, from the uint8 images and the step, the very views
the host pipeline makes (bit for bit on one device; on each replica of two, to float rounding), and a tiny run
trains to the host mode's weights."""

import numpy as np
import pytest
import tensorflow as tf

from hsl_tf.data import augment, pipeline
from tests import helpers

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
B, V, SEED = 6, 3, 7


def _data():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, [48, 20, 20, 3], dtype=np.uint8), np.arange(48) % 5


def _streams(policy, steps=3):
    images, labels = _data()
    kw = dict(batch_size=B, num_views=V, mean=MEAN, std=STD, seed=SEED, start_step=4, policy=policy,
              crop_scale=(0.3, 1.0))
    host = list(pipeline.train_dataset(images, labels, **kw).take(steps))
    device = list(pipeline.train_dataset(images, labels, augment_on="device", **kw).take(steps))
    augmenter = pipeline.device_augmenter(num_views=V, mean=MEAN, std=STD, seed=SEED, policy=policy,
                                          crop_scale=(0.3, 1.0))
    return host, device, augmenter


@pytest.mark.parametrize("policy", list(augment.POLICIES))
def test_device_views_equal_host_views_on_one_device(policy):
    host, device, augmenter = _streams(policy)
    for h, d in zip(host, device):
        assert d["images"].dtype == tf.uint8 and d["step"].shape == (B,)
        np.testing.assert_array_equal(d["labels"].numpy(), h["labels"].numpy())
        views = tf.function(augmenter)(d["images"], d["step"][0])
        np.testing.assert_array_equal(views.numpy(), h["views"].numpy())
    assert [int(d["step"][0]) for d in device] == [4, 5, 6]


@pytest.mark.parametrize("policy", list(augment.POLICIES))
def test_each_replica_makes_its_share_of_the_host_views(policy, mirrored):
    """On 2 replicas, replica r augments images r·B/2 … of the batch with the whole batch's draw:
    the replicas' views, in order, are the host pipeline's views of the whole batch."""
    strategy = mirrored
    host, device, augmenter = _streams(policy, steps=2)
    half = B // 2
    for h, d in zip(host, device):
        images = strategy.experimental_distribute_values_from_function(
            lambda ctx: d["images"][ctx.replica_id_in_sync_group * half:(ctx.replica_id_in_sync_group + 1) * half])
        out = strategy.run(tf.function(augmenter), args=(images, d["step"][0]))
        local = [t.numpy() for t in strategy.experimental_local_results(out)]
        assert [x.shape[0] for x in local] == [half, half]
        # The same views up to float rounding: on an AVX2-only host the kernels, vectorised over half the
        # batch, round some values up to 2 ulp differently (equal on the AVX-512 hosts). A fresh draw
        # instead of the share would differ by whole pixels.
        np.testing.assert_allclose(np.concatenate(local), h["views"].numpy(), rtol=1e-6, atol=1e-6)


def test_the_share_draws_the_global_batchs_parameters():
    """_share: the rows of a global draw, not a fresh draw for the local views."""
    draw = lambda n: tf.random.stateless_uniform([n, 2], [1, 2])  # noqa: E731
    whole = draw(12).numpy()
    part = augment._share(draw, 4, global_images=6, first_image=2, num_views=2).numpy()
    np.testing.assert_array_equal(part, whole[4:8])
    assert not np.array_equal(draw(4).numpy(), part)


@pytest.mark.slow
def test_a_tiny_run_trains_to_the_host_modes_weights(tmp_path):
    from hsl_tf.train import TrainConfig, train

    kw = helpers.tiny_kwargs(None, surrogate_every=0)
    host = train(TrainConfig(**dict(kw, workdir=str(tmp_path / "host")))).results
    device = train(TrainConfig(**dict(kw, workdir=str(tmp_path / "device"), augment_on="device"))).results
    assert device["execution"]["augment_on"] == "device"
    assert device["weights_checksum"] == host["weights_checksum"]
    assert device["bound_xz"] == host["bound_xz"]
