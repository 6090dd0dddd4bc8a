"""hsl_tf: Leveraging Hidden Structure in Self-Supervised Learning, in TensorFlow/Keras 3.

Importing the package has no side effects and loads no TensorFlow: each public name below is
imported from its module on first use (a module-level ``__getattr__``). The names, with shapes
and an example each: docs/python.md.

Shapes: B images, V views, H×W pixels, S entities of size D, K relation types, E = S(S−1) edges.

- the model and its configs: ``HSLModel`` (uint8 or normalised images [N, H, W, 3] → z [N, S, D]),
  ``ModelConfig``, ``TrainConfig``, ``ProbeConfig``;
- the stages: ``run_training`` (a whole run, as ``bin/train``: :func:`hsl_tf.train.train`), ``run_probe``
  (as ``bin/probe``);
- the parts: ``Conv4``, ``ResNet8``, ``build_encoder`` (images → feature map / g(x) [N, S·D]),
  ``RelationMPNN`` (z [N, S, D] → edge logits [N, E, K]), ``sample_relations`` (TFP
  RelaxedOneHotCategorical samples [N, E, K]), ``edges_to_dense`` ([N, E, K] → [N, S, S, K]),
  ``RelationHead`` (T_β on pairs → [P]), ``StructureCritic`` (T_ω on pairs → [P]);
- the objectives (``pos``, ``neg`` scores [B, Q] → per-image loss [B] and bound [B]): ``nwj``,
  ``infonce``, ``focal``, ``js``, and ``pair_indices`` (the positive and negative pairs of B
  images × V views);
- the data: ``augment_views`` (uint8 [B, H, W, 3] → views [B, V, H, W, 3]), ``train_dataset``
  (the seeded multi-view ``tf.data`` stream), ``load_dataset`` (shapes, CIFAR, folders);
- the exports: ``export_encoder`` (a SavedModel in TF Serving's layout), ``load_encoder``.
"""

import importlib

__version__ = "0.1.0"

# public name → the module that defines it, ``module:name`` where the module names it otherwise (one place;
# docs/python.md lists the same names). ``train`` would shadow the submodule hsl_tf.train: run_training.
API = {
    "HSLModel": "hsl_tf.model",
    "ModelConfig": "hsl_tf.config",
    "TrainConfig": "hsl_tf.config",
    "ProbeConfig": "hsl_tf.config",
    "run_training": "hsl_tf.train:train",
    "run_probe": "hsl_tf.probe",
    "Conv4": "hsl_tf.encoders",
    "ResNet8": "hsl_tf.encoders",
    "build_encoder": "hsl_tf.encoders",
    "RelationMPNN": "hsl_tf.relations",
    "sample_relations": "hsl_tf.relations",
    "edges_to_dense": "hsl_tf.relations",
    "RelationHead": "hsl_tf.critics",
    "StructureCritic": "hsl_tf.critics",
    "nwj": "hsl_tf.objectives",
    "infonce": "hsl_tf.objectives",
    "focal": "hsl_tf.objectives",
    "js": "hsl_tf.objectives",
    "pair_indices": "hsl_tf.pairs",
    "augment_views": "hsl_tf.data.augment",
    "train_dataset": "hsl_tf.data.pipeline",
    "load_dataset": "hsl_tf.data.datasets",
    "export_encoder": "hsl_tf.export",
    "load_encoder": "hsl_tf.export",
}

__all__ = ["__version__", *API]


def __getattr__(name):
    """Imports a public name from its module on first use (PEP 562)."""
    where = API.get(name)
    if where is None:
        raise AttributeError(f"module 'hsl_tf' has no attribute {name!r}")
    module, _, attribute = where.partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(API))
