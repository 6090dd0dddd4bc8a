"""The relation network m_η (appendix C, after NRI, Kipf et al. 2018) and Gumbel-softmax relations.

On the complete directed graph of S entities without self-loops (E = S(S−1) edges, ordered
sender-major: e = (i, j), i ≠ j):

    h¹_i     = m_emb(z_i)
    h¹_(i,j) = m¹_e([h¹_i, h¹_j])
    h²_i     = m¹_v(Σ_{j≠i} h¹_(i,j))
    h²_(i,j) = m²_e([h²_i, h²_j, h¹_(i,j)])
    logits_(i,j) = Linear(h²_(i,j)) ∈ R^K
    a_(i,j)  ~ RelaxedOneHotCategorical(τ, logits_(i,j))       (training)
    a_(i,j)  = softmax(logits_(i,j))                            (inference / export)

Every m is an MLP with one hidden layer (Dense → ELU → Dense → ELU, as NRI's MLP without
dropout), optionally followed by batch norm (``norm=True``, NRI's MLP ends in BatchNorm1d).
The edge-to-node aggregation is a plain sum, or (``aggregation="mean"``) NRI's average: the sum
over the S−1 incoming edges divided by the number of nodes S, as NRI's ``edge2node`` does. The first layer of each edge MLP is linear in the concatenation, so it
is computed per node and gathered per edge (exact; S instead of E rows for the node parts).
Diagonal entries a_(i,i) are excluded: they are zero in every dense [N, S, S, K] tensor.
"""

import numpy as np
import tensorflow as tf
import keras
from keras import layers

from hsl_tf.batchnorm import BatchNorm

AGGREGATIONS = ("sum", "mean")


def edge_index(num_entities):
    """Sender and receiver of every edge, sender-major. Returns int32 [E], [E] (E = S(S−1))."""
    s = num_entities
    send, recv = np.nonzero(~np.eye(s, dtype=bool))  # row-major: (0,1), (0,2), ..., (1,0), ...
    return send.astype(np.int32), recv.astype(np.int32)


def edges_to_dense(edge_values, num_entities):
    """[N, E, K] edge values → [N, S, S, K] with zeros on the diagonal."""
    s = num_entities
    e = s * (s - 1)
    # position of (i, j) in the edge list, or e (a zero row) for i == j
    index = np.full((s, s), e, np.int32)
    send, recv = edge_index(s)
    index[send, recv] = np.arange(e, dtype=np.int32)
    padded = tf.pad(edge_values, [[0, 0], [0, 1], [0, 0]])  # [N, E+1, K]
    dense = tf.gather(padded, index.reshape(-1), axis=1)  # [N, S*S, K]
    return tf.reshape(dense, [-1, s, s, edge_values.shape[-1]])


@keras.saving.register_keras_serializable(package="hsl_tf")
class PairMLP(layers.Layer):
    """MLP with one hidden layer on [x_i, x_j, (e_ij)] for every edge (i, j).

    The first layer W·[x_i; x_j; e_ij] = W_s·x_i + W_r·x_j + W_e·e_ij is evaluated per node and
    gathered per edge. Inputs: nodes [N, S, F], optional edges [N, E, F_e]. Output [N, E, out].
    """

    def __init__(self, hidden, out, senders, receivers, edge_inputs=False, norm=False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.bn = BatchNorm(name="bn") if norm else None
        self.senders, self.receivers = senders, receivers
        self.hidden, self.out, self.edge_inputs = hidden, out, edge_inputs
        self.w_send = layers.Dense(hidden, name="w_send")
        self.w_recv = layers.Dense(hidden, use_bias=False, name="w_recv")
        self.w_edge = layers.Dense(hidden, use_bias=False, name="w_edge") if edge_inputs else None
        self.fc2 = layers.Dense(out, activation="elu", name="fc2")

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "out": self.out, "edge_inputs": self.edge_inputs,
                "senders": [int(i) for i in self.senders], "receivers": [int(i) for i in self.receivers],
                "norm": self.bn is not None}

    def build(self, nodes_shape, edges_shape=None):
        self.w_send.build(nodes_shape)
        self.w_recv.build(nodes_shape)
        if self.w_edge is not None:
            self.w_edge.build(edges_shape)
        self.fc2.build(tuple(nodes_shape[:-2]) + (None, self.w_send.units))
        if self.bn is not None:
            self.bn.build(tuple(nodes_shape[:-2]) + (None, self.fc2.units))

    def call(self, nodes, edges=None, training=False):
        pre = (tf.gather(self.w_send(nodes), self.senders, axis=1)  # [N, E, H]
               + tf.gather(self.w_recv(nodes), self.receivers, axis=1))
        if self.w_edge is not None:
            pre = pre + self.w_edge(edges)
        out = self.fc2(keras.ops.elu(pre))  # [N, E, out]
        return out if self.bn is None else self.bn(out, training=training)


