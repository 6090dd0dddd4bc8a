"""Inputs checked at the door: what :class:`hsl_tf.model.HSLModel` and the export loaders take.

Every refusal is an :class:`hsl_tf.errors.InputError` (a ValueError) whose one line names the
call, the problem and the fix. The contract, by entry point (N images, H×W pixels):

  - pixels, for ``HSLModel.normalize`` and ``EncoderHandle.embed_pixels``: uint8 [N, H, W, 3], or
    float [N, H, W, 3] in [0, 255]. Floats in [0, 1] are refused, not rescaled: no range tells a
    [0, 1] image from a very dark [0, 255] one, so the caller says which (``x * 255`` or uint8).
  - images, for ``HSLModel.fit`` / ``views_of`` after ``use_augmentation`` and
    ``EncoderHandle.embed`` / ``relations`` / ``slot_attention``: uint8 [N, H, W, 3] only; a float
    array is refused (never truncated, never divided by 255 a second time).
  - ``HSLModel(x)``: uint8 pixels (normalised here) or normalised float images; non-negative floats
    above the normalised range are pixels, refused (eagerly).
  - views, ``{"views": [B, V, H, W, 3]}``: float, normalised (``bin/train``'s pipeline).
  - a training batch has one static size: a dataset batched with ``drop_remainder=True``, or
    arrays whose length the batch size divides.

Shape, dtype and channel checks are static (no op in a traced graph). The range checks of float
pixels and images look at the values, so they run only eagerly; inside a ``tf.function`` pass uint8.
"""

import inspect

import keras
import numpy as np
import tensorflow as tf

from hsl_tf.errors import InputError

CHANNELS_FIX = "the model takes RGB: repeat a grayscale channel (tf.image.grayscale_to_rgb), drop alpha (x[..., :3])"
FLOAT_FIX = "pass uint8: tf.cast(tf.round(x * 255), tf.uint8) for floats in [0, 1], or x.astype(np.uint8) for [0, 255]"
TOLERANCE = 1e-3  # normalised units: views are clipped to [0, 1] before normalising, up to rounding


def as_tensor(x):
    """A tensor, or ``x`` itself when it is one (symbolic or eager): no op added to a graph."""
    return x if tf.is_tensor(x) else tf.convert_to_tensor(np.asarray(x))


def check_shape(shape, what, rank=4, layout="[N, H, W, 3]", image_size=None):
    """Static rank, channels (3) and, given, H×W. ``shape`` a TensorShape or tuple (None: unknown)."""
    shape = tf.TensorShape(shape)
    if shape.rank is not None and shape.rank != rank:
        raise InputError(f"{what}: expected {layout}, got shape {_shape(shape)}")
    if shape.rank is not None and shape[-1] is not None and shape[-1] != 3:
        plural = "s" if shape[-1] != 1 else ""
        raise InputError(f"{what}: images have {shape[-1]} channel{plural}, not 3 (shape {_shape(shape)}); "
                         f"{CHANNELS_FIX}")
    if image_size is not None and shape.rank is not None:
        hw = tuple(shape[-3:-1])
        if None not in hw and hw != tuple(image_size):
            raise InputError(f"{what}: images are {hw[0]}x{hw[1]} but this encoder takes "
                             f"{image_size[0]}x{image_size[1]}; resize them (tf.image.resize) first")


def _shape(shape):
    return "[" + ", ".join("None" if d is None else str(d) for d in tf.TensorShape(shape).as_list()) + "]"


def check_uint8(dtype, what):
    """uint8 only: a float would be truncated or scaled twice, another integer may overflow."""
    dtype = tf.as_dtype(dtype)
    if dtype != tf.uint8:
        kind = "floats" if dtype.is_floating else dtype.name
        raise InputError(f"{what}: images are {kind} ({dtype.name}), it takes uint8 pixels in [0, 255]; {FLOAT_FIX}")


