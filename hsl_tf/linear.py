"""Linear softmax classifier on frozen features: the surrogate (Fig. 3) and the linear probe (Table 1)."""

import dataclasses

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


@dataclasses.dataclass
class LinearResult:
    model: keras.Model
    train_accuracy: float
    test_accuracy: float | None
    history: dict


def train_linear(features, labels, num_classes, *, epochs, batch_size=64, learning_rate=1e-3, seed=0,
                 test=None, callbacks=None):
    """Trains Dense(num_classes) with Adam and softmax cross-entropy on ``features`` [n, F].

    Returns the model, the accuracy on the training features after training, and on ``test``
    (a (features, labels) pair) when given.
    """
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((features.shape[1],)), keras.layers.Dense(num_classes)],
                             name="linear")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    hist = model.fit(features, labels, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
                     validation_data=test, callbacks=callbacks or [])
    train_acc = _accuracy(model, features, labels)
    test_acc = _accuracy(model, *test) if test is not None else None
    return LinearResult(model, train_acc, test_acc, hist.history)


def _accuracy(model, features, labels):
    logits = model.predict(features, batch_size=2048, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == np.asarray(labels)))
