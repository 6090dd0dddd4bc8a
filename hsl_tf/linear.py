"""Linear softmax classifier on frozen features: the surrogate (Fig. 3) and the linear probe (Table 1).

:class:`LinearTrainer` keeps one Dense layer and one Adam optimizer whose traced epoch function
is reused: :meth:`LinearTrainer.reset` re-initialises the weights and zeroes the optimizer
state, so the surrogate probe that runs every N training steps never retraces.
"""

import numpy as np
import tensorflow as tf
import keras


def extract_features(encode_fn, images, batch_size=500):
    """Runs ``encode_fn`` over ``images`` in batches. [n, ...] → float32 [n, F] (flattened)."""
    out = []
    for start in range(0, len(images), batch_size):
        z = encode_fn(tf.convert_to_tensor(images[start:start + batch_size]))
        out.append(np.asarray(z, np.float32).reshape(len(z), -1))
    return np.concatenate(out, 0) if out else np.zeros([0, 0], np.float32)


class LinearTrainer:
    """Dense(num_classes) trained with Adam on softmax cross-entropy.

    Args:
      num_features: F.
      num_classes: C.
      learning_rate: Adam step size.
    """

    def __init__(self, num_features, num_classes, learning_rate=1e-3):
        self.num_classes = num_classes
        self.layer = keras.layers.Dense(num_classes, name="linear")
        self.layer.build((None, num_features))
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.layer.trainable_variables)
        self._epoch = tf.function(self._run_epoch)

    def reset(self, seed):
        """Fresh Glorot-uniform weights from ``seed``, zero bias and zero Adam state."""
        init = keras.initializers.GlorotUniform(seed=seed)
        self.layer.kernel.assign(init(self.layer.kernel.shape))
        self.layer.bias.assign(tf.zeros_like(self.layer.bias))
        for v in self.optimizer.variables:  # the step counter and the Adam moments
            if v.name != "learning_rate":
                v.assign(tf.zeros_like(v))

    def _run_epoch(self, dataset):
        loss_sum, correct, count = 0.0, 0.0, 0.0
        for x, y in dataset:  # x [b, F], y [b]
            with tf.GradientTape() as tape:
                logits = self.layer(x)  # [b, C]
                losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
                loss = tf.reduce_mean(losses)
            grads = tape.gradient(loss, self.layer.trainable_variables)
            self.optimizer.apply(grads, self.layer.trainable_variables)
            loss_sum += tf.reduce_sum(losses)
            correct += tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32))
            count += tf.cast(tf.shape(y)[0], tf.float32)
        return loss_sum / count, correct / count

    def fit(self, features, labels, *, epochs, batch_size=64, seed=0, on_epoch=None):
        """Trains for ``epochs`` (shuffled each epoch from ``seed``).

        ``on_epoch(epoch, loss, running_accuracy)`` is called after each epoch.
        """
        features = np.asarray(features, np.float32)
        labels = np.asarray(labels, np.int32)
        for epoch in range(epochs):
            order = np.random.default_rng([seed, epoch]).permutation(len(features))
            ds = tf.data.Dataset.from_tensor_slices((features[order], labels[order])).batch(batch_size)
            loss, acc = self._epoch(ds)
            if on_epoch is not None:
                on_epoch(epoch, float(loss), float(acc))

    def predict(self, features):
        """Class probabilities [n, C]."""
        return tf.nn.softmax(self.layer(tf.convert_to_tensor(features, tf.float32))).numpy()

    def accuracy(self, features, labels):
        if len(features) == 0:
            return float("nan")
        return float(np.mean(np.argmax(self.predict(features), -1) == np.asarray(labels)))
