"""SavedModel exports in the TF Serving layout ``<base>/<integer version>/saved_model.pb``.

A version directory is written to a temporary sibling and renamed into place only when it is
complete, so TF Serving never sees a partial version, and an existing version is never
overwritten (the next free integer is used).

Encoder export (``export_encoder``), all without random ops:
  - ``serving_default`` and ``embed``: ``images`` uint8 [N, H, W, 3] → ``z`` float32 [N, S, D];
  - ``relations``: ``images`` uint8 [N, H, W, 3] → ``relations`` [N, S, S, K], the deterministic
    edge probabilities (softmax of the MPNN logits, zero diagonal);
  - ``embed_pixels``: ``pixels`` float32 [N, H, W, 3] in [0, 255] → ``z``; differentiable with
    respect to its input (used by the interpretation stage);
  - ``slot_attention`` (only with ``entities=slots``): ``images`` uint8 → ``attention`` float32
    [N, S, h, w], the last iteration's attention over slots on the backbone's feature grid.
Normalisation (the training set's mean/std) is part of the exported graph. The model config
is stored beside it in ``assets.extra/hsl_tf.json``.
"""

import json
import os
import re
import shutil
import uuid

import tensorflow as tf

from hsl_tf import inputs
from hsl_tf.errors import ConfigError, UserError
from hsl_tf.report.keys import VARIANT_DEFAULTS
from hsl_tf.rundir import export_versions as versions  # noqa: F401  (export.versions(base): the complete versions)
from hsl_tf.rundir import resolve_version_dir
from hsl_tf.saving import META_FILE, config_dict


def write_version(base, write_fn):
    """Writes a new version under ``base`` atomically. ``write_fn(tmp_dir)`` fills the directory.

    Returns the final version directory. Never overwrites an existing version.
    """
    os.makedirs(base, exist_ok=True)
    tmp = os.path.join(base, f".tmp-{uuid.uuid4().hex}")
    try:
        write_fn(tmp)
        while True:
            taken = [int(d) for d in os.listdir(base) if re.fullmatch(r"\d+", d)]
            final = os.path.join(base, str(max(taken, default=0) + 1))
            try:
                os.rename(tmp, final)  # atomic on POSIX; fails if ``final`` exists and is non-empty
                return final
            except OSError:
                if not os.path.exists(final):
                    raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _write_meta(path, meta):
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with open(os.path.join(path, META_FILE), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)


