"""HSLModel as a Keras object: its ``.keras`` config, and its weights from an encoder export.

``model.save("m.keras")`` stores :func:`get_config` (the :class:`hsl_tf.config.ModelConfig` as a
dict, the arguments of ``use_augmentation``, ``clip_norm``), :func:`get_build_config` (the image
size of ``build_all``), Keras' compile config (the optimizer) and every variable, the optimizer's
included. ``keras.models.load_model("m.keras")`` rebuilds the model from them (``from_config``,
``build_from_config``, ``compile_from_config``) and loads the values: the same weights, the same
outputs, and ``fit`` resumes at the saved optimizer step (the views and the Gumbel noise are
seeded by it). The classes register as ``hsl_tf>Name`` (:data:`PACKAGE`).

:func:`load_export_weights` fills a model from an encoder export (``export_encoder``): the export
tracks every variable of the model (encoder, BN statistics, MPNN, both critics), in the order
``build_all`` creates them, but not the optimizer.
"""

import dataclasses
import json
import os

from hsl_tf.config import ModelConfig
from hsl_tf.errors import UserError

# keras.saving.register_keras_serializable(package=...) of HSLModel and its layers (their modules spell it
# out: importing this module, which imports the config, from them would close an import cycle)
PACKAGE = "hsl_tf"
META_FILE = os.path.join("assets.extra", "hsl_tf.json")  # an export's metadata beside its SavedModel (hsl_tf.export)


def config_dict(config):
    """A ModelConfig → a JSON dict (tuples as lists)."""
    d = dataclasses.asdict(config)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def config_from_dict(d, where):
    """A JSON dict (of :func:`config_dict`) → a ModelConfig; ``where`` names its source in errors."""
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise UserError(f"{where}: options this hsl_tf does not know ({', '.join(unknown)}); load it with the "
                        f"hsl_tf version that wrote it")
    return ModelConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """The arguments of ``HSLModel.use_augmentation`` (frozen: a Keras layer tracks no attribute of this type)."""

    num_views: int
    seed: int | None = None
    policy: str = "ssl"
    crop_scale: tuple | None = None


class Serializable:
    """HSLModel's side of Keras saving (a mixin before ``keras.Model``): the methods below, and
    ``HSLModel.from_export(path)``."""

    def get_config(self):
        return get_config(self)

    @classmethod
    def from_config(cls, config):
        return from_config(cls, config)

    def get_build_config(self):
        return get_build_config(self)

    def build_from_config(self, config):
        build_from_config(self, config)

    @classmethod
    def from_export(cls, path):
        """A model with the config and every weight of an encoder export (not its optimizer state)."""
        return from_export(cls, path)


def get_config(model):
    """What ``from_config`` needs to make the model again (JSON types only)."""
    augmentation = None
    if model.augmentation is not None:
        augmentation = {k: (list(v) if isinstance(v, tuple) else v)
                        for k, v in dataclasses.asdict(model.augmentation).items()}
    return {"name": model.name, "trainable": model.trainable, "config": config_dict(model.config),
            "augmentation": augmentation, "clip_norm": float(model.clip_norm)}


def from_config(cls, config):
    """A new, unbuilt ``cls`` (HSLModel) of :func:`get_config`'s dict."""
    config = dict(config)
    model_config = config_from_dict(config.pop("config"), "the saved HSLModel's config")
    augmentation, clip_norm = config.pop("augmentation", None), config.pop("clip_norm", 0.0)
    model = cls(model_config, **config)
    if augmentation:
        model.use_augmentation(**augmentation)
    model.clip_norm = clip_norm
    return model


def get_build_config(model):
    """``{"image_size": [H, W]}`` once ``build_all`` has run, else None (an unbuilt model)."""
    size = getattr(model, "image_size", None)
    return None if size is None else {"image_size": list(size)}


def build_from_config(model, config):
    if config and "image_size" in config:
        model.build_all(tuple(config["image_size"]))


def export_meta(path):
    """(version directory, its hsl_tf.json) of an encoder export (a base or a version directory)."""
    from hsl_tf.rundir import resolve_version_dir

    version = resolve_version_dir(path, "path")
    meta_path = os.path.join(version, META_FILE)
    if not os.path.isfile(meta_path):
        raise UserError(f"{path}: not an hsl_tf encoder export (no {META_FILE})")
    with open(meta_path) as f:
        meta = json.load(f)
    if meta.get("kind") != "encoder":
        raise UserError(f"{path}: a {meta.get('kind')} export, not an encoder")
    return version, meta


def from_export(cls, path):
    """A built ``cls`` (HSLModel) of an encoder export's config, with its weights (:func:`load_export_weights`)."""
    _, meta = export_meta(path)
    model = cls(config_from_dict(meta["config"], f"{path}'s config"))
    model.build_all(tuple(meta["image_size"]))
    load_export_weights(model, path)
    return model


def load_export_weights(model, path):
    """Assigns every variable of the export at ``path`` to ``model`` (built with the export's config
    and image size). Returns the number assigned; refuses an export whose variables differ."""
    import tensorflow as tf

    version, _ = export_meta(path)
    source = list(tf.saved_model.load(version).variables)
    target = list(model.variables)

    def leaf(name):
        return name.split("/")[-1].split(":")[0]

    pairs = list(zip(target, source))
    if len(source) != len(target) or any(tuple(t.shape) != tuple(s.shape) or t.name != leaf(s.name)
                                         for t, s in pairs):
        raise UserError(f"{path}: its {len(source)} variables are not those of this model ({len(target)}); build the "
                        f"model with the export's config: HSLModel.from_export(path)")
    for t, s in pairs:
        t.assign(s)
    return len(pairs)