def _values(x, what, low, high, fix):
    """Eager only: refuses values outside [low, high]."""
    if not tf.executing_eagerly() or tf.size(x) == 0:
        return
    lo, hi = float(tf.reduce_min(x)), float(tf.reduce_max(x))
    if lo < low or hi > high:
        raise InputError(f"{what}: values lie in [{lo:.3g}, {hi:.3g}], outside [{low:.3g}, {high:.3g}]; {fix}")


def pixels(x, what, image_size=None):
    """uint8, or float pixels in [0, 255] [N, H, W, 3] → float32 [N, H, W, 3] (same values)."""
    x = as_tensor(x)
    check_shape(x.shape, what, image_size=image_size)
    if x.dtype == tf.uint8:
        return tf.cast(x, tf.float32)
    if not x.dtype.is_floating:
        raise InputError(f"{what}: pixels are {x.dtype.name}; pass uint8, or floats in [0, 255]")
    x = tf.cast(x, tf.float32)
    _values(x, what, 0.0, 255.0, "pixels are in [0, 255]: already normalised? call the model on them directly")
    if tf.executing_eagerly() and tf.size(x) and 0.0 < float(tf.reduce_max(x)) <= 1.0:
        raise InputError(f"{what}: pixels lie in [0, 1], it takes [0, 255] (floats in [0, 1] are not rescaled "
                         f"silently); pass x * 255.0, or uint8")
    return x


def model_images(model, images):
    """``HSLModel(images)``: uint8 [N, H, W, 3] → ``model.normalize(images)``; floats pass as normalised
    images, unless (eagerly) none is negative and some exceed the largest value ``config.mean`` and
    ``config.std`` give: pixels in [0, 255], not normalised. (Other floats, e.g. noise, pass.)"""
    what = f"{type(model).__name__}(images)"
    if isinstance(images, keras.KerasTensor):
        return images  # Keras' symbolic build: nothing to check yet
    if isinstance(images, dict):
        raise InputError(f"{what}: got a dict ({', '.join(images)}); the model takes images [N, H, W, 3] (fit "
                         f"and train_step take {{'views': ...}} batches)")
    images = as_tensor(images)
    check_shape(images.shape, what)
    if images.dtype == tf.uint8:
        return model.normalize(images)
    if not images.dtype.is_floating:
        raise InputError(f"{what}: images are {images.dtype.name}; pass uint8 pixels or normalised floats")
    if tf.executing_eagerly() and tf.size(images):
        high = float(np.max((1 - np.asarray(model.config.mean)) / np.asarray(model.config.std))) + TOLERANCE
        lo, hi = float(tf.reduce_min(images)), float(tf.reduce_max(images))
        if lo >= 0 and hi > high:
            raise InputError(f"{what}: floats in [{lo:.3g}, {hi:.3g}] are pixels, not normalised images (at most "
                             f"{high:.3g}); pass uint8 pixels, or model.normalize(pixels)")
    return images


def views(data, what):
    """A views batch ``{"views": [B, V, H, W, 3]}``: float, 3 channels, static B and V."""
    v = data["views"]
    check_shape(v.shape, what, rank=5, layout="views [B, V, H, W, 3]")
    if not tf.as_dtype(v.dtype).is_floating:
        raise InputError(f"{what}: views are {tf.as_dtype(v.dtype).name}, not normalised floats; for uint8 images "
                         f"call model.use_augmentation(num_views) and pass the images")
    _static_batch(v.shape, what)


def augmentable(images, what):
    """The uint8 images [B, H, W, 3] that ``use_augmentation`` turns into views, B static."""
    check_shape(images.shape, what, layout="images [B, H, W, 3]")
    check_uint8(images.dtype, what)
    _static_batch(images.shape, what)


def _static_batch(shape, what):
    if tf.TensorShape(shape)[0] is None:
        raise InputError(f"{what}: the batch size is unknown (shape {_shape(shape)}); the pairs need one batch size: "
                         f"batch the dataset with drop_remainder=True")


