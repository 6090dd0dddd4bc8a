"""Leveraging Hidden Structure in Self-Supervised Learning, the method in one file.

I(X,Z,A) with the NWJ bound (Eq. 3): a Conv-4 encoder g_θ, entities z = reshape(g(x), [S, D]), the
two-layer NRI-style MPNN m_η with Gumbel-softmax relations (TFP), the critics T_β(x, z) and
T_ω(x, a) on positive and negative pairs of augmented views, and a custom ``train_step``. TensorFlow,
Keras and TFP only; it reads top to bottom beside the paper. tests/test_essential.py proves it is
the method of the ``hsl_tf`` package: with the package's weights, views and Gumbel noise, both give
the same loss and bounds (to 1e-5) and gradients (to 5e-5 of the largest), for NWJ and for InfoNCE.

  python examples/essential.py --steps=200        # CIFAR-10 from TFDS if prepared, else generated data
"""

import argparse

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import keras
from keras import layers

S, D, K = 8, 8, 2  # entities, entity size (S·D = 64, Conv-4's width), relation types
HIDDEN, HEAD = 32, 256  # width of every MLP of m_η; hidden width of the relation head f_δ
TAU = 0.5  # temperature of the Gumbel-softmax relations


def bn():
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5)


# ---------------------------------------------------------------- g_θ and the entities (Sec. 3.1)
class Conv4(keras.Model):
    """P&S's Conv-4: 4 × (conv3×3 without bias → BN → ReLU), 8/16/32/64 channels, 2×2 average
    pooling after the first three, global average pooling. [N, 32, 32, 3] → g(x) [N, 64]."""

    def __init__(self):
        super().__init__()
        self.convs = [layers.Conv2D(c, 3, padding="same", use_bias=False) for c in (8, 16, 32, 64)]
        self.bns = [bn() for _ in range(4)]

    def call(self, x, training=False):
        for i, (conv, norm) in enumerate(zip(self.convs, self.bns)):
            x = tf.nn.relu(norm(conv(x), training=training))
            x = tf.nn.avg_pool2d(x, 2, 2, "VALID") if i < 3 else tf.reduce_mean(x, axis=[1, 2])
        return x


# ------------------------------------------------------ m_η: relations over the entities (App. C)
SEND, RECV = np.nonzero(~np.eye(S, dtype=bool))  # the E = S(S−1) directed edges (i, j), sender-major


def mlp():
    """NRI's MLP: Dense → ELU → Dense → ELU → BatchNorm."""
    return keras.Sequential([layers.Dense(HIDDEN, activation="elu"), layers.Dense(HIDDEN, activation="elu")]
                            + [bn()])


