"""Tests of hsl_tf.data: augmentation, tf.data pipeline and loaders (shapes: test_shapes.py; folder:PATH:
test_folder.py)."""

import time

import numpy as np
import pytest
import tensorflow as tf

from hsl_tf.data import augment, datasets, pipeline, shapes
from hsl_tf.errors import UserError

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)


# ----------------------------------------------------------------------------------- augment


@pytest.fixture(scope="module")
def images():
    return shapes.make_shapes(8, seed=3)["images"]  # [8, 32, 32, 3]


def test_augment_shape_dtype(images):
    out = augment.augment_views(images, tf.constant([1, 2], tf.int32), 3, MEAN, STD)
    assert out.shape == (8, 3, 32, 32, 3) and out.dtype == tf.float32


def test_augment_tf_data_equals_eager(images):
    seed = tf.constant([5, 6], tf.int32)
    eager = augment.augment_views(images, seed, 2, MEAN, STD).numpy()
    ds = tf.data.Dataset.from_tensors(images).map(
        lambda x: augment.augment_views(x, seed, 2, MEAN, STD))
    graph = next(iter(ds)).numpy()
    np.testing.assert_allclose(graph, eager, atol=1e-5)
    again = augment.augment_views(images, seed, 2, MEAN, STD).numpy()
    np.testing.assert_array_equal(again, eager)


def test_augment_seeds_and_views_differ(images):
    a = augment.augment_views(images, [1, 1], 2, MEAN, STD).numpy()
    b = augment.augment_views(images, [1, 2], 2, MEAN, STD).numpy()
    assert np.abs(a - b).mean() > 0.1
    assert np.abs(a[:, 0] - a[:, 1]).mean() > 0.1  # the two views of an image differ


def test_augment_views_come_from_their_image():
    # out[b, v] must be a view of image b: a black image stays exactly black under every op,
    # a white one keeps brightness >= 0.2 (the smallest brightness factor).
    imgs = np.stack([np.full((16, 16, 3), v, np.uint8) for v in (0, 255)])  # [2, 16, 16, 3]
    out = augment.augment_views(imgs, [3, 4], 4, (0.0,) * 3, (1.0,) * 3).numpy()
    np.testing.assert_allclose(out[0], 0.0, atol=1e-6)
    assert out[1].max(axis=(1, 2, 3)).min() > 0.1


