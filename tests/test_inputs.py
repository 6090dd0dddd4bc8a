"""Bad input to the Python API: ``fit``, ``normalize``, ``model(x)``, ``views_of`` and the
export loader's methods take what they document and refuse the rest with one line naming the call, the
problem and the fix (:class:`hsl_tf.errors.InputError`, a ValueError); nothing is truncated or scaled twice
in silence. The accepted forms are checked against their oracles (the same z as the documented path), the
refused ones leave the model untouched (no optimizer step).

The bin/ commands' bad input: tests/test_errors.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hsl_tf.errors import InputError, UserError
from hsl_tf.model import HSLModel
from tests.helpers import tiny_model_config

SIZE, B, V = 16, 4, 2
RNG = np.random.default_rng(0)
UINT8 = RNG.integers(0, 256, (2 * B, SIZE, SIZE, 3), dtype=np.uint8)
UNIT = UINT8.astype(np.float32) / 255.0  # what tf.image.convert_image_dtype gives
GRAY, RGBA = UINT8[..., :1], np.concatenate([UINT8, UINT8[..., :1]], -1)


def refused(fn, *needles):
    """``fn()`` raises an InputError (a UserError and a ValueError) of one line holding every needle."""
    with pytest.raises(InputError) as info:
        fn()
    message = str(info.value)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)
    assert "\n" not in message and message.strip() == message, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


@pytest.fixture(scope="module")
def model():
    m = HSLModel(tiny_model_config("xza", seed=1))
    m.build_all((SIZE, SIZE))
    m.use_augmentation(num_views=V)
    m.compile(optimizer=keras.optimizers.Adam(1e-3))
    return m


def _images(x, batch=B, drop=True):
    return tf.data.Dataset.from_tensor_slices(x).batch(batch, drop_remainder=drop)


# ------------------------------------------------------------------------------------ float images

def test_fit_refuses_float_images_instead_of_scaling_them_twice(model):
    before = int(model.optimizer.iterations)
    refused(lambda: model.fit(_images(UNIT), verbose=0), "HSLModel.fit", "float32", "uint8",
            "tf.cast(tf.round(x * 255), tf.uint8)")
    refused(lambda: model.fit(UNIT, batch_size=B, verbose=0), "HSLModel.fit", "float32")
    refused(lambda: model.views_of(tf.constant(UNIT)), "HSLModel.views_of", "uint8")
    refused(lambda: model.views_of({"images": UNIT * 255}), "HSLModel.views_of", "uint8")
    assert int(model.optimizer.iterations) == before


def test_normalize_takes_uint8_or_floats_in_0_255_and_refuses_floats_in_0_1(model):
    expected = (UINT8 / np.float32(255) - np.float32(model.config.mean)) / np.float32(model.config.std)
    np.testing.assert_allclose(model.normalize(UINT8).numpy(), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(model.normalize(UINT8.astype(np.float32)).numpy(), model.normalize(UINT8).numpy())
    np.testing.assert_array_equal(model.normalize(np.zeros_like(UNIT)).numpy(), model.normalize(UINT8 * 0).numpy())
    refused(lambda: model.normalize(UNIT), "HSLModel.normalize", "[0, 1]", "x * 255.0")
    refused(lambda: model.normalize(model.normalize(UINT8)), "outside [0, 255]", "already normalised")
    refused(lambda: model.normalize(UINT8.astype(np.int32)), "int32", "uint8")


def test_the_model_takes_uint8_pixels_and_refuses_unnormalised_floats(model):
    """model(uint8) is model(model.normalize(uint8)), the docstring's promise (today: a Conv2D dtype error)."""
    np.testing.assert_array_equal(model(UINT8).numpy(), model(model.normalize(UINT8)).numpy())
    np.testing.assert_array_equal(model.relation_probabilities(UINT8).numpy(),
                                  model.relation_probabilities(model.normalize(UINT8)).numpy())
    refused(lambda: model(UINT8.astype(np.float32)), "HSLModel(images)", "are pixels", "model.normalize(pixels)")
    noise = tf.random.stateless_normal([2, SIZE, SIZE, 3], [1, 2], stddev=3.0)  # not images, but not pixels
    np.testing.assert_array_equal(model(noise).numpy(), model.embed(noise)[1].numpy())
    refused(lambda: model(UINT8.astype(np.int64)), "HSLModel(images)", "int64")
    refused(lambda: model({"views": UNIT}), "HSLModel(images)", "dict")


# ------------------------------------------------------------------------------------ channels

@pytest.mark.parametrize("images", [GRAY, RGBA], ids=["grayscale", "rgba"])
def test_wrong_channel_counts_are_named(model, images):
    c = images.shape[-1]
    fix = "tf.image.grayscale_to_rgb" if c == 1 else "x[..., :3]"
    refused(lambda: model.fit(_images(images), verbose=0), "HSLModel.fit", f"{c} channel", "not 3", fix)
    refused(lambda: model.normalize(images), "HSLModel.normalize", f"{c} channel")
    refused(lambda: model(images), "HSLModel(images)", f"{c} channel")
    refused(lambda: model.views_of(images), "HSLModel.views_of", f"{c} channel")
    refused(lambda: model.views_of({"views": np.zeros((B, V, SIZE, SIZE, c), np.float32)}), f"{c} channel")