class EdgeMLP(keras.Model):
    """m_e on [x_i; x_j (; e_ij)] of every edge (i, j): Dense → ELU → Dense → ELU → BatchNorm."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.norm = layers.Dense(HIDDEN), layers.Dense(HIDDEN, activation="elu"), bn()

    def call(self, nodes, edges=None, training=False):
        pair = [tf.gather(nodes, SEND, axis=1), tf.gather(nodes, RECV, axis=1)]  # [N, E, F] each
        x = tf.concat(pair + ([edges] if edges is not None else []), axis=-1)
        return self.norm(self.fc2(tf.nn.elu(self.fc1(x))), training=training)


class MPNN(keras.Model):
    """h¹_i = m_emb(z_i); h¹_ij = m¹_e([h¹_i, h¹_j]); h²_i = m¹_v(Σ_{j≠i} h¹_ij);
    h²_ij = m²_e([h²_i, h²_j, h¹_ij]); logits_ij = Linear(h²_ij) ∈ R^K.  z [N, S, D] → [N, E, K]."""

    def __init__(self):
        super().__init__()
        self.m_emb, self.m_e1, self.m_v1, self.m_e2 = mlp(), EdgeMLP(), mlp(), EdgeMLP()
        self.fc_out = layers.Dense(K)

    def call(self, z, training=False):
        h1 = self.m_emb(z, training=training)
        e1 = self.m_e1(h1, training=training)  # [N, E, H]
        incoming = tf.math.unsorted_segment_sum(tf.transpose(e1, [1, 0, 2]), SEND, S)  # Σ_{j≠i}: [S, N, H]
        h2 = self.m_v1(tf.transpose(incoming, [1, 0, 2]), training=training)
        return self.fc_out(self.m_e2(h2, e1, training=training))


def dense_relations(a):
    """Edge values [N, E, K] → a ∈ [N, S, S, K] with a_ii = 0."""
    index = tf.constant(np.stack([SEND, RECV], -1))  # [E, 2]
    dense = tf.scatter_nd(index, tf.transpose(a, [1, 0, 2]), [S, S, tf.shape(a)[0], K])  # [S, S, N, K]
    return tf.transpose(dense, [2, 0, 1, 3])


# --------------------------------------------------------------------------- pairs of views (Eq. 3)
def pairs(b, v):
    """Row indices into the B·V views (image-major) of, for every image and view pair i < j: the
    positive (view i, view j of the image) and the negative (view i, view j of the image
    1 + q mod (B − 1) places further, q the pair's number). Each [B, Q], Q = V(V−1)/2."""
    vi, vj = np.triu_indices(v, k=1)
    shift = 1 + np.arange(len(vi)) % (b - 1)
    img = np.arange(b)[:, None]
    return img * v + vi, img * v + vj, (img + shift) % b * v + vj


# ------------------------------------------------------------------------- the bounds (Sec. 3, Eq. 3)
def nwj(pos, neg):
    """NWJ per image: mean_q T(pos) − mean_q e^{T(neg) − 1}. [B, Q] × 2 → [B]."""
    return tf.reduce_mean(pos, -1) - tf.reduce_mean(tf.exp(neg - 1.0), -1)


def infonce(pos, neg):
    """InfoNCE per image: candidates of a positive are it and the row's Q negatives."""
    lse = tf.reduce_logsumexp(tf.stack([pos, tf.broadcast_to(tf.reduce_logsumexp(neg, -1, keepdims=True),
                                                             tf.shape(pos))], -1), -1)
    return tf.math.log(tf.cast(tf.shape(pos)[-1] + 1, pos.dtype)) + tf.reduce_mean(pos - lse, -1)


class HiddenStructure(keras.Model):
    """g_θ, m_η and the critics; ``train_step`` maximises I(X,Z) + I(X,A) (App. A: Z ⟂ A | X)."""

    def __init__(self, bound=nwj, seed=0):
        super().__init__()
        self.encoder, self.mpnn, self.bound, self.seed = Conv4(), MPNN(), bound, seed
        # T_β(x, z) = f_δ([g(x); z]): Linear(2·S·D → 256) → BN → LeakyReLU(0.01) → Linear(1) (P&S's head)
        self.head_fc, self.head_bn, self.head_out = layers.Dense(HEAD), bn(), layers.Dense(1)
        # T_ω(x, a) = Σ_k vec(h(x)_k)ᵀ W_k vec(a_k), W ∈ R^{S²×S²×K}
        self.W = self.add_weight(shape=(S * S, S * S, K), initializer=keras.initializers.RandomNormal(stddev=0.01))

    def losses_of(self, views, noise_seed):
        """Views [B, V, H, W, 3] → (loss, I(X,Z) estimate, I(X,A) estimate)."""
        b, v = views.shape[0], views.shape[1]
        g = self.encoder(tf.reshape(views, [b * v, *views.shape[2:]]), training=True)  # [N, 64]
        z = tf.reshape(g, [-1, S, D])  # the entities
        logits = self.mpnn(z, training=True)  # [N, E, K]
        a = tfp.distributions.RelaxedOneHotCategorical(TAU, logits=logits).sample(seed=noise_seed)
        a = tf.reshape(dense_relations(a), [-1, S * S, K])  # [N, S², K]
        anchor, positive, negative = pairs(b, v)
        others = np.concatenate([positive, negative])  # [2B, Q]
        anchors = np.concatenate([anchor, anchor])
        # T_β on every (anchor view x, other view's z), positives and negatives through one BN
        t_beta = self.head_fc(tf.concat([tf.gather(g, anchors), tf.gather(g, others)], -1))
        t_beta = tf.squeeze(self.head_out(tf.nn.leaky_relu(self.head_bn(t_beta, training=True), 0.01)), -1)
        # T_ω: h(x) is the anchor view's sampled relations, a the other view's
        wa = tf.einsum("pqk,nqk->npk", self.W, a)  # W_k vec(a_k) of every view: [N, S², K]
        t_omega = tf.reduce_sum(tf.gather(a, anchors) * tf.gather(wa, others), axis=[-2, -1])  # [2B, Q]
        i_xz = self.bound(t_beta[:b], t_beta[b:])  # [B]
        i_xa = self.bound(t_omega[:b], t_omega[b:])
        return -tf.reduce_mean(i_xz + i_xa), tf.reduce_mean(i_xz), tf.reduce_mean(i_xa)  # Eq. 3

    def train_step(self, views):
        noise_seed = tf.stack([tf.constant(self.seed, tf.int32), tf.cast(self.optimizer.iterations, tf.int32)])
        with tf.GradientTape() as tape:
            loss, i_xz, i_xa = self.losses_of(views, noise_seed)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss, "I(X,Z)": i_xz, "I(X,A)": i_xa}