def test_normalize_constant_image():
    img = np.zeros((2, 4, 4, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 51, 102, 255  # 0.2, 0.4, 1.0
    out = augment.normalize(img, (0.2, 0.4, 0.5), (0.1, 0.2, 0.25)).numpy()
    assert out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_allclose(out[..., 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[..., 2], 2.0, atol=1e-5)


def test_grayscale_probability():
    x = tf.random.stateless_uniform([2000, 2, 2, 3], [0, 1])
    out = augment.random_grayscale(x, [4, 2]).numpy()
    equal = np.all(np.ptp(out, axis=-1) < 1e-6, axis=(1, 2))
    assert abs(equal.mean() - augment.GRAY_PROB) < 0.04
    forced = augment.random_grayscale(x, [4, 2], prob=1.0).numpy()
    np.testing.assert_allclose(forced[..., 0], forced[..., 2], atol=1e-6)


def test_grayscale_fraction_in_full_pipeline(images):
    out = augment.augment_views(images, [9, 9], 64, (0.0,) * 3, (1.0,) * 3).numpy()
    out = out.reshape(-1, 32, 32, 3)  # 512 views
    equal = np.all(np.ptp(out, axis=-1) < 1e-5, axis=(1, 2))
    assert abs(equal.mean() - 0.2) < 0.08


def test_color_jitter_identity_when_disabled():
    x = tf.random.stateless_uniform([4, 8, 8, 3], [1, 2])
    np.testing.assert_array_equal(augment.color_jitter(x, [1, 1], prob=0.0).numpy(), x.numpy())
    y = augment.color_jitter(x, [1, 1], prob=1.0).numpy()
    assert y.min() >= 0.0 and y.max() <= 1.0 and np.abs(y - x.numpy()).mean() > 0.01


def test_crop_boxes():
    boxes = augment.sample_crop_boxes([1, 2], 5000).numpy()
    y1, x1, y2, x2 = boxes.T
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0 + 1e-6
    h, w = y2 - y1, x2 - x1
    assert (h > 0).all() and (w > 0).all()
    area = h * w
    assert area.min() >= 0.08 - 1e-6 and area.max() <= 1.0 + 1e-6
    # Unclipped boxes keep the aspect ratio in [3/4, 4/3].
    inner = (h < 1 - 1e-6) & (w < 1 - 1e-6)
    ratio = w[inner] / h[inner]
    assert ratio.min() >= 0.75 - 1e-4 and ratio.max() <= 4 / 3 + 1e-4


# ---------------------------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def small_data():
    data = shapes.make_shapes(40, seed=11)
    return data["images"], np.arange(40, dtype=np.int64)  # labels = example index


def _train(small_data, **kw):
    imgs, labels = small_data
    args = dict(batch_size=8, num_views=2, mean=MEAN, std=STD, seed=3)
    args.update(kw)
    return pipeline.train_dataset(imgs, labels, **args)


def test_pipeline_batch_shapes(small_data):
    batch = next(iter(_train(small_data)))
    assert batch["views"].shape == (8, 2, 32, 32, 3) and batch["views"].dtype == tf.float32
    assert batch["labels"].shape == (8,) and batch["labels"].dtype == tf.int64


def test_pipeline_resume_matches_stream(small_data):
    full = list(_train(small_data).take(8))  # 5 steps per epoch: crosses an epoch boundary
    resumed = list(_train(small_data, start_step=5).take(3))
    for i, batch in enumerate(resumed):
        np.testing.assert_array_equal(batch["labels"].numpy(), full[5 + i]["labels"].numpy())
        np.testing.assert_array_equal(batch["views"].numpy(), full[5 + i]["views"].numpy())
    mid = next(iter(_train(small_data, start_step=7)))
    np.testing.assert_array_equal(mid["views"].numpy(), full[7]["views"].numpy())


def test_pipeline_epochs_are_permutations(small_data):
    batches = [b["labels"].numpy() for b in _train(small_data).take(10)]
    epoch0, epoch1 = np.concatenate(batches[:5]), np.concatenate(batches[5:])
    np.testing.assert_array_equal(np.sort(epoch0), np.arange(40))
    np.testing.assert_array_equal(np.sort(epoch1), np.arange(40))
    assert not np.array_equal(epoch0, epoch1)
    other_seed = np.concatenate([b["labels"].numpy() for b in _train(small_data, seed=4).take(5)])
    assert not np.array_equal(epoch0, other_seed)


def test_pipeline_views_match_eager_augment(small_data):
    imgs, _ = small_data
    batch = next(iter(_train(small_data, start_step=2)))
    idx = batch["labels"].numpy()
    expect = augment.augment_views(imgs[idx], pipeline.step_seed(3, 2), 2, MEAN, STD)
    np.testing.assert_allclose(batch["views"].numpy(), expect.numpy(), atol=1e-5)


def test_pipeline_steps_per_epoch(small_data):
    batches = [b["labels"].numpy() for b in _train(small_data, steps_per_epoch=2).take(4)]
    assert len(np.unique(np.concatenate(batches[:2]))) == 16
    with pytest.raises(UserError, match="^steps_per_epoch=6: "):
        _train(small_data, steps_per_epoch=6)
    with pytest.raises(UserError, match="^batch_size=41: "):
        _train(small_data, batch_size=41)


def test_eval_dataset(small_data):
    imgs, labels = small_data
    raw = list(pipeline.eval_dataset(imgs, labels, batch_size=16))
    assert [b["labels"].shape[0] for b in raw] == [16, 16, 8]
    assert raw[0]["images"].dtype == tf.uint8
    np.testing.assert_array_equal(np.concatenate([b["images"] for b in raw]), imgs)
    norm = list(pipeline.eval_dataset(imgs, labels, batch_size=16, mean=MEAN, std=STD))
    np.testing.assert_allclose(norm[2]["images"].numpy(),
                               augment.normalize(imgs[32:], MEAN, STD).numpy(), atol=1e-6)


# ---------------------------------------------------------------------------------- datasets


def test_unknown_dataset():
    with pytest.raises(UserError, match="^dataset=imagenet: unknown dataset"):
        datasets.load_dataset("imagenet")


def test_cifar_offline_fails_fast(tmp_path):
    start = time.monotonic()
    with pytest.raises(UserError, match="^dataset=cifar10: no prepared TFDS data") as err:
        datasets.load_dataset("cifar10", data_dir=str(tmp_path), download=False)
    assert time.monotonic() - start < 10
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


def test_shapes_dataset_splits():
    d = datasets.load_dataset("shapes", train_examples=50, test_examples=20, seed=2)
    assert d.train_images.shape == (50, 32, 32, 3) and d.test_images.shape == (20, 32, 32, 3)
    assert d.train_masks.shape == (50, 2, 32, 32) and d.num_classes == 10
    assert len(d.class_names) == 10 and d.image_size == (32, 32)
    assert d.augment == {"crop_scale": (0.6, 1.0)}  # the dataset's own augmentation default
    np.testing.assert_allclose(d.mean, d.train_images.reshape(-1, 3).mean(0) / 255, atol=1e-9)


def test_cifar_via_tfds_mock(tmp_path):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    with tfds.testing.mock_data(num_examples=6):
        d = datasets.load_dataset("cifar10", data_dir=str(tmp_path), train_examples=4,
                                  image_size=16)
    assert d.train_images.shape == (4, 16, 16, 3) and d.train_images.dtype == np.uint8
    assert d.test_images.shape == (6, 16, 16, 3) and d.test_labels.dtype == np.int64
    assert d.num_classes == 10 and len(d.class_names) == 10 and d.image_size == (16, 16)
    # the published per-channel statistics of CIFAR-10's 50,000 training images (pixels in [0, 1]), not the
    # module's own constant: the mock's random images do not give them, so they come from the table
    np.testing.assert_allclose(d.mean, (0.4914, 0.4822, 0.4465), atol=5e-5)
    np.testing.assert_allclose(d.std, (0.2470, 0.2435, 0.2616), atol=5e-5)