# ------------------------------------------------------------------------------------ build and batch size

def test_fit_builds_a_model_without_build_all_as_build_all_would():
    """Today: "Unknown variable … optimizer can only be called for the variables it was originally built
    with". Now fit builds on the batch's image size: the same variables and the same step as build_all."""
    trained = []
    for explicit in (True, False):
        keras.utils.set_random_seed(5)
        m = HSLModel(tiny_model_config("xza", seed=1))
        if explicit:
            m.build_all((SIZE, SIZE))
        m.use_augmentation(num_views=V)
        m.compile(optimizer=keras.optimizers.Adam(1e-3))
        m.fit(_images(UINT8[:B]), epochs=1, verbose=0)
        assert m.image_size == (SIZE, SIZE) and int(m.optimizer.iterations) == 1
        trained.append(m)
    for a, b in zip(trained[0].variables, trained[1].variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_a_batch_size_that_changes_within_a_fit_is_refused(model):
    before = int(model.optimizer.iterations)
    refused(lambda: model.fit(_images(UINT8[:6], drop=False), verbose=0), "batch size is unknown",
            "drop_remainder=True")
    refused(lambda: model.fit(UINT8[:6], batch_size=B, verbose=0), "6 examples", "batches of 4",
            "batch_size dividing 6")
    refused(lambda: model.fit(UINT8[:6], verbose=0), "batches of 32")  # Keras' default batch size
    refused(lambda: model.fit(_images(UINT8), validation_data=_images(UINT8[:6], drop=False), verbose=0),
            "(validation_data)", "drop_remainder=True")
    assert int(model.optimizer.iterations) == before


def test_a_batch_size_that_changes_between_fits_is_a_new_trace(model):
    """Today the second fit fails ("must be static"): Keras relaxes the retraced shape to None."""
    before = int(model.optimizer.iterations)
    model.fit(_images(UINT8, batch=B), epochs=1, verbose=0)  # 2 steps of 4
    model.fit(_images(UINT8, batch=2), epochs=1, verbose=0)  # 4 steps of 2
    model.fit(UINT8, batch_size=8, epochs=1, verbose=0)  # 1 step of 8 (arrays)
    assert int(model.optimizer.iterations) == before + 2 + 4 + 1
    assert all(np.all(np.isfinite(v.numpy())) for v in model.variables)


def test_images_without_use_augmentation_are_refused_at_the_door():
    m = HSLModel(tiny_model_config("xz"))
    m.compile(optimizer=keras.optimizers.Adam(1e-3))
    refused(lambda: m.fit(_images(UINT8), verbose=0), "HSLModel.fit", "use_augmentation(num_views)")
    refused(lambda: m.views_of(UINT8), "HSLModel.views_of", "use_augmentation(num_views)")


# ------------------------------------------------------------------------------------ the export loader

@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """(model, its export loaded through hsl_tf.load_encoder)."""
    import hsl_tf

    path = hsl_tf.export_encoder(model, str(tmp_path_factory.mktemp("export")), image_size=(SIZE, SIZE))
    return model, hsl_tf.load_encoder(path)


def test_the_loaders_uint8_methods_refuse_floats_instead_of_truncating(exported):
    """Today 0.7 gives the z of 0: the uint8 signature truncates."""
    model, encoder = exported
    z = encoder.embed(UINT8).numpy()
    np.testing.assert_allclose(z, model(UINT8).numpy(), rtol=1e-5, atol=1e-5)
    for method in ("embed", "relations"):
        fn = getattr(encoder, method)
        refused(lambda: fn(UNIT), f"load_encoder(...).{method}", "float32", "uint8", "tf.round(x * 255)")
        refused(lambda: fn(UINT8.astype(np.int32)), f".{method}", "int32")
        refused(lambda: fn(GRAY), f".{method}", "1 channel")
        refused(lambda: fn(np.zeros((2, 32, 32, 3), np.uint8)), "32x32", f"takes {SIZE}x{SIZE}")
    np.testing.assert_array_equal(encoder.embed_pixels(UINT8.astype(np.float32)).numpy(), z)
    np.testing.assert_array_equal(encoder.embed_pixels(UINT8).numpy(), z)
    refused(lambda: encoder.embed_pixels(UNIT), "load_encoder(...).embed_pixels", "[0, 1]", "x * 255.0")
    refused(lambda: encoder.embed_pixels(RGBA), ".embed_pixels", "4 channels")


def test_a_random_encoders_methods_are_checked_the_same_way():
    import hsl_tf

    encoder = hsl_tf.load_encoder("random:conv4", image_size=(SIZE, SIZE))
    np.testing.assert_array_equal(encoder.embed_pixels(UINT8).numpy(), encoder.embed(UINT8).numpy())
    refused(lambda: encoder.embed(UNIT), "load_encoder(...).embed", "float32")
    refused(lambda: encoder.relations(RGBA), "load_encoder(...).relations", "4 channels")
