"""Slot-attention entities (``entities=slots``, an extension; see :mod:`hsl_tf.entities`).

The paper's Sec. 4 suggests replacing global average pooling with slot attention (Locatello et
al. 2020): the backbone's last feature map [N, h, w, 64] gets a soft position embedding, and
slot attention with S slots of size D gives z [N, S, D]; g(x) = reshape(z, [S·D]). The critics
and the MPNN are unchanged, and so are the widths they see (S·D).

Slot attention (Locatello et al. 2020, Algorithm 1), with inputs the L = h·w feature vectors:

    inputs ← MLP(LayerNorm(flatten(features + pos)))         (as Locatello et al.'s encoder)
    k, v   = W_k·LN(inputs), W_v·LN(inputs)                  [N, L, D]
    slots  ~ N(μ, diag σ²)                                   [N, S, D], μ, log σ learnt
    repeat T = 3 times:
        q      = W_q·LN(slots)
        attn   = softmax over the S slots of k·qᵀ/√D         [N, S, L]  (slots compete)
        update = Σ_l attn_{s,l} v_l / Σ_l attn_{s,l}         (weighted mean over locations)
        slots  = GRU(update, slots);  slots += MLP(LN(slots))

Initial slots. With every slot at μ the slots stay identical at every iteration (the attention
is then uniform, so every update is the same). The deterministic initialisation is therefore
μ + σ·ε₀, with ε₀ [S, D] one fixed normal draw stored as a non-trainable weight. It seeds from
the config seed, is checkpointed and is exported, so the export contains no random op. In
training (``training=True`` with a seed), ε is redrawn every step from the stateless seed
(config seed, step), folded with a constant so that it differs from the Gumbel noise.

One ε is shared by the whole batch, every view and every replica, rather than one draw per
image. The critics index the slots by position: T_β concatenates g(x) = vec(z), and W_k of T_ω
indexes slot pairs. The slot order must therefore agree between the views a pair compares.
Slot attention is permutation-equivariant in its initial slots, so a shared ε gives every image
the same ordering "prior". The draw does not depend on the number of replicas.

The position embedding is the soft one of Locatello et al.'s code: a learnt Dense(4 → C) of
the grid (x, y, 1 − x, 1 − y), x and y in [0, 1], added to the features, so slots can tell
locations apart. The grid is built from the static feature-map size (the encoder's input size
is fixed). The attention maps of the last iteration, [N, S, h, w], are exposed for
interpretation (the export's ``slot_attention`` endpoint and ``bin/interpret``'s attention.png).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from hsl_tf import encoders

ITERATIONS = 3  # T of slot attention (Locatello et al. 2020)
MLP_HIDDEN = 64  # width of the residual slot MLP and of the input MLP
NOISE_FOLD = 0x5107  # folded into the (seed, step) seed: slot noise ≠ Gumbel noise


def position_grid(height, width):
    """The soft-position grid, float32 numpy [h, w, 4]: (x, y, 1 − x, 1 − y) with x, y ∈ [0, 1]."""
    y, x = np.meshgrid(np.linspace(0.0, 1.0, height), np.linspace(0.0, 1.0, width), indexing="ij")  # [h, w]
    return np.stack([x, y, 1.0 - x, 1.0 - y], axis=-1).astype(np.float32)  # [h, w, 4]


@keras.saving.register_keras_serializable(package="hsl_tf")
class MLP(layers.Layer):
    """Dense(hidden) → ReLU → Dense(out) on row vectors [M, F] → [M, out]."""

    def __init__(self, hidden, out, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.fc1 = layers.Dense(hidden, activation="relu", name="fc1")
        self.fc2 = layers.Dense(out, name="fc2")

    def get_config(self):
        return {**super().get_config(), "hidden": self.fc1.units, "out": self.fc2.units}

    def call(self, x):
        return self.fc2(self.fc1(x))


@keras.saving.register_keras_serializable(package="hsl_tf")
class SlotAttention(layers.Layer):
    """Slot attention: inputs [N, L, C] → slots [N, S, D], attention [N, S, L] (last iteration).

    Args:
      num_slots: S.
      slot_dim: D.
      iterations: T (3).
      mlp_hidden: width of the residual MLP.
      seed: seed of the fixed inference noise ε₀.
      epsilon: added to the attention before the weighted mean (as in the reference code).
    """

    def __init__(self, num_slots, slot_dim, iterations=ITERATIONS, mlp_hidden=MLP_HIDDEN, seed=0,
                 epsilon=1e-8, name="slot_attention", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_slots, self.slot_dim, self.iterations = num_slots, slot_dim, iterations
        self.seed, self.epsilon = seed, epsilon
        self.norm_inputs = layers.LayerNormalization(name="norm_inputs")
        self.norm_slots = layers.LayerNormalization(name="norm_slots")
        self.norm_mlp = layers.LayerNormalization(name="norm_mlp")
        self.to_q = layers.Dense(slot_dim, use_bias=False, name="to_q")
        self.to_k = layers.Dense(slot_dim, use_bias=False, name="to_k")
        self.to_v = layers.Dense(slot_dim, use_bias=False, name="to_v")
        self.gru = layers.GRUCell(slot_dim, name="gru")  # reset_after: PyTorch's GRU; no dropout
        self.mlp = MLP(mlp_hidden, slot_dim, name="mlp")

    def get_config(self):
        return {**super().get_config(), "num_slots": self.num_slots, "slot_dim": self.slot_dim,
                "iterations": self.iterations, "mlp_hidden": self.mlp.fc1.units, "seed": self.seed,
                "epsilon": self.epsilon}

    def build(self, input_shape):
        d = self.slot_dim
        self.mu = self.add_weight(shape=(1, 1, d), initializer="glorot_uniform", name="slots_mu")
        self.log_sigma = self.add_weight(shape=(1, 1, d), initializer="glorot_uniform", name="slots_log_sigma")
        self.init_noise = self.add_weight(  # ε₀, the fixed draw of the deterministic initialisation
            shape=(1, self.num_slots, d), initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self.seed),
            trainable=False, name="init_noise")

    def initial_slots(self, batch, training=False, seed=None):
        """μ + σ·ε [N, S, D]: ε fresh from ``seed`` when training (shared by the batch), else ε₀."""
        noise = self.init_noise  # [1, S, D]
        if training and seed is not None:
            seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), NOISE_FOLD)
            noise = tf.random.stateless_normal([1, self.num_slots, self.slot_dim], seed)
        slots = self.mu + tf.exp(self.log_sigma) * noise  # [1, S, D]
        return tf.tile(slots, [batch, 1, 1])

    def iterate(self, inputs, slots):
        """T rounds of attention from given initial ``slots`` [N, S, D] on ``inputs`` [N, L, C].

        Returns (slots [N, S, D], attention [N, S, L] of the last round, summing to 1 over S).
        The per-vector layers run on flattened rows ([N·L, C], [N·S, D]): same values, a smaller
        graph than rank-3 Dense (tensordot), which keeps tracing and export fast.
        """
        length, s, d = inputs.shape[1], self.num_slots, self.slot_dim  # static L, S, D
        x = self.norm_inputs(tf.reshape(inputs, [-1, inputs.shape[-1]]))  # [N·L, C]
        k = tf.reshape(self.to_k(x), [-1, length, d])  # [N, L, D]
        v = tf.reshape(self.to_v(x), [-1, length, d])  # [N, L, D]
        scale = d ** -0.5
        flat = tf.reshape(slots, [-1, d])  # [N·S, D]
        attn = None
        for _ in range(self.iterations):
            q = tf.reshape(self.to_q(self.norm_slots(flat)), [-1, s, d])  # [N, S, D]
            logits = tf.einsum("nsd,nld->nsl", q, k) * scale  # [N, S, L]
            attn = tf.nn.softmax(logits, axis=1)  # over slots
            weights = attn + self.epsilon
            weights = weights / tf.reduce_sum(weights, axis=-1, keepdims=True)  # weighted mean over L
            updates = tf.einsum("nsl,nld->nsd", weights, v)  # [N, S, D]
            flat, _ = self.gru(tf.reshape(updates, [-1, d]), [flat])  # [N·S, D]
            flat = flat + self.mlp(self.norm_mlp(flat))  # [N·S, D]
        return tf.reshape(flat, [-1, s, d]), attn

    def call(self, inputs, training=False, seed=None):
        slots = self.initial_slots(tf.shape(inputs)[0], training=training, seed=seed)
        return self.iterate(inputs, slots)


@keras.saving.register_keras_serializable(package="hsl_tf")
class SlotEntities(layers.Layer):
    """Feature map [N, h, w, C] → (g [N, S·D], z [N, S, D]) (the :mod:`hsl_tf.entities` interface);
    :meth:`attention` gives the attention maps [N, S, h, w] of the last iteration.

    Soft position embedding, flatten, LayerNorm → MLP (as Locatello et al.'s encoder), then
    slot attention.

    Args:
      num_slots: S.
      slot_dim: D.
      seed: seed of the fixed inference noise ε₀ (the config seed).
    """

    def __init__(self, num_slots, slot_dim, seed=0, name="slot_entities", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_slots, self.slot_dim = num_slots, slot_dim
        self.position = layers.Dense(encoders.FEATURE_DIM, name="position")
        self.norm = layers.LayerNormalization(name="norm")
        self.mlp = MLP(MLP_HIDDEN, encoders.FEATURE_DIM, name="mlp")
        self.slot_attention = SlotAttention(num_slots, slot_dim, seed=seed)

    has_attention = True

    def get_config(self):
        return {**super().get_config(), "num_slots": self.num_slots, "slot_dim": self.slot_dim,
                "seed": self.slot_attention.seed}

    def slots_and_attention(self, features, training=False, seed=None):
        """[N, h, w, C] → (z [N, S, D], attention [N, S, h, w])."""
        h, w, c = features.shape[1:]  # static: the encoder's input size is fixed
        pos = self.position(position_grid(h, w).reshape(h * w, 4))  # [L, C]
        x = tf.reshape(features, [-1, h * w, c]) + pos  # [N, L, C]
        x = self.mlp(self.norm(tf.reshape(x, [-1, c])))  # [N·L, C]
        z, attn = self.slot_attention(tf.reshape(x, [-1, h * w, c]), training=training, seed=seed)
        return z, tf.reshape(attn, [-1, self.num_slots, h, w])

    def call(self, features, training=False, seed=None):
        z, _ = self.slots_and_attention(features, training=training, seed=seed)  # [N, S, D]
        return tf.reshape(z, [-1, self.num_slots * self.slot_dim]), z

    def attention(self, features):
        """Deterministic attention maps of the last iteration: [N, h, w, C] → [N, S, h, w]."""
        return self.slots_and_attention(features, training=False)[1]