# ------------------------------------------------------------------------------------ data and a run
def images():
    """CIFAR-10's training images (uint8) from TFDS when prepared, else generated shapes."""
    try:
        import tensorflow_datasets as tfds

        return tfds.as_numpy(tfds.load("cifar10", split="train", batch_size=-1, download=False))["image"], "CIFAR-10"
    except Exception:  # no TFDS data here: coloured squares on noise stand in
        rng = np.random.default_rng(0)
        x = rng.integers(0, 80, [2048, 32, 32, 3], dtype=np.uint8)
        for n, (r, c) in enumerate(rng.integers(0, 20, [2048, 2])):
            x[n, r:r + 12, c:c + 12] = rng.integers(100, 256, 3)
        return x, "generated shapes"


def augment(batch, v):
    """V views per image: a random 24–32-pixel crop resized to 32, a horizontal flip, normalisation."""
    x = tf.repeat(tf.cast(batch, tf.float32) / 255.0, v, axis=0)  # [B·V, 32, 32, 3]
    n = tf.shape(x)[0]
    size = tf.random.uniform([n, 1], 0.75, 1.0)
    y0, x0 = tf.random.uniform([n, 1]) * (1 - size), tf.random.uniform([n, 1]) * (1 - size)
    boxes = tf.concat([y0, x0, y0 + size, x0 + size], 1)
    x = tf.image.crop_and_resize(x, boxes, tf.range(n), [32, 32])
    x = tf.where(tf.random.uniform([n, 1, 1, 1]) < 0.5, x[:, :, ::-1], x)
    return tf.reshape((x - 0.5) / 0.25, [-1, v, 32, 32, 3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--views", type=int, default=4)
    args = parser.parse_args()
    x, name = images()
    keras.utils.set_random_seed(0)
    data = (tf.data.Dataset.from_tensor_slices(x).shuffle(10_000).repeat().batch(args.batch, drop_remainder=True)
            .map(lambda b: augment(b, args.views)).prefetch(2))
    model = HiddenStructure()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    print(f"I(X,Z,A) with NWJ on {name}: {args.steps} steps of {args.batch} images × {args.views} views")
    every = min(args.steps, 50)  # a line of the bounds every 50 steps
    model.fit(data, epochs=-(-args.steps // every), steps_per_epoch=every, verbose=2, shuffle=False)


if __name__ == "__main__":
    main()