# ------------------------------------------------------------------------------------------- fit

def _spec(x):
    """(shape, dtype) of an array or a tensor spec; None for what has neither."""
    if isinstance(x, (tf.TensorSpec, tf.Tensor, np.ndarray)) or tf.is_tensor(x):
        return tf.TensorShape(x.shape), tf.as_dtype(x.dtype)
    return None


def _batch_of(data):
    """The images or views part of a batch (its spec), and which: ('views' | 'images', spec) or None."""
    if isinstance(data, dict):
        if "views" in data:
            return "views", _spec(data["views"])
        return ("images", _spec(data["images"])) if "images" in data else None
    if isinstance(data, (tuple, list)):
        return _batch_of(data[0]) if data else None
    spec = _spec(data)
    return ("images", spec) if spec is not None else None


def _first_dims(x):
    """The lengths of every array of ``x`` (arrays, tuples, dicts)."""
    if isinstance(x, dict):
        return [d for v in x.values() for d in _first_dims(v)]
    if isinstance(x, (tuple, list)):
        return [d for v in x for d in _first_dims(v)]
    return [int(x.shape[0])] if isinstance(x, np.ndarray) or tf.is_tensor(x) else []


def batch_shape(model, x, batch_size, what):
    """The shape of the batches ``fit`` will draw from ``x`` (a dataset, arrays, tensors, dicts of them),
    checked; None when ``x`` is another kind of source (a generator, a PyDataset)."""
    if isinstance(x, tf.data.Dataset):
        found = _batch_of(x.element_spec)
        if found is None or found[1] is None:
            return None
        kind, (shape, dtype) = found
        if shape.rank is not None and shape[0] is None:
            raise InputError(f"{what}: the dataset's batch size is unknown (shape {_shape(shape)}); the pairs need one "
                             f"batch size: batch it with drop_remainder=True")
    else:
        found = _batch_of(x)
        if found is None or found[1] is None:
            return None
        kind, (shape, dtype) = found
        n = min(_first_dims(x))
        size = batch_size or 32  # Keras' default
        if n % size:
            rest = n % size
            raise InputError(f"{what}: {n} examples do not split into batches of {size} (the last would hold {rest}); "
                             f"the pairs need one batch size: pass batch_size dividing {n}, or drop {rest} examples")
        shape = tf.TensorShape([size]).concatenate(shape[1:])
    if kind == "views":
        views({"views": tf.TensorSpec(shape, dtype)}, what)
    else:
        if model.augmenter is None:
            raise InputError(f"{what}: the batch holds images, not views: call model.use_augmentation(num_views) first")
        augmentable(tf.TensorSpec(shape, dtype), what)
    return shape


def prepare_fit(model, fit, args, kwargs):
    """Before ``fit(*args, **kwargs)`` (``fit``: Keras' own): checks the training and validation
    batches, builds the model on their image size if ``build_all`` was not called, and lets Keras
    trace a new step when the batch shape differs from the one its step was traced for."""
    bound = inspect.signature(fit).bind(*args, **kwargs).arguments
    what = f"{type(model).__name__}.fit"
    shape = batch_shape(model, bound.get("x"), bound.get("batch_size"), what)
    validation = bound.get("validation_data")
    if validation is not None:
        batch_shape(model, validation, bound.get("validation_batch_size") or bound.get("batch_size"),
                    what + " (validation_data)")
        model.test_function = None  # evaluate() may have traced it for another batch size
    if shape is None:
        return
    if not model.built or getattr(model, "image_size", None) is None:
        with model.distribute_strategy.scope():
            model.build_all((shape[-3], shape[-2]))
    if getattr(model, "_fit_batch_shape", None) not in (None, shape):
        model.train_function = None  # traced for another batch shape: a new trace, static again
    model._fit_batch_shape = shape