def mlp(hidden, out, name, norm=False):
    """Dense → ELU → Dense → ELU (→ BatchNorm): [..., F] → [..., out]."""
    return keras.Sequential([layers.Dense(hidden, activation="elu"), layers.Dense(out, activation="elu")]
                            + ([BatchNorm(name="bn")] if norm else []), name=name)


@keras.saving.register_keras_serializable(package="hsl_tf")
class RelationMPNN(keras.Model):
    """m_η: entities z [N, S, D] → edge logits [N, E, K] over K relation types.

    Args:
      num_entities: S.
      num_relations: K, the number of relation types.
      hidden: width of every MLP (default 32; see the README for its cost).
      norm: end every MLP in batch norm, as NRI (synchronised under a strategy).
      aggregation: "sum" (Σ_{j≠i}) or "mean" (NRI: that sum ÷ S).
    """

    def __init__(self, num_entities, num_relations, hidden=32, norm=False, aggregation="sum", name="mpnn",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation {aggregation!r}: choose one of {', '.join(AGGREGATIONS)}")
        self.num_entities, self.num_relations, self.hidden = num_entities, num_relations, hidden
        self.aggregation, self.norm = aggregation, norm
        send, recv = edge_index(num_entities)
        self.m_emb = mlp(hidden, hidden, "m_emb", norm)
        self.m_e1 = PairMLP(hidden, hidden, send, recv, norm=norm, name="m_e1")
        self.m_v1 = mlp(hidden, hidden, "m_v1", norm)
        self.m_e2 = PairMLP(hidden, hidden, send, recv, edge_inputs=True, norm=norm, name="m_e2")
        self.fc_out = layers.Dense(num_relations, name="fc_out")

    def get_config(self):
        return {**super().get_config(), "num_entities": self.num_entities, "num_relations": self.num_relations,
                "hidden": self.hidden, "norm": self.norm, "aggregation": self.aggregation}

    def call(self, z, training=False):
        s, h = self.num_entities, self.hidden
        h1 = self.m_emb(z, training=training)  # [N, S, H]
        e1 = self.m_e1(h1, training=training)  # [N, E, H], E = S(S-1), sender-major
        # Σ_{j≠i} h¹_(i,j): the S−1 edges of sender i are contiguous.
        agg = tf.reduce_sum(tf.reshape(e1, [-1, s, s - 1, h]), axis=2)  # [N, S, H]
        if self.aggregation == "mean":
            agg = agg / float(s)  # NRI's edge2node divides by the number of nodes
        h2 = self.m_v1(agg, training=training)  # [N, S, H]
        e2 = self.m_e2(h2, e1, training=training)  # [N, E, H]  (skip connection h¹_(i,j))
        return self.fc_out(e2)  # [N, E, K]


def standardize(z, epsilon=1e-5):
    """Each view's z to zero mean and unit variance over its S·D entries: [N, S, D] → [N, S, D].

    Keeps the relative scale of the entities (one statistic per view), removes the overall
    scale the encoder drifts to, so the MPNN sees inputs of a fixed range.
    """
    mean, var = tf.nn.moments(z, axes=[1, 2], keepdims=True)
    return (z - mean) * tf.math.rsqrt(var + epsilon)


def relation_probs(logits):
    """Deterministic relations for inference and export: softmax over K. [N,E,K] → [N,E,K]."""
    return tf.nn.softmax(logits, axis=-1)


def sample_relations(logits, temperature, seed, hard=False):
    """Gumbel-softmax relations with TFP's RelaxedOneHotCategorical.

    The noise is drawn for the *global* batch from a stateless ``seed`` shared by all
    replicas, and each replica keeps its own slice. Replicas therefore get independent noise,
    and a run on R replicas sees exactly the noise of a single-device run on the same global
    batch (TFP draws the noise from the seed and the shape only).

    Args:
      logits: [N, E, K] local edge logits.
      temperature: τ > 0.
      seed: int32 [2] stateless seed (same on every replica).
      hard: straight-through one-hot samples (forward one-hot, gradient of the soft sample).
    Returns:
      [N, E, K] samples on the simplex.
    """
    import tensorflow_probability as tfp  # lazy: TFP is only needed for training

    ctx = tf.distribute.get_replica_context()
    replicas = ctx.num_replicas_in_sync if ctx is not None else 1
    logits = tf.cast(logits, tf.float32)
    if replicas > 1:
        rid = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
        n = tf.shape(logits)[0]
        padded = tf.pad(logits, [[rid * n, (replicas - 1 - rid) * n], [0, 0], [0, 0]])
        dist = tfp.distributions.RelaxedOneHotCategorical(temperature, logits=padded)
        y = dist.sample(seed=tf.cast(seed, tf.int32))[rid * n:(rid + 1) * n]
    else:
        dist = tfp.distributions.RelaxedOneHotCategorical(temperature, logits=logits)
        y = dist.sample(seed=tf.cast(seed, tf.int32))
    if hard:
        y_hard = tf.one_hot(tf.argmax(y, axis=-1), tf.shape(y)[-1], dtype=y.dtype)
        y = y_hard + y - tf.stop_gradient(y)
    return y
