"""Entities: how the backbone's last feature map becomes z ∈ R^{S×D}.

One callable per ``entities`` choice, all with one interface, owned by :class:`HSLModel`
(``model.entities``) next to the backbone (``model.encoder``):

  ``layer(feature_map [N, h, w, C], training=False, seed=None) → (g [N, S·D], z [N, S, D])``
  ``layer.has_attention``; ``layer.attention(feature_map) → [N, S, h, w]`` when it has one.

  - ``reshape`` (default, the paper): g(x) = global average pooling of the feature map (the
    backbone's 64-d output) and z = reshape(g(x), [S, D]), S·D = 64; no weights.
  - ``slots`` (an extension, the paper's Sec. 4): slot attention on the feature map
    (:class:`hsl_tf.slots.SlotEntities`); g(x) = reshape(z, [S·D]).

``seed`` is the stateless (config seed, step) seed of training-time noise (slots only).
"""

import keras
from keras import layers


class ReshapeEntities:
    """The paper's reshape operator: feature map [N, h, w, C] → g [N, C], z [N, S, D] (S·D = C).

    A plain callable, not a Keras layer: it has no weights, and wrapping it in ``Layer.__call__``
    changes the traced training graph enough to move the float rounding of the encoder's
    gradients by one ulp from the first step on (oneDNN, CPU), which the quick job's 234 steps
    amplify into visibly different numbers (xza 30.6 → 32.9 %); as a plain callable the reshape adds
    no variable and no op to the graph, so runs are bit-for-bit those of a model without this module.
    """

    has_attention = False

    def __init__(self, num_entities, entity_dim):
        self.num_entities, self.entity_dim = num_entities, entity_dim
        self.pool = layers.GlobalAveragePooling2D()

    def __call__(self, feature_map, training=False, seed=None):
        g = self.pool(feature_map)  # [N, S·D]
        return g, keras.ops.reshape(g, (-1, self.num_entities, self.entity_dim))

    def attention(self, feature_map):
        raise ValueError("reshape entities have no attention maps")


def _slots(config):
    from hsl_tf.slots import SlotEntities  # pylint: disable=g-import-not-at-top

    return SlotEntities(config.num_entities, config.entity_dim, seed=config.seed)


# the ``entities`` choices: name → factory(ModelConfig) → layer
ENTITIES = {
    "reshape": lambda config: ReshapeEntities(config.num_entities, config.entity_dim),
    "slots": _slots,
}


def build_entities(config):
    """The entity layer of ``config.entities`` (a :class:`hsl_tf.config.ModelConfig`)."""
    return ENTITIES[config.entities](config)
