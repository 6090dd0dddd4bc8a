"""The two critics of Eq. 3, evaluated on every pair from per-view quantities.

T_β(x, z) = f_δ(g(x), z): the relation head of Patacchiola & Storkey, Linear(2·S·D → H) →
BN → LeakyReLU(0.01) → Linear(H → 1), on the concatenation [g(x_anchor), z_other].
T_ω(x, a) = Σ_k vec(h(x)_k)ᵀ W_k vec(a_k) with W ∈ R^{S²×S²×K}: the anchor supplies h(x), the
relations the MPNN predicts for it, and the other view supplies its sampled relations a.

Both are evaluated without materialising per-pair inputs (exact decompositions):
  - Linear([u; v]) = W_a·u + W_b·v + b, with W_a·u and W_b·v computed once per view;
  - W_k vec(a_k) depends on the other view only, so it is computed once per view and each
    pair costs one dot product of length K·S².

``structure_critic=cosine`` (beyond the paper) scores every (anchor, other) view of the batch with
the cosine of the centred vectors h(x) and W·a over a temperature (:meth:`StructureCritic.cosine`),
for InfoNCE against all in-batch negatives (:func:`hsl_tf.objectives.infonce_all`).
"""

import tensorflow as tf
import keras
from keras import layers

from hsl_tf.batchnorm import BatchNorm

STRUCTURE_CRITICS = ("bilinear", "cosine")


@keras.saving.register_keras_serializable(package="hsl_tf")
class RelationHead(layers.Layer):
    """T_β on pairs. Inputs: features [N, F] of all views and pair indices [P] → scores [P]."""

    def __init__(self, hidden=256, name="relation_head", **kwargs):
        super().__init__(name=name, **kwargs)
        self.hidden = hidden
        self.w_anchor = layers.Dense(hidden, name="w_anchor")  # acts on g(x), carries the bias
        self.w_other = layers.Dense(hidden, use_bias=False, name="w_other")  # acts on z
        self.bn = BatchNorm(name="bn")
        self.out = layers.Dense(1, name="out")

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}

    def call(self, features, anchor, other, training=False):
        u = self.w_anchor(features)  # [N, H]
        v = self.w_other(features)  # [N, H]
        h = tf.gather(u, anchor) + tf.gather(v, other)  # [P, H] = Linear([g(x_a); z_o])
        h = keras.ops.leaky_relu(self.bn(h, training=training), negative_slope=0.01)
        return tf.squeeze(self.out(h), -1)  # [P]

    def first_layer_kernel(self):
        """The equivalent Linear(2F → H) kernel [2F, H] on the concatenation [g(x); z]."""
        return tf.concat([self.w_anchor.kernel, self.w_other.kernel], axis=0)


@keras.saving.register_keras_serializable(package="hsl_tf")
class StructureCritic(layers.Layer):
    """T_ω on pairs. W has shape [S², S², K] (the paper's w ∈ R^{S²×S²×K}).

    Inputs: h [N, S, S, K] relations of every view (anchor side), a [N, S, S, K] relations of
    every view (other side; diagonals are zero), pair indices [P]. Output: scores [P].

    ``offset=True`` adds a learned scalar c (beyond the paper): T_ω + c. NWJ's optimal critic is
    1 + log p/q; without c, a bilinear form on softmax relations can only produce the constant
    part by collapsing relation usage (see the README). T_β needs no such option: its head ends
    in a biased Linear layer.
    """

    def __init__(self, num_entities, num_relations, init_std=0.01, offset=False, name="structure_critic",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        s2 = num_entities * num_entities
        self.s2, self.k = s2, num_relations
        self.num_entities, self.init_std = num_entities, init_std
        self.w = self.add_weight(shape=(s2, s2, num_relations), name="W",
                                 initializer=keras.initializers.RandomNormal(stddev=init_std))
        self.offset = self.add_weight(shape=(), name="offset", initializer="zeros") if offset else None

    def get_config(self):
        return {**super().get_config(), "num_entities": self.num_entities, "num_relations": self.k,
                "init_std": self.init_std, "offset": self.offset is not None}

    def project(self, a):
        """W_k vec(a_k) for every view: [N, S, S, K] → [N, S², K]."""
        a = tf.reshape(a, [-1, self.s2, self.k])  # [N, S², K]
        return tf.einsum("pqk,nqk->npk", self.w, a)  # [N, S², K]

    def call(self, h, a, anchor, other):
        h = tf.reshape(h, [-1, self.s2 * self.k])  # [N, S²·K]
        wa = tf.reshape(self.project(a), [-1, self.s2 * self.k])  # [N, S²·K]
        scores = tf.reduce_sum(tf.gather(h, anchor) * tf.gather(wa, other), axis=-1)  # [P]
        return scores if self.offset is None else scores + self.offset

    def cosine(self, h, a, temperature):
        """Every (anchor, other) pair of views: cos(h̃_anchor, (W·a)~_other) / τ_c. [N, S, S, K] ×2 → [N, N].

        ~ centres a vector over the batch (removes what every view shares, e.g. a constant graph)
        and ℓ2-normalises it, so a score depends on how a view's relations differ from the batch's.
        """
        def centred_unit(x):
            x = x - tf.reduce_mean(x, axis=0, keepdims=True)
            return tf.math.l2_normalize(x, axis=-1, epsilon=1e-8)

        u = centred_unit(tf.reshape(h, [-1, self.s2 * self.k]))  # [N, S²·K]
        v = centred_unit(tf.reshape(self.project(a), [-1, self.s2 * self.k]))  # [N, S²·K]
        return tf.matmul(u, v, transpose_b=True) / temperature