def export_encoder(model, base, image_size, extra_meta=None):
    """Exports the encoder (and its MPNN) of an :class:`hsl_tf.model.HSLModel` under ``base``."""
    import keras

    h, w = image_size
    images = tf.TensorSpec([None, h, w, 3], tf.uint8, name="images")
    pixels = tf.TensorSpec([None, h, w, 3], tf.float32, name="pixels")

    def embed(images):
        return {"z": model(model.normalize(images), training=False)}

    def relations(images):
        return {"relations": model.relation_probabilities(model.normalize(images))}

    def embed_pixels(pixels):
        return {"z": model(model.normalize(pixels), training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", embed, input_signature=[images])
    archive.add_endpoint("embed", embed, input_signature=[images])
    archive.add_endpoint("relations", relations, input_signature=[images])
    archive.add_endpoint("embed_pixels", embed_pixels, input_signature=[pixels])
    if model.entities.has_attention:
        archive.add_endpoint("slot_attention", lambda images: {
            "attention": model.attention_maps(model.normalize(images))}, input_signature=[images])
    meta = dict(kind="encoder", image_size=[h, w], config=config_dict(model.config), **(extra_meta or {}))

    def write(tmp):
        archive.write_out(tmp, verbose=False)
        _write_meta(tmp, meta)

    return write_version(base, write)


class EncoderHandle:
    """A frozen encoder for the probe and interpretation stages.

    Attributes: ``name`` (path or ``random:<backbone>``), ``image_size`` (H, W), ``config`` (dict),
    ``num_entities``, ``entity_dim``; methods ``embed(uint8 images) → z [N,S,D]``,
    ``relations(uint8 images) → [N,S,S,K]`` (the deterministic relation probabilities) and
    ``embed_pixels(float pixels in [0,255]) → z`` (differentiable); ``variables``;
    ``slot_attention(uint8 images) → [N, S, h, w]`` for a slots encoder, else None;
    ``train_dataset``, the dataset an export was trained on (None for a random encoder).

    The methods check their input (:mod:`hsl_tf.inputs`): ``embed``, ``relations`` and
    ``slot_attention`` take uint8 only (a float array is refused, never truncated), ``embed_pixels``
    uint8 or floats in [0, 255] (floats in [0, 1] are refused eagerly); every one, RGB images of the
    encoder's ``image_size``.
    """

    def __init__(self, name, image_size, config, embed, embed_pixels, variables, trackable, slot_attention=None,
                 train_dataset=None, relations=None):
        self.name, self.image_size, self.config = name, tuple(image_size), config
        self.train_dataset = train_dataset
        self.num_entities, self.entity_dim = config["num_entities"], config["entity_dim"]
        self.embed, self.relations, self.slot_attention = (
            None if fn is None else self._uint8(fn, method) for fn, method in
            ((embed, "embed"), (relations, "relations"), (slot_attention, "slot_attention")))
        self.embed_pixels = self._pixels(embed_pixels)
        self.variables, self.trackable = variables, trackable

    def _uint8(self, fn, method):
        """``fn`` behind the door of uint8 images [N, H, W, 3] of this encoder's size."""
        what = f"load_encoder(...).{method}"

        def checked(images):
            images = inputs.as_tensor(images)
            inputs.check_shape(images.shape, what, image_size=self.image_size)
            inputs.check_uint8(images.dtype, what)
            return fn(images)

        return checked

    def _pixels(self, fn):
        """``fn`` behind the door of pixels: uint8 or floats in [0, 255], as float32 [N, H, W, 3]."""
        return lambda pixels: fn(inputs.pixels(pixels, "load_encoder(...).embed_pixels", image_size=self.image_size))

    def check_image_size(self, height, width):
        """Images of the probe / interpretation dataset must match the encoder's input size."""
        if (height, width) != self.image_size:
            raise UserError(f"`dataset`: images are {height}x{width} but the encoder {self.name} takes "
                            f"{self.image_size[0]}x{self.image_size[1]}; pass `image_size={self.image_size[0]}`")

    def describe(self):
        """What a stage's results.json records about its encoder, so ``bin/report`` can group runs.

        ``method`` is the Table 1 row (the training objective, or ``random``); ``backbone``,
        ``train_dataset`` (exports only) and the extension options ``entities``,
        ``estimator_xz``, ``estimator_xa`` come from the export's config.
        """
        random = self.name.startswith("random:")
        record = dict(method="random" if random else self.config.get("objective", "unknown"),
                      backbone=self.config["backbone"])
        if not random:
            record["train_dataset"] = self.train_dataset
        record.update({k: self.config[k] for k in VARIANT_DEFAULTS if k in self.config})
        if record.get("relation_prior", "none") != "none":
            record["prior_weight"] = self.config.get("prior_weight")
        return record


def load_encoder(spec, *, seed=0, image_size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                 num_entities=8, entity_dim=8, entities="reshape", field="encoder"):
    """Loads ``spec``: an exported encoder (version or base dir) or ``random:<backbone>``.

    A random encoder is a freshly initialised model seeded with ``seed`` (the RANDOM baseline of
    Table 1), normalising with ``mean``/``std`` of the probe dataset.
    """
    if spec.startswith("random:"):
        import keras
        from hsl_tf.model import HSLModel, ModelConfig

        keras.utils.set_random_seed(seed)
        config = ModelConfig(backbone=spec.split(":", 1)[1], objective="xz", seed=seed,
                             num_entities=num_entities, entity_dim=entity_dim, entities=entities,
                             mean=tuple(mean), std=tuple(std))
        model = HSLModel(config)
        model.build_all(image_size)
        call = tf.function(lambda x: model(model.normalize(x), training=False))
        relations = tf.function(lambda x: model.relation_probabilities(model.normalize(x)))
        return EncoderHandle(spec, image_size, config_dict(config), call, call,
                             model.variables, model, relations=relations)
    path = resolve_version_dir(spec, field)
    meta_path = os.path.join(path, META_FILE)
    if not os.path.isfile(meta_path):
        raise ConfigError(field, spec, f"{path} is not an hsl_tf encoder export (no {META_FILE})")
    with open(meta_path) as f:
        meta = json.load(f)
    if meta.get("kind") != "encoder":
        raise ConfigError(field, spec, f"{path} holds a {meta.get('kind')} export, not an encoder")
    try:
        loaded = tf.saved_model.load(path)
    except Exception as err:  # corrupt or partial SavedModel
        raise ConfigError(field, spec, f"cannot load the SavedModel in {path}: {type(err).__name__}") from None
    embed = lambda images: loaded.embed(images)["z"]  # noqa: E731
    embed_pixels = lambda pixels: loaded.embed_pixels(pixels)["z"]  # noqa: E731
    attention = None
    if hasattr(loaded, "slot_attention"):  # exports of slots encoders
        attention = lambda images: loaded.slot_attention(images)["attention"]  # noqa: E731
    relations = lambda images: loaded.relations(images)["relations"]  # noqa: E731
    return EncoderHandle(spec, meta["image_size"], meta["config"], embed, embed_pixels,
                         list(loaded.variables), loaded, slot_attention=attention,
                         train_dataset=meta.get("dataset"), relations=relations)
