"""Linear evaluation (Table 1): a linear softmax classifier on a frozen encoder's features.

The features of the train and test splits are computed once, without augmentation and with
the encoder's own normalisation, as the baseline's linear evaluation does. Transfer (CIFAR-10 →
CIFAR-100) is the same encoder probed on another dataset. The encoder plus the trained linear
head are exported as a classifier SavedModel for TF Serving:
``serving_default``: ``images`` uint8 [N, H, W, 3] → ``probabilities`` [N, C], ``classes`` [N].
"""

import json
import os
import time

import tensorflow as tf
import keras

from hsl_tf import export, host, linear
from hsl_tf.config import ProbeConfig
from hsl_tf.data import datasets
from hsl_tf.errors import ConfigError
from hsl_tf.rundir import prepare_workdir, record_paths, resolve_version_dir, write_json


class Classifier:
    """Frozen encoder + linear head on its ``features`` (z, or the relations). No random ops:
    identical requests give identical answers."""

    def __init__(self, encoder, head, image_size, features="z"):
        self.encoder, self.head = encoder, head
        self.features = encoder.embed if features == "z" else encoder.relations
        h, w = image_size
        self.signature = tf.TensorSpec([None, h, w, 3], tf.uint8, name="images")
        self.serve = tf.function(self._serve, input_signature=[self.signature])

    def _serve(self, images):
        f = self.features(images)  # [N, S, D] or [N, S, S, K]
        logits = self.head(tf.reshape(f, [tf.shape(f)[0], -1]))  # [N, C]
        return {"probabilities": tf.nn.softmax(logits, axis=-1),
                "classes": tf.argmax(logits, axis=-1, output_type=tf.int64)}


def export_classifier(classifier, base, meta):
    """Writes ``<base>/<version>/`` atomically (Keras ExportArchive) and returns the version dir."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(classifier.encoder.trackable)  # the encoder's variables
    archive.track(classifier.head)
    archive.add_endpoint("serving_default", classifier._serve, input_signature=[classifier.signature])

    def write(tmp):
        archive.write_out(tmp, verbose=False)
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, export.META_FILE), "w") as f:
            json.dump(record_paths(meta), f, indent=1, sort_keys=True)  # its paths as results.json's

    return export.write_version(base, write)


def _load(cfg):
    """The probe's data and frozen encoder, checked against each other."""
    if not cfg.encoder.startswith("random:"):
        resolve_version_dir(cfg.encoder)  # fail on a bad path before loading data
    data = datasets.load_dataset(cfg.dataset, **cfg.data_kwargs())
    classes = data.num_classes if cfg.num_classes is None else cfg.num_classes
    labels_max = int(max(data.train_labels.max(initial=0), data.test_labels.max(initial=0)))
    if classes != data.num_classes or labels_max >= classes:
        raise ConfigError("num_classes", classes, f"the dataset {cfg.dataset} has {data.num_classes} classes "
                          f"(labels up to {labels_max})")
    encoder = export.load_encoder(cfg.encoder, seed=cfg.seed, image_size=data.image_size, mean=data.mean,
                                  std=data.std)
    encoder.check_image_size(*data.image_size)
    return data, encoder


def run_probe(cfg: ProbeConfig, log=None):
    """Runs the linear probe and writes results.json, tb/ and export/classifier/<version>/.

    ``log(message)`` receives the console lines when ``cfg.verbose``. Returns (results dict,
    in-memory :class:`Classifier`).
    """
    prepare_workdir(cfg.workdir)
    t0, origin = time.time(), host.provenance()  # the commit that runs, read before it can move
    data, encoder = _load(cfg)
    if cfg.verbose and log is not None:
        log(f"Features of {len(data.train_images)} train and {len(data.test_images)} test images from {encoder.name}")
    features = encoder.embed if cfg.features == "z" else encoder.relations
    train_x = linear.extract_features(features, data.train_images)  # [n, S·D] or [n, S·S·K]
    test_x = linear.extract_features(features, data.test_images)
    t_feat = time.time() - t0

    writer = tf.summary.create_file_writer(os.path.join(cfg.workdir, "tb"))
    trainer = linear.LinearTrainer(train_x.shape[1], data.num_classes, cfg.learning_rate)
    trainer.reset(cfg.seed)
    bar = keras.utils.Progbar(cfg.epochs, verbose=cfg.verbose, unit_name="epoch")

    def on_epoch(epoch, loss, acc):
        test_acc = trainer.accuracy(test_x, data.test_labels)
        with writer.as_default(step=epoch + 1):
            tf.summary.scalar("probe/loss", loss)
            tf.summary.scalar("probe/train_accuracy", acc)
            tf.summary.scalar("probe/test_accuracy", test_acc)
        bar.update(epoch + 1, values=[("loss", loss), ("acc", acc), ("test_acc", test_acc)])

    trainer.fit(train_x, data.train_labels, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=cfg.seed,
                on_epoch=on_epoch)
    writer.flush()
    results = {
        "stage": "probe", "train_accuracy": trainer.accuracy(train_x, data.train_labels),
        "test_accuracy": trainer.accuracy(test_x, data.test_labels), "dataset": cfg.dataset,
        "encoder": cfg.encoder, "seed": cfg.seed, "epochs": cfg.epochs, "features": cfg.features,
        **encoder.describe(),
        "num_classes": data.num_classes, "feature_seconds": round(t_feat, 2),
    }
    classifier = Classifier(encoder, trainer.layer, data.image_size, cfg.features)
    results["export"] = export_classifier(classifier, os.path.join(cfg.workdir, "export", "classifier"), dict(
        kind="classifier", image_size=list(data.image_size), num_classes=data.num_classes, encoder=cfg.encoder,
        features=cfg.features,
        class_names=list(data.class_names)))
    results["seconds"] = round(time.time() - t0, 2)
    results.update(origin)
    write_json(os.path.join(cfg.workdir, "results.json"), results)
    return results, classifier
